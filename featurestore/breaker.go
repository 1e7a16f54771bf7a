package featurestore

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Breaker configures the circuit breaker in front of each online store.
// While a store's breaker is open the store is not called: reads are answered
// from the cache or as not found (degraded), and writes fail with
// ErrUnavailable.
type Breaker struct {
	// Failures in a row open the breaker; 0 means DefaultBreakerFailures.
	Failures int
	// OpenFor is how long an open breaker refuses calls before it lets one
	// through to probe the store; 0 means DefaultBreakerOpenFor.
	OpenFor time.Duration
}

// The breaker settings a zero Breaker takes.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = time.Second
)

// NewBreaker returns a circuit breaker with the settings b, for a store or
// anything else the gateway calls that may fail for a while (a shadow
// model). The feature store's own breakers ignore failures that say nothing
// about the store's health (see readFailure).
func NewBreaker[T any](name string, b Breaker) *gobreaker.CircuitBreaker[T] {
	failures := uint32(DefaultBreakerFailures)
	if b.Failures > 0 {
		failures = uint32(b.Failures)
	}
	if b.OpenFor <= 0 {
		b.OpenFor = DefaultBreakerOpenFor
	}
	return gobreaker.NewCircuitBreaker[T](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1, // one probe at a time while half-open
		Timeout:     b.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsExcluded: func(err error) bool {
			var u uncounted
			return errors.As(err, &u)
		},
	})
}

// Refused reports whether err is a breaker refusing a call: open, or
// half-open with its probe already out.
func Refused(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// uncounted marks an error that says nothing about the health of what the
// breaker guards: the breaker neither opens nor closes on it.
type uncounted struct{ error }

func (u uncounted) Unwrap() error { return u.error }

// Read budget. A store read may use what remains of the request's deadline
// less answerReserve (less a quarter of it when under 4×answerReserve
// remains), which is left to run the model and write the answer. The store's
// own timeouts (online_store.cassandra.timeout, Redis's read timeout) bound
// the read too, so a read gets min(remaining − reserve, store timeout). A
// request without a deadline reads under the store's timeouts alone.
const answerReserve = 20 * time.Millisecond

// minCountedBudget: a read that runs out of a shorter budget says more about
// the caller's deadline than about the store, and does not count against the
// store's breaker, so that a caller asking for a millisecond cannot open it
// for everyone.
const minCountedBudget = 50 * time.Millisecond

// readContext returns the context of one store read within ctx's deadline,
// and the read's budget (0 when ctx has no deadline).
func readContext(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	d, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}, 0
	}
	remaining := time.Until(d)
	budget := remaining - min(answerReserve, remaining/4)
	rctx, cancel := context.WithTimeout(ctx, budget)
	return rctx, cancel, budget
}

// readFailure classifies the error of a store read made under rctx, a
// child of the request's ctx, with the given budget: an error the breaker
// should not count comes back wrapped as uncounted.
func readFailure(ctx, rctx context.Context, budget time.Duration, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalid), errors.Is(ctx.Err(), context.Canceled):
		// A bug in the lookups, or the caller went away.
		return uncounted{err}
	case rctx.Err() != nil && budget > 0 && budget < minCountedBudget:
		return uncounted{err}
	}
	return err
}

// breakerState is the value of the mlgate_breaker_state gauge: 0 closed,
// 1 half-open, 2 open.
func breakerState(s gobreaker.State) int64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}
