package featurestore

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the feature store's instruments: per store, the latency of
// reads; per view, how values were found, how old they were, how often the
// cache answered, and how many defaults were used.
type metrics struct {
	lookup   metric.Float64Histogram
	values   metric.Int64Counter
	cache    metric.Int64Counter
	age      metric.Float64Histogram
	defaults metric.Int64Counter
}

func newMetrics(m metric.Meter) (*metrics, error) {
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
	return &out, nil
}

func viewAttr(v *View) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("view", v.Name))
}

// observe records what the lookups found.
func (m *metrics) observe(ctx context.Context, lookups []Lookup, now time.Time) {
	for i := range lookups {
		l := &lookups[i]
		var counts [3]int64 // present, not found, stale
		for r := range l.Rows {
			row := &l.Rows[r]
			if row.Found {
				m.age.Record(ctx, now.Sub(row.EventTS).Seconds(), viewAttr(l.View))
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
		for j, st := range []Status{StatusPresent, StatusNotFound, StatusStale} {
			if counts[j] > 0 {
				m.values.Add(ctx, counts[j], metric.WithAttributes(attribute.String("view", l.View.Name), attribute.String("status", string(st))))
			}
		}
	}
}

func (m *metrics) cacheResult(ctx context.Context, v *View, hits, misses int) {
	if hits > 0 {
		m.cache.Add(ctx, int64(hits), metric.WithAttributes(attribute.String("view", v.Name), attribute.String("result", "hit")))
	}
	if misses > 0 {
		m.cache.Add(ctx, int64(misses), metric.WithAttributes(attribute.String("view", v.Name), attribute.String("result", "miss")))
	}
}
