package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/router/routertest"
)

func TestStore(t *testing.T) {
	routertest.TestStore(t, func(t *testing.T) router.Store {
		s, err := Open(filepath.Join(t.TempDir(), "endpoints.db"))
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

// TestSurvivesRestart reopens the file: endpoints and history are kept.
func TestSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "endpoints.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	p := router.Policy{Variants: []router.Variant{{Name: "a", Model: "m", Weight: 1}}}
	e, err := router.NewEndpoint("ep", p, now)
	if err != nil {
		t.Fatal(err)
	}
	for rev := 1; rev <= 3; rev++ {
		e.Revision = rev
		if err := s.Save(t.Context(), e, router.Revision{Revision: rev, Actor: "sam", Action: "set", Policy: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eps, err := s.Endpoints(t.Context())
	if err != nil || len(eps) != 1 || eps[0].Revision != 3 || eps[0].Policy.Variants[0].Model != "m" {
		t.Fatalf("endpoints = %+v, %v", eps, err)
	}
	h, err := s.History(t.Context(), "ep")
	if err != nil || len(h) != 3 || h[0].Revision != 1 || h[2].Revision != 3 || h[1].Actor != "sam" {
		t.Fatalf("history = %+v, %v", h, err)
	}
}
