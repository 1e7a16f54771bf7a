package tables

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir})
	full := row(7, "churn", "churn-xgb", t0)
	full.Error = "feature store timeout"
	sparse := Row{RequestID: "req-sparse", Timestamp: t0.Add(time.Second), ModelName: "fraud", StatusCode: 500, LatencyUS: 12}
	w.Write(full)
	w.Write(sparse)
	closeWriter(t, w)

	got := readAll(t, dir, Filter{})
	if len(got) != 2 {
		t.Fatalf("read %d rows, want 2", len(got))
	}
	slices.SortFunc(got, func(a, b Row) int { return strings.Compare(a.RequestID, b.RequestID) })
	for i, want := range []Row{full, sparse} {
		want.Timestamp = want.Timestamp.Truncate(time.Microsecond)
		if !got[i].Timestamp.Equal(want.Timestamp) {
			t.Errorf("row %d: timestamp %v, want %v", i, got[i].Timestamp, want.Timestamp)
		}
		got[i].Timestamp = want.Timestamp
		if got[i] != want {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
}

func TestSchema(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir})
	w.Write(row(1, "churn", "churn-xgb", t0))
	closeWriter(t, w)
	files, err := List(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("List = %v, %v; want one file", files, err)
	}
	f, pf, err := openParquet(filepath.Join(dir, files[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	for _, c := range pf.Root().Columns() {
		names = append(names, c.Name())
	}
	want := []string{"request_id", "timestamp", "endpoint", "variant", "is_shadow", "model_name", "model_version",
		"model_uuid", "status_code", "latency_us", "entities", "features", "feature_status", "request", "response", "error"}
	if !slices.Equal(names, want) {
		t.Errorf("columns %v,\nwant %v", names, want)
	}
	ts := pf.Root().Column("timestamp").Type()
	lt, ok := ts.LogicalType().Value.(*format.TimestampType)
	if ts.Kind() != parquet.Int64 || !ok || !isMicros(lt.Unit.Value) || !lt.IsAdjustedToUTC {
		t.Errorf("timestamp is %s %v, want INT64 TIMESTAMP(MICROS, UTC)", ts.Kind(), ts.LogicalType())
	}
	for _, cc := range pf.Metadata().RowGroups[0].Columns {
		if cc.MetaData.Codec != format.Snappy {
			t.Errorf("column %v compressed with %v, want SNAPPY", cc.MetaData.PathInSchema, cc.MetaData.Codec)
		}
	}
}

func isMicros(u format.TimeUnitValue) bool {
	_, ok := u.(*format.MicroSeconds)
	return ok
}

// TestPartitions checks that rows are partitioned by the UTC date of their
// timestamp alone: the rows of every endpoint and model of a day share its
// files, and keep their endpoint and model in their columns.
func TestPartitions(t *testing.T) {
	day2 := t0.Add(24 * time.Hour)
	rows := []Row{
		row(1, "churn", "churn-xgb", t0),
		row(2, "churn", "churn-lr", t0),
		row(3, "churn", "churn-xgb", day2),
		row(4, "", "fraud", t0),
		row(5, "", "fraud", t0.In(time.FixedZone("UTC+10", 10*3600))), // same instant, same UTC date
		row(6, "a b/c", "m", t0),
	}
	dir := t.TempDir()
	w := open(t, Options{Dir: dir})
	for _, r := range rows {
		w.Write(r)
	}
	closeWriter(t, w)
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	type part struct {
		dir, date string
		rows      int64
	}
	var got []part
	for _, f := range files {
		if !isPart(filepath.Base(f.Path)) || f.Bytes <= 0 {
			t.Errorf("file %+v", f)
		}
		got = append(got, part{filepath.Dir(f.Path), f.Date, f.Rows})
	}
	want := []part{
		{"date=2025-03-14", "2025-03-14", 5},
		{"date=2025-03-15", "2025-03-15", 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("partitions\n got %v\nwant %v", got, want)
	}
	tests := []struct {
		f    Filter
		want int
	}{
		{Filter{Endpoint: "churn"}, 3},
		{Filter{Endpoint: "a b/c"}, 1},
		{Filter{Model: "fraud"}, 2},
		{Filter{Endpoint: "churn", From: day2}, 1},
		{Filter{To: day2}, 5},
	}
	for _, tt := range tests {
		if got := readAll(t, dir, tt.f); len(got) != tt.want {
			t.Errorf("filter %+v: %d rows, want %d", tt.f, len(got), tt.want)
		}
	}
}

func TestRollBySize(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, MaxFileBytes: 8 << 10})
	const n = 300
	for i := range n {
		w.Write(row(i, "churn", "churn-xgb", t0))
	}
	closeWriter(t, w)
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("%d files, want several of about 8 KiB", len(files))
	}
	var total int64
	for _, f := range files {
		total += f.Rows
		if f.Rows == 0 || f.Bytes > 16<<10 {
			t.Errorf("file %s: %d rows, %d bytes", f.Path, f.Rows, f.Bytes)
		}
	}
	if total != n {
		t.Errorf("%d rows in files, want %d", total, n)
	}
}

