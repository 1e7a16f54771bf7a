package ticker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/recovery"
)

func TestEveryAndStop(t *testing.T) {
	var calls, running atomic.Int32
	l := Every(time.Millisecond, "test", nil, func(context.Context) {
		if running.Add(1) > 1 {
			t.Error("two calls at once")
		}
		calls.Add(1)
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
	})
	for calls.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	if running.Load() != 0 {
		t.Error("Stop returned during a call")
	}
	n := calls.Load()
	time.Sleep(5 * time.Millisecond)
	if calls.Load() != n {
		t.Error("called after Stop")
	}
	var none *Loop
	none.Stop()
}

func TestPanicKeepsLooping(t *testing.T) {
	var calls atomic.Int32
	l := Every(time.Millisecond, "ticker test panic", nil, func(context.Context) {
		calls.Add(1)
		panic("boom")
	})
	for calls.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	if n := recovery.Count("ticker test panic"); n < 3 {
		t.Errorf("recovered %d panics, want at least 3", n)
	}
}
