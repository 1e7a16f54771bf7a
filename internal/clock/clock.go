// Package clock is the time the gateway's timers run on: the real one in
// production, a Fake that a test moves by hand, so that a test of a drift
// window, a canary interval, a cooldown or a table rotation never sleeps to
// wait for it.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers and tickers.
type Clock interface {
	Now() time.Time
	// After yields the time once d has passed.
	After(d time.Duration) <-chan time.Time
	// NewTicker yields the time every d until stopped; d must be positive.
	NewTicker(d time.Duration) Ticker
}

// Ticker is a time.Ticker of some Clock.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the system's clock.
func Real() Clock { return realClock{} }

// Or returns c, or the real clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) NewTicker(d time.Duration) Ticker       { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// Fake is a Clock that moves only when Advance moves it. Its channels are
// buffered by one, as the time package's are: a ticker that nobody reads
// drops ticks rather than blocking Advance.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
	changed *sync.Cond
}

type waiter struct {
	at    time.Time
	every time.Duration // 0 for a one-shot timer
	c     chan time.Time
}

// NewFake returns a Fake that reads start.
func NewFake(start time.Time) *Fake {
	f := &Fake{now: start}
	f.changed = sync.NewCond(&f.mu)
	return f
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After yields the fake time once Advance has moved it d on.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	return f.add(d, 0).c
}

// NewTicker ticks every d of fake time.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	return fakeTicker{f, f.add(d, d)}
}

func (f *Fake) add(d, every time.Duration) *waiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &waiter{at: f.now.Add(d), every: every, c: make(chan time.Time, 1)}
	if d <= 0 && every == 0 {
		w.c <- f.now
		return w
	}
	f.waiters = append(f.waiters, w)
	f.changed.Broadcast()
	return w
}

// Advance moves the fake time d on, firing every timer and ticker due by
// then in the order they fall due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		sort.SliceStable(f.waiters, func(i, j int) bool { return f.waiters[i].at.Before(f.waiters[j].at) })
		if len(f.waiters) == 0 || f.waiters[0].at.After(end) {
			break
		}
		w := f.waiters[0]
		f.now = w.at
		select {
		case w.c <- w.at:
		default:
		}
		if w.every > 0 {
			w.at = w.at.Add(w.every)
		} else {
			f.waiters = f.waiters[1:]
		}
	}
	f.now = end
}

// BlockUntil waits until n timers or tickers are waiting on f: a test calls
// it before Advance so that the code under test has armed what Advance is
// meant to fire.
func (f *Fake) BlockUntil(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.waiters) < n {
		f.changed.Wait()
	}
}

// Waiters returns how many timers and tickers are waiting on f.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

type fakeTicker struct {
	f *Fake
	w *waiter
}

func (t fakeTicker) C() <-chan time.Time { return t.w.c }

func (t fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, w := range t.f.waiters {
		if w == t.w {
			t.f.waiters = append(t.f.waiters[:i], t.f.waiters[i+1:]...)
			break
		}
	}
}
