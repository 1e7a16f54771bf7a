package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/registry"
)

// TestMirror: a mirror registers versions under their own numbers, gaps
// and all, moves the aliases, and records the versions it skips; mlgate's
// API refuses to change a mirrored model, naming its source, and a mirror
// leaves mlgate's own models alone.
func TestMirror(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const source = "MLflow at http://mlflow:5000"
	mirror := e.reg.Mirror(source)
	for _, n := range []int{1, 2, 4} {
		if _, err := mirror.Register(ctx, "scorer", n, strings.NewReader("model"), registry.Metadata{Description: "v"}); err != nil {
			t.Fatalf("mirror version %d: %v", n, err)
		}
	}
	if err := mirror.Skip(ctx, "scorer", 3, "no ONNX model: notes.txt"); err != nil {
		t.Fatal(err)
	}
	if err := mirror.Skip(ctx, "scorer", 3, "another reason"); err != nil {
		t.Fatal(err)
	}
	if err := mirror.SetAlias(ctx, "scorer", "challenger", 4); err != nil {
		t.Fatal(err)
	}
	m, err := e.reg.Model(ctx, "scorer")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.versions(t, "scorer"); len(got) != 3 || got[2] != 4 || m.MirroredFrom != source || m.Aliases["challenger"] != 4 {
		t.Errorf("model %+v, versions %v", m, got)
	}
	if len(m.Skipped) != 1 || m.Skipped[0] != (registry.SkippedVersion{Version: 3, Reason: "no ONNX model: notes.txt"}) {
		t.Errorf("skipped %+v, want version 3 once, with its first reason", m.Skipped)
	}
	if _, err := mirror.Register(ctx, "scorer", 3, strings.NewReader("model"), registry.Metadata{}); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("a number below the last: %v, want a conflict", err)
	}

	refusals := map[string]error{
		"register": func() error {
			_, err := e.reg.Register(ctx, "alice", "scorer", strings.NewReader("model"), registry.Metadata{})
			return err
		}(),
		"set alias":    e.reg.SetAlias(ctx, "sam", "scorer", "challenger", 1),
		"force alias":  e.reg.ForceAlias(ctx, "root", "scorer", "challenger", 1),
		"delete alias": e.reg.DeleteAlias(ctx, "sam", "scorer", "challenger"),
		"delete":       e.reg.DeleteVersion(ctx, "alice", "scorer", 1),
	}
	for what, err := range refusals {
		if !errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), "mirrored from "+source) {
			t.Errorf("%s through mlgate's API: %v; want a conflict naming the source", what, err)
		}
	}

	e.register(t, "alice", "own", "model", registry.Metadata{})
	if _, err := mirror.Register(ctx, "own", 7, strings.NewReader("model"), registry.Metadata{}); !errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), "registered in mlgate itself") {
		t.Errorf("mirroring over mlgate's own model: %v", err)
	}
	if err := e.reg.Mirror("MLflow at http://other").SetAlias(ctx, "scorer", "x", 1); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("another mirror moving an alias: %v", err)
	}

	events, err := e.reg.Audit(ctx, registry.AuditQuery{Model: "scorer"})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, ev := range events {
		actions[ev.Action]++
		if ev.Actor != source {
			t.Errorf("event %s by %q, want the mirror's source", ev.Action, ev.Actor)
		}
	}
	if actions[registry.ActionRegisterVersion] != 3 || actions[registry.ActionSkipVersion] != 1 || actions[registry.ActionSetAlias] != 1 {
		t.Errorf("audit actions %v", actions)
	}
}
