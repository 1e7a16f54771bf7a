package serving

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mlgate/mlgate/serving/batching"
)

// RegisterMetrics records the server's metrics with m: requests by route,
// endpoint, variant, model version and status, their latency, the depths
// of the inference-table and shadow queues, the inference table's I/O
// errors, and, for versions served with dynamic batching, the time requests
// wait for their batch and the rows of each run. Call it before Serve.
func (s *Server) RegisterMetrics(m metric.Meter) error {
	rm := &requestMetrics{}
	rm.sets.Store(&map[requestLabels]*labelSet{})
	var err error
	if rm.count, err = m.Int64ObservableCounter("mlgate_requests",
		metric.WithDescription("Requests answered, by method, route (its template), endpoint, variant, model, version and status.")); err != nil {
		return err
	}
	if _, err := m.RegisterCallback(rm.observe, rm.count); err != nil {
		return err
	}
	if rm.duration, err = m.Float64Histogram("mlgate_request_duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a request's arrival to its answer, by the labels of mlgate_requests_total."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return err
	}
	tablesQueue, err := m.Int64ObservableGauge("mlgate_inference_table_queue",
		metric.WithDescription("Rows waiting for the inference-table writer."))
	if err != nil {
		return err
	}
	shadowQueue, err := m.Int64ObservableGauge("mlgate_shadow_queue",
		metric.WithDescription("Shadow copies waiting for a worker."))
	if err != nil {
		return err
	}
	tablesErrors, err := m.Int64ObservableCounter("mlgate_inference_table_errors",
		metric.WithDescription("I/O errors the inference-table writer met; while they last, rows are not durable (see /v2/health/ready)."))
	if err != nil {
		return err
	}
	recorderQueue, err := m.Int64ObservableGauge("mlgate_recorder_queue",
		metric.WithDescription("Predictions answered and waiting for the recorder (drift observation, inference-table row)."))
	if err != nil {
		return err
	}
	recorderDropped, err := m.Int64ObservableCounter("mlgate_recorder_dropped",
		metric.WithDescription("Predictions not recorded because the recorder's queue was full: answered, but seen by no drift monitor and in no inference table."))
	if err != nil {
		return err
	}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if s.tables != nil {
			o.ObserveInt64(tablesQueue, int64(s.tables.QueueLen()))
			o.ObserveInt64(tablesErrors, s.tables.Stats().Errors)
		}
		o.ObserveInt64(shadowQueue, int64(len(s.shadows.jobs)))
		o.ObserveInt64(recorderQueue, int64(len(s.recorder.jobs)))
		o.ObserveInt64(recorderDropped, s.recorder.dropped.Load())
		return nil
	}, tablesQueue, shadowQueue, tablesErrors, recorderQueue, recorderDropped); err != nil {
		return err
	}
	bm := &batchMetrics{}
	if bm.queue, err = m.Float64Histogram("mlgate_batch_queue_duration", metric.WithUnit("s"),
		metric.WithDescription("Time a request of a version served with dynamic batching waited for its batch to start, by model and version."),
		metric.WithExplicitBucketBoundaries(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)); err != nil {
		return err
	}
	if bm.size, err = m.Int64Histogram("mlgate_batch_size",
		metric.WithDescription("Rows of each ONNX Runtime run of a version served with dynamic batching, by model and version."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)); err != nil {
		return err
	}
	s.requests, s.batches = rm, bm
	return nil
}

// batchMetrics time the requests of versions served with dynamic batching
// in their queue, and count the rows of their runs. The labels of a version
// are built once, when it loads (session.metricAttrs), so that recording
// allocates nothing.
type batchMetrics struct {
	queue metric.Float64Histogram
	size  metric.Int64Histogram
}

// record records how s ran a request (see batching.Stats); a nil m, a
// session without batching, or a request that did not run records nothing.
func (m *batchMetrics) record(ctx context.Context, s *session, st batching.Stats) {
	if m == nil || s.batcher == nil || st.Rows == 0 {
		return
	}
	m.queue.Record(ctx, st.Queued.Seconds(), s.metricAttrs...)
	if st.Reports {
		m.size.Record(ctx, int64(st.Rows), s.metricAttrs...)
	}
}

// requestLabels are the labels of a request's metrics. Every value is one
// mlgate holds (a route template, a registered endpoint, variant or model
// version), never bytes a caller chose, so that the series stay few.
type requestLabels struct {
	method, route     string
	endpoint, variant string
	model             string
	version           int // 0: none
	status            int
}

// requestMetrics count and time requests. The options of each combination
// of labels are built once, into a map that is copied on addition, so that
// recording takes no lock and allocates nothing. Requests are counted by
// combination in an atomic that the counter reads when it is collected,
// rather than through the SDK on every request (which resolves the
// attributes each time).
type requestMetrics struct {
	count    metric.Int64ObservableCounter
	duration metric.Float64Histogram

	mu   sync.Mutex // serialises additions to sets
	sets atomic.Pointer[map[requestLabels]*labelSet]
}

// labelSet holds one combination of labels: its request count and its
// options, as the slices Record and Observe take (passed on as they are,
// they are not copied).
type labelSet struct {
	requests atomic.Int64
	record   []metric.RecordOption
	observe  []metric.ObserveOption
}

// record counts one request that took d; a nil m records nothing.
func (m *requestMetrics) record(ctx context.Context, l *requestLabels, d time.Duration) {
	if m == nil {
		return
	}
	set, ok := (*m.sets.Load())[*l]
	if !ok {
		set = m.add(*l)
	}
	set.requests.Add(1)
	m.duration.Record(ctx, d.Seconds(), set.record...)
}

// observe reports the request count of every combination of labels seen.
func (m *requestMetrics) observe(_ context.Context, o metric.Observer) error {
	for _, set := range *m.sets.Load() {
		o.ObserveInt64(m.count, set.requests.Load(), set.observe...)
	}
	return nil
}

func (m *requestMetrics) add(l requestLabels) *labelSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	sets := *m.sets.Load()
	if set, ok := sets[l]; ok {
		return set
	}
	version := ""
	if l.version > 0 {
		version = strconv.Itoa(l.version)
	}
	opt := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("method", l.method), attribute.String("route", l.route),
		attribute.String("endpoint", l.endpoint), attribute.String("variant", l.variant),
		attribute.String("model", l.model), attribute.String("version", version),
		attribute.String("status", strconv.Itoa(l.status))))
	set := &labelSet{record: []metric.RecordOption{opt}, observe: []metric.ObserveOption{opt}}
	next := maps.Clone(sets)
	next[l] = set
	m.sets.Store(&next)
	return set
}

// label tells o's request what served it, for its metrics, and settles its
// request id: the one the handler read from the body, else the caller's
// X-Request-Id. A shadow copy belongs to no request.
func label(o *observation) {
	sc := scopeOf(o.ctx)
	if sc == nil || o.shadow {
		return
	}
	if o.requestID == "" {
		o.requestID = sc.requestID
	} else {
		sc.requestID = o.requestID
	}
	if o.route != nil {
		sc.labels.endpoint = o.route.Endpoint()
	}
	sc.labels.variant = o.variant
	if o.p != nil {
		sc.labels.model, sc.labels.version = o.p.Version.Name, o.p.Version.Version
	}
}
