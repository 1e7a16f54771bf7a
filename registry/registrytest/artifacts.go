package registrytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/mlgate/mlgate/registry"
)

// TestArtifactStore runs the ArtifactStore conformance suite, one subtest per
// part of the contract. open must return a new, empty store each time it is
// called. Keys are shaped as the registry makes them (model/uuid.onnx), plus
// a top-level and a deeper one.
func TestArtifactStore(t *testing.T, open func(t *testing.T) registry.ArtifactStore) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s registry.ArtifactStore)
	}{
		{"PutThenPath", testPutThenPath},
		{"PutReplaces", testPutReplaces},
		{"TooLargeStoresNothing", testTooLargeStoresNothing},
		{"FailedPutStoresNothing", testFailedPutStoresNothing},
		{"PathNotFound", testPathNotFound},
		{"Delete", testDelete},
		{"ConcurrentPutsAndDeletes", testConcurrentPutsAndDeletes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t))
		})
	}
}

// randomBytes returns n pseudo-random bytes, the same for the same seed, so
// that a file cut and put together wrongly anywhere reads differently.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// describe names data in a failure message without printing all of it.
func describe(b []byte) string {
	if len(b) <= 40 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes, sha256 %s", len(b), sha256Hex(b))
}

func mustPut(t *testing.T, s registry.ArtifactStore, key string, data []byte) {
	t.Helper()
	art, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	if want := (registry.Artifact{SHA256: sha256Hex(data), Size: int64(len(data))}); art != want {
		t.Errorf("Put(%s) = %+v; want %+v", key, art, want)
	}
}

// read returns the bytes of the file Path gives for key, or the error of
// Path or of reading the file.
func read(s registry.ArtifactStore, key string) ([]byte, error) {
	path, err := s.Path(context.Background(), key)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// checkHolds checks that Path(key) names a file holding exactly want.
func checkHolds(t *testing.T, s registry.ArtifactStore, key string, want []byte) {
	t.Helper()
	got, err := read(s, key)
	if err != nil {
		t.Errorf("Path(%s): %v; want a file holding %s", key, err, describe(want))
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Path(%s) holds %s; want %s", key, describe(got), describe(want))
	}
}

// checkAbsent checks that Path(key) gives an error matching ErrNotFound.
func checkAbsent(t *testing.T, s registry.ArtifactStore, key string) {
	t.Helper()
	if path, err := s.Path(context.Background(), key); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Path(%s) = %q, %v; want an error matching ErrNotFound", key, path, err)
	}
}

func testPutThenPath(t *testing.T, s registry.ArtifactStore) {
	ctx := context.Background()
	// Over a few MiB, so that a store cutting files into pieces of a round
	// size cuts this one several times and leaves a tail.
	big := randomBytes(3<<20+12345, 1)
	tests := []struct {
		name  string
		key   string
		data  []byte
		limit int64
	}{
		{"empty file", "m/empty.onnx", nil, 10},
		{"empty file, zero limit", "m/zero.onnx", nil, 0},
		{"small file", "m/3f1c.onnx", []byte("hello, model"), 1 << 20},
		{"exactly the limit", "m/exact.onnx", []byte("12345"), 5},
		{"every byte value", "m/bytes.onnx", randomBytes(4096, 2), 1 << 20},
		{"large file", "big/model.onnx", big, int64(len(big))},
		{"top-level key", "top.onnx", []byte("top"), 100},
		{"nested key", "a/b/c.onnx", []byte("nested"), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			art, err := s.Put(ctx, tt.key, bytes.NewReader(tt.data), tt.limit)
			if err != nil {
				t.Fatalf("Put(%s) of %d bytes with a limit of %d: %v", tt.key, len(tt.data), tt.limit, err)
			}
			if want := (registry.Artifact{SHA256: sha256Hex(tt.data), Size: int64(len(tt.data))}); art != want {
				t.Errorf("Put = %+v; want %+v", art, want)
			}
			checkHolds(t, s, tt.key, tt.data)
			// Path again, as a gateway loading the model twice would.
			checkHolds(t, s, tt.key, tt.data)
		})
	}
	// Each key still holds its own file.
	for _, tt := range tests {
		checkHolds(t, s, tt.key, tt.data)
	}
}

