package tables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/testservers"
)

// TestUnknownModelRows checks that rows no model version served, whatever
// model name they asked for, go to the date partition like any other, with
// the name asked for in their column, so that a 250-character name (longer
// than a file name may be) or one holding a path costs nothing.
func TestUnknownModelRows(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir})
	names := []string{strings.Repeat("x", 250), "../../etc", "invented", ".hidden"}
	for i, name := range names {
		w.Write(Row{RequestID: fmt.Sprint(i), Timestamp: t0, ModelName: name, StatusCode: 404})
	}
	closeWriter(t, w)
	if st := w.Stats(); st.Written != int64(len(names)) || st.Failed != 0 || st.Errors != 0 || st.Quarantined != 0 {
		t.Errorf("stats %+v, want %d written and no failure", st, len(names))
	}
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Date != "2025-03-14" {
		t.Fatalf("files %+v, want one in date=2025-03-14", files)
	}
	ents, _ := os.ReadDir(dir)
	var tops []string
	for _, e := range ents {
		tops = append(tops, e.Name())
	}
	if strings.Join(tops, " ") != "_deletes _owners _quarantine _spill _wal date=2025-03-14" && strings.Join(tops, " ") != "_deletes _owners _spill _wal date=2025-03-14" {
		t.Errorf("directories %v, want only date=2025-03-14 besides the writer's own", tops)
	}
	for _, name := range names {
		if got := readAll(t, dir, Filter{Model: name}); len(got) != 1 {
			t.Errorf("%d rows of model %.20q, want 1", len(got), name)
		}
	}
}

