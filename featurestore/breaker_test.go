package featurestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// flakyStore is an in-memory OnlineStore that can be made to fail or to
// hang, and counts the calls that reach it.
type flakyStore struct {
	mu    sync.Mutex
	rows  map[string]Row // every feature of the view
	fail  error          // returned by Read and Write when set
	hang  bool           // Read waits for its context to end
	calls int
	until time.Time // the deadline of the last read's context
}

func (f *flakyStore) set(fail error, hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.hang = fail, hang
}

func (f *flakyStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *flakyStore) Read(ctx context.Context, lookups []Lookup) error {
	f.mu.Lock()
	f.calls++
	fail, hang := f.fail, f.hang
	f.until, _ = ctx.Deadline()
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	for _, l := range lookups {
		for k, key := range l.Keys {
			if fail != nil {
				// A failing read may have filled some rows with anything.
				l.Rows[k] = Row{Key: key, Found: true, Values: make([]Value, len(l.Features))}
				continue
			}
			f.mu.Lock()
			row, ok := f.rows[key]
			f.mu.Unlock()
			if !ok {
				l.Rows[k] = Row{Key: key}
				continue
			}
			l.Rows[k] = project(row, l.Features)
		}
	}
	return fail
}

func (f *flakyStore) Write(ctx context.Context, v *View, rows []Row) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	for _, r := range rows {
		f.rows[r.Key] = r
	}
	return nil
}

func (f *flakyStore) Prepare(ctx context.Context, v *View) error { return nil }
func (f *flakyStore) Drop(ctx context.Context, v *View) error    { return nil }
func (f *flakyStore) Close() error                               { return nil }

type memViews struct{ views []*View }

func (m *memViews) Views(ctx context.Context) ([]*View, error)     { return m.views, nil }
func (m *memViews) PutView(ctx context.Context, v *View) error     { return nil }
func (m *memViews) DeleteView(ctx context.Context, n string) error { return nil }

var errDown = errors.New("connection refused")

// flakyService is a service over one flakyStore holding view user (age,
// visits), cached for a minute, with u1 and u2 stored.
func flakyService(t *testing.T, b Breaker) (*Service, *flakyStore, *sdkmetric.ManualReader) {
	t.Helper()
	v := &View{Name: "user", Entities: []string{"user_id"}, Features: []Feature{{Name: "age", Type: Float}, {Name: "visits", Type: Int}},
		Store: "flaky", CacheTTL: Duration(time.Minute)}
	store := &flakyStore{rows: map[string]Row{}}
	reader := sdkmetric.NewManualReader()
	s, err := NewService(t.Context(), &memViews{views: []*View{v}}, Options{
		Stores: map[string]OnlineStore{"flaky": store}, DefaultStore: "flaky", CacheEntries: 100, Breaker: b,
		Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, key := range []string{"u1", "u2"} {
		store.rows[key] = Row{Key: key, Found: true, EventTS: now, Values: []Value{{Type: Float, Num: float64(40 + i)}, {Type: Int, Int: int64(i)}}}
	}
	return s, store, reader
}

// ages reads user:age of the users and gives each as its value or status.
func ages(t *testing.T, ctx context.Context, s *Service, users ...string) ([]string, []string) {
	t.Helper()
	res, err := s.Online(ctx, []string{"user:age"}, map[string][]string{"user_id": users})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(users))
	for i, r := range res.Rows {
		out[i] = string(r.Statuses[0])
		if r.Statuses[0] == StatusPresent {
			out[i] = fmt.Sprint(r.Values[0].Num)
		}
	}
	return out, res.Degraded
}

// TestBreakerAroundStore takes a store through a failure: reads are
// answered from the cache (expired entries too) or as not found and marked
// degraded; after Failures failures the store is no longer called and
// writes are refused; once OpenFor has passed, a read probes the store and,
// when it answers, closes the breaker.
func TestBreakerAroundStore(t *testing.T) {
	s, store, reader := flakyService(t, Breaker{Failures: 3, OpenFor: 100 * time.Millisecond})
	ctx := t.Context()
	if got, degraded := ages(t, ctx, s, "u1"); fmt.Sprint(got) != "[40]" || degraded != nil {
		t.Fatalf("healthy read: %v, degraded %v", got, degraded)
	}
	// u1's cache entry expires; the store goes down.
	later := time.Now().Add(time.Hour)
	s.now = func() time.Time { return later }
	store.set(errDown, false)
	for i := range 5 {
		got, degraded := ages(t, ctx, s, "u1", "u2", "u9")
		if fmt.Sprint(got) != "[40 NOT_FOUND NOT_FOUND]" || fmt.Sprint(degraded) != "[flaky]" {
			t.Fatalf("read %d while down: %v, degraded %v; want u1 from the expired cache entry, the others not found", i, got, degraded)
		}
	}
	if n := store.count(); n != 1+3 {
		t.Errorf("the store was called %d times, want 4: the breaker opens after 3 failures", n)
	}
	if state := gauge(t, reader, "mlgate_breaker_state", "name", "flaky"); state != 2 {
		t.Errorf("mlgate_breaker_state = %d, want 2 (open)", state)
	}
	if n := counter(t, reader, "mlgate_feature_degraded", "store", "flaky"); n != 5 {
		t.Errorf("mlgate_feature_degraded = %d, want 5", n)
	}
	err := s.WriteRows(ctx, "user", []Row{{Key: "u3", Found: true, EventTS: later, Values: make([]Value, 2)}})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("a write while the breaker is open: %v, want ErrUnavailable", err)
	}

	// The store is back: once OpenFor has passed, the next read probes it
	// and the answers are whole again.
	store.set(nil, false)
	time.Sleep(150 * time.Millisecond)
	if got, degraded := ages(t, ctx, s, "u1", "u2"); fmt.Sprint(got) != "[40 41]" || degraded != nil {
		t.Errorf("after the store came back: %v, degraded %v", got, degraded)
	}
	if state := gauge(t, reader, "mlgate_breaker_state", "name", "flaky"); state != 0 {
		t.Errorf("mlgate_breaker_state = %d, want 0 (closed)", state)
	}
	if err := s.WriteRows(ctx, "user", []Row{{Key: "u3", Found: true, EventTS: later, Values: make([]Value, 2)}}); err != nil {
		t.Errorf("a write after the store came back: %v", err)
	}
}

