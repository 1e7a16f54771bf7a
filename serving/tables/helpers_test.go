package tables

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

// ticks drives a Writer's clock by hand: a Fake that reads t0 and moves
// only when a test moves it.
type ticks struct {
	clk   *clock.Fake
	every time.Duration // the writer's FlushInterval
	done  chan struct{} // a tick was done (Options.onTick)
}

// fakeClock gives opts a Fake clock, and a FlushInterval of a second if it
// has none, and returns what drives them.
func fakeClock(opts *Options) *ticks {
	if opts.FlushInterval == 0 {
		opts.FlushInterval = time.Second
	}
	tk := &ticks{clk: clock.NewFake(t0), every: opts.FlushInterval, done: make(chan struct{}, 1)}
	opts.Clock = tk.clk
	opts.onTick = func() {
		select {
		case tk.done <- struct{}{}:
		default:
		}
	}
	return tk
}

// tick moves the clock n FlushIntervals on, one at a time, each time
// waiting until the writer has done the tick it fired.
func (tk *ticks) tick(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-tk.done: // of a tick nobody waited for
		default:
		}
		tk.clk.Advance(tk.every)
		select {
		case <-tk.done:
		case <-time.After(5 * time.Second):
			t.Fatal("the writer did not tick")
		}
	}
}

// until ticks until cond holds, at most 500 times.
func (tk *ticks) until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		tk.tick(t, 1)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// row returns a row with every column set.
func row(i int, endpoint, model string, ts time.Time) Row {
	return Row{
		RequestID:     fmt.Sprintf("req-%06d", i),
		Timestamp:     ts,
		Endpoint:      endpoint,
		Variant:       "champion",
		IsShadow:      i%2 == 1,
		ModelName:     model,
		ModelVersion:  int64(i%3 + 1),
		ModelUUID:     "0b9c5e4e-5a9f-4d6c-9d43-1f0f2d1e8a10",
		StatusCode:    200,
		LatencyUS:     int64(1000 + i),
		Entities:      fmt.Sprintf(`{"user_id":"u%d"}`, i%10),
		Features:      fmt.Sprintf(`{"user:age":%d,"user:country":"FR"}`, 20+i%50),
		FeatureStatus: `{"user:age":"ok","user:country":"default"}`,
		Request:       fmt.Sprintf(`{"entities":{"user_id":"u%d"}}`, i%10),
		Response:      `{"score":0.73}`,
	}
}

// open opens a Writer on a new directory (or opts.Dir) and closes it at the
// end of the test.
func open(t testing.TB, opts Options) *Writer {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func flush(t testing.TB, w *Writer) {
	t.Helper()
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func closeWriter(t testing.TB, w *Writer) {
	t.Helper()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// readAll returns the rows of the inference table in dir.
func readAll(t testing.TB, dir string, f Filter) []Row {
	t.Helper()
	var rows []Row
	if err := Dir(dir).ReadRows(t.Context(), f, func(r Row) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

// pause blocks the writer goroutine until the returned function is called
// or the writer is abandoned.
func pause(t testing.TB, w *Writer) (resume func()) {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	go w.call(context.Background(), func() (int64, error) {
		close(started)
		select {
		case <-release:
		case <-w.kill:
		}
		return 0, nil
	})
	<-started
	return func() { close(release) }
}

// settle waits until the writer goroutine has taken every queued row into
// its file: the queue is empty, and a call after that has run on it.
func settle(t testing.TB, w *Writer) {
	t.Helper()
	eventually(t, "the queue to empty", func() bool { return w.QueueLen() == 0 })
	if _, err := w.call(context.Background(), func() (int64, error) { return 0, nil }); err != nil {
		t.Fatal(err)
	}
}

// eventually fails the test unless cond holds within 5s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// filesNamed returns the paths under dir whose names match.
func filesNamed(t testing.TB, dir string, match func(string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && match(d.Name()) {
			out = append(out, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func countRows(t testing.TB, dir string) int64 {
	t.Helper()
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if f.Table == TableInference {
			n += f.Rows
		}
	}
	return n
}

// bookkeeping reports whether name is one of the files a table keeps
// besides its data: the deletions file and lock, a writer's owner lock.
func bookkeeping(name string) bool { return name == deletesFile || strings.HasSuffix(name, ".lock") }

// holdDeletes takes the table's lock in dir exclusively, as a delete does;
// the test releases it by unlocking the file it returns, which it closes
// at cleanup.
func holdDeletes(t testing.TB, dir string) *os.File {
	t.Helper()
	lock, err := openDeletes(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := flock(lock, syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return lock
}
