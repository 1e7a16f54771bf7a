package bolt

import (
	"path/filepath"
	"testing"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/drift/drifttest"
)

func TestStore(t *testing.T) {
	drifttest.TestStore(t, func(t *testing.T) drift.Store {
		s, err := Open(filepath.Join(t.TempDir(), "monitors.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

// TestSurvivesRestart reopens the file: the monitors are kept.
func TestSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitors.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := drifttest.Sample("a", 1), drifttest.Sample("b", 2)
	for _, spec := range []drift.MonitorSpec{a, b} {
		if err := s.PutMonitor(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	drifttest.CheckMonitors(t, "Monitors after reopening", s, a, b)
}
