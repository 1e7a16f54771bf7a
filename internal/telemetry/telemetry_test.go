package telemetry

import (
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// TestBuildInfo scrapes a fresh Metrics: the Go runtime's and the process's
// series are there, and mlgate_build_info carries the labels it was given,
// with Revision when set; registering it again is no error.
func TestBuildInfo(t *testing.T) {
	old := Revision
	Revision = "0123abc"
	defer func() { Revision = old }()
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.RegisterBuildInfo("1.2.3", "1.24.3"); err != nil {
			t.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`mlgate_build_info{go_version="` + runtime.Version() + `",onnxruntime_version="1.24.3",revision="0123abc",version="1.2.3"} 1` + "\n",
		"\ngo_goroutines ",
		"\nprocess_cpu_seconds_total ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
