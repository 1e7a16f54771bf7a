package featurestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
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
	hang  bool           // Read and Write wait for their context to end
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
	if f.hang {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return ctx.Err()
	}
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

// flakyService is a service with the options o over one flakyStore holding
// view user (age, visits), cached for a minute, with u1 and u2 stored.
func flakyService(t *testing.T, o Options) (*Service, *flakyStore, *sdkmetric.ManualReader) {
	t.Helper()
	v := &View{Name: "user", Entities: []string{"user_id"}, Features: []Feature{{Name: "age", Type: Float}, {Name: "visits", Type: Int}},
		Store: "flaky", CacheTTL: Duration(time.Minute)}
	store := &flakyStore{rows: map[string]Row{}}
	reader := sdkmetric.NewManualReader()
	o.Stores, o.DefaultStore, o.CacheEntries = map[string]OnlineStore{"flaky": store}, "flaky", 100
	o.Meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")
	s, err := NewService(t.Context(), &memViews{views: []*View{v}}, o)
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
	s, store, reader := flakyService(t, Options{Breaker: Breaker{Failures: 3, OpenFor: 100 * time.Millisecond}})
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
	// A view is prepared outside the breaker: a store with nothing to
	// prepare (Redis) is not called, and that success must not close it.
	if _, _, err := s.PutView(ctx, "test", &View{Name: "other", Entities: []string{"user_id"}, Features: []Feature{{Name: "x", Type: Int}}}); err != nil {
		t.Errorf("a view change while the breaker is open: %v", err)
	}
	if state := gauge(t, reader, "mlgate_breaker_state", "name", "flaky"); state != 2 {
		t.Errorf("after a view change, mlgate_breaker_state = %d, want 2 (still open)", state)
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
			s, store, _ := flakyService(t, Options{Breaker: Breaker{Failures: 1, OpenFor: time.Minute}})
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

// TestStoreDownOrHung checks what callers get from a store that refuses
// connections or hangs, under a request deadline far longer than the store
// timeouts: reads degraded within the read timeout, writes ErrUnavailable
// within the write timeout, naming the store and nothing the driver said,
// which goes to the log.
func TestStoreDownOrHung(t *testing.T) {
	const timeout, margin = 100 * time.Millisecond, 400 * time.Millisecond
	refused := errors.New("dial tcp 10.1.2.3:6379: connect: connection refused")
	tests := []struct {
		name  string
		fail  error
		hang  bool
		write string // the write's error
	}{
		{"refused", refused, false, "online store flaky is unavailable: write view user failed (the gateway's log has the store's error)"},
		{"hung", nil, true, "online store flaky is unavailable: write view user did not complete in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			s, store, _ := flakyService(t, Options{Timeout: timeout, WriteTimeout: timeout, Log: slog.New(slog.NewTextHandler(&logged, nil))})
			store.set(tt.fail, tt.hang)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			start := time.Now()
			got, degraded := ages(t, ctx, s, "u1")
			if took := time.Since(start); took > timeout+margin {
				t.Errorf("the read took %s, want at most the read timeout %s and a margin", took, timeout)
			}
			if fmt.Sprint(got) != "[NOT_FOUND]" || fmt.Sprint(degraded) != "[flaky]" {
				t.Errorf("read: %v, degraded %v; want not found, degraded", got, degraded)
			}

			start = time.Now()
			err := s.WriteRows(ctx, "user", []Row{{Key: "u3", Found: true, EventTS: start, Values: make([]Value, 2)}})
			if took := time.Since(start); took > timeout+margin {
				t.Errorf("the write took %s, want at most the write timeout %s and a margin", took, timeout)
			}
			if !errors.Is(err, ErrUnavailable) || err.Error() != tt.write {
				t.Errorf("write: %v, want ErrUnavailable: %s", err, tt.write)
			}
			if tt.fail != nil && !strings.Contains(logged.String(), refused.Error()) {
				t.Errorf("the log lacks the store's error %q:\n%s", refused, logged.String())
			}
		})
	}
}

// TestBreakerCounts checks which failures of store calls count against the
// breaker: a timeout does, a caller's cancellation and the caller's own
// mistakes do not.
func TestBreakerCounts(t *testing.T) {
	tests := []struct {
		name    string
		fail    error
		hang    bool
		cancel  bool // the caller goes away during the write
		counted bool
		status  error // the write's error matches it
	}{
		{"timeout", nil, true, false, true, ErrUnavailable},
		{"store error", errDown, false, false, true, ErrUnavailable},
		{"caller gone", nil, true, true, false, context.Canceled},
		{"invalid rows", Invalid("row 0: feature age is float, got a string value"), false, false, false, ErrInvalid},
		{"conflict", fmt.Errorf("%w: column age is text", ErrConflict), false, false, false, ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, store, _ := flakyService(t, Options{WriteTimeout: 50 * time.Millisecond, Breaker: Breaker{Failures: 1, OpenFor: time.Minute}})
			store.set(tt.fail, tt.hang)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel {
				time.AfterFunc(10*time.Millisecond, cancel)
			}
			row := []Row{{Key: "u3", Found: true, EventTS: time.Now(), Values: make([]Value, 2)}}
			if err := s.WriteRows(ctx, "user", row); !errors.Is(err, tt.status) {
				t.Errorf("write: %v, want %v", err, tt.status)
			}
			store.set(nil, false)
			err := s.WriteRows(t.Context(), "user", row)
			if counted := errors.Is(err, ErrUnavailable); counted != tt.counted {
				t.Errorf("the next write: %v; want the first failure counted: %v", err, tt.counted)
			}
		})
	}
}

