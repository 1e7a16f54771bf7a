package featurestore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Breaker configures the circuit breaker in front of each online store.
// While a store's breaker is open the store is not called: reads are answered
// from the cache or as not found (degraded), and writes fail with
// ErrUnavailable. It opens on Failures failures in a row, or when at least
// FailureRatio of the calls judged in the last Window failed, once
// MinRequests calls were judged in it: a store failing every other call, or
// hanging under a few callers at a time, opens it as surely as one failing
// every call under many.
type Breaker struct {
	// Failures in a row open the breaker; 0 means DefaultBreakerFailures.
	Failures int
	// FailureRatio is the share of failed calls in Window that opens the
	// breaker; 0 means DefaultBreakerFailureRatio.
	FailureRatio float64
	// MinRequests is how many calls Window must hold, successes and
	// failures, before FailureRatio is judged; 0 means
	// DefaultBreakerMinRequests.
	MinRequests int
	// Window is the span over which FailureRatio is judged, rolling in
	// tenths; 0 means DefaultBreakerWindow. A call counts in the tenth it
	// started in, so a call that takes longer than Window to fail does not
	// count at all: Window must be longer than the calls' timeouts.
	Window time.Duration
	// OpenFor is how long an open breaker refuses calls before it lets one
	// through to probe the store; 0 means DefaultBreakerOpenFor.
	OpenFor time.Duration
}

// The breaker settings a zero Breaker takes.
const (
	DefaultBreakerFailures     = 5
	DefaultBreakerFailureRatio = 0.5
	DefaultBreakerMinRequests  = 10
	DefaultBreakerWindow       = 10 * time.Second
	DefaultBreakerOpenFor      = time.Second
)

// windowBuckets is how many parts the window rolls in.
const windowBuckets = 10

// withDefaults returns b with each zero setting replaced by its default.
func (b Breaker) withDefaults() Breaker {
	if b.Failures <= 0 {
		b.Failures = DefaultBreakerFailures
	}
	if b.FailureRatio <= 0 {
		b.FailureRatio = DefaultBreakerFailureRatio
	}
	if b.MinRequests <= 0 {
		b.MinRequests = DefaultBreakerMinRequests
	}
	if b.Window <= 0 {
		b.Window = DefaultBreakerWindow
	}
	if b.OpenFor <= 0 {
		b.OpenFor = DefaultBreakerOpenFor
	}
	return b
}

// trips reports whether the counts of a closed breaker open it.
func (b Breaker) trips(c gobreaker.Counts) bool {
	if c.ConsecutiveFailures >= uint32(b.Failures) {
		return true
	}
	judged := c.TotalSuccesses + c.TotalFailures
	return judged >= uint32(b.MinRequests) && float64(c.TotalFailures) >= b.FailureRatio*float64(judged)
}

// NewBreaker returns a circuit breaker with the settings b, for a store or
// anything else the gateway calls that may fail for a while (a shadow
// model). The feature store's own breakers ignore failures that say nothing
// about the store's health (see callFailure).
func NewBreaker[T any](name string, b Breaker) *gobreaker.CircuitBreaker[T] {
	b = b.withDefaults()
	return gobreaker.NewCircuitBreaker[T](gobreaker.Settings{
		Name:         name,
		MaxRequests:  1, // one probe at a time while half-open
		Interval:     b.Window,
		BucketPeriod: b.Window / windowBuckets,
		Timeout:      b.OpenFor,
		ReadyToTrip:  b.trips,
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

// Call budget. A store call may use what remains of the request's deadline
// less answerReserve (less a quarter of it when under 4×answerReserve
// remains), which is left to run the model and write the answer, and no more
// than the store timeout (Options.Timeout for reads, Options.WriteTimeout for
// writes): a call gets min(remaining − reserve, store timeout). A request
// without a deadline calls under the store timeout alone. A hung store thus
// costs a caller the store timeout, not the request's deadline.
const answerReserve = 20 * time.Millisecond

// minCountedBudget: a call that runs out of a shorter budget, cut short by
// the caller's deadline rather than the store timeout, says more about the
// caller than about the store, and does not count against the store's
// breaker, so that a caller asking for a millisecond cannot open it for
// everyone.
const minCountedBudget = 50 * time.Millisecond

// storeCall is the context of one store call, made within a request's
// context.
type storeCall struct {
	ctx    context.Context
	cancel context.CancelFunc
	// judged: running out of time says the store is slow (the store
	// timeout bounds the call, or the caller gave it at least
	// minCountedBudget).
	judged bool
}

// callContext returns the context of one store call within ctx's deadline
// and the store timeout.
func callContext(ctx context.Context, timeout time.Duration) storeCall {
	budget := timeout
	if d, ok := ctx.Deadline(); ok {
		remaining := time.Until(d)
		budget = min(remaining-min(answerReserve, remaining/4), timeout)
	}
	cctx, cancel := context.WithTimeout(ctx, budget)
	return storeCall{ctx: cctx, cancel: cancel, judged: budget == timeout || budget >= minCountedBudget}
}

// failure classifies the error of the call made within the request's ctx:
// an error the breaker should not count comes back wrapped as uncounted.
// A timeout counts; the caller's own cancellation, a caller's deadline too
// short to judge the store by, and invalid input do not.
func (c storeCall) failure(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrConflict), errors.Is(ctx.Err(), context.Canceled):
		// The caller's mistake, or the caller went away.
		return uncounted{err}
	case c.ctx.Err() != nil && !c.judged:
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

// BreakerState is the state of the circuit breaker in front of one online
// store: "closed", "half-open" or "open".
type BreakerState struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// Breakers returns the state of each online store's breaker, by store name.
func (s *Service) Breakers() []BreakerState {
	out := make([]BreakerState, 0, len(s.breakers))
	for name, b := range s.breakers {
		out = append(out, BreakerState{Name: name, State: b.State().String()})
	}
	slices.SortFunc(out, func(a, b BreakerState) int { return strings.Compare(a.Name, b.Name) })
	return out
}
