package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/internal/pgdb/pgdbtest"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/postgres"
	"github.com/mlgate/mlgate/registry/registrytest"
)

// newArtifacts returns an artifact store on pool with a cache directory of
// its own, as each gateway has, and that directory.
func newArtifacts(t *testing.T, pool *pgxpool.Pool) (*postgres.ArtifactStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	s, err := postgres.NewArtifactStore(pool, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// stored counts the files and keys in the database.
func stored(t *testing.T, pool *pgxpool.Pool) (blobs, chunks, keys int) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM registry_blobs), (SELECT count(*) FROM registry_blob_chunks), (SELECT count(*) FROM registry_artifacts)`).
		Scan(&blobs, &chunks, &keys)
	if err != nil {
		t.Fatal(err)
	}
	return blobs, chunks, keys
}

// cached lists the files in a cache directory.
func cached(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func mustPut(t *testing.T, s *postgres.ArtifactStore, key string, data []byte) registry.Artifact {
	t.Helper()
	art, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	return art
}

// checkPath checks that Path(key) names a file holding want.
func checkPath(t *testing.T, s *postgres.ArtifactStore, key string, want []byte) string {
	t.Helper()
	path, err := s.Path(context.Background(), key)
	if err != nil {
		t.Fatalf("Path(%s): %v", key, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Path(%s) holds %d bytes (sha256 %s); want %d (sha256 %s)", key, len(got), sum(got), len(want), sum(want))
	}
	return path
}

func TestArtifactStore(t *testing.T) {
	registrytest.TestArtifactStore(t, func(t *testing.T) registry.ArtifactStore {
		s, _ := newArtifacts(t, pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema))
		return s
	})
}

// TestArtifactOtherReplicaFetches has one replica put files and another,
// with a cache of its own, fetch them from the database, chunk by chunk.
func TestArtifactOtherReplicaFetches(t *testing.T) {
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	uploader, _ := newArtifacts(t, pool)
	other, otherCache := newArtifacts(t, pool)
	big := bytes.Repeat([]byte("0123456789abcde\n"), 5<<16) // 5 MiB: several chunks, the last one full
	tests := []struct {
		name string
		key  string
		data []byte
	}{
		{"empty file", "m/empty.onnx", nil},
		{"small file", "m/3f1c.onnx", []byte("hello, model")},
		{"chunks", "big/model.onnx", big},
		{"chunks and a part", "big/odd.onnx", append(slices.Clone(big), "tail"...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			art := mustPut(t, uploader, tt.key, tt.data)
			if path := checkPath(t, other, tt.key, tt.data); path != filepath.Join(otherCache, art.SHA256) {
				t.Errorf("Path = %s; want the file named by its sha256 in the cache", path)
			}
		})
	}
}

// TestArtifactRefusedPutStoresNothing checks that a refused Put leaves
// nothing in the database or the cache, not even a part file.
func TestArtifactRefusedPutStoresNothing(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		r     io.Reader
		limit int64
	}{
		{"too large", context.Background(), strings.NewReader("123456"), 5},
		{"reader fails", context.Background(), io.MultiReader(strings.NewReader("part of a file"), iotest.ErrReader(errors.New("connection reset"))), 100},
		{"cancelled context", cancelled, strings.NewReader("fine"), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
			s, cache := newArtifacts(t, pool)
			if _, err := s.Put(tt.ctx, "m/k.onnx", tt.r, tt.limit); err == nil {
				t.Fatal("Put succeeded; want it refused")
			} else if errors.Is(err, registry.ErrTooLarge) && !strings.Contains(err.Error(), "registry.max_model_bytes") {
				t.Errorf("error %q does not name the limit's config key", err)
			}
			if blobs, chunks, keys := stored(t, pool); blobs+chunks+keys != 0 {
				t.Errorf("after a refused Put the database holds %d files, %d chunks, %d keys; want none", blobs, chunks, keys)
			}
			if files := cached(t, cache); len(files) != 0 {
				t.Errorf("after a refused Put the cache holds %q; want nothing", files)
			}
		})
	}
}

func TestArtifactSameBytesStoredOnce(t *testing.T) {
	ctx := context.Background()
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	s, cache := newArtifacts(t, pool)
	data := bytes.Repeat([]byte("weights"), 200_000) // 1.4 MB, two chunks
	a1 := mustPut(t, s, "m/v1.onnx", data)
	a2 := mustPut(t, s, "m/v2.onnx", data)
	if a1 != a2 {
		t.Errorf("the same bytes twice gave %+v and %+v", a1, a2)
	}
	if blobs, chunks, keys := stored(t, pool); blobs != 1 || chunks != 2 || keys != 2 {
		t.Errorf("database holds %d files, %d chunks, %d keys; want 1, 2, 2", blobs, chunks, keys)
	}
	if files := cached(t, cache); !slices.Equal(files, []string{a1.SHA256}) {
		t.Errorf("cache holds %q; want the one file", files)
	}

	// The file stays while a key points at it, and goes with the last.
	if err := s.Delete(ctx, "m/v1.onnx"); err != nil {
		t.Fatal(err)
	}
	checkPath(t, s, "m/v2.onnx", data)
	if _, err := s.Path(ctx, "m/v1.onnx"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Path of a deleted key = %v; want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "m/v2.onnx"); err != nil {
		t.Fatal(err)
	}
	if blobs, chunks, keys := stored(t, pool); blobs+chunks+keys != 0 {
		t.Errorf("after deleting both keys the database holds %d files, %d chunks, %d keys; want none", blobs, chunks, keys)
	}
	if files := cached(t, cache); len(files) != 0 {
		t.Errorf("after deleting both keys the cache holds %q; want nothing", files)
	}
}

func TestArtifactSameBytesConcurrently(t *testing.T) {
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	data := []byte("the same model, uploaded through two gateways at once")
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for r := range 2 {
		s, _ := newArtifacts(t, pool)
		for i := range 5 {
			wg.Go(func() {
				_, err := s.Put(context.Background(), fmt.Sprintf("m/r%d-%d.onnx", r, i), bytes.NewReader(data), 100)
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Put: %v", err)
		}
	}
	if blobs, _, keys := stored(t, pool); blobs != 1 || keys != 10 {
		t.Errorf("database holds %d files, %d keys; want 1, 10", blobs, keys)
	}
}

// TestArtifactReplacedFileDropped checks that a file goes from the database
// and the cache when Put points its only key at another.
func TestArtifactReplacedFileDropped(t *testing.T) {
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	s, cache := newArtifacts(t, pool)
	mustPut(t, s, "m/v1.onnx", []byte("first"))
	second := mustPut(t, s, "m/v1.onnx", []byte("second"))
	if blobs, _, keys := stored(t, pool); blobs != 1 || keys != 1 {
		t.Errorf("database holds %d files, %d keys; want the first file gone: 1, 1", blobs, keys)
	}
	if files := cached(t, cache); !slices.Equal(files, []string{second.SHA256}) {
		t.Errorf("cache holds %q; want only the second file", files)
	}
}

func TestArtifactCorruptCacheFetchedAgain(t *testing.T) {
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	s, _ := newArtifacts(t, pool)
	data := []byte("model bytes that the disk will damage")
	mustPut(t, s, "m/v1.onnx", data)
	path := checkPath(t, s, "m/v1.onnx", data)
	damage := []struct {
		name string
		do   func() error
	}{
		{"same size, other bytes", func() error { return os.WriteFile(path, bytes.Repeat([]byte("x"), len(data)), 0o600) }},
		{"truncated", func() error { return os.Truncate(path, 5) }},
		{"removed", func() error { return os.Remove(path) }},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			if err := d.do(); err != nil {
				t.Fatal(err)
			}
			if got := checkPath(t, s, "m/v1.onnx", data); got != path {
				t.Errorf("Path = %s; want %s again", got, path)
			}
		})
	}
}

func TestNewArtifactStoreRemovesPartFiles(t *testing.T) {
	pool := pgdbtest.Open(t, testservers.Postgres(t), postgres.Schema)
	dir := t.TempDir()
	keep := filepath.Join(dir, sum([]byte("kept")))
	for _, f := range []string{filepath.Join(dir, ".part-123"), keep} {
		if err := os.WriteFile(f, []byte("kept"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := postgres.NewArtifactStore(pool, dir); err != nil {
		t.Fatal(err)
	}
	if files := cached(t, dir); !slices.Equal(files, []string{filepath.Base(keep)}) {
		t.Errorf("cache after NewArtifactStore holds %q; want only the complete file", files)
	}
}