func TestRollByAge(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, MaxFileAge: time.Minute, FlushInterval: 40 * time.Second}
	tk := fakeClock(&opts)
	w := open(t, opts)
	for i := range 10 {
		w.Write(row(i, "churn", "churn-xgb", t0))
	}
	settle(t, w)
	tk.tick(t, 1)
	if n := countRows(t, dir); n != 0 {
		t.Fatalf("%d rows visible before the file is old enough", n)
	}
	// The ticker rolls a file that is old enough.
	tk.tick(t, 1)
	if n := countRows(t, dir); n != 10 {
		t.Fatalf("%d rows visible after the tick once the file is old enough, want 10", n)
	}

	// So does the next row. The file opens at 80s; the tick at 120s finds
	// it too young; the row at 150s rolls it, before the tick at 160s.
	for i := range 5 {
		w.Write(row(10+i, "churn", "churn-xgb", t0))
	}
	settle(t, w)
	tk.tick(t, 1)
	if n := countRows(t, dir); n != 10 {
		t.Fatalf("%d rows visible before the second file is old enough, want 10", n)
	}
	tk.clk.Advance(30 * time.Second)
	w.Write(row(15, "churn", "churn-xgb", t0))
	settle(t, w)
	if n := countRows(t, dir); n != 16 {
		t.Errorf("%d rows visible after a row came to a file old enough, want 16", n)
	}
	files, _ := List(dir)
	if len(files) != 2 {
		t.Errorf("%d files, want 2", len(files))
	}
}

func TestTempFilesHidden(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir})
	for i := range 20 {
		w.Write(row(i, "churn", "churn-xgb", t0))
	}
	eventually(t, "a temporary file", func() bool { return len(filesNamed(t, dir, isTemp)) == 1 })
	if files, err := List(dir); err != nil || len(files) != 0 {
		t.Errorf("List = %v, %v while the file is being written; want none", files, err)
	}
	if rows := readAll(t, dir, Filter{}); len(rows) != 0 {
		t.Errorf("ReadRows saw %d rows of a file being written", len(rows))
	}
	flush(t, w)
	if n := countRows(t, dir); n != 20 {
		t.Errorf("%d rows after Flush, want 20", n)
	}
	if tmp := filesNamed(t, dir, isTemp); len(tmp) != 0 {
		t.Errorf("temporary files after Flush: %v", tmp)
	}
}

func TestQueueFull(t *testing.T) {
	for _, spill := range []bool{true, false} {
		t.Run(fmt.Sprintf("spill=%v", spill), func(t *testing.T) {
			dir := t.TempDir()
			w := open(t, Options{Dir: dir, QueueSize: 5, Spill: spill, FlushInterval: 5 * time.Millisecond})
			resume := pause(t, w)
			for i := range 100 {
				w.Write(row(i, "churn", "churn-xgb", t0))
			}
			st := w.Stats()
			want := Stats{Dropped: 95}
			if spill {
				want = Stats{Spilled: 95}
			}
			if st != want {
				t.Errorf("stats with the writer paused: %+v, want %+v", st, want)
			}
			resume()
			if spill {
				// The writer takes the spill file without being asked.
				eventually(t, "the spill file to be taken", func() bool {
					return len(filesNamed(t, filepath.Join(dir, spillDir), func(string) bool { return true })) == 0
				})
			}
			closeWriter(t, w)
			wantRows := 5
			if spill {
				wantRows = 100
			}
			if rows := readAll(t, dir, Filter{}); len(rows) != wantRows {
				t.Errorf("%d rows in Parquet, want %d", len(rows), wantRows)
			}
			if st := w.Stats(); st.Written != int64(wantRows) {
				t.Errorf("Stats().Written = %d, want %d", st.Written, wantRows)
			}
		})
	}
}

