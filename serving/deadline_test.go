package serving

import (
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
