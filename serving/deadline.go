package serving

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// HeaderRequestTimeout asks for a request deadline other than the server's
// (Options.RequestTimeout): a Go duration ("250ms", "2s") or a whole number
// of milliseconds ("250"). Over Options.MaxRequestTimeout it is cut to that.
const HeaderRequestTimeout = "X-Request-Timeout"

// deadline runs each request under its deadline: the request's context (see
// fiber.Ctx.UserContext) ends when it passes. Feature store reads take their
// time from it, leaving some to answer with the cache or the defaults when a
// store is slow.
func (s *Server) deadline(c *fiber.Ctx) error {
	d := s.opts.RequestTimeout
	if h := c.Get(HeaderRequestTimeout); h != "" {
		asked, err := parseRequestTimeout(h)
		if err != nil {
			return err
		}
		d = asked
		if m := s.opts.MaxRequestTimeout; m > 0 {
			d = min(d, m)
		}
	}
	if d <= 0 {
		return c.Next()
	}
	ctx, cancel := withBound(c.UserContext(), d)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// withBound is parent with a deadline d from now, or parent itself when its
// own deadline is sooner. Unlike context.WithTimeout it arms no timer until
// something waits on Done (a feature store read, the batch queue): most
// predictions never do, and arming and stopping a timer was a tenth of
// what admitting a gRPC call cost. Deadline and Err tell the truth either
// way. Call cancel once the request is answered.
func withBound(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(d)
	if cur, ok := parent.Deadline(); ok && !cur.After(deadline) {
		return parent, func() {}
	}
	c := &boundedContext{Context: parent, deadline: deadline}
	return c, c.end
}

// boundedContext is a context whose deadline arms a timer only once Done
// is asked for.
type boundedContext struct {
	context.Context
	deadline time.Time
	arm      sync.Once
	timed    context.Context // set by arm: parent with the deadline, or ended
	cancel   context.CancelFunc
	over     atomic.Bool // end was called
}

func (c *boundedContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *boundedContext) Done() <-chan struct{} {
	c.arm.Do(func() { c.timed, c.cancel = context.WithDeadline(c.Context, c.deadline) })
	return c.timed.Done()
}

func (c *boundedContext) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	if c.over.Load() {
		return context.Canceled
	}
	return nil
}

// end stops the timer if Done armed one; after it, Done is closed.
func (c *boundedContext) end() {
	c.over.Store(true)
	c.arm.Do(func() { c.timed, c.cancel = ended{c.Context}, func() {} })
	c.cancel()
}

// ended is a context that is over: what a boundedContext's Done answers
// once its request ended without arming a timer.
type ended struct{ context.Context }

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (ended) Done() <-chan struct{} { return closed }
func (ended) Err() error            { return context.Canceled }

// parseRequestTimeout reads the value of X-Request-Timeout.
func parseRequestTimeout(h string) (time.Duration, error) {
	d, err := time.ParseDuration(h)
	if err != nil {
		ms, nerr := strconv.ParseInt(h, 10, 64)
		if nerr != nil || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
			return 0, invalidInput("header %s: %q is neither a duration (such as 250ms or 2s) nor a number of milliseconds", HeaderRequestTimeout, clipHeader(h))
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d <= 0 {
		return 0, invalidInput("header %s: %q must be greater than 0", HeaderRequestTimeout, clipHeader(h))
	}
	return d, nil
}

// clipHeader shortens a header value quoted in an error message.
func clipHeader(h string) string {
	const limit = 64
	if len(h) > limit {
		return h[:limit] + "..."
	}
	return h
}
