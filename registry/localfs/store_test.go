package localfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/localfs"
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

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestPutPathDelete(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name  string
		key   string
		data  []byte
		limit int64
	}{
		{"empty file", "m/empty.onnx", nil, 10},
		{"small file", "m/3f1c.onnx", []byte("hello, model"), 1 << 20},
		{"exactly the limit", "m/exact.onnx", []byte("12345"), 5},
		{"large file", "big/model.onnx", big, int64(len(big))},
		{"top-level key", "top.onnx", []byte("top"), 100},
		{"nested key", "a/b/c.onnx", []byte("nested"), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, root := newStore(t)
			art, err := s.Put(ctx, tt.key, bytes.NewReader(tt.data), tt.limit)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			want := registry.Artifact{SHA256: sha(tt.data), Size: int64(len(tt.data))}
			if art != want {
				t.Errorf("Put = %+v; want %+v", art, want)
			}
			if got := files(t, root); !slices.Equal(got, []string{tt.key}) {
				t.Errorf("files after Put = %q; want only %q", got, tt.key)
			}

			path, err := s.Path(ctx, tt.key)
			if err != nil {
				t.Fatalf("Path: %v", err)
			}
			if rel, err := filepath.Rel(root, path); err != nil || filepath.ToSlash(rel) != tt.key {
				t.Errorf("Path = %s; want %s under %s", path, tt.key, root)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("file at Path holds %d bytes that differ from the %d put", len(got), len(tt.data))
			}

			if err := s.Delete(ctx, tt.key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := s.Path(ctx, tt.key); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("Path after Delete = %v; want ErrNotFound", err)
			}
			if got := files(t, root); len(got) != 0 {
				t.Errorf("files after Delete = %q; want none", got)
			}
			if _, err := os.Stat(root); err != nil {
				t.Errorf("root after Delete: %v; want it kept", err)
			}
		})
	}
}

func TestPutReplaces(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	for _, data := range []string{"first version", "second"} {
		if _, err := s.Put(ctx, "m/k.onnx", strings.NewReader(data), 100); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(filepath.Join(root, "m", "k.onnx"))
	if err != nil || string(got) != "second" {
		t.Errorf("file after two Puts = %q, %v; want %q", got, err, "second")
	}
	if got := files(t, root); !slices.Equal(got, []string{"m/k.onnx"}) {
		t.Errorf("files = %q; want only m/k.onnx", got)
	}
}

func TestDeleteKeepsOtherFiles(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	for _, key := range []string{"m/1.onnx", "m/2.onnx"} {
		if _, err := s.Put(ctx, key, strings.NewReader(key), 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "m/1.onnx"); err != nil {
		t.Fatal(err)
	}
	if got := files(t, root); !slices.Equal(got, []string{"m/2.onnx"}) {
		t.Errorf("files after deleting m/1.onnx = %q; want [m/2.onnx]", got)
	}
}

// failingReader yields n bytes, then fails.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestPutRefused(t *testing.T) {
	errBroken := errors.New("connection reset")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		r     io.Reader
		limit int64
		want  error
	}{
		{"one byte over", context.Background(), strings.NewReader("123456"), 5, registry.ErrTooLarge},
		{"far over", context.Background(), bytes.NewReader(make([]byte, 1<<20)), 1000, registry.ErrTooLarge},
		{"zero limit", context.Background(), strings.NewReader("x"), 0, registry.ErrTooLarge},
		{"reader fails at once", context.Background(), &failingReader{0, errBroken}, 1 << 20, errBroken},
		{"reader fails midway", context.Background(), &failingReader{100 << 10, errBroken}, 1 << 20, errBroken},
		{"cancelled context", cancelled, strings.NewReader("fine"), 100, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := newStore(t)
			art, err := s.Put(tt.ctx, "m/k.onnx", tt.r, tt.limit)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Put = %+v, %v; want an error matching %v", art, err, tt.want)
			}
			// Nothing at all is left: neither the file nor a temporary one.
			if got := files(t, root); len(got) != 0 {
				t.Errorf("files after a refused Put = %q; want none", got)
			}
			if _, err := s.Path(context.Background(), "m/k.onnx"); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("Path after a refused Put = %v; want ErrNotFound", err)
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

func TestMissingKey(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.Put(ctx, "m/present.onnx", strings.NewReader("x"), 10); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"m/absent.onnx", "other/absent.onnx", "absent.onnx"} {
		if _, err := s.Path(ctx, key); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Path(%q) = %v; want ErrNotFound", key, err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) = %v; want nil", key, err)
		}
	}
	if _, err := s.Path(ctx, "m/present.onnx"); err != nil {
		t.Errorf("Path of the file kept: %v", err)
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

// TestConcurrentPutDelete puts and deletes files of one model from several
// goroutines: no Put may fail because a Delete emptied the model's directory.
func TestConcurrentPutDelete(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	const workers, rounds = 4, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Sprintf("m/%d-%d.onnx", w, i)
				if _, err := s.Put(ctx, key, strings.NewReader(key), 100); err != nil {
					errs <- fmt.Errorf("Put(%s): %w", key, err)
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					errs <- fmt.Errorf("Delete(%s): %w", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := files(t, root); len(got) != 0 {
		t.Errorf("files left = %q; want none", got)
	}
}
