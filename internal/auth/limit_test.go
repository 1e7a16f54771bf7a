package auth

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimitOf(t *testing.T) {
	roles := map[Role]Limit{Predict: {Rate: 10, Burst: 20}, DataScientist: {Rate: 2, Burst: 50}, SRE: {Rate: 0}}
	tests := []struct {
		name  string
		key   Key
		roles map[Role]Limit
		want  Limit
		ok    bool
	}{
		{"own rate wins", Key{Roles: []Role{Predict}, Limit: Limit{Rate: 1, Burst: 1}}, roles, Limit{Rate: 1, Burst: 1}, true},
		{"own burst alone is not a limit", Key{Roles: []Role{Predict}, Limit: Limit{Burst: 3}}, roles, Limit{Rate: 10, Burst: 20}, true},
		{"role limit", Key{Roles: []Role{DataScientist}}, roles, Limit{Rate: 2, Burst: 50}, true},
		{"highest rate among roles", Key{Roles: []Role{DataScientist, Predict}}, roles, Limit{Rate: 10, Burst: 20}, true},
		{"a role without a limit does not count", Key{Roles: []Role{Admin, DataScientist}}, roles, Limit{Rate: 2, Burst: 50}, true},
		{"a role limited at rate 0 is unlimited", Key{Roles: []Role{Predict, SRE}}, roles, Limit{}, false},
		{"no limits", Key{Roles: []Role{Admin}}, roles, Limit{}, false},
		{"no role limits", Key{Roles: []Role{Predict}}, nil, Limit{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := limitOf(tt.key, tt.roles)
			if got != tt.want || ok != tt.ok {
				t.Errorf("limitOf = %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestAllow drives one bucket with a clock the test moves: each step asks
// at an offset from the start and expects an answer and, when refused, the
// wait.
func TestAllow(t *testing.T) {
	type step struct {
		at    time.Duration
		ok    bool
		retry time.Duration
	}
	tests := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{"burst then refill", Limit{Rate: 2, Burst: 3}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 500 * time.Millisecond},
			{100 * time.Millisecond, false, 400 * time.Millisecond},
			{500 * time.Millisecond, true, 0}, // one token back
			{500 * time.Millisecond, false, 500 * time.Millisecond},
			{2500 * time.Millisecond, true, 0}, // full again: three at once
			{2500 * time.Millisecond, true, 0},
			{2500 * time.Millisecond, true, 0},
			{2500 * time.Millisecond, false, 500 * time.Millisecond},
		}},
		{"refill never exceeds the burst", Limit{Rate: 1, Burst: 1}, []step{
			{0, true, 0}, {time.Hour, true, 0}, {time.Hour, false, time.Second},
			{time.Hour + 999*time.Millisecond, false, time.Millisecond},
			{time.Hour + time.Second, true, 0},
		}},
		{"burst defaults to the rate rounded up", Limit{Rate: 2.5}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 400 * time.Millisecond},
		}},
		{"slow rate", Limit{Rate: 0.1, Burst: 1}, []step{
			{0, true, 0}, {time.Second, false, 9 * time.Second}, {10 * time.Second, true, 0},
		}},
		{"refused requests take no token", Limit{Rate: 1, Burst: 1}, []step{
			{0, true, 0}, {0, false, time.Second}, {0, false, time.Second}, {0, false, time.Second}, {time.Second, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter([]Key{{Name: "k", Roles: []Role{Predict}, Limit: tt.limit}}, nil)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, s := range tt.steps {
				ok, retry := l.AllowAt("k", start.Add(s.at))
				if ok != s.ok || retry != s.retry {
					t.Errorf("step %d at %s: %v %s, want %v %s", i, s.at, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

func TestLimiterIdentities(t *testing.T) {
	roles := map[Role]Limit{Predict: {Rate: 1, Burst: 1}}
	l := NewLimiter([]Key{{Name: "app", Roles: []Role{Predict}}, {Name: "root", Roles: []Role{Admin}}}, roles)
	now := time.Now()
	for i := range 3 {
		if ok, _ := l.AllowAt("root", now); !ok {
			t.Errorf("root (unlimited) refused at request %d", i)
		}
		if ok, _ := l.AllowAt("unknown", now); !ok {
			t.Errorf("an identity without a bucket refused at request %d", i)
		}
	}
	if ok, _ := l.AllowAt("app", now); !ok {
		t.Error("app refused its first request")
	}
	if ok, _ := l.AllowAt("app", now); ok {
		t.Error("app allowed past its burst")
	}
	if lim, ok := l.Limit("app"); !ok || lim != (Limit{Rate: 1, Burst: 1}) {
		t.Errorf("Limit(app) = %+v %v", lim, ok)
	}
	if _, ok := l.Limit("root"); ok {
		t.Error("root has a limit")
	}

	if _, ok := NewLimiter(nil, roles).Limit(Anonymous.Name); ok {
		t.Error("anonymous limited without an admin role limit")
	}
	anon := NewLimiter(nil, map[Role]Limit{Admin: {Rate: 1, Burst: 2}})
	if lim, ok := anon.Limit(Anonymous.Name); !ok || lim.Burst != 2 {
		t.Errorf("anonymous limit = %+v %v, want the admin role's", lim, ok)
	}
	if ok, _ := NewLimiter([]Key{{Name: "root", Roles: []Role{Admin}}}, roles).Allow("root"); !ok {
		t.Error("an identity without a limit was refused")
	}
	var none *Limiter
	if ok, _ := none.Allow("x"); !ok {
		t.Error("a nil Limiter refused")
	}
}

// TestAllowConcurrent checks that concurrent callers share one bucket
// exactly: with the clock stopped, Burst requests pass and no more.
func TestAllowConcurrent(t *testing.T) {
	l := NewLimiter([]Key{{Name: "k", Limit: Limit{Rate: 1, Burst: 100}}}, nil)
	now := time.Now()
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if ok, _ := l.AllowAt("k", now); ok {
					passed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if passed.Load() != 100 {
		t.Errorf("%d requests passed, want 100", passed.Load())
	}
}

func BenchmarkAllow(b *testing.B) {
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = Key{Name: fmt.Sprintf("key-%d", i), Roles: []Role{Predict}}
	}
	l := NewLimiter(keys, map[Role]Limit{Predict: {Rate: 1e9, Burst: 1e6}})
	for _, bc := range []struct {
		name string
		id   string
	}{{"Limited", "key-500"}, {"Unlimited", "other"}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.Allow(bc.id)
			}
		})
		b.Run(bc.name+"_Parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Allow(bc.id)
				}
			})
		})
	}
}

// TestLimiterReload: a key whose limit is unchanged keeps its bucket (the
// tokens it spent stay spent), a changed limit starts a new bucket, a new
// key gets its limit and a revoked key loses it.
func TestLimiterReload(t *testing.T) {
	now := time.Unix(1000, 0)
	keys := []Key{{Name: "a", Limit: Limit{Rate: 1, Burst: 1}}, {Name: "b", Limit: Limit{Rate: 1, Burst: 1}}}
	l := NewLimiter(keys, nil)
	for _, name := range []string{"a", "b"} {
		if ok, _ := l.AllowAt(name, now); !ok {
			t.Fatalf("%s refused its first request", name)
		}
	}
	l.Reload([]Key{
		{Name: "a", Limit: Limit{Rate: 1, Burst: 1}}, // unchanged
		{Name: "b", Limit: Limit{Rate: 1, Burst: 5}}, // changed
		{Name: "c", Limit: Limit{Rate: 1, Burst: 1}}, // new
	}, nil)
	tests := []struct {
		name   string
		allow  bool
		limit  bool
		reason string
	}{
		{"a", false, true, "kept its bucket: its token is spent"},
		{"b", true, true, "a new limit starts a full bucket"},
		{"c", true, true, "a new key has its limit"},
	}
	for _, tt := range tests {
		if ok, _ := l.AllowAt(tt.name, now); ok != tt.allow {
			t.Errorf("%s: allowed %v, want %v (%s)", tt.name, ok, tt.allow, tt.reason)
		}
	}
	l.Reload([]Key{{Name: "c", Limit: Limit{Rate: 1, Burst: 1}}}, nil)
	if _, ok := l.Limit("a"); ok {
		t.Error("a revoked key keeps its limit")
	}
}
