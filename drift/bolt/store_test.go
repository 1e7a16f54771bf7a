package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
)

func TestPutListDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitors.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	spec := drift.MonitorSpec{Name: "m", Endpoint: "e", Baseline: "model", Window: drift.Duration(time.Minute),
		Webhook: drift.Webhook{URL: "http://x", Secret: "s"}}
	if err := s.PutMonitor(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Monitors(t.Context())
	if err != nil || len(got) != 1 || got[0].Endpoint != "e" || got[0].Webhook.Secret != "s" || got[0].Window != spec.Window {
		t.Fatalf("monitors after reopen = %+v, %v", got, err)
	}
	if err := s.DeleteMonitor(t.Context(), "m"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Monitors(t.Context()); len(got) != 0 {
		t.Errorf("after delete: %+v", got)
	}
}
