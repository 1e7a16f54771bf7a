package ticker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/recovery"
)

// TestEveryOnAndStop drives a loop by a fake clock: one call per tick, a
// tick that falls due during a call makes one more call after it, never two
// at once; Stop waits for the call in progress and stops the ticker.
func TestEveryOnAndStop(t *testing.T) {
	c := clock.NewFake(time.Unix(0, 0))
	entered, leave := make(chan struct{}), make(chan struct{})
	var calls, running atomic.Int32
	l := EveryOn(c, time.Second, "test", nil, func(context.Context) {
		if running.Add(1) > 1 {
			t.Error("two calls at once")
		}
		calls.Add(1)
		entered <- struct{}{}
		<-leave
		running.Add(-1)
	})
	if n := c.Waiters(); n != 1 {
		t.Fatalf("%d waiters once EveryOn returned, want its ticker", n)
	}
	c.Advance(time.Second)
	<-entered
	c.Advance(3 * time.Second) // three ticks during the call: one is kept
	leave <- struct{}{}
	<-entered
	stopped := make(chan struct{})
	go func() {
		l.Stop()
		close(stopped)
	}()
	<-l.stop
	select {
	case <-stopped:
		t.Error("Stop returned during a call")
	default:
	}
	leave <- struct{}{}
	<-stopped
	if running.Load() != 0 {
		t.Error("Stop returned during a call")
	}
	if n := c.Waiters(); n != 0 {
		t.Errorf("%d waiters after Stop, want none: the ticker was not stopped", n)
	}
	c.Advance(time.Minute)
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
	var none *Loop
	none.Stop()
}

func TestPanicKeepsLooping(t *testing.T) {
	c := clock.NewFake(time.Unix(0, 0))
	called := make(chan struct{})
	before := recovery.Count("ticker test panic")
	l := EveryOn(c, time.Second, "ticker test panic", nil, func(context.Context) {
		called <- struct{}{}
		panic("boom")
	})
	for range 3 {
		c.Advance(time.Second)
		<-called
	}
	l.Stop()
	if n := recovery.Count("ticker test panic") - before; n != 3 {
		t.Errorf("recovered %d panics, want 3", n)
	}
}

// TestEvery runs a loop on the real clock.
func TestEvery(t *testing.T) {
	called := make(chan struct{}, 1)
	l := Every(time.Millisecond, "test", nil, func(context.Context) {
		select {
		case called <- struct{}{}:
		default:
		}
	})
	<-called
	l.Stop()
}
