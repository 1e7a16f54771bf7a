package serving

import (
	"context"
	"log/slog"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/recovery"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving/onnx"
)

// shadowJob is the observation of a request's copy for an endpoint's shadow
// model (see observation.shadowCopy), with the outputs the caller was
// served.
type shadowJob struct {
	o      *observation
	ref    router.ModelRef
	served []onnx.Tensor
}

// shadows runs shadow copies off the request path: a bounded queue drained
// by a few workers. A copy that does not fit in the queue is dropped and
// counted, so a slow or failing shadow model never slows or fails a caller.
// Each shadow model has a circuit breaker: once it has failed Failures times
// in a row, its copies are dropped (and counted) without running it, until
// the breaker lets one through to probe it.
type shadows struct {
	jobs     chan shadowJob
	run      func(o *observation) error // fills o.p, or fails and holds nothing
	record   func(*observation)
	timeout  time.Duration
	log      *slog.Logger
	wg       sync.WaitGroup
	once     sync.Once
	breaker  featurestore.Breaker
	breakers sync.Map // router.ModelRef → *gobreaker.CircuitBreaker[struct{}]
}

// Shadow tuning: the queue holds this many copies; each runs under timeout.
const (
	shadowQueue   = 1024
	shadowWorkers = 2
	shadowTimeout = 5 * time.Second
)

func newShadows(run func(o *observation) error, record func(*observation),
	breaker featurestore.Breaker, log *slog.Logger) *shadows {
	sh := &shadows{jobs: make(chan shadowJob, shadowQueue), run: run, record: record, timeout: shadowTimeout, breaker: breaker, log: log}
	for range shadowWorkers {
		sh.wg.Go(sh.work)
	}
	return sh
}

// offer queues a copy, or drops and counts it when the queue is full.
func (sh *shadows) offer(j shadowJob) {
	select {
	case sh.jobs <- j:
	default:
		j.o.route.Stats().RecordShadowDropped()
	}
}

func (sh *shadows) work() {
	for j := range sh.jobs {
		_ = recovery.Do(sh.log, panicShadow, func() { sh.do(j) })
	}
}

func (sh *shadows) do(j shadowJob) {
	ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
	defer cancel()
	o, stats := j.o, j.o.route.Stats()
	o.ctx, o.start = ctx, time.Now()
	_, err := sh.breakerOf(j.ref).Execute(func() (struct{}, error) { return struct{}{}, sh.run(o) })
	if featurestore.Refused(err) {
		stats.RecordShadowDropped()
		return
	}
	if err != nil {
		sh.log.Debug("shadow model failed", "endpoint", o.route.Endpoint(), "model", j.ref.String(), "err", err)
		o.err = err
		sh.record(o)
		stats.RecordShadowFailed()
		return
	}
	defer o.p.Release()
	if o.record != nil {
		o.response = o.record(nil, o)
	} else {
		o.response = o.encode(nil, o)
	}
	sh.record(o)
	// Last, so that a copy the stats count is one the recorder holds.
	compare(stats, j.served, o.p.outputs)
}

// breakerOf returns the breaker of a shadow model, made on first use.
func (sh *shadows) breakerOf(ref router.ModelRef) *gobreaker.CircuitBreaker[struct{}] {
	if b, ok := sh.breakers.Load(ref); ok {
		return b.(*gobreaker.CircuitBreaker[struct{}])
	}
	b, _ := sh.breakers.LoadOrStore(ref, featurestore.NewBreaker[struct{}]("shadow "+ref.String(), sh.breaker))
	return b.(*gobreaker.CircuitBreaker[struct{}])
}

// close stops taking copies and waits, up to timeout, for the queued ones.
func (sh *shadows) close(timeout time.Duration) {
	sh.once.Do(func() { close(sh.jobs) })
	done := make(chan struct{})
	go func() { sh.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// compare records how the shadow's answer relates to the served one, on the
// served answer's first output (or the shadow's output of that name): labels
// (integers, strings, booleans) agree or not; numbers give their mean
// absolute difference.
func compare(stats *router.Stats, served, shadow []onnx.Tensor) {
	if len(served) == 0 || len(shadow) == 0 {
		return
	}
	a, b := served[0], shadow[0]
	for _, t := range shadow {
		if t.Name == a.Name {
			b = t
		}
	}
	switch x := a.Data.(type) {
	case []float32:
		if y, ok := b.Data.([]float32); ok && len(x) == len(y) {
			stats.RecordShadowDiff(meanAbsDiff(x, y))
			return
		}
	case []float64:
		if y, ok := b.Data.([]float64); ok && len(x) == len(y) {
			stats.RecordShadowDiff(meanAbsDiff(x, y))
			return
		}
	}
	stats.RecordShadow(reflect.DeepEqual(a.Data, b.Data))
}

func meanAbsDiff[T float32 | float64](x, y []T) float64 {
	if len(x) == 0 {
		return 0
	}
	var sum float64
	for i := range x {
		sum += math.Abs(float64(x[i]) - float64(y[i]))
	}
	return sum / float64(len(x))
}