func testPutReplaces(t *testing.T, s registry.ArtifactStore) {
	const key, other = "m/k.onnx", "m/other.onnx"
	otherData := []byte("the other key's file")
	mustPut(t, s, other, otherData)
	for _, v := range []struct {
		name string
		data []byte
	}{
		{"first", []byte("first version, the longer one")},
		{"shorter", []byte("second")},
		{"the same bytes again", []byte("second")},
		{"larger", randomBytes(200<<10, 3)},
		{"empty", nil},
		{"the other key's bytes", otherData},
		{"after sharing", []byte("third")},
	} {
		mustPut(t, s, key, v.data)
		if t.Failed() {
			t.Fatalf("after putting %s", v.name)
		}
		checkHolds(t, s, key, v.data)
		checkHolds(t, s, other, otherData)
		if t.Failed() {
			t.Fatalf("after putting %s", v.name)
		}
	}
}

// previous is what a key holds before a refused Put, when it holds anything.
var previous = []byte("the previous version, which must survive")

func testTooLargeStoresNothing(t *testing.T, s registry.ArtifactStore) {
	tests := []struct {
		name  string
		data  []byte
		limit int64
	}{
		{"one byte over", []byte("123456"), 5},
		{"far over", randomBytes(3<<20, 4), 1000},
		{"zero limit", []byte("x"), 0},
	}
	for i, tt := range tests {
		refusedPut(t, s, tt.name, fmt.Sprintf("m/large-%d", i), func(t *testing.T, key string) {
			art, err := s.Put(context.Background(), key, bytes.NewReader(tt.data), tt.limit)
			if !errors.Is(err, registry.ErrTooLarge) {
				t.Errorf("Put of %d bytes with a limit of %d = %+v, %v; want an error matching ErrTooLarge", len(tt.data), tt.limit, art, err)
			}
		})
	}
}

// refusedPut runs put, a Put that must be refused, as two subtests: on a new
// key, which must stay absent, and on a key holding previous, which must
// keep it.
func refusedPut(t *testing.T, s registry.ArtifactStore, name, keyPrefix string, put func(t *testing.T, key string)) {
	for _, existing := range []bool{false, true} {
		sub := name + ", new key"
		if existing {
			sub = name + ", key in use"
		}
		t.Run(sub, func(t *testing.T) {
			key := fmt.Sprintf("%s-%t.onnx", keyPrefix, existing)
			if existing {
				mustPut(t, s, key, previous)
			}
			put(t, key)
			if existing {
				checkHolds(t, s, key, previous)
			} else {
				checkAbsent(t, s, key)
			}
		})
	}
}

// testFailedPutStoresNothing checks that a Put whose reader fails, or whose
// context is cancelled, fails with that error and stores nothing.
func testFailedPutStoresNothing(t *testing.T, s registry.ArtifactStore) {
	errBroken := errors.New("registrytest: connection reset")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	// failAfter returns a reader that yields n bytes, then fails.
	failAfter := func(n int) io.Reader {
		return io.MultiReader(bytes.NewReader(randomBytes(n, 7)), iotest.ErrReader(errBroken))
	}
	tests := []struct {
		name string
		ctx  context.Context
		r    func() io.Reader
		want error
	}{
		{"reader fails at once", context.Background(), func() io.Reader { return failAfter(0) }, errBroken},
		{"reader fails midway", context.Background(), func() io.Reader { return failAfter(100 << 10) }, errBroken},
		{"reader fails after megabytes", context.Background(), func() io.Reader { return failAfter(3<<20 + 7) }, errBroken},
		{"cancelled context", cancelled, func() io.Reader { return strings.NewReader("fine") }, context.Canceled},
	}
	for i, tt := range tests {
		refusedPut(t, s, tt.name, fmt.Sprintf("m/failed-%d", i), func(t *testing.T, key string) {
			art, err := s.Put(tt.ctx, key, tt.r(), 8<<20)
			if !errors.Is(err, tt.want) {
				t.Errorf("Put = %+v, %v; want an error matching %v", art, err, tt.want)
			}
		})
	}
}

func testPathNotFound(t *testing.T, s registry.ArtifactStore) {
	checkAbsent(t, s, "m/absent.onnx")
	mustPut(t, s, "m/present.onnx", []byte("x"))
	for _, key := range []string{
		"m/absent.onnx",
		"other/absent.onnx",
		"absent.onnx",
		"m/present.onnx.bak",
		"m/present",
		"M/present.onnx",
	} {
		checkAbsent(t, s, key)
	}
	checkHolds(t, s, "m/present.onnx", []byte("x"))
}