func TestCloseWritesEverything(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, QueueSize: 50, Spill: true})
	const n = 2000
	for i := range n {
		w.Write(row(i, []string{"a", "b", ""}[i%3], []string{"m1", "m2"}[i%2], t0.Add(time.Duration(i)*time.Minute)))
	}
	closeWriter(t, w)
	st := w.Stats()
	if st.Written != n || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats %+v, want %d written", st, n)
	}
	if got := len(readAll(t, dir, Filter{})); got != n {
		t.Errorf("%d rows, want %d", got, n)
	}
	left := filesNamed(t, dir, func(name string) bool { return !isPart(name) && !bookkeeping(name) })
	if len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}

	w.Write(row(n, "a", "m1", t0))
	if st := w.Stats(); st.Dropped != 1 {
		t.Errorf("a Write after Close: Dropped = %d, want 1", st.Dropped)
	}
	if err := w.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

func TestCrashRecovery(t *testing.T) {
	tests := []struct {
		name    string
		spilled bool // the rows are in the spill file, not the log
		torn    bool // a torn line at the end of the log
	}{
		{name: "log"},
		{name: "spill", spilled: true},
		{name: "torn line", torn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, QueueSize: 10, Spill: true}
			tk := fakeClock(&opts)
			w, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			const n = 500
			// Rows in a renamed file before the crash stay there once.
			for i := range 50 {
				w.Write(row(i, "churn", "churn-xgb", t0))
			}
			flush(t, w)
			if tt.spilled {
				pause(t, w) // until the crash
			}
			for i := 50; i < n; i++ {
				w.Write(row(i, []string{"churn", ""}[i%2], "churn-xgb", t0))
				if !tt.spilled && i%5 == 0 {
					eventually(t, "the queue to empty", func() bool { return len(w.q) == 0 })
				}
			}
			if !tt.spilled {
				eventually(t, "the queue to empty", func() bool { return len(w.q) == 0 })
				tk.tick(t, 1) // the log is written and fsync'd
			}
			queued := int64(len(w.q)) // lost in the crash
			w.abandon()
			if len(filesNamed(t, dir, isTemp)) == 0 && !tt.spilled {
				t.Error("no temporary file left by the crash")
			}
			if got := countRows(t, dir); got != 50 {
				t.Fatalf("%d rows visible after the crash, want 50", got)
			}
			if tt.torn {
				segs, _ := segments(filepath.Join(dir, walDir), walExt)
				f, err := os.OpenFile(segPath(filepath.Join(dir, walDir), segs[len(segs)-1], walExt), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				r := row(n, "churn", "churn-xgb", t0)
				rec, _ := appendRecord(nil, nil, &r)
				f.Write(rec[:len(rec)-3])
				f.Close()
			}

			w2 := open(t, opts)
			st := w2.Stats()
			want := Stats{Written: n - 50 - queued, Recovered: n - 50 - queued}
			if tt.torn {
				want.Skipped = 1
			}
			if st != want {
				t.Errorf("stats after recovery %+v, want %+v", st, want)
			}
			rows := readAll(t, dir, Filter{})
			ids := map[string]int{}
			for _, r := range rows {
				ids[r.RequestID]++
			}
			if int64(len(rows)) != n-queued || int64(len(ids)) != n-queued {
				t.Errorf("%d rows, %d distinct after recovery; want %d", len(rows), len(ids), n-queued)
			}
			if left := filesNamed(t, dir, func(name string) bool { return !isPart(name) && !bookkeeping(name) }); len(left) != 0 {
				t.Errorf("left behind after recovery: %v", left)
			}
		})
	}
}

func TestConcurrentWrite(t *testing.T) {
	dir := t.TempDir()
	w := open(t, Options{Dir: dir, QueueSize: 64, Spill: true, MaxFileBytes: 64 << 10, FlushInterval: time.Millisecond})
	const writers, each = 16, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				w.Write(row(g*each+i, fmt.Sprintf("e%d", g%4), "m", t0))
				if i%100 == 0 {
					w.Stats()
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := w.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	closeWriter(t, w)
	if st := w.Stats(); st.Written != writers*each || st.Dropped != 0 {
		t.Errorf("stats %+v, want %d written", st, writers*each)
	}
	if got := len(readAll(t, dir, Filter{})); got != writers*each {
		t.Errorf("%d rows, want %d", got, writers*each)
	}
}

func TestOpenInvalid(t *testing.T) {
	for _, opts := range []Options{
		{},
		{Dir: t.TempDir(), MaxFileBytes: -1},
		{Dir: t.TempDir(), QueueSize: -1},
		{Dir: t.TempDir(), FlushInterval: -time.Second},
	} {
		if _, err := Open(opts); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%+v) = %v, want ErrInvalid", opts, err)
		}
	}
}
