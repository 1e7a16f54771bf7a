package serving

import (
	"context"
	"strconv"
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
	ctx, cancel := context.WithTimeout(c.UserContext(), d)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

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
