package serving

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// TestDeadline checks the deadline each request runs under: the server's,
// or the one X-Request-Timeout asks for, cut to the maximum; a bad header
// is a 400 that names it.
func TestDeadline(t *testing.T) {
	tests := []struct {
		name          string
		def, max      time.Duration
		header        string
		status        int
		want          time.Duration // the deadline seen by the handler; 0: none
		wantInMessage string
	}{
		{name: "no deadline configured", status: 200},
		{name: "the server's", def: 300 * time.Millisecond, status: 200, want: 300 * time.Millisecond},
		{name: "a duration asked for", def: 300 * time.Millisecond, max: time.Second, header: "50ms", status: 200, want: 50 * time.Millisecond},
		{name: "milliseconds asked for", def: 300 * time.Millisecond, max: time.Second, header: "750", status: 200, want: 750 * time.Millisecond},
		{name: "more than the maximum", def: 300 * time.Millisecond, max: time.Second, header: "1m", status: 200, want: time.Second},
		{name: "asked for without a default", max: time.Second, header: "2s", status: 200, want: time.Second},
		{name: "not a duration", def: time.Second, header: "soon", status: 400, wantInMessage: `header X-Request-Timeout: "soon" is neither a duration`},
		{name: "zero", def: time.Second, header: "0", status: 400, wantInMessage: `header X-Request-Timeout: "0" must be greater than 0`},
		{name: "negative", def: time.Second, header: "-5ms", status: 400, wantInMessage: "must be greater than 0"},
		{name: "too many milliseconds", def: time.Second, header: "99999999999999999", status: 400, wantInMessage: "neither a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{opts: Options{RequestTimeout: tt.def, MaxRequestTimeout: tt.max}}
			app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
				return c.Status(statusOf(err)).SendString(err.Error())
			}})
			app.Use(s.deadline)
			var left time.Duration
			app.Get("/", func(c *fiber.Ctx) error {
				if d, ok := c.UserContext().Deadline(); ok {
					left = time.Until(d)
				}
				return nil
			})
			req := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				req.Header.Set(HeaderRequestTimeout, tt.header)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.wantInMessage) {
				t.Fatalf("%d %s, want %d containing %q", resp.StatusCode, body, tt.status, tt.wantInMessage)
			}
			if left > tt.want || tt.want-left > 100*time.Millisecond {
				t.Errorf("the handler had %s left, want about %s", left, tt.want)
			}
		})
	}
}

// TestWithBound checks the deadline context of a request: its deadline is
// the sooner of its own and its parent's, Done closes at it (armed only
// when asked for) or when the parent ends or the request ends, and Err
// agrees with Done.
func TestWithBound(t *testing.T) {
	t.Run("parent sooner", func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		ctx, end := withBound(parent, time.Hour)
		defer end()
		if ctx != parent {
			t.Error("a parent with a sooner deadline was wrapped")
		}
	})
	t.Run("deadline passes", func(t *testing.T) {
		ctx, end := withBound(context.Background(), 20*time.Millisecond)
		defer end()
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > 20*time.Millisecond {
			t.Errorf("deadline %v %v", d, ok)
		}
		if ctx.Err() != nil {
			t.Fatalf("err %v before the deadline", ctx.Err())
		}
		child, cancel := context.WithCancel(ctx) // arms the timer, as a store read's would
		defer cancel()
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done did not close at the deadline")
		}
		if ctx.Err() != context.DeadlineExceeded || child.Err() != context.DeadlineExceeded {
			t.Errorf("err %v, child's %v; want DeadlineExceeded", ctx.Err(), child.Err())
		}
	})
	t.Run("deadline passes, never armed", func(t *testing.T) {
		ctx, end := withBound(context.Background(), time.Millisecond)
		defer end()
		time.Sleep(2 * time.Millisecond)
		if ctx.Err() != context.DeadlineExceeded {
			t.Errorf("err %v; want DeadlineExceeded", ctx.Err())
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done, armed after the deadline, did not close")
		}
	})
	t.Run("parent cancelled", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		ctx, end := withBound(parent, time.Hour)
		defer end()
		done := ctx.Done()
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Done did not close with the parent")
		}
		if ctx.Err() != context.Canceled {
			t.Errorf("err %v; want Canceled", ctx.Err())
		}
	})
	for _, armed := range []bool{false, true} {
		t.Run(fmt.Sprintf("ended, armed %v", armed), func(t *testing.T) {
			ctx, end := withBound(context.Background(), time.Hour)
			if armed {
				ctx.Done()
			}
			end()
			select {
			case <-ctx.Done():
			default:
				t.Fatal("Done open after the request ended")
			}
			if ctx.Err() != context.Canceled {
				t.Errorf("err %v; want Canceled", ctx.Err())
			}
		})
	}
}
