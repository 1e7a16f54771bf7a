package localfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/localfs"
	"github.com/mlgate/mlgate/registry/registrytest"
)

func newStore(t *testing.T) (*localfs.Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "artifacts")
	s, err := localfs.New(root)
	if err != nil {
		t.Fatalf("New(%s): %v", root, err)
	}
	return s, root
}

// files lists the regular files under root, relative to it, in lexical order.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

func TestArtifactStore(t *testing.T) {
	registrytest.TestArtifactStore(t, func(t *testing.T) registry.ArtifactStore {
		s, _ := newStore(t)
		return s
	})
}

// TestLayout checks that each key is the file of that name under the root,
// which Path names, and that replacing or deleting it leaves no other file.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	keys := []string{"m/3f1c.onnx", "top.onnx", "a/b/c.onnx"}
	for _, key := range keys {
		for _, data := range []string{"first version of " + key, "second"} {
			if _, err := s.Put(ctx, key, strings.NewReader(data), 100); err != nil {
				t.Fatal(err)
			}
		}
		path, err := s.Path(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(root, filepath.FromSlash(key)); path != want {
			t.Errorf("Path(%s) = %s; want %s", key, path, want)
		}
	}
	want := slices.Sorted(slices.Values(keys))
	if got := files(t, root); !slices.Equal(got, want) {
		t.Errorf("files after two Puts of each key = %q; want %q", got, want)
	}
	for _, key := range keys {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if got := files(t, root); len(got) != 0 {
		t.Errorf("files after deleting every key = %q; want none", got)
	}
}

// TestRefusedPutLeavesNoFiles checks that a refused Put leaves no temporary
// file behind.
func TestRefusedPutLeavesNoFiles(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		r     io.Reader
		limit int64
	}{
		{"too large", context.Background(), bytes.NewReader(make([]byte, 1<<20)), 1000},
		{"reader fails midway", context.Background(), io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), iotest.ErrReader(errors.New("connection reset"))), 1 << 20},
		{"cancelled context", cancelled, strings.NewReader("fine"), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			if _, err := s.Put(tt.ctx, "m/k.onnx", tt.r, tt.limit); err == nil {
				t.Fatal("Put succeeded; want it refused")
			}
			if got := files(t, root); len(got) != 0 {
				t.Errorf("files after a refused Put = %q; want none", got)
			}
		})
	}
}

func TestInvalidKeys(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	// A file beside the root, which an escaping key could reach.
	outside := filepath.Join(filepath.Dir(root), "x")
	if err := os.WriteFile(outside, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"../x",
		"..",
		"/abs",
		"/x",
		"a/../../b",
		"a/../../x",
		"",
		".",
		"a/..",
		`a\b`,
		`..\x`,
	} {
		t.Run(key, func(t *testing.T) {
			if _, err := s.Put(ctx, key, strings.NewReader("data"), 100); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("Put(%q) = %v; want ErrInvalid", key, err)
			}
			if _, err := s.Path(ctx, key); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("Path(%q) = %v; want ErrInvalid", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("Delete(%q) = %v; want ErrInvalid", key, err)
			}
		})
	}
	if got, err := os.ReadFile(outside); err != nil || string(got) != "outside" {
		t.Errorf("file outside the root = %q, %v; want it untouched", got, err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("root: %v; want it kept", err)
	}
	if got := files(t, root); len(got) != 0 {
		t.Errorf("files under the root = %q; want none", got)
	}
}

func TestNewRemovesTemporaries(t *testing.T) {
	root := t.TempDir()
	write := func(rel string) {
		t.Helper()
		path := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(rel), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{
		".upload-123",
		"m/.upload-456",
		"m/deep/.upload-789",
		"m/3f1c.onnx",
		"m/not.upload-1",
		"top.onnx",
	} {
		write(rel)
	}
	if _, err := localfs.New(root); err != nil {
		t.Fatalf("New: %v", err)
	}
	want := []string{"m/3f1c.onnx", "m/not.upload-1", "top.onnx"}
	if got := files(t, root); !slices.Equal(got, want) {
		t.Errorf("files after New = %q; want %q", got, want)
	}
}

func TestNewCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "artifacts")
	s, err := localfs.New(root)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("root after New: %v; want a directory", err)
	}
	if _, err := s.Put(context.Background(), "m/k.onnx", strings.NewReader("x"), 1); err != nil {
		t.Errorf("Put into the new root: %v", err)
	}
}

func TestDeleteKeepsRoot(t *testing.T) {
	ctx := context.Background()
	for _, suffix := range []string{"", "/", "/.", "//"} {
		t.Run("root"+suffix, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "artifacts")
			s, err := localfs.New(dir + suffix)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put(ctx, "top.onnx", strings.NewReader("x"), 1); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "top.onnx"); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Errorf("root after deleting its last file: %v; want it kept", err)
			}
		})
	}
}
