// Package recovery keeps a panic from stopping the process: a request
// handler or a background job that panics is turned into an error, logged
// with its stack and counted in mlgate_panics_total{where}, and the process
// goes on. Panics are counted process-wide: a panic is the process's fault,
// whichever gateway in it saw it.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ErrPanic is the kind of the error a recovered panic becomes.
var ErrPanic = errors.New("panic")

// counts holds an *atomic.Int64 per place a panic was recovered.
var counts sync.Map

// Do runs f and returns nil, or, if f panics, an error of kind ErrPanic that
// names where, after logging it with the stack and counting it.
func Do(log *slog.Logger, where string, f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = Recovered(log, where, v)
		}
	}()
	f()
	return nil
}

// Go runs f on a goroutine of its own under Do: a panic is logged and
// counted, and ends only that goroutine.
func Go(log *slog.Logger, where string, f func()) {
	go func() { _ = Do(log, where, f) }()
}

// Recovered logs and counts v, a value recover returned in where, and
// returns it as an error of kind ErrPanic. Use it in a deferred function
// that must also do something else on a panic (answer a request).
func Recovered(log *slog.Logger, where string, v any) error {
	c, _ := counts.LoadOrStore(where, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	if log != nil {
		log.Error("recovered from a panic", "where", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
	return fmt.Errorf("%w in %s: %v", ErrPanic, where, v)
}

// Count returns how many panics were recovered in where.
func Count(where string) int64 {
	if c, ok := counts.Load(where); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Known declares places where panics are recovered, so that their
// mlgate_panics_total{where} is reported at 0 before the first panic.
func Known(where ...string) {
	for _, w := range where {
		counts.LoadOrStore(w, new(atomic.Int64))
	}
}

// RegisterMetrics reports the panics recovered so far as
// mlgate_panics_total{where}: those of each place that has had one or was
// declared with Known.
func RegisterMetrics(m metric.Meter) error {
	panics, err := m.Int64ObservableCounter("mlgate_panics",
		metric.WithDescription("Panics recovered (a request answered 500, or a background job that went on), by where they happened."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		counts.Range(func(k, v any) bool {
			o.ObserveInt64(panics, v.(*atomic.Int64).Load(), metric.WithAttributes(attribute.String("where", k.(string))))
			return true
		})
		return nil
	}, panics)
	return err
}
