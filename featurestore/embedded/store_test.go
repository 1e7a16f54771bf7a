package embedded

import (
	"path/filepath"
	"testing"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/storetest"
)

func TestConformance(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "online.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.Run(t, func(t *testing.T) featurestore.OnlineStore { return s })
}

func TestViewStore(t *testing.T) {
	storetest.TestViewStore(t, func(t *testing.T) featurestore.ViewStore {
		s, err := Open(filepath.Join(t.TempDir(), "online.db"))
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