func testDelete(t *testing.T, s registry.ArtifactStore) {
	ctx := context.Background()
	del := func(key string) {
		t.Helper()
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%s) = %v; want nil", key, err)
		}
	}

	// A key that never existed, in an empty store and beside others.
	del("m/never.onnx")
	shared := []byte("bytes kept under two keys")
	files := map[string][]byte{
		"m/1.onnx":      []byte("one"),
		"m/2.onnx":      []byte("two"),
		"m/shared.onnx": shared,
		"n/shared.onnx": shared,
		"top.onnx":      randomBytes(64<<10, 5),
	}
	for key, data := range files {
		mustPut(t, s, key, data)
	}
	del("m/never.onnx")

	// Each deletion removes its key and keeps the others, those with the
	// same bytes included; deleting it again is no error.
	for _, key := range []string{"m/1.onnx", "m/shared.onnx", "top.onnx", "n/shared.onnx", "m/2.onnx"} {
		del(key)
		checkAbsent(t, s, key)
		del(key)
		delete(files, key)
		for k, data := range files {
			checkHolds(t, s, k, data)
		}
		if t.Failed() {
			t.Fatalf("after deleting %s", key)
		}
	}

	// A deleted key can be put again, and the bytes of a deleted key too.
	mustPut(t, s, "m/1.onnx", []byte("one again"))
	mustPut(t, s, "m/3.onnx", shared)
	checkHolds(t, s, "m/1.onnx", []byte("one again"))
	checkHolds(t, s, "m/3.onnx", shared)
}

// testConcurrentPutsAndDeletes puts and deletes a few keys from several
// goroutines, while others read them: a file a reader gets from Path holds
// one of the files put under its key, whole, and afterwards each key is
// absent or holds one of its files whole. Some files are put under several
// keys at once. While its key changes, Path may give ErrNotFound, and the
// file it named may be gone by the time it is read (a Delete removes it),
// but it never gives another error, nor a file cut short.
func testConcurrentPutsAndDeletes(t *testing.T, s registry.ArtifactStore) {
	ctx := context.Background()
	keys := []string{"m/0.onnx", "m/1.onnx", "m/2.onnx", "n/0.onnx"}
	shared := [][]byte{[]byte("the file every key holds at times"), randomBytes(96<<10, 6)}
	values := map[string][][]byte{}
	for i, key := range keys {
		values[key] = append([][]byte{
			[]byte("the file only " + key + " holds"),
			randomBytes(64<<10+i, uint64(100+i)),
		}, shared...)
	}
	// whole reports whether got is one of the files put under key.
	whole := func(key string, got []byte) error {
		if !slices.ContainsFunc(values[key], func(v []byte) bool { return bytes.Equal(got, v) }) {
			return fmt.Errorf("%s holds %s, none of the files put under it", key, describe(got))
		}
		return nil
	}

	const writers, readers, rounds = 6, 2, 30
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				key := keys[(w+i)%len(keys)]
				if (w+i)%3 == 2 {
					if err := s.Delete(ctx, key); err != nil {
						errs <- fmt.Errorf("Delete(%s): %w", key, err)
						return
					}
					continue
				}
				data := values[key][(w*rounds+i)%len(values[key])]
				art, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
				if err != nil {
					errs <- fmt.Errorf("Put(%s): %w", key, err)
					return
				}
				if art.SHA256 != sha256Hex(data) || art.Size != int64(len(data)) {
					errs <- fmt.Errorf("Put(%s) of %s = %+v", key, describe(data), art)
					return
				}
			}
		})
	}
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				key := keys[i%len(keys)]
				got, err := read(s, key)
				if errors.Is(err, registry.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("Path(%s) while it changes: %w", key, err)
					return
				}
				if err := whole(key, got); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, key := range keys {
		got, err := read(s, key)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Errorf("after the writers: read %s: %v", key, err)
		} else if err := whole(key, got); err != nil {
			t.Errorf("after the writers: %v", err)
		}
	}

	// The store still works, and every key's file is its own.
	for i, key := range keys {
		mustPut(t, s, key, values[key][i%len(values[key])])
	}
	for i, key := range keys {
		checkHolds(t, s, key, values[key][i%len(values[key])])
	}
}
