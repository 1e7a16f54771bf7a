package bolt_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/bolt"
	"github.com/mlgate/mlgate/registry/registrytest"
)

func TestStore(t *testing.T) {
	registrytest.TestMetaStore(t, func(t *testing.T) registry.MetaStore {
		return open(t, filepath.Join(t.TempDir(), "registry.db"))
	})
}

func open(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	created := time.Date(2024, 5, 17, 9, 30, 0, 0, time.UTC)
	model := &registry.Model{
		Name:      "resnet",
		CreatedAt: created,
		UpdatedAt: created,
		Versions: []*registry.Version{{
			Name: "resnet", Version: 1, UUID: "3f1c", SHA256: "ab12", Size: 10,
			CreatedAt: created, CreatedBy: "alice",
			Tags:   map[string]string{"team": "vision"},
			Status: registry.StatusPending,
		}},
		Aliases:     map[string]int{"champion": 1},
		LastVersion: 1,
	}
	event := registry.AuditEvent{
		Time: created, Actor: "alice", Action: registry.ActionSetAlias, Model: "resnet", Version: 1,
		Before: json.RawMessage(`null`), After: json.RawMessage(`{"alias":"champion","version":1}`),
	}

	s := open(t, path)
	err := s.Update(ctx, "resnet", func(m *registry.Model) ([]registry.AuditEvent, error) {
		*m = *model
		return []registry.AuditEvent{event, event}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path)
	defer s.Close()
	got, err := s.Model(ctx, "resnet")
	if err != nil {
		t.Fatalf("Model after reopening: %v", err)
	}
	if !reflect.DeepEqual(got, model) {
		t.Errorf("Model after reopening = %+v; want %+v", got, model)
	}
	evs, err := s.Audit(ctx, registry.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Seq != 1 || evs[1].Seq != 2 || evs[0].Actor != "alice" || string(evs[1].After) != string(event.After) {
		t.Fatalf("Audit after reopening = %+v; want the two events written, Seq 1 and 2", evs)
	}

	// Sequence numbers carry on where they stopped.
	err = s.Update(ctx, "resnet", func(m *registry.Model) ([]registry.AuditEvent, error) {
		return []registry.AuditEvent{event}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err = s.Audit(ctx, registry.AuditQuery{After: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Seq != 3 {
		t.Errorf("event written after reopening = %+v; want one with Seq 3", evs)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not-a-database")
	if err := os.WriteFile(notDB, []byte("this is not a bbolt file, just some text that is long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{"missing directory", filepath.Join(dir, "missing", "registry.db")},
		{"directory", dir},
		{"not a database", notDB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := bolt.Open(tt.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded; want an error", tt.path)
			}
		})
	}
}

func TestUpdateCancelledContext(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "registry.db"))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Update(ctx, "m", func(m *registry.Model) ([]registry.AuditEvent, error) {
		t.Error("fn called with a cancelled context")
		return nil, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled context = %v; want context.Canceled", err)
	}
	if _, err := s.Model(context.Background(), "m"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Model after a cancelled Update = %v; want ErrNotFound", err)
	}
}
