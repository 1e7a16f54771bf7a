package auth

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Limit is a request rate.
type Limit struct {
	// Rate is requests per second on average; 0 is unlimited.
	Rate float64
	// Burst is how many requests may come at once; 0 is Rate rounded up,
	// at least 1.
	Burst int
}

// Limiter holds a token bucket per identity: an identity may make Burst
// requests at once, and one more every 1/Rate seconds. Allow is lock-free
// and does not allocate.
//
// An identity's limit is its key's own (Key.Limit, when its Rate is set),
// else the highest among the limits of the roles the key lists (a role
// limit of rate 0 is unlimited and so the highest), else none. Roles a key
// does not list do not count: an admin key is not held to the predict
// role's limit. With no keys configured, the Anonymous caller has the admin
// role's limit, if there is one, else none.
//
// Reload replaces the limits while the Limiter serves.
type Limiter struct {
	buckets atomic.Pointer[map[string]*bucket] // by identity name; replaced whole by Reload
	epoch   time.Time                          // times are kept as nanoseconds since epoch
	mu      sync.Mutex                         // serialises Reloads
}

// bucket is a token bucket kept as its theoretical arrival time (the
// generic cell rate algorithm): the time at which the bucket would be full
// again. A request at now is allowed when, after adding one interval, that
// time is at most tolerance (Burst intervals) ahead of now.
type bucket struct {
	limit     Limit
	interval  int64        // nanoseconds per request
	tolerance int64        // nanoseconds of burst
	tat       atomic.Int64 // nanoseconds since the Limiter's epoch
}

// NewLimiter returns a Limiter for keys, given the limits of roles. A nil
// Limiter allows every request.
func NewLimiter(keys []Key, roles map[Role]Limit) *Limiter {
	l := &Limiter{epoch: time.Now()}
	l.Reload(keys, roles)
	return l
}

// Reload sets the limits of keys, given the limits of roles, all at once.
// An identity whose limit is unchanged keeps its bucket, and so the tokens
// it has left; a key no longer listed loses its bucket.
func (l *Limiter) Reload(keys []Key, roles map[Role]Limit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var old map[string]*bucket
	if p := l.buckets.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*bucket)
	set := func(name string, lim Limit) {
		b := newBucket(lim)
		if kept := old[name]; kept != nil && kept.limit == b.limit {
			b = kept
		}
		next[name] = b
	}
	if len(keys) == 0 {
		if lim, ok := roles[Admin]; ok && lim.Rate > 0 {
			set(Anonymous.Name, lim)
		}
	}
	for _, k := range keys {
		if lim, ok := limitOf(k, roles); ok {
			set(k.Name, lim)
		}
	}
	l.buckets.Store(&next)
}

// limitOf resolves the limit of key k, reporting false when it has none.
func limitOf(k Key, roles map[Role]Limit) (Limit, bool) {
	if k.Limit.Rate > 0 {
		return k.Limit, true
	}
	var best Limit
	found := false
	for _, r := range k.Roles {
		lim, ok := roles[r]
		switch {
		case !ok:
		case lim.Rate <= 0:
			return Limit{}, false // this role is unlimited
		case !found || lim.Rate > best.Rate || lim.Rate == best.Rate && lim.Burst > best.Burst:
			best, found = lim, true
		}
	}
	return best, found
}

func newBucket(lim Limit) *bucket {
	if lim.Burst <= 0 {
		lim.Burst = max(1, int(math.Ceil(min(lim.Rate, math.MaxInt32))))
	}
	interval := max(1, int64(min(float64(time.Second)/lim.Rate, math.MaxInt64/2)))
	tolerance := int64(math.MaxInt64 / 2)
	if int64(lim.Burst) < tolerance/interval {
		tolerance = int64(lim.Burst) * interval
	}
	b := &bucket{limit: lim, interval: interval, tolerance: tolerance}
	b.tat.Store(math.MinInt64)
	return b
}

// Allow takes a token from the bucket of the identity named name. When the
// bucket is empty it reports false and how long until it holds a token
// again. Identities without a limit are always allowed.
func (l *Limiter) Allow(name string) (ok bool, retryAfter time.Duration) {
	return l.AllowAt(name, time.Now())
}

// AllowAt is Allow at the time now, which must not go back by much between
// calls for the same identity (tests pass their own clock).
func (l *Limiter) AllowAt(name string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	b := (*l.buckets.Load())[name]
	if b == nil {
		return true, 0
	}
	t := int64(now.Sub(l.epoch))
	for {
		tat := b.tat.Load()
		next := max(tat, t) + b.interval
		if ahead := next - t; ahead > b.tolerance {
			return false, time.Duration(ahead - b.tolerance)
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

// Limit returns the limit of the identity named name, with its Burst
// resolved, and whether it has one.
func (l *Limiter) Limit(name string) (Limit, bool) {
	if l == nil {
		return Limit{}, false
	}
	b := (*l.buckets.Load())[name]
	if b == nil {
		return Limit{}, false
	}
	return b.limit, true
}
