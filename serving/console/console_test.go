package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/mlgate/mlgate/serving/console"
)

func TestConsoleAssets(t *testing.T) {
	app := fiber.New()
	console.Mount(app)
	tests := []struct {
		path        string
		status      int
		contentType string
		location    string
		body        string
	}{
		{"/", http.StatusFound, "", "/ui/", ""},
		{"/ui", http.StatusFound, "", "/ui/", ""},
		{"/ui/", http.StatusOK, "text/html; charset=utf-8", "", `<script type="module" src="js/main.js"></script>`},
		{"/ui/index.html", http.StatusOK, "text/html; charset=utf-8", "", "<title>mlgate console</title>"},
		{"/ui/app.css", http.StatusOK, "text/css; charset=utf-8", "", ":focus-visible"},
		{"/ui/js/main.js", http.StatusOK, "text/javascript; charset=utf-8", "", "import"},
		{"/ui/js/charts.js", http.StatusOK, "text/javascript; charset=utf-8", "", "createElementNS"},
		{"/ui/icon.svg", http.StatusOK, "image/svg+xml", "", "<svg"},
		{"/ui/missing.js", http.StatusNotFound, "", "", ""},
		{"/ui/js/", http.StatusNotFound, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := app.Test(httptest.NewRequest(http.MethodGet, tt.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if tt.status != http.StatusOK {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if !strings.Contains(string(body), tt.body) {
				t.Errorf("body lacks %q", tt.body)
			}
			for header, want := range map[string]string{
				"Cache-Control":          "no-cache",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := resp.Header.Get(header); got != want {
					t.Errorf("%s %q, want %q", header, got, want)
				}
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy %q allows inline code", csp)
			}
		})
	}
}

// TestConsoleRevalidation answers 304 to a caller that holds the asset's ETag.
func TestConsoleRevalidation(t *testing.T) {
	app := fiber.New()
	console.Mount(app)
	resp, err := app.Test(httptest.NewRequest(http.MethodGet, "/ui/js/main.js", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := httptest.NewRequest(http.MethodGet, "/ui/js/main.js", nil)
	req.Header.Set("If-None-Match", etag)
	if resp, err = app.Test(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("with its ETag: %d, want 304", resp.StatusCode)
	}
}
