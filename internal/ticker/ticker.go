// Package ticker runs a function on a ticker, in the background, until it is
// stopped: the loops of the canary controller and the drift monitors.
package ticker

import (
	"context"
	"log/slog"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/recovery"
)

// Loop is a running loop.
type Loop struct {
	stop, done chan struct{}
}

// Every is EveryOn the real clock.
func Every(tick time.Duration, where string, log *slog.Logger, f func(context.Context)) *Loop {
	return EveryOn(clock.Real(), tick, where, log, f)
}

// EveryOn calls f every tick of c (nil means the real clock) on a goroutine
// of its own, never two calls at once, until Stop; the ticker is armed when
// EveryOn returns. Ticks that fall due while f runs are dropped but one, as
// a time.Ticker drops them. A call that panics is logged to log and counted
// under where (see package recovery), and the loop goes on.
func EveryOn(c clock.Clock, tick time.Duration, where string, log *slog.Logger, f func(context.Context)) *Loop {
	l := &Loop{stop: make(chan struct{}), done: make(chan struct{})}
	t := clock.Or(c).NewTicker(tick)
	go func() {
		defer close(l.done)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C():
				_ = recovery.Do(log, where, func() { f(context.Background()) })
			}
		}
	}()
	return l
}

// Stop ends the loop and waits for a call in progress to return. Stopping a
// nil Loop does nothing.
func (l *Loop) Stop() {
	if l == nil {
		return
	}
	close(l.stop)
	<-l.done
}