// TestReadDeadline checks that a store read ends within the request's
// deadline, leaving time to answer, and when its failures count.
func TestReadDeadline(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		counted bool // the failure counts against the breaker
	}{
		{"timeout", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 150*time.Millisecond)
		}, true},
		{"a deadline too short to judge the store by", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 30*time.Millisecond)
		}, false},
		{"caller gone", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(30*time.Millisecond, cancel)
			return ctx, cancel
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, store, _ := flakyService(t, Breaker{Failures: 1, OpenFor: time.Minute})
			store.set(nil, true)
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			got, degraded := ages(t, ctx, s, "u1")
			if fmt.Sprint(got) != "[NOT_FOUND]" || fmt.Sprint(degraded) != "[flaky]" {
				t.Errorf("hanging store: %v, degraded %v", got, degraded)
			}
			store.mu.Lock()
			until := store.until
			store.mu.Unlock()
			if d, ok := ctx.Deadline(); ok && d.Sub(until) < 5*time.Millisecond {
				t.Errorf("the store read ran until %s before the request's deadline, want time left to answer", d.Sub(until))
			}
			store.set(nil, false)
			ages(t, t.Context(), s, "u1")
			if calls := store.count(); (calls == 1) != tt.counted {
				t.Errorf("the store was called %d times over two reads; counted failure: %v", calls, tt.counted)
			}
		})
	}
}

func TestReadContext(t *testing.T) {
	tests := []struct {
		timeout time.Duration // 0: no deadline
		min     time.Duration
		max     time.Duration
	}{
		{0, 0, 0},
		{time.Second, 970 * time.Millisecond, 980 * time.Millisecond},
		{40 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond},
	}
	for _, tt := range tests {
		ctx := t.Context()
		if tt.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tt.timeout)
			defer cancel()
		}
		_, cancel, budget := readContext(ctx)
		cancel()
		if budget < tt.min || budget > tt.max {
			t.Errorf("request timeout %s: read budget %s, want %s to %s", tt.timeout, budget, tt.min, tt.max)
		}
	}
}

// TestInvalidLookupsFail checks that a store refusing the lookups as
// invalid fails the read rather than degrading it, and does not count
// against its breaker.
func TestInvalidLookupsFail(t *testing.T) {
	s, store, _ := flakyService(t, Breaker{Failures: 1, OpenFor: time.Minute})
	store.set(Invalid("lookup 0 has no view"), false)
	for range 2 {
		if _, err := s.Online(t.Context(), []string{"user:age"}, map[string][]string{"user_id": {"u1"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Online: %v, want ErrInvalid", err)
		}
	}
	if n := store.count(); n != 2 {
		t.Errorf("the store was called %d times, want 2", n)
	}
}

func collect(t *testing.T, reader *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func gauge(t *testing.T, reader *sdkmetric.ManualReader, name, key, value string) int64 {
	t.Helper()
	for _, sm := range collect(t, reader).ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name {
				for _, p := range g.DataPoints {
					if v, ok := p.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
						return p.Value
					}
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, key, value)
	return 0
}

func counter(t *testing.T, reader *sdkmetric.ManualReader, name, key, value string) int64 {
	t.Helper()
	for _, sm := range collect(t, reader).ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, p := range s.DataPoints {
					if v, ok := p.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
						return p.Value
					}
				}
			}
		}
	}
	return 0
}
