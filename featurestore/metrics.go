package featurestore

import (
	"context"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the feature store's instruments: per store, the latency of
// reads, the reads answered without it and the state of its breaker; per
// view, how values were found, how old they were, how often the cache
// answered, and how many defaults were used.
type metrics struct {
	lookup   metric.Float64Histogram
	values   metric.Int64Counter
	cache    metric.Int64Counter
	age      metric.Float64Histogram
	defaults metric.Int64Counter
	degraded metric.Int64Counter

	// byView holds each view's attribute sets (*View → *viewAttrs), built
	// once rather than on every measurement; a view change clears it.
	byView sync.Map
	// byStore holds each store's attribute set (name → option).
	byStore sync.Map
}

// viewAttrs are the attribute sets of one view's measurements.
type viewAttrs struct {
	view      metric.MeasurementOption
	status    [3]metric.MeasurementOption // present, not found, stale
	hit, miss metric.MeasurementOption
}

func (m *metrics) of(v *View) *viewAttrs {
	if a, ok := m.byView.Load(v); ok {
		return a.(*viewAttrs)
	}
	name := attribute.String("view", v.Name)
	with := func(k, val string) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(name, attribute.String(k, val)))
	}
	a := &viewAttrs{
		view:   metric.WithAttributeSet(attribute.NewSet(name)),
		status: [3]metric.MeasurementOption{with("status", string(StatusPresent)), with("status", string(StatusNotFound)), with("status", string(StatusStale))},
		hit:    with("result", "hit"),
		miss:   with("result", "miss"),
	}
	m.byView.Store(v, a)
	return a
}

// known starts the series of view v at 0, so that they exist before its
// first read: its values by status, its defaults, and, when its rows are
// cached, its cache hits and misses.
func (m *metrics) known(v *View, cached bool) {
	ctx, a := context.Background(), m.of(v)
	for _, st := range a.status {
		m.values.Add(ctx, 0, st)
	}
	m.defaults.Add(ctx, 0, a.view)
	if cached {
		m.cache.Add(ctx, 0, a.hit)
		m.cache.Add(ctx, 0, a.miss)
	}
}

func (m *metrics) store(name string) metric.MeasurementOption {
	if o, ok := m.byStore.Load(name); ok {
		return o.(metric.MeasurementOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String("store", name)))
	m.byStore.Store(name, o)
	return o
}

func newMetrics(m metric.Meter, breakers map[string]*gobreaker.CircuitBreaker[struct{}]) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("")
	}
	var out metrics
	var err error
	if out.lookup, err = m.Float64Histogram("mlgate_feature_lookup_duration", metric.WithUnit("s"),
		metric.WithDescription("Latency of one read from an online store (all lookups of a request for that store)."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)); err != nil {
		return nil, err
	}
	if out.values, err = m.Int64Counter("mlgate_feature_values",
		metric.WithDescription("Feature values read, by view and status (PRESENT, NOT_FOUND, STALE).")); err != nil {
		return nil, err
	}
	if out.cache, err = m.Int64Counter("mlgate_feature_cache_requests",
		metric.WithDescription("Cache lookups of feature rows, by view and result (hit, miss).")); err != nil {
		return nil, err
	}
	if out.age, err = m.Float64Histogram("mlgate_feature_value_age", metric.WithUnit("s"),
		metric.WithDescription("Age (now minus event time) of the feature rows served, by view."),
		metric.WithExplicitBucketBoundaries(1, 10, 60, 300, 900, 3600, 6*3600, 86400, 7*86400)); err != nil {
		return nil, err
	}
	if out.defaults, err = m.Int64Counter("mlgate_feature_defaults",
		metric.WithDescription("Feature values that were missing or stale and took their default in a prediction, by view.")); err != nil {
		return nil, err
	}
	if out.degraded, err = m.Int64Counter("mlgate_feature_degraded",
		metric.WithDescription("Store reads answered without the store (its breaker open, or the read failed or ran out of time), from the cache or as not found, by store.")); err != nil {
		return nil, err
	}
	// Each store's series starts at 0, so that a rate or an alert on it
	// has a series before the first degraded read.
	for name := range breakers {
		out.degraded.Add(context.Background(), 0, out.store(name))
	}
	_, err = m.Int64ObservableGauge("mlgate_breaker_state",
		metric.WithDescription("State of the circuit breaker in front of each online store, by name (the store's): 0 closed, 1 half-open, 2 open."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for name, b := range breakers {
				o.Observe(breakerState(b.State()), metric.WithAttributeSet(attribute.NewSet(attribute.String("name", name))))
			}
			return nil
		}))
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// observe records what the lookups found.
func (m *metrics) observe(ctx context.Context, lookups []Lookup, now time.Time) {
	for i := range lookups {
		l := &lookups[i]
		attrs := m.of(l.View)
		var counts [3]int64 // present, not found, stale
		for r := range l.Rows {
			row := &l.Rows[r]
			if row.Found {
				m.age.Record(ctx, now.Sub(row.EventTS).Seconds(), attrs.view)
			}
			for f := range l.Features {
				switch statusOf(l.View, row, f, now) {
				case StatusPresent:
					counts[0]++
				case StatusNotFound:
					counts[1]++
				default:
					counts[2]++
				}
			}
		}
		for j, n := range counts {
			if n > 0 {
				m.values.Add(ctx, n, attrs.status[j])
			}
		}
	}
}

func (m *metrics) cacheResult(ctx context.Context, v *View, hits, misses int) {
	if hits > 0 {
		m.cache.Add(ctx, int64(hits), m.of(v).hit)
	}
	if misses > 0 {
		m.cache.Add(ctx, int64(misses), m.of(v).miss)
	}
}
