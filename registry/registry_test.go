package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/bolt"
	"github.com/mlgate/mlgate/registry/localfs"
)

// maxModelBytes is the upload limit of the registries under test.
const maxModelBytes = 1 << 10

// fakeInspector stands in for ONNX Runtime: a file is a model unless its
// content starts with "garbage"; one whose content starts with "fixed" has
// a fixed batch dimension.
type fakeInspector struct{}

func (fakeInspector) Inspect(ctx context.Context, path string) (registry.Signature, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return registry.Signature{}, err
	}
	if bytes.HasPrefix(b, []byte("garbage")) {
		return registry.Signature{}, registry.Invalid("not a model")
	}
	if bytes.HasPrefix(b, []byte("fixed")) {
		return registry.Signature{
			Inputs:  []registry.TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}}},
			Outputs: []registry.TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{2, 3}}},
		}, nil
	}
	return testSignature(), nil
}

func testSignature() registry.Signature {
	return registry.Signature{
		Inputs:  []registry.TensorSpec{{Name: "float_input", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []registry.TensorSpec{{Name: "label", Datatype: "INT64", Shape: []int64{-1}}},
	}
}

// testEnv is a Registry over real stores in a temporary directory.
type testEnv struct {
	reg       *registry.Registry
	meta      registry.MetaStore
	store     registry.ArtifactStore
	artifacts string // the artifact store's directory
}

// newEnv returns a registry over a bbolt file and a directory of artifacts.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := t.TempDir()
	meta, err := bolt.Open(filepath.Join(dir, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	artifactDir := filepath.Join(dir, "artifacts")
	artifacts, err := localfs.New(artifactDir)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{
		reg:       registry.New(meta, artifacts, fakeInspector{}, maxModelBytes),
		meta:      meta,
		store:     artifacts,
		artifacts: artifactDir,
	}
}

func (e *testEnv) register(t *testing.T, actor, name, body string, md registry.Metadata) *registry.Version {
	t.Helper()
	v, err := e.reg.Register(context.Background(), actor, name, strings.NewReader(body), md)
	if err != nil {
		t.Fatalf("Register(%s): %v", name, err)
	}
	return v
}

func (e *testEnv) version(t *testing.T, name string, n int) *registry.Version {
	t.Helper()
	v, err := e.reg.Version(context.Background(), name, n)
	if err != nil {
		t.Fatalf("Version(%s, %d): %v", name, n, err)
	}
	return v
}

// versions returns the numbers of the model's versions.
func (e *testEnv) versions(t *testing.T, name string) []int {
	t.Helper()
	m, err := e.reg.Model(context.Background(), name)
	if err != nil {
		t.Fatalf("Model(%s): %v", name, err)
	}
	var ns []int
	for _, v := range m.Versions {
		ns = append(ns, v.Version)
	}
	return ns
}

func (e *testEnv) audit(t *testing.T) []registry.AuditEvent {
	t.Helper()
	evs, err := e.reg.Audit(context.Background(), registry.AuditQuery{})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	return evs
}

// files lists every file under the artifact directory, temporary ones too.
func (e *testEnv) files(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(e.artifacts, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(e.artifacts, path)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	start := time.Now()
	md := registry.Metadata{
		Description: "iris classifier",
		Tags:        map[string]string{"team": "tabular"},
		Lineage:     registry.Lineage{Data: "s3://data/iris", Code: "git:abc", RunID: "run-1"},
	}
	// Two models registered in turns: each numbers its own versions.
	steps := []struct {
		name string
		want int
	}{{"iris", 1}, {"iris", 2}, {"wine", 1}, {"iris", 3}, {"wine", 2}}
	uuids := map[string]bool{}
	for i, step := range steps {
		body := strings.Repeat("onnx", i+1)
		v := e.register(t, "alice", step.name, body, md)
		end := time.Now()

		if v.Name != step.name || v.Version != step.want {
			t.Errorf("Register(%s) gave %s/%d; want %s/%d", step.name, v.Name, v.Version, step.name, step.want)
		}
		if _, err := uuid.Parse(v.UUID); err != nil || uuids[v.UUID] {
			t.Errorf("version %s/%d has UUID %q; want a new UUID (parse error %v)", v.Name, v.Version, v.UUID, err)
		}
		uuids[v.UUID] = true
		if v.SHA256 != hashOf(body) || v.Size != int64(len(body)) {
			t.Errorf("version %s/%d has sha256 %s size %d; want %s %d", v.Name, v.Version, v.SHA256, v.Size, hashOf(body), len(body))
		}
		if v.CreatedAt.Before(start) || v.CreatedAt.After(end) || v.CreatedAt.Location() != time.UTC {
			t.Errorf("version %s/%d created at %v; want a UTC time between %v and %v", v.Name, v.Version, v.CreatedAt, start, end)
		}
		if v.CreatedBy != "alice" || v.Status != registry.StatusPending {
			t.Errorf("version %s/%d created by %q with status %q; want alice, PENDING", v.Name, v.Version, v.CreatedBy, v.Status)
		}
		if v.Description != md.Description || v.Lineage != md.Lineage || !reflect.DeepEqual(v.Tags, md.Tags) {
			t.Errorf("version %s/%d has metadata %q %+v %v; want %+v", v.Name, v.Version, v.Description, v.Lineage, v.Tags, md)
		}
		if !reflect.DeepEqual(v.Signature, testSignature()) || v.Aliases == nil || len(v.Aliases) != 0 {
			t.Errorf("version %s/%d has signature %+v, aliases %v; want the inspector's, none", v.Name, v.Version, v.Signature, v.Aliases)
		}
		// What Register returns is what the registry keeps.
		if got := e.version(t, step.name, step.want); !reflect.DeepEqual(got, v) {
			t.Errorf("Version(%s, %d) = %+v; want what Register returned, %+v", step.name, step.want, got, v)
		}
		path, err := e.reg.ArtifactPath(ctx, v)
		if err != nil {
			t.Fatalf("ArtifactPath: %v", err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != body {
			t.Errorf("artifact of %s/%d = %q, %v; want %q", v.Name, v.Version, b, err, body)
		}
	}

	ms, err := e.reg.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "iris" || ms[1].Name != "wine" || ms[0].LastVersion != 3 || ms[1].LastVersion != 2 {
		t.Errorf("Models = %+v; want iris (last version 3) and wine (2)", ms)
	}
	if got := len(e.files(t)); got != len(steps) {
		t.Errorf("%d artifact files; want %d", got, len(steps))
	}
}

func batching() *registry.Batching {
	return &registry.Batching{MaxBatchSize: 32, MaxQueueDelay: registry.Duration(500 * time.Microsecond)}
}

// TestRegisterBatching: a version registered with batching keeps it; one
// whose model cannot batch is refused with a message naming the input.
func TestRegisterBatching(t *testing.T) {
	e := newEnv(t)
	v := e.register(t, "alice", "m", "onnx", registry.Metadata{Batching: batching()})
	if !reflect.DeepEqual(v.Batching, batching()) {
		t.Errorf("Register gave batching %+v; want %+v", v.Batching, batching())
	}
	if got := e.version(t, "m", 1); !reflect.DeepEqual(got.Batching, batching()) {
		t.Errorf("the registry keeps batching %+v; want %+v", got.Batching, batching())
	}
	if v := e.register(t, "alice", "m", "onnx", registry.Metadata{}); v.Batching != nil {
		t.Errorf("a version registered without batching has %+v", v.Batching)
	}
	_, err := e.reg.Register(context.Background(), "alice", "m", strings.NewReader("fixed"), registry.Metadata{Batching: batching()})
	want := "metadata.batching: input x has shape [2,3]; a model batches only when the first dimension of every input and output is dynamic (-1)"
	if !errors.Is(err, registry.ErrInvalid) || err.Error() != want {
		t.Errorf("Register of a fixed shape with batching = %v; want %q", err, want)
	}
}

func TestRegisterStatus(t *testing.T) {
	tests := []struct {
		name string
		tags map[string]string
		want registry.Status
	}{
		{"no tags", nil, registry.StatusPending},
		{"other tags", map[string]string{"team": "x"}, registry.StatusPending},
		{"pending", map[string]string{"validation_status": "PENDING"}, registry.StatusPending},
		{"passed", map[string]string{"validation_status": "PASSED", "team": "x"}, registry.StatusPassed},
		{"failed", map[string]string{"validation_status": "FAILED"}, registry.StatusFailed},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.register(t, "alice", "m", "model", registry.Metadata{Tags: tt.tags})
			if v.Status != tt.want {
				t.Errorf("Register with tags %v gave status %q; want %q", tt.tags, v.Status, tt.want)
			}
			if got := e.version(t, "m", v.Version).Status; got != tt.want {
				t.Errorf("stored status = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestVersionNumbersNeverReused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for range 3 {
		e.register(t, "alice", "m", "model", registry.Metadata{})
	}
	steps := []struct {
		deletes []int
		want    int // number of the next registration
		left    []int
	}{
		{[]int{3}, 4, []int{1, 2, 4}},
		{[]int{4, 2}, 5, []int{1, 5}},
		{[]int{1, 5}, 6, []int{6}},
	}
	for _, step := range steps {
		for _, n := range step.deletes {
			if err := e.reg.DeleteVersion(ctx, "bob", "m", n); err != nil {
				t.Fatalf("DeleteVersion(%d): %v", n, err)
			}
		}
		if v := e.register(t, "alice", "m", "model", registry.Metadata{}); v.Version != step.want {
			t.Errorf("after deleting %v, Register gave version %d; want %d", step.deletes, v.Version, step.want)
		}
		if got := e.versions(t, "m"); !slices.Equal(got, step.left) {
			t.Errorf("versions = %v; want %v", got, step.left)
		}
	}
}

// failingReader yields some bytes, then fails.
type failingReader struct{ n int }

var errBroken = errors.New("connection reset")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errBroken
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// failingUpdates is a MetaStore whose updates fail.
type failingUpdates struct{ registry.MetaStore }

var errDiskFull = errors.New("disk full")

func (failingUpdates) Update(context.Context, string, func(*registry.Model) ([]registry.AuditEvent, error)) error {
	return errDiskFull
}

func TestRegisterRefused(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		names []string // the model names tried; nil: an existing model and a new one
		ctx   context.Context
		body  func() io.Reader
		md    registry.Metadata
		store func(registry.MetaStore) registry.MetaStore
		want  error
	}{
		{name: "not a model", body: text("garbage, not ONNX"), want: registry.ErrInvalid},
		{name: "one byte too large", body: text(strings.Repeat("x", maxModelBytes+1)), want: registry.ErrTooLarge},
		{name: "far too large", body: text(strings.Repeat("x", 100*maxModelBytes)), want: registry.ErrTooLarge},
		{name: "name with a slash", names: []string{"a/b"}, want: registry.ErrInvalid},
		{name: "name escaping", names: []string{"../m"}, want: registry.ErrInvalid},
		{name: "empty name", names: []string{""}, want: registry.ErrInvalid},
		{name: "name starting with a dot", names: []string{".m"}, want: registry.ErrInvalid},
		{name: "invalid validation_status", md: registry.Metadata{Tags: map[string]string{"validation_status": "OK"}}, want: registry.ErrInvalid},
		{name: "bad tag key", md: registry.Metadata{Tags: map[string]string{"a b": "c"}}, want: registry.ErrInvalid},
		{name: "description too long", md: registry.Metadata{Description: strings.Repeat("d", 16<<10+1)}, want: registry.ErrInvalid},
		{name: "description not UTF-8", md: registry.Metadata{Description: "caf\xe9"}, want: registry.ErrInvalid},
		{name: "batching a fixed shape", body: text("fixed-shape model"), md: registry.Metadata{Batching: batching()}, want: registry.ErrInvalid},
		{name: "batching out of bounds", md: registry.Metadata{Batching: &registry.Batching{MaxBatchSize: 1, MaxQueueDelay: 1}}, want: registry.ErrInvalid},
		{name: "upload fails", body: func() io.Reader { return &failingReader{n: 100} }, want: errBroken},
		{name: "cancelled", ctx: cancelled, want: context.Canceled},
		{name: "store fails", store: func(s registry.MetaStore) registry.MetaStore { return failingUpdates{s} }, want: errDiskFull},
	}
	for _, tt := range tests {
		names := tt.names
		if names == nil {
			names = []string{"m", "fresh"}
		}
		for _, name := range names {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t)
				existing := e.register(t, "alice", "m", "version one", registry.Metadata{})
				before := e.audit(t)
				reg := e.reg
				if tt.store != nil {
					reg = registry.New(tt.store(e.meta), e.store, fakeInspector{}, maxModelBytes)
				}
				var body io.Reader = strings.NewReader("a fine model")
				if tt.body != nil {
					body = tt.body()
				}
				if tt.ctx != nil {
					ctx = tt.ctx
				}
				v, err := reg.Register(ctx, "mallory", name, body, tt.md)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Register = %+v, %v; want an error matching %v", v, err, tt.want)
				}

				if got := e.versions(t, "m"); !slices.Equal(got, []int{1}) {
					t.Errorf("versions of m = %v; want [1]", got)
				}
				if _, err := e.reg.Model(context.Background(), "fresh"); !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("Model(fresh) = %v; want ErrNotFound", err)
				}
				if got, want := e.files(t), []string{existing.ArtifactKey()}; !slices.Equal(got, want) {
					t.Errorf("artifact files = %q; want only version 1's, %q", got, want)
				}
				if got := e.audit(t); !reflect.DeepEqual(got, before) {
					t.Errorf("audit trail after a refused registration has %d events; want the %d before", len(got), len(before))
				}
				// The refusal used up no version number.
				if v := e.register(t, "alice", "m", "version two", registry.Metadata{}); v.Version != 2 {
					t.Errorf("next registration of m got version %d; want 2", v.Version)
				}
			})
		}
	}
}

func text(s string) func() io.Reader {
	return func() io.Reader { return strings.NewReader(s) }
}

func TestAliases(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for range 2 {
		e.register(t, "alice", "m", "model", registry.Metadata{})
	}
	// Each step changes the aliases, then says which aliases each version has.
	steps := []struct {
		name string
		do   func() error
		v1   []string
		v2   []string
	}{
		{"set champion", func() error { return e.reg.SetAlias(ctx, "bob", "m", "champion", 1) }, []string{"champion"}, []string{}},
		{"set challenger", func() error { return e.reg.SetAlias(ctx, "bob", "m", "challenger", 1) }, []string{"challenger", "champion"}, []string{}},
		{"move champion", func() error { return e.reg.SetAlias(ctx, "bob", "m", "champion", 2) }, []string{"challenger"}, []string{"champion"}},
		{"set champion again", func() error { return e.reg.SetAlias(ctx, "bob", "m", "champion", 2) }, []string{"challenger"}, []string{"champion"}},
		{"delete challenger", func() error { return e.reg.DeleteAlias(ctx, "bob", "m", "challenger") }, []string{}, []string{"champion"}},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := e.version(t, "m", 1).Aliases; !slices.Equal(got, step.v1) {
			t.Errorf("after %s, version 1 has aliases %q; want %q", step.name, got, step.v1)
		}
		if got := e.version(t, "m", 2).Aliases; !slices.Equal(got, step.v2) {
			t.Errorf("after %s, version 2 has aliases %q; want %q", step.name, got, step.v2)
		}
	}
	m, err := e.reg.Model(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"champion": 2}; !reflect.DeepEqual(m.Aliases, want) {
		t.Errorf("model aliases = %v; want %v", m.Aliases, want)
	}
}

func TestAliasErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "alice", "m", "model", registry.Metadata{})
	if err := e.reg.SetAlias(ctx, "bob", "m", "champion", 1); err != nil {
		t.Fatal(err)
	}
	before := e.audit(t)
	type errCase struct {
		name string
		do   func() error
		want error
	}
	tests := []errCase{
		{"set on unknown version", func() error { return e.reg.SetAlias(ctx, "bob", "m", "champion", 9) }, registry.ErrNotFound},
		{"set on unknown model", func() error { return e.reg.SetAlias(ctx, "bob", "nope", "champion", 1) }, registry.ErrNotFound},
		{"delete unknown alias", func() error { return e.reg.DeleteAlias(ctx, "bob", "m", "canary") }, registry.ErrNotFound},
		{"delete on unknown model", func() error { return e.reg.DeleteAlias(ctx, "bob", "nope", "champion") }, registry.ErrNotFound},
	}
	for _, alias := range []string{"1abc", "7", "a/b", "a@b", "a.b", "", strings.Repeat("a", 65)} {
		tests = append(tests,
			errCase{"set " + alias, func() error { return e.reg.SetAlias(ctx, "bob", "m", alias, 1) }, registry.ErrInvalid},
			errCase{"delete " + alias, func() error { return e.reg.DeleteAlias(ctx, "bob", "m", alias) }, registry.ErrInvalid},
		)
	}
	for _, tt := range tests {
		if err := tt.do(); !errors.Is(err, tt.want) {
			t.Errorf("%s = %v; want an error matching %v", tt.name, err, tt.want)
		}
	}
	if got := e.version(t, "m", 1).Aliases; !slices.Equal(got, []string{"champion"}) {
		t.Errorf("aliases after refused changes = %q; want [champion]", got)
	}
	if _, err := e.reg.Model(ctx, "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Model(nope) = %v; want ErrNotFound: refused changes must not create a model", err)
	}
	if got := e.audit(t); len(got) != len(before) {
		t.Errorf("refused alias changes wrote %d audit events; want none", len(got)-len(before))
	}
}

