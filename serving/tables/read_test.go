package tables

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readHeld returns the request ids Writer.ReadRows reads, sorted.
func readHeld(t testing.TB, w *Writer, f Filter) []string {
	t.Helper()
	var ids []string
	if err := w.ReadRows(t.Context(), f, func(r Row) error {
		ids = append(ids, r.RequestID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// links returns the links reads left in the log's directory.
func links(t testing.TB, dir string) []string {
	t.Helper()
	return filesNamed(t, filepath.Join(dir, walDir), isTemp)
}

// TestWriterReadRows reads a table whose rows are in every place a row can
// be: complete files, a log segment that also holds rows of a file
// completed since, the log's unwritten buffer, the queue. Each is read
// once, and the read completes no file.
func TestWriterReadRows(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, MaxFileAge: time.Minute, FlushInterval: 40 * time.Second}
	tk := fakeClock(&opts)
	w := open(t, opts)
	var want []string
	day := map[string]time.Time{"a": t0, "b": t0.AddDate(0, 0, 1), "c": t0} // a's and b's rows go to files of their own
	write := func(endpoint string, from, to int) {
		for i := from; i < to; i++ {
			r := row(i, endpoint, "m", day[endpoint])
			r.RequestID = fmt.Sprintf("%s-%02d", endpoint, i)
			w.Write(r)
			want = append(want, r.RequestID)
		}
	}
	write("a", 0, 5)
	write("b", 0, 5)
	flush(t, w) // two complete files

	write("a", 5, 10) // a's file opens at 0s
	settle(t, w)
	tk.tick(t, 1)     // at 40s the log is written
	write("b", 5, 10) // b's file opens at 40s, its rows in the same log segment
	settle(t, w)
	tk.tick(t, 1) // at 80s a's file is complete and a new segment starts; b's file stays open
	if n := countRows(t, dir); n != 15 {
		t.Fatalf("%d rows in complete files, want 15", n)
	}
	write("a", 10, 15) // a new file of a, in the next segment
	write("b", 10, 15) // in the log's buffer only
	settle(t, w)
	write("c", 0, 3) // queued, or just taken
	slices.Sort(want)

	files, _ := List(dir)
	written := w.Stats().Written
	if got := readHeld(t, w, Filter{}); !slices.Equal(got, want) {
		t.Errorf("read\n %v\nwant\n %v", got, want)
	}
	var b []string
	for _, id := range want {
		if strings.HasPrefix(id, "b-") {
			b = append(b, id)
		}
	}
	if got := readHeld(t, w, Filter{Endpoint: "b"}); !slices.Equal(got, b) {
		t.Errorf("read of endpoint b\n %v\nwant\n %v", got, b)
	}
	if after, _ := List(dir); !slices.Equal(after, files) || w.Stats().Written != written {
		t.Errorf("the reads completed files: %d files before, %d after; %d rows written before, %d after", len(files), len(after), written, w.Stats().Written)
	}
	if l := links(t, dir); len(l) != 0 {
		t.Errorf("links left after the reads: %v", l)
	}
	closeWriter(t, w)
	if got := len(readAll(t, dir, Filter{})); got != len(want) {
		t.Errorf("%d rows after Close, want %d", got, len(want))
	}
}

// TestWriterReadRows_WhileWriting reads 10 times while 8 goroutines write
// and files roll by size: every read sees each row at most once, and at
// least every row accepted before it started.
func TestWriterReadRows_WhileWriting(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, QueueSize: 64, Spill: true, MaxFileBytes: 64 << 10, FlushInterval: time.Millisecond})
	const writers, most = 8, 1000
	var accepted atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := 0; i < most && !done.Load(); i++ {
				w.Write(row(g*most+i, fmt.Sprintf("e%d", g%3), "m", t0))
				accepted.Add(1)
				runtime.Gosched()
			}
		})
	}
	eventually(t, "rows to be written", func() bool { return accepted.Load() >= 100 })
	wg.Go(func() {
		defer done.Store(true)
		for range 10 {
			before := accepted.Load()
			seen := map[string]bool{}
			err := w.ReadRows(t.Context(), Filter{}, func(r Row) error {
				if seen[r.RequestID] {
					return fmt.Errorf("row %s read twice", r.RequestID)
				}
				seen[r.RequestID] = true
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			if int64(len(seen)) < before {
				t.Errorf("read %d rows, want at least the %d accepted before", len(seen), before)
				return
			}
			if err := w.Flush(t.Context()); err != nil { // now and then a file completes by Flush too
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	t.Logf("%d rows written in all", accepted.Load())
	if st := w.Stats(); st.Dropped != 0 {
		t.Errorf("stats %+v: rows dropped", st)
	}
	if l := links(t, dir); len(l) != 0 {
		t.Errorf("links left after the reads: %v", l)
	}
}

// withOpenFiles opens a writer on a fake clock and writes 10 rows, of two
// partitions, that stay in its open files, their log segment on disk (a
// read links it). It returns the writer, its directory and the rows'
// request ids.
func withOpenFiles(t *testing.T) (*Writer, string, []string) {
	t.Helper()
	opts := Options{Dir: t.TempDir()}
	tk := fakeClock(&opts)
	w := open(t, opts)
	var ids []string
	for i := range 10 {
		r := row(i, []string{"a", "b"}[i%2], "m", t0)
		w.Write(r)
		ids = append(ids, r.RequestID)
	}
	settle(t, w)
	tk.tick(t, 1)
	return w, opts.Dir, ids
}

// TestWriterReadRows_Ends checks that a read stops at fn's error and when
// its context ends, even while it waits for the writer, and leaves no link
// behind either way; and that a read after Close is ErrClosed.
func TestWriterReadRows_Ends(t *testing.T) {
	w, dir, _ := withOpenFiles(t)
	stop := errors.New("stop")
	n := 0
	if err := w.ReadRows(t.Context(), Filter{}, func(Row) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("ReadRows with fn failing = %v after %d rows, want stop after 1", err, n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	resume := pause(t, w)
	done := make(chan error)
	go func() { done <- w.ReadRows(ctx, Filter{}, func(Row) error { return nil }) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("ReadRows whose context ends while the writer is busy = %v, want context.Canceled", err)
	}
	resume()
	settle(t, w)
	if l := links(t, dir); len(l) != 0 {
		t.Errorf("links left after the reads: %v", l)
	}
	closeWriter(t, w)
	if err := w.ReadRows(t.Context(), Filter{}, func(Row) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadRows after Close = %v, want ErrClosed", err)
	}
}

// TestOpenRemovesLinks crashes a writer while a read holds links to its
// log: the next Open deletes the links and replays each row once.
func TestOpenRemovesLinks(t *testing.T) {
	w, dir, _ := withOpenFiles(t)
	if _, err := w.hold(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.abandon()
	if len(links(t, dir)) == 0 {
		t.Fatal("the read made no link")
	}
	w2 := open(t, Options{Dir: dir})
	if l := links(t, dir); len(l) != 0 {
		t.Errorf("links left after Open: %v", l)
	}
	closeWriter(t, w2)
	if n := countRows(t, dir); n != 10 {
		t.Errorf("%d rows after recovery, want 10", n)
	}
}

// TestWriterReadRows_FilesCompleteMeanwhile completes the open files, and
// deletes the log segments holding their rows, between the moment a read
// takes what the writer holds and the moment it lists the complete files:
// the read still sees each row once, through its links.
func TestWriterReadRows_FilesCompleteMeanwhile(t *testing.T) {
	w, dir, want := withOpenFiles(t)
	h, err := w.hold(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer h.release()
	flush(t, w)
	if segs, _ := segments(filepath.Join(dir, walDir), walExt); len(segs) != 0 {
		t.Fatalf("log segments %v left after Flush", segs)
	}
	var got []string
	collect := func(r Row) error { got = append(got, r.RequestID); return nil }
	if err := Dir(dir).readRows(t.Context(), Filter{}, h.paths, collect); err != nil {
		t.Fatal(err)
	}
	if err := h.readRows(t.Context(), Filter{}, collect); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
}
