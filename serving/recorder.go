package serving

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mlgate/mlgate/internal/recovery"
)

// The record stage runs off the request path. A request labels its metrics,
// copies what it must (its body, its answer and the model name asked for:
// memory the server reuses once the request ends), and hands the
// observation to the recorder, without waiting. The recorder's goroutine
// feeds the drift monitors and builds the inference-table row (entities and
// features as JSON, PII hashed).

// recorderQueue is how many observations may wait for the recorder; when it
// is full an observation is dropped and counted
// (mlgate_recorder_dropped_total), never waited for.
const recorderQueue = 8192

// recordJob is an observation to record; or, with done set, a flush (done
// is closed once everything queued before it is recorded), or the last job
// (stop also set).
type recordJob struct {
	o    *observation
	done chan struct{}
	stop bool
}

// recorder records observations on a goroutine of its own.
type recorder struct {
	jobs    chan recordJob
	record  func(*observation)
	log     *slog.Logger
	dropped atomic.Int64
	closing atomic.Bool
	stopped chan struct{}
}

func newRecorder(record func(*observation), log *slog.Logger) *recorder {
	r := &recorder{jobs: make(chan recordJob, recorderQueue), record: record, log: log, stopped: make(chan struct{})}
	go r.run()
	return r
}

// recorderTick is how long a busy recorder lets observations gather before
// it takes them, so that it wakes once a tick rather than once a request
// (and hands the table writer rows in bursts, which wakes it as seldom). An
// idle recorder waits on its queue: the first offer wakes it at once.
const recorderTick = time.Millisecond

func (r *recorder) run() {
	defer close(r.stopped)
	for j := range r.jobs {
		if !r.take(j) || !r.busy() {
			break
		}
	}
	for { // offers that raced with close
		select {
		case j := <-r.jobs:
			r.take(j)
		default:
			return
		}
	}
}

// busy takes what gathers each tick until a tick gathers nothing, and
// reports whether the recorder goes on.
func (r *recorder) busy() bool {
	for {
		time.Sleep(recorderTick)
		n := len(r.jobs)
		if n == 0 {
			return true
		}
		for range n {
			if !r.take(<-r.jobs) {
				return false
			}
		}
	}
}

// take does job j and reports whether the recorder goes on.
func (r *recorder) take(j recordJob) bool {
	if j.o != nil {
		r.do(j.o)
	}
	if j.done != nil {
		close(j.done)
	}
	return !j.stop
}

// do records o; a panic is logged and counted, and the recorder goes on.
func (r *recorder) do(o *observation) {
	defer func() {
		if v := recover(); v != nil {
			recovery.Recovered(r.log, panicRecorder, v)
		}
	}()
	r.record(o)
}

// offer hands o to the recorder, or drops and counts it when the queue is
// full or the recorder is closing. It never waits.
func (r *recorder) offer(o *observation) {
	if r.closing.Load() {
		r.dropped.Add(1)
		return
	}
	select {
	case r.jobs <- recordJob{o: o}:
	default:
		r.dropped.Add(1)
	}
}

// flush waits until everything offered before it is recorded, or ctx ends.
func (r *recorder) flush(ctx context.Context) error {
	return r.send(ctx, recordJob{done: make(chan struct{})})
}

// close records what is queued and stops, or gives up when ctx ends.
// Offers after it are dropped and counted.
func (r *recorder) close(ctx context.Context) error {
	r.closing.Store(true)
	return r.send(ctx, recordJob{done: make(chan struct{}), stop: true})
}

// send queues j, whose done is set, and waits for it to be done.
func (r *recorder) send(ctx context.Context, j recordJob) error {
	select {
	case r.jobs <- j:
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-j.done:
		return nil
	case <-r.stopped: // j came after the last job
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handOff readies o to outlive its request: it copies the memory the
// server reuses, once, into the strings the row keeps (when a row is kept),
// and fixes its latency. The body and the answer share one allocation.
// The model name asked for is kept only when no version served o (a served
// one names its own).
func (o *observation) handOff(row bool) {
	o.latency = time.Since(o.start)
	if row {
		var b strings.Builder
		b.Grow(len(o.body) + len(o.response))
		b.Write(o.body)
		b.Write(o.response)
		both := b.String()
		o.request, o.answer = both[:len(o.body)], both[len(o.body):]
	}
	o.body, o.response = nil, nil
	if o.p != nil {
		o.model = o.p.Version.Name
	} else {
		o.model = strings.Clone(truncate(o.model, maxAskedName))
	}
}