func TestDeleteVersion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	v1 := e.register(t, "alice", "m", "model one", registry.Metadata{})
	v2 := e.register(t, "alice", "m", "model two", registry.Metadata{})
	path1, err := e.reg.ArtifactPath(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetAlias(ctx, "bob", "m", "champion", 1); err != nil {
		t.Fatal(err)
	}

	err = e.reg.DeleteVersion(ctx, "bob", "m", 1)
	if !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("DeleteVersion of the champion = %v; want ErrConflict", err)
	}
	if !strings.Contains(err.Error(), "champion") {
		t.Errorf("conflict %q does not name the alias", err)
	}
	if got := e.versions(t, "m"); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("versions after a refused delete = %v; want [1 2]", got)
	}
	if _, err := os.Stat(path1); err != nil {
		t.Errorf("file of version 1 after a refused delete: %v", err)
	}

	if err := e.reg.SetAlias(ctx, "bob", "m", "champion", 2); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.DeleteVersion(ctx, "bob", "m", 1); err != nil {
		t.Fatalf("DeleteVersion once the alias moved: %v", err)
	}
	if _, err := e.reg.Version(ctx, "m", 1); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Version(1) after delete = %v; want ErrNotFound", err)
	}
	if _, err := os.Stat(path1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file of version 1 after delete: %v; want it gone", err)
	}
	if _, err := e.reg.ArtifactPath(ctx, v1); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("ArtifactPath of the deleted version = %v; want ErrNotFound", err)
	}
	if got, want := e.files(t), []string{v2.ArtifactKey()}; !slices.Equal(got, want) {
		t.Errorf("artifact files = %q; want %q", got, want)
	}

	for _, tt := range []struct {
		name string
		n    int
	}{{"m", 1}, {"m", 99}, {"nope", 1}} {
		if err := e.reg.DeleteVersion(ctx, "bob", tt.name, tt.n); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("DeleteVersion(%s, %d) = %v; want ErrNotFound", tt.name, tt.n, err)
		}
	}
}

