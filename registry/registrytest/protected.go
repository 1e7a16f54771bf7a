package registrytest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/registry"
)

// dirFiles keeps model files in a directory: the Registry needs an
// ArtifactStore, and the suite may not import a concrete one.
type dirFiles string

func (d dirFiles) Put(_ context.Context, key string, r io.Reader, limit int64) (registry.Artifact, error) {
	p := filepath.Join(string(d), filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return registry.Artifact{}, err
	}
	f, err := os.Create(p)
	if err != nil {
		return registry.Artifact{}, err
	}
	defer f.Close()
	return registry.CopyArtifact(f, r, limit)
}

func (d dirFiles) Path(_ context.Context, key string) (string, error) {
	return filepath.Join(string(d), filepath.FromSlash(key)), nil
}

func (d dirFiles) Delete(_ context.Context, key string) error {
	return os.Remove(filepath.Join(string(d), filepath.FromSlash(key)))
}

// anyModel stands in for ONNX Runtime: every file is a model.
type anyModel struct{}

func (anyModel) Inspect(context.Context, string) (registry.Signature, error) {
	return registry.Signature{}, nil
}

// testProtectedAliases runs a Registry over the store: the alias gate of
// registry.WithProtectedAliases reads a version's status and moves the
// alias in one Update, so every backend must keep it. A move to a version
// without the status required is refused and leaves nothing; one forced is
// audited as such; a status change under the alias is audited too.
func testProtectedAliases(t *testing.T, s registry.MetaStore) {
	ctx := t.Context()
	reg := registry.New(s, dirFiles(t.TempDir()), anyModel{}, 1<<20,
		registry.WithProtectedAliases(map[string]registry.Status{registry.AliasChampion: registry.StatusPassed}))
	for _, tags := range []map[string]string{nil, {registry.TagValidationStatus: "PASSED"}} {
		if _, err := reg.Register(ctx, "alice", "m", strings.NewReader("model"), registry.Metadata{Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	lastEvent := func() registry.AuditEvent {
		t.Helper()
		evs := mustAudit(t, s, registry.AuditQuery{Model: "m", Limit: 1000})
		return evs[len(evs)-1]
	}

	before := lastEvent()
	err := reg.SetAlias(ctx, "bob", "m", registry.AliasChampion, 1)
	if !errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), "version 1 is PENDING") {
		t.Fatalf("champion to a PENDING version: got %v, want a conflict naming the status", err)
	}
	if m := mustModel(t, s, "m"); len(m.Aliases) != 0 || lastEvent().Seq != before.Seq {
		t.Fatalf("the refused move left aliases %v or an event", m.Aliases)
	}
	if err := reg.SetAlias(ctx, "bob", "m", registry.AliasChampion, 2); err != nil {
		t.Fatalf("champion to a PASSED version: %v", err)
	}
	if err := reg.ForceAlias(ctx, "root", "m", registry.AliasChampion, 1); err != nil {
		t.Fatalf("forced: %v", err)
	}
	ev := lastEvent()
	if want := `{"alias":"champion","version":1,"forced":true,"status":"PENDING","required":"PASSED"}`; ev.Action != registry.ActionSetAlias || !jsonEqual(t, ev.After, json.RawMessage(want)) {
		t.Errorf("forced move audited as %s %s, want set_alias %s", ev.Action, ev.After, want)
	}

	if err := reg.SetAlias(ctx, "bob", "m", registry.AliasChampion, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SetTag(ctx, "carol", "m", 2, registry.TagValidationStatus, "FAILED"); err != nil {
		t.Fatalf("a status change under champion is a fact, not refused: %v", err)
	}
	ev = lastEvent()
	if ev.Action != registry.ActionProtectedAliasInvalidated || ev.Actor != "carol" || ev.Version != 2 ||
		!jsonEqual(t, ev.Before, json.RawMessage(`{"alias":"champion","status":"PASSED","required":"PASSED"}`)) ||
		!jsonEqual(t, ev.After, json.RawMessage(`{"alias":"champion","status":"FAILED","required":"PASSED"}`)) {
		t.Errorf("after FAILED under champion the last event is %+v, want protected_alias_invalidated by carol", ev)
	}
	if m := mustModel(t, s, "m"); m.Aliases[registry.AliasChampion] != 2 || m.Version(2).Status != registry.StatusFailed {
		t.Errorf("champion %d, version 2 %s; want champion still on the FAILED version 2", m.Aliases[registry.AliasChampion], m.Version(2).Status)
	}
}