// writeSegment writes records by hand: the record of each row, or a raw
// payload framed as a record.
func writeSegment(t *testing.T, path string, recs ...any) {
	t.Helper()
	var b []byte
	for _, rec := range recs {
		switch rec := rec.(type) {
		case Row:
			b, _ = appendRecord(b, nil, &rec)
		case []byte:
			b = appendFrame(b, rec)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReplayQuarantines writes a log and a spill file by hand, each with a
// record that can never be written among good ones (a timestamp with no
// date partition, a payload that is no row), and checks that Open replays
// the good rows, moves the two bad records to the quarantine, counts them,
// and deletes the segments; a second Open finds nothing left to do.
func TestReplayQuarantines(t *testing.T) {
	dir := t.TempDir()
	far := row(90, "", "fraud", time.Date(10000, 1, 2, 0, 0, 0, 0, time.UTC))
	notARow := []byte{0x03, 'a', 'b', 'c'}
	long := Row{RequestID: "long", Timestamp: t0, ModelName: strings.Repeat("x", 250), StatusCode: 404}
	writeSegment(t, segPath(filepath.Join(dir, walDir), 7, walExt), row(1, "churn", "m", t0), far, row(2, "", "fraud", t0), long)
	writeSegment(t, segPath(filepath.Join(dir, spillDir), 3, spillExt), notARow, row(3, "churn", "m", t0))

	var logs bytes.Buffer
	w := open(t, Options{Dir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	want := Stats{Written: 4, Recovered: 4, Quarantined: 2}
	if st := w.Stats(); st != want {
		t.Errorf("stats after Open %+v, want %+v", st, want)
	}
	if err := w.Healthy(); err != nil {
		t.Errorf("Healthy() = %v after quarantining", err)
	}
	if n := strings.Count(logs.String(), "quarantined"); n != 2 {
		t.Errorf("%d log lines about quarantined records, want 2:\n%s", n, logs.String())
	}
	closeWriter(t, w)
	if got := countRows(t, dir); got != 4 {
		t.Errorf("%d rows, want 4", got)
	}
	var kept []string
	var badPayload []byte
	for _, path := range filesNamed(t, filepath.Join(dir, quarantineDir), func(string) bool { return true }) {
		_, err := readLog(path, func(r Row) { kept = append(kept, r.RequestID) }, func(p []byte) { badPayload = bytes.Clone(p) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(kept, " ") != far.RequestID || !bytes.Equal(badPayload, notARow) {
		t.Errorf("quarantine holds rows %v and payload %q; want %s and %q", kept, badPayload, far.RequestID, notARow)
	}
	if left := filesNamed(t, filepath.Join(dir, walDir), func(string) bool { return true }); len(left) != 0 {
		t.Errorf("log segments left: %v", left)
	}
	w2 := open(t, Options{Dir: dir})
	if st := w2.Stats(); st != (Stats{}) {
		t.Errorf("stats of a second Open %+v, want none", st)
	}
}

// TestLogRecoversFromIOError makes the table's directory immutable under
// load, as `chattr -R +i` does, then writable again, then crashes the
// writer (no Close), and counts the rows after a new Open. The rows taken
// after the fault cleared and a FlushInterval passed are all there; the
// error was logged, counted and reported by Healthy meanwhile. Before, the
// log kept its first error: every row after it was lost to the crash.
func TestLogRecoversFromIOError(t *testing.T) {
	testservers.RequireImmutable(t)
	dir := t.TempDir()
	var logs bytes.Buffer
	opts := Options{Dir: dir, MaxFileAge: time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	tk := fakeClock(&opts)
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	write := func(phase string, n int) {
		for i := range n {
			r := row(i, "churn", "churn-xgb", t0)
			r.RequestID = fmt.Sprintf("%s-%06d", phase, i)
			w.Write(r)
		}
		eventually(t, "the queue to empty", func() bool { return w.QueueLen() == 0 })
	}
	write("before", 1000)
	tk.tick(t, 1)

	testservers.Immutable(t, dir, true)
	write("during", 1000)
	tk.until(t, "Healthy to report the fault", func() bool { return w.Healthy() != nil })
	if err := w.Healthy(); !errors.Is(err, syscall.EPERM) {
		t.Errorf("Healthy() = %v, want EPERM", err)
	}
	tk.tick(t, 5) // the fault lasts, the log tries again at each tick
	testservers.Immutable(t, dir, false)
	tk.until(t, "Healthy to clear", func() bool { return w.Healthy() == nil })

	const after = 5000
	write("after", after)
	tk.tick(t, 1) // the log is fsync'd
	st := w.Stats()
	w.abandon()
	if st.Errors < 2 || st.Failed != 0 {
		t.Errorf("stats before the crash %+v: want errors counted, none failed", st)
	}
	for _, want := range []string{"level=ERROR msg=\"inference table: I/O error", "operation not permitted", "level=INFO msg=\"inference table: durable again\""} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}

	w2 := open(t, Options{Dir: dir})
	closeWriter(t, w2)
	got := map[string]int{}
	for _, r := range readAll(t, dir, Filter{}) {
		phase, _, _ := strings.Cut(r.RequestID, "-")
		got[phase]++
	}
	t.Logf("rows after the crash: %v (of 1000 before, 1000 during the fault, %d after)", got, after)
	if got["after"] != after || got["before"] != 1000 {
		t.Errorf("rows after the crash %v; want all %d taken after the fault and all 1000 before it", got, after)
	}
}

// readSegments returns the request ids of the records in the segments of
// dir with extension ext, in order.
func readSegments(t *testing.T, dir, ext string) []string {
	t.Helper()
	seqs, err := segments(dir, ext)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, seq := range seqs {
		if _, err := readLog(segPath(dir, seq, ext), func(r Row) { ids = append(ids, r.RequestID) }, nil); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// TestWALWritesAgain checks the log's side of an I/O fault: a failed fsync
// leaves the records in memory; they are written again, whole, to a new
// segment once the disk takes them; past the buffer limit the oldest are
// given up and counted.
func TestWALWritesAgain(t *testing.T) {
	testservers.RequireImmutable(t)
	dir := t.TempDir()
	l := newWAL(dir, 1)
	one := row(0, "churn", "m", t0)
	rec, _ := appendRecord(nil, nil, &one)
	l.limit = 10 * len(rec)
	appendRows := func(from, n int) (dropped int64) {
		for i := from; i < from+n; i++ {
			r := row(i, "churn", "m", t0)
			d, err := l.append(&r)
			if err != nil {
				t.Fatalf("append: %v", err) // a few small records: only sync writes
			}
			dropped += d
		}
		return dropped
	}
	appendRows(0, 3)
	if err := l.sync(); err != nil {
		t.Fatal(err)
	}
	testservers.Immutable(t, dir, true)
	appendRows(3, 3)
	if err := l.sync(); !errors.Is(err, syscall.EPERM) || !l.failed || l.durable() {
		t.Fatalf("sync on an immutable directory = %v (failed %v, durable %v), want EPERM", err, l.failed, l.durable())
	}
	next := 6
	for ; next < 20; next++ {
		if d := appendRows(next, 1); d != 0 {
			if want := int64(next + 1 - 3); d != want {
				t.Fatalf("%d records given up at the limit, want the %d waiting", d, want)
			}
			break
		}
	}
	if next == 20 {
		t.Fatal("no record given up past the limit")
	}
	appendRows(100, 2)
	testservers.Immutable(t, dir, false)
	if err := l.sync(); err != nil || l.failed || !l.durable() {
		t.Fatalf("sync once writable = %v (failed %v, durable %v)", err, l.failed, l.durable())
	}
	l.abandon()
	got := strings.Join(readSegments(t, dir, walExt), " ")
	want := "req-000000 req-000001 req-000002 req-000100 req-000101"
	if got != want {
		t.Errorf("log holds %s, want %s", got, want)
	}
	if len(l.closed) != 1 || l.seq != 2 {
		t.Errorf("segments closed %v, current %d; want [1] and 2", l.closed, l.seq)
	}
}

// logged returns the request ids of the records a read of the log finds
// (see Writer.ReadRows): those of the segments from 1 on, as far as
// wal.from says, then the unwritten ones.
func logged(t *testing.T, l *wal) string {
	t.Helper()
	var ids []string
	add := func(r Row) error { ids = append(ids, r.RequestID); return nil }
	for _, s := range l.from(1) {
		if err := (heldSegment{s, segPath(l.dir, s.seq, walExt)}).read(add); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := readRecords(bufio.NewReader(bytes.NewReader(l.unwritten())), add, nil); err != nil {
		t.Fatal(err)
	}
	return strings.Join(ids, " ")
}

// TestWALFromAfterError checks what a read of the log finds when a write
// fails after the log wrote records that no fsync covered: the segment
// holds them, the log keeps them to write again, and the read finds them
// once, before and after they are written again.
func TestWALFromAfterError(t *testing.T) {
	testservers.RequireImmutable(t)
	dir := t.TempDir()
	l := newWAL(dir, 1)
	var want []string
	appendRow := func(i int) {
		r := row(i, "churn", "m", t0)
		want = append(want, r.RequestID)
		l.append(&r) // its error is the one l.failed shows
	}
	appendRow(0)
	if err := l.sync(); err != nil {
		t.Fatal(err)
	}
	i := 1
	for ; l.written == 0; i++ { // until the log writes without an fsync
		appendRow(i)
	}
	testservers.Immutable(t, dir, true)
	for ; !l.failed; i++ {
		appendRow(i)
	}
	if got := logged(t, l); got != strings.Join(want, " ") {
		t.Errorf("after a failed write the log reads\n %.200s...,\nwant\n %.200s...", got, strings.Join(want, " "))
	}
	testservers.Immutable(t, dir, false)
	if err := l.sync(); err != nil {
		t.Fatal(err)
	}
	if got := logged(t, l); got != strings.Join(want, " ") {
		t.Errorf("once written again the log reads\n %.200s...,\nwant\n %.200s...", got, strings.Join(want, " "))
	}
}

// TestSpillAfterError checks that a spill segment a write failed on is
// closed, so that no later record follows a torn one, and is still taken.
func TestSpillAfterError(t *testing.T) {
	testservers.RequireImmutable(t)
	dir := t.TempDir()
	s := recordFile{dir: dir, ext: spillExt, seq: 1}
	for i := range 2 {
		r := row(i, "churn", "m", t0)
		if err := s.append(&r); err != nil {
			t.Fatal(err)
		}
	}
	testservers.Immutable(t, dir, true)
	r := row(2, "churn", "m", t0)
	if err := s.append(&r); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("append on an immutable segment = %v, want EPERM", err)
	}
	testservers.Immutable(t, dir, false)
	r = row(3, "churn", "m", t0)
	if err := s.append(&r); err != nil {
		t.Fatal(err)
	}
	paths, err := s.take()
	if err != nil || len(paths) != 2 {
		t.Fatalf("take = %v, %v; want the segment that failed and the next", paths, err)
	}
	if got := strings.Join(readSegments(t, dir, spillExt), " "); got != "req-000000 req-000001 req-000003" {
		t.Errorf("spill holds %s", got)
	}
}

// TestUnloggedRowsKeepDegraded checks that when the log gives up records
// during a long fault, Healthy keeps reporting it after the disk is back,
// until the files holding those rows are renamed.
func TestUnloggedRowsKeepDegraded(t *testing.T) {
	testservers.RequireImmutable(t)
	dir := t.TempDir()
	opts := Options{Dir: dir, MaxFileAge: 5 * time.Minute, Log: slog.New(slog.DiscardHandler)}
	tk := fakeClock(&opts)
	w := open(t, opts)
	w.Write(row(0, "churn", "m", t0))
	settle(t, w)
	if _, err := w.call(context.Background(), func() (int64, error) { w.wal.limit = 64 << 10; return 0, nil }); err != nil {
		t.Fatal(err)
	}
	testservers.Immutable(t, dir, true)
	tk.tick(t, 1)
	n := int64(1)
	for ; w.Stats().Unlogged == 0; n++ {
		if n > 10000 {
			t.Fatal("the log gave up no record past its limit")
		}
		w.Write(row(int(n), "churn", "m", t0))
		if n%100 == 0 {
			tk.tick(t, 1) // a sync fails: the records stay in memory
		}
	}
	testservers.Immutable(t, dir, false)
	tk.tick(t, 3)
	if err := w.Healthy(); err == nil {
		t.Error("Healthy() = nil while rows the log gave up are only in an open file")
	}
	// At most 104 seconds have passed: the tick once the file is 5 minutes
	// old renames it.
	tk.until(t, "Healthy to clear once the file is renamed", func() bool { return w.Healthy() == nil })
	closeWriter(t, w)
	if st := w.Stats(); st.Written != n || st.Failed != 0 || countRows(t, dir) != n {
		t.Errorf("stats %+v, %d rows in files; want all %d written", st, countRows(t, dir), n)
	}
}