func TestSetTag(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "alice", "m", "model", registry.Metadata{Tags: map[string]string{"team": "vision"}})
	if err := e.reg.SetAlias(ctx, "bob", "m", "champion", 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		n          int
		key, value string
		want       error
		status     registry.Status // status afterwards
	}{
		{"passed", 1, "validation_status", "PASSED", nil, registry.StatusPassed},
		{"other tag keeps status", 1, "owner", "carol", nil, registry.StatusPassed},
		{"failed", 1, "validation_status", "FAILED", nil, registry.StatusFailed},
		{"invalid status", 1, "validation_status", "OK", registry.ErrInvalid, registry.StatusFailed},
		{"empty status", 1, "validation_status", "", registry.ErrInvalid, registry.StatusFailed},
		{"bad key", 1, "a b", "x", registry.ErrInvalid, registry.StatusFailed},
		{"empty key", 1, "", "x", registry.ErrInvalid, registry.StatusFailed},
		{"value not UTF-8", 1, "k", "\xff", registry.ErrInvalid, registry.StatusFailed},
		{"unknown version", 2, "owner", "x", registry.ErrNotFound, registry.StatusFailed},
		{"pending again", 1, "validation_status", "PENDING", nil, registry.StatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.audit(t)
			v, err := e.reg.SetTag(ctx, "bob", "m", tt.n, tt.key, tt.value)
			if !errors.Is(err, tt.want) {
				t.Fatalf("SetTag(%q, %q) = %v; want %v", tt.key, tt.value, err, tt.want)
			}
			stored := e.version(t, "m", 1)
			if stored.Status != tt.status {
				t.Errorf("status = %q; want %q", stored.Status, tt.status)
			}
			if tt.want != nil {
				if got := e.audit(t); len(got) != len(before) {
					t.Errorf("refused SetTag wrote %d audit events", len(got)-len(before))
				}
				return
			}
			if stored.Tags[tt.key] != tt.value || stored.Tags["team"] != "vision" {
				t.Errorf("tags = %v; want %s=%s and the tags set before", stored.Tags, tt.key, tt.value)
			}
			// SetTag returns the version as it now is, aliases included.
			if !reflect.DeepEqual(v, stored) {
				t.Errorf("SetTag returned %+v; want %+v", v, stored)
			}
		})
	}
}