// TestCallContext checks a store call's budget: what remains of the
// request's deadline less the time to answer, at most the store timeout,
// and whether running out of it judges the store.
func TestCallContext(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // 0: none
		timeout  time.Duration
		min, max time.Duration
		judged   bool
	}{
		{"no deadline: the store timeout", 0, 500 * time.Millisecond, 490 * time.Millisecond, 500 * time.Millisecond, true},
		{"a far deadline: the store timeout", 10 * time.Second, 500 * time.Millisecond, 490 * time.Millisecond, 500 * time.Millisecond, true},
		{"a near deadline, less the answer's reserve", time.Second, 5 * time.Second, 970 * time.Millisecond, 980 * time.Millisecond, true},
		{"a deadline too near to judge the store by", 40 * time.Millisecond, 5 * time.Second, 20 * time.Millisecond, 30 * time.Millisecond, false},
		{"a store timeout shorter than minCountedBudget", 10 * time.Second, 10 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			c := callContext(ctx, tt.timeout)
			defer c.cancel()
			d, ok := c.ctx.Deadline()
			if !ok {
				t.Fatal("the call has no deadline")
			}
			if budget := time.Until(d); budget < tt.min || budget > tt.max {
				t.Errorf("budget %s, want %s to %s", budget, tt.min, tt.max)
			}
			if c.judged != tt.judged {
				t.Errorf("judged %v, want %v", c.judged, tt.judged)
			}
		})
	}
}

// TestBreakerTrips runs sequences of calls through a breaker and checks
// when it opens: on Failures in a row, or on FailureRatio of the calls in
// the window once MinRequests were judged; excluded calls do not count.
func TestBreakerTrips(t *testing.T) {
	b := Breaker{Failures: 5, FailureRatio: 0.5, MinRequests: 10, Window: time.Minute, OpenFor: time.Minute}
	tests := []struct {
		name  string
		calls string // s: success, f: failure, x: excluded (uncounted)
		open  int    // calls made before it opened; -1: it stays closed
	}{
		{"failures in a row", "fffff", 5},
		{"four in a row", "ffff", -1},
		{"every other call fails: the ratio opens it", "sfsfsfsfsf", 10},
		{"the ratio waits for min_requests", "sfsfsfsfs", -1},
		{"under the ratio", "ssfsfssfsfssfsf", -1},
		{"at the ratio after many calls", "sssssfffsfff", 12},
		{"uncounted calls do not make up min_requests", "sfxxxxxxxxsfsfsfsf", 18},
		{"uncounted failures in a row", "xxxxxxxxxx", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb := NewBreaker[struct{}]("test", b)
			opened := -1
			for i, c := range tt.calls {
				_, err := cb.Execute(func() (struct{}, error) {
					switch c {
					case 'f':
						return struct{}{}, errDown
					case 'x':
						return struct{}{}, uncounted{context.Canceled}
					}
					return struct{}{}, nil
				})
				if Refused(err) {
					t.Fatalf("call %d refused: the breaker opened after %d calls", i+1, opened)
				}
				if opened < 0 && cb.State() == gobreaker.StateOpen {
					opened = i + 1
				}
			}
			if opened != tt.open {
				t.Errorf("opened after %d calls, want %d (-1: never)", opened, tt.open)
			}
		})
	}
}

// TestBreakerWindow checks that failures older than the window no longer
// count towards the ratio.
func TestBreakerWindow(t *testing.T) {
	cb := NewBreaker[struct{}]("test", Breaker{Failures: 100, FailureRatio: 0.5, MinRequests: 4, Window: 200 * time.Millisecond})
	fail := func() { cb.Execute(func() (struct{}, error) { return struct{}{}, errDown }) }
	succeed := func() { cb.Execute(func() (struct{}, error) { return struct{}{}, nil }) }
	fail()
	fail()
	fail()
	// gobreaker reads the wall clock: wait for the failures to leave the
	// window.
	time.Sleep(250 * time.Millisecond)
	succeed()
	succeed()
	succeed()
	fail()
	if s := cb.State(); s != gobreaker.StateClosed {
		t.Errorf("breaker %s with 1 failure in 4 calls in the window, want closed", s)
	}
	fail()
	fail()
	if s := cb.State(); s != gobreaker.StateOpen {
		t.Errorf("breaker %s with 3 failures in 6 calls in the window, want open", s)
	}
}

// TestInvalidLookupsFail checks that a store refusing the lookups as
// invalid fails the read rather than degrading it, and does not count
// against its breaker.
func TestInvalidLookupsFail(t *testing.T) {
	s, store, _ := flakyService(t, Options{Breaker: Breaker{Failures: 1, OpenFor: time.Minute}})
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