// TestAuditTrail checks the event that each kind of change writes.
func TestAuditTrail(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	reg := e.reg

	v1 := e.register(t, "alice", "m", "model one", registry.Metadata{})
	e.register(t, "alice", "m", "model two", registry.Metadata{})
	evs := e.audit(t)
	if len(evs) != 2 {
		t.Fatalf("%d audit events after two registrations; want 2", len(evs))
	}
	for i, ev := range evs {
		checkEventHead(t, ev, registry.ActionRegisterVersion, "alice", "m", i+1)
		var after registry.Version
		if string(ev.Before) != "null" || json.Unmarshal(ev.After, &after) != nil || after.Version != i+1 || after.UUID == "" || after.SHA256 == "" {
			t.Errorf("register event has before %s, after %s; want null and the new version", ev.Before, ev.After)
		}
	}

	steps := []struct {
		name          string
		do            func() error
		action, actor string
		version       int
		before, after string
	}{
		{"set alias", func() error { return reg.SetAlias(ctx, "bob", "m", "champion", 1) },
			registry.ActionSetAlias, "bob", 1, `null`, `{"alias":"champion","version":1}`},
		{"move alias", func() error { return reg.SetAlias(ctx, "carol", "m", "champion", 2) },
			registry.ActionSetAlias, "carol", 2, `{"alias":"champion","version":1}`, `{"alias":"champion","version":2}`},
		{"set tag", func() error { _, err := reg.SetTag(ctx, "dave", "m", 1, "team", "vision"); return err },
			registry.ActionSetTag, "dave", 1, `null`, `{"key":"team","value":"vision"}`},
		{"change tag", func() error { _, err := reg.SetTag(ctx, "dave", "m", 1, "team", "nlp"); return err },
			registry.ActionSetTag, "dave", 1, `{"key":"team","value":"vision"}`, `{"key":"team","value":"nlp"}`},
		{"set status", func() error { _, err := reg.SetTag(ctx, "erin", "m", 2, "validation_status", "PASSED"); return err },
			registry.ActionSetTag, "erin", 2, `null`, `{"key":"validation_status","value":"PASSED"}`},
		{"delete alias", func() error { return reg.DeleteAlias(ctx, "frank", "m", "champion") },
			registry.ActionDeleteAlias, "frank", 2, `{"alias":"champion","version":2}`, `null`},
	}
	last := evs[len(evs)-1]
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		ev := onlyNewEvent(t, e, last)
		checkEventHead(t, ev, step.action, step.actor, "m", step.version)
		if !jsonEqual(t, ev.Before, step.before) || !jsonEqual(t, ev.After, step.after) {
			t.Errorf("%s: event before %s after %s; want %s, %s", step.name, ev.Before, ev.After, step.before, step.after)
		}
		last = ev
	}

	// Deleting a version keeps the whole record in the event.
	if err := reg.DeleteVersion(ctx, "grace", "m", 1); err != nil {
		t.Fatal(err)
	}
	ev := onlyNewEvent(t, e, last)
	checkEventHead(t, ev, registry.ActionDeleteVersion, "grace", "m", 1)
	var deleted registry.Version
	if err := json.Unmarshal(ev.Before, &deleted); err != nil || deleted.UUID != v1.UUID || deleted.Tags["team"] != "nlp" || string(ev.After) != "null" {
		t.Errorf("delete event has before %s, after %s; want version 1 as it was, null", ev.Before, ev.After)
	}

	// The trail can be read for one model.
	e.register(t, "alice", "other", "model", registry.Metadata{})
	got, err := reg.Audit(ctx, registry.AuditQuery{Model: "m", After: evs[1].Seq, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Action != registry.ActionSetAlias || got[1].Actor != "carol" {
		t.Errorf("Audit(m, after the registrations, limit 2) = %+v; want the first two alias events", got)
	}
}

// onlyNewEvent returns the one event written after last, failing unless there
// is exactly one.
func onlyNewEvent(t *testing.T, e *testEnv, last registry.AuditEvent) registry.AuditEvent {
	t.Helper()
	evs, err := e.reg.Audit(context.Background(), registry.AuditQuery{After: last.Seq})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d audit events written; want 1: %+v", len(evs), evs)
	}
	return evs[0]
}

func checkEventHead(t *testing.T, ev registry.AuditEvent, action, actor, model string, version int) {
	t.Helper()
	if ev.Action != action || ev.Actor != actor || ev.Model != model || ev.Version != version {
		t.Errorf("event %s by %s on %s/%d; want %s by %s on %s/%d", ev.Action, ev.Actor, ev.Model, ev.Version, action, actor, model, version)
	}
	if ev.Time.IsZero() || ev.Seq == 0 {
		t.Errorf("event %s has time %v, seq %d; want both set", ev.Action, ev.Time, ev.Seq)
	}
}

// jsonEqual reports whether raw holds the same JSON value as want.
func jsonEqual(t *testing.T, raw json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Errorf("invalid JSON %q: %v", raw, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("invalid JSON in the test %q: %v", want, err)
	}
	return reflect.DeepEqual(a, b)
}

// TestProtectedAliasRules: which aliases and status changes the gate of
// WithProtectedAliases concerns. Unprotected aliases move freely; a
// protected one requires its own status (here production: FAILED, to show
// the status is the configured one, not always PASSED); a status change
// under a protected alias raises an invalidation event whenever it changes
// to a status other than the one required, and other tags raise none.
func TestProtectedAliasRules(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.reg = registry.New(e.meta, e.store, fakeInspector{}, maxModelBytes, registry.WithProtectedAliases(
		map[string]registry.Status{"champion": registry.StatusPassed, "production": registry.StatusFailed}))
	e.register(t, "alice", "m", "model", registry.Metadata{})
	e.register(t, "alice", "m", "model", registry.Metadata{Tags: map[string]string{"validation_status": "PASSED"}})
	e.register(t, "alice", "m", "model", registry.Metadata{Tags: map[string]string{"validation_status": "FAILED"}})

	if got, ok := e.reg.Required("champion"); !ok || got != registry.StatusPassed {
		t.Errorf("Required(champion) = %s, %t", got, ok)
	}
	if _, ok := e.reg.Required("challenger"); ok {
		t.Error("challenger is protected, want not")
	}
	moves := []struct {
		alias   string
		version int
		want    string // substring of the refusal; "" means allowed
	}{
		{"challenger", 1, ""},
		{"challenger", 3, ""},
		{"champion", 1, "version 1 is PENDING"},
		{"champion", 3, "version 3 is FAILED"},
		{"champion", 2, ""},
		{"production", 2, "version 2 is PASSED; set the version's validation_status tag to FAILED first"},
		{"production", 3, ""},
	}
	for _, mv := range moves {
		check := e.reg.CheckProtected(ctx, "m", mv.alias, mv.version)
		set := e.reg.SetAlias(ctx, "bob", "m", mv.alias, mv.version)
		for what, err := range map[string]error{"CheckProtected": check, "SetAlias": set} {
			if mv.want == "" && err != nil || mv.want != "" && (!errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), mv.want)) {
				t.Errorf("%s(%s → %d) = %v, want %q", what, mv.alias, mv.version, err, mv.want)
			}
		}
	}
	if err := e.reg.CheckProtected(ctx, "m", "champion", 9); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("CheckProtected of a missing version = %v, want not found", err)
	}

	// champion is on 2 (PASSED). Each tag change, and the events it adds.
	tags := []struct {
		key, value string
		want       []string
	}{
		{"owner", "risk", []string{registry.ActionSetTag}},
		{"validation_status", "PASSED", []string{registry.ActionSetTag}},
		{"validation_status", "PENDING", []string{registry.ActionSetTag, registry.ActionProtectedAliasInvalidated}},
		{"validation_status", "PENDING", []string{registry.ActionSetTag}},
		{"validation_status", "FAILED", []string{registry.ActionSetTag, registry.ActionProtectedAliasInvalidated}},
		{"validation_status", "PASSED", []string{registry.ActionSetTag}},
	}
	for _, tt := range tags {
		before := len(e.audit(t))
		if _, err := e.reg.SetTag(ctx, "carol", "m", 2, tt.key, tt.value); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range e.audit(t)[before:] {
			got = append(got, ev.Action)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s=%s added %v, want %v", tt.key, tt.value, got, tt.want)
		}
	}
}
