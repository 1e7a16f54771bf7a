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
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/errkind"
)

var replicas = []string{"r1", "r2", "r3"}

// openFleet opens a Writer of each replica on dir, each with opts.
func openFleet(t *testing.T, dir string, opts Options) []*Writer {
	t.Helper()
	ws := make([]*Writer, len(replicas))
	for i, id := range replicas {
		o := opts
		o.Dir, o.Replica = dir, id
		ws[i] = open(t, o)
	}
	return ws
}

// fleetRow returns the i-th row of a replica: request id <replica>-<i>,
// entity u<i%10>.
func fleetRow(replica string, i int, ts time.Time) Row {
	r := row(i, fmt.Sprintf("e%d", i%3), "m", ts)
	r.RequestID = fmt.Sprintf("%s-%06d", replica, i)
	return r
}

// idCounts returns how many times each request id is in the table.
func idCounts(t *testing.T, dir string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, r := range readAll(t, dir, Filter{}) {
		ids[r.RequestID]++
	}
	return ids
}

// TestFleetWrite has three replicas write one directory at once: the table
// holds every row once, each file carries the replica id of its writer, and
// each writer's log, spill and quarantine are in its own directory.
func TestFleetWrite(t *testing.T) {
	dir := t.TempDir()
	ws := openFleet(t, dir, Options{QueueSize: 64, Spill: true, MaxFileBytes: 32 << 10, MaxFileAge: 20 * time.Millisecond, FlushInterval: time.Millisecond})
	const each = 2000
	var wg sync.WaitGroup
	for k, w := range ws {
		for g := range 2 {
			wg.Go(func() {
				for i := g; i < each; i += 2 {
					w.Write(fleetRow(replicas[k], i, time.Time{}))
				}
			})
		}
	}
	wg.Wait()
	if err := ws[1].AppendLabels([]Label{{RequestID: "r2-000001", Label: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		closeWriter(t, w)
		if st := w.Stats(); st.Written != each || st.Dropped != 0 || st.Errors != 0 {
			t.Errorf("stats %+v, want %d written", st, each)
		}
	}
	ids := idCounts(t, dir)
	if len(ids) != each*len(ws) {
		t.Errorf("%d distinct rows, want %d", len(ids), each*len(ws))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("row %s read %d times", id, n)
		}
	}
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	byReplica := map[string]int{}
	for _, f := range files {
		if !slices.Contains(replicas, f.Replica) {
			t.Errorf("file %s carries no replica id", f.Path)
		}
		if f.Table == TableLabels {
			if f.Replica != "r2" || f.Rows != 1 {
				t.Errorf("label file %+v, want r2's with its one label", f)
			}
			continue
		}
		byReplica[f.Replica] += int(f.Rows)
	}
	for _, id := range replicas {
		if byReplica[id] != each {
			t.Errorf("files of %s hold %d rows, want %d", id, byReplica[id], each)
		}
		for _, d := range []string{walDir, spillDir} {
			if _, err := os.Stat(filepath.Join(dir, d, id)); err != nil {
				t.Errorf("no %s directory of %s: %v", d, id, err)
			}
		}
	}
}

// TestFleetClose closes the replicas one by one: each Close writes its own
// rows, and leaves the others' open files and logs alone.
func TestFleetClose(t *testing.T) {
	dir := t.TempDir()
	ws := openFleet(t, dir, Options{MaxFileAge: time.Hour, FlushInterval: time.Hour})
	const each = 100
	for k, w := range ws {
		for i := range each {
			w.Write(fleetRow(replicas[k], i, t0))
		}
		settle(t, w)
	}
	for k, w := range ws {
		closeWriter(t, w)
		ids := idCounts(t, dir)
		if len(ids) != each*(k+1) {
			t.Errorf("after closing %s: %d rows, want %d", replicas[k], len(ids), each*(k+1))
		}
		for _, id := range replicas[k+1:] {
			if tmp := filesNamed(t, dir, func(name string) bool { r, ok := tempReplica(name); return ok && r == id }); len(tmp) == 0 {
				t.Errorf("after closing %s: the open files of %s are gone", replicas[k], id)
			}
		}
	}
}

// TestFleetCrash crashes one replica while another holds rows in its open
// files and log: the crashed one, opened again, replays its own log only,
// leaving the other's files alone; both rows end in the table once.
func TestFleetCrash(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, Replica: "r1", MaxFileAge: time.Hour}
	tk := fakeClock(&opts)
	w1 := open(t, opts)
	w2 := open(t, Options{Dir: dir, Replica: "r2", MaxFileAge: time.Hour, FlushInterval: time.Hour})
	const n = 200
	for i := range n {
		w1.Write(fleetRow("r1", i, t0))
		w2.Write(fleetRow("r2", i, t0))
		if i == n/2 {
			flush(t, w1)
		}
	}
	settle(t, w1)
	settle(t, w2)
	tk.tick(t, 1) // r1's log is fsync'd
	temps2 := filesNamed(t, dir, func(name string) bool { r, ok := tempReplica(name); return ok && r == "r2" })
	log2 := filesNamed(t, filepath.Join(dir, walDir, "r2"), func(string) bool { return true })
	w1.abandon()

	if _, err := Open(Options{Dir: dir, Replica: "r2"}); !errors.Is(err, errkind.Conflict) {
		t.Errorf("a second writer of r2 = %v, want a Conflict error", err)
	}
	w1 = open(t, Options{Dir: dir, Replica: "r1"})
	if st := w1.Stats(); st.Recovered != n-n/2-1 || st.Written != st.Recovered {
		t.Errorf("stats of r1 after the crash %+v, want %d recovered and written", st, n-n/2-1)
	}
	for _, path := range append(temps2, log2...) {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("r1's Open touched r2's file: %v", err)
		}
	}
	ids := idCounts(t, dir)
	if len(ids) != n {
		t.Errorf("%d rows before r2 closes, want r1's %d", len(ids), n)
	}
	closeWriter(t, w2)
	ids = idCounts(t, dir)
	if len(ids) != 2*n {
		t.Errorf("%d rows, want %d", len(ids), 2*n)
	}
	for id, k := range ids {
		if k != 1 {
			t.Errorf("row %s read %d times", id, k)
		}
	}
}

// TestFleetDeleteEntity deletes entities while the three replicas keep
// writing: every row of a deleted entity made before the delete is gone,
// those in a writer's open file or log at the time included, those made
// after it returned are kept, and no other row is lost.
func TestFleetDeleteEntity(t *testing.T) {
	tests := []struct {
		name    string
		deletes map[int]string // the replica (index) deleting, and the entity; -1: DeleteEntity(dir, ...)
		crash   int            // a replica (index) crashed before the deletes and opened after; -1 for none
	}{
		{name: "one delete", deletes: map[int]string{-1: "u3"}, crash: -1},
		{name: "through a writer", deletes: map[int]string{1: "u3"}, crash: -1},
		{name: "two at once", deletes: map[int]string{0: "u1", 1: "u2"}, crash: -1},
		{name: "a crashed writer's log", deletes: map[int]string{0: "u3"}, crash: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{QueueSize: 256, Spill: true, MaxFileBytes: 64 << 10, MaxFileAge: time.Hour, FlushInterval: time.Millisecond}
			ws := openFleet(t, dir, opts)
			var (
				mu      sync.Mutex
				written []Row
				seq     [3]int
			)
			write := func(k, n int) {
				for range n {
					mu.Lock()
					r := fleetRow(replicas[k], seq[k], time.Now())
					seq[k]++
					written = append(written, r)
					mu.Unlock()
					ws[k].Write(r)
				}
			}
			// Rows in files, and rows held by each writer when the deletes start.
			for k, w := range ws {
				write(k, 300)
				flush(t, w)
			}
			for k, w := range ws {
				write(k, 200)
				settle(t, w)
			}
			if tt.crash >= 0 {
				ws[tt.crash].abandon()
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for k := range ws {
				if k == tt.crash {
					continue
				}
				wg.Go(func() {
					for range 300 {
						select {
						case <-stop:
							return
						default:
							write(k, 10)
						}
					}
				})
			}
			start := time.Now()
			var dwg sync.WaitGroup
			for k, entity := range tt.deletes {
				dwg.Go(func() {
					var err error
					if k < 0 {
						_, err = DeleteEntity(dir, "user_id", entity)
					} else {
						_, err = ws[k].DeleteEntity(t.Context(), "user_id", entity)
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			dwg.Wait()
			end := time.Now()
			write(0, 100) // after the deletes: kept
			close(stop)
			wg.Wait()
			if tt.crash >= 0 {
				o := opts
				o.Dir, o.Replica = dir, replicas[tt.crash]
				ws[tt.crash] = open(t, o)
			}
			var deleted int64
			for _, w := range ws {
				closeWriter(t, w)
				deleted += w.Stats().Deleted
			}
			if deleted == 0 {
				t.Error("no writer dropped a row it held")
			}

			ids := idCounts(t, dir)
			gone := map[string]bool{}
			for _, e := range tt.deletes {
				gone[e] = true
			}
			for _, r := range written {
				entity := strings.TrimSuffix(strings.TrimPrefix(r.Entities, `{"user_id":"`), `"}`)
				switch n := ids[r.RequestID]; {
				case n > 1:
					t.Errorf("row %s read %d times", r.RequestID, n)
				case gone[entity] && r.Timestamp.Before(start) && n != 0:
					t.Errorf("row %s of deleted %s, made before the delete, is in the table", r.RequestID, entity)
				case (!gone[entity] || r.Timestamp.After(end)) && n != 1:
					t.Errorf("row %s of %s is lost", r.RequestID, entity)
				}
			}
		})
	}
}

// TestDeleteWaitsForWriters holds the table's lock as a delete does: a
// writer keeps its due file open (and its rows) until the lock is free,
// and a file it completes then holds no row the delete took out.
func TestDeleteWaitsForWriters(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, Replica: "r1", MaxFileAge: time.Minute}
	tk := fakeClock(&opts)
	w := open(t, opts)
	for i := range 20 {
		w.Write(row(i, "churn", "m", t0)) // u0 ... u9
	}
	settle(t, w)

	lock := holdDeletes(t, dir)
	if err := addTombstone(lock, tombstone{column: "user_id", value: "u3", before: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	tk.tick(t, 61) // the file is due
	if n := countRows(t, dir); n != 0 {
		t.Errorf("%d rows in files while a delete holds the lock, want 0", n)
	}
	if ids := readHeld(t, w, Filter{}); len(ids) != 18 {
		t.Errorf("Writer.ReadRows reads %d rows, want the 18 not deleted", len(ids))
	}
	if err := flock(lock, syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	tk.until(t, "the file to complete", func() bool { return countRows(t, dir) > 0 })
	if n := countRows(t, dir); n != 18 {
		t.Errorf("%d rows, want the 18 not deleted", n)
	}
	if st := w.Stats(); st.Deleted != 2 || st.Written != 18 {
		t.Errorf("stats %+v, want 2 deleted and 18 written", st)
	}
	if tmp := filesNamed(t, dir, isTemp); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	// Rows the writer takes after it read the tombstone are dropped at once;
	// later ones are kept.
	w.Write(row(3, "churn", "m", t0))
	w.Write(row(3, "churn", "m", t0.Add(time.Hour)))
	closeWriter(t, w)
	if st := w.Stats(); st.Deleted != 3 || st.Written != 19 {
		t.Errorf("stats %+v, want 3 deleted and 19 written", st)
	}
}

func TestReplicaID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"", true},
		{"r1", true},
		{"mlgate-7d9f8c6b5-x2k4q", true},
		{"node_1.eu", true},
		{"7", true},
		{strings.Repeat("a", maxReplica), true},
		{strings.Repeat("a", maxReplica+1), false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"-a", false},
		{"_a", false},
		{".hidden", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			w, err := Open(Options{Dir: t.TempDir(), Replica: tt.id})
			if tt.ok {
				if err != nil {
					t.Fatalf("Open = %v, want it open", err)
				}
				closeWriter(t, w)
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "replica id") || !strings.Contains(err.Error(), "inference_tables") {
				t.Errorf("Open = %v, want an ErrInvalid error naming inference_tables' replica id", err)
			}
		})
	}
}

func TestPartNames(t *testing.T) {
	now := time.Unix(1741944413, 589793000)
	for _, replica := range []string{"", "r1", "7", "a-1-2", "x.y_z"} {
		name := partName(replica, now, 42)
		moved := strings.TrimSuffix(name, ".parquet") + "~12.parquet" // see migrate
		for _, name := range []string{name, moved} {
			if got, ok := partReplica(name); !ok || got != replica {
				t.Errorf("partReplica(%q) = %q, %v; want %q", name, got, ok, replica)
			}
		}
		for _, tmp := range []string{tempOf(name), "." + name + ".filter.tmp"} {
			if got, ok := tempReplica(tmp); !ok || got != replica {
				t.Errorf("tempReplica(%q) = %q, %v; want %q", tmp, got, ok, replica)
			}
		}
		if _, ok := tempReplica(".del-" + name + ".tmp"); ok {
			t.Errorf("a delete's temporary file of %s is taken for a writer's", name)
		}
	}
	for _, name := range []string{"part-.parquet", "part-1.parquet", "part-a-b.parquet", "part--1-2.parquet", "part-1-2.txt", "x-1-2.parquet", "part-r1-1-.parquet", "part-1-2~.parquet", "part-1-2~x.parquet", "part-~1.parquet"} {
		if id, ok := partReplica(name); ok {
			t.Errorf("partReplica(%q) = %q, want no data file name", name, id)
		}
	}
}

// TestOwnTempsOnly opens a replica next to another's temporary files, a
// delete's, and those of a table written without replica ids: it removes
// only its own.
func TestOwnTempsOnly(t *testing.T) {
	dir := t.TempDir()
	part := filepath.Join(dir, "date=2025-03-14")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1741944413, 0)
	mine, theirs := tempOf(partName("r1", now, 1)), []string{
		tempOf(partName("r2", now, 1)),
		tempOf(partName("", now, 1)),
		".del-" + partName("r2", now, 2) + ".tmp",
	}
	for _, name := range append([]string{mine, "." + partName("r1", now, 3) + ".filter.tmp"}, theirs...) {
		if err := os.WriteFile(filepath.Join(part, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	closeWriter(t, open(t, Options{Dir: dir, Replica: "r1"}))
	var left []string
	for _, path := range filesNamed(t, dir, isTemp) {
		left = append(left, filepath.Base(path))
	}
	slices.Sort(left)
	slices.Sort(theirs)
	if !slices.Equal(left, theirs) {
		t.Errorf("temporary files left %v, want %v", left, theirs)
	}
}

// TestCommitFiltered deletes an entity from outside while a writer holds its
// rows in an open file: the file it completes holds the others only, or is
// not written if none is left.
func TestCommitFiltered(t *testing.T) {
	for _, tt := range []struct {
		name     string
		entities []string
		want     int
	}{
		{"some", []string{"u1", "u3", "u3", "u2"}, 2},
		{"all", []string{"u3", "u3"}, 0},
		{"none", []string{"u1", "u2"}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := open(t, Options{Dir: dir, Replica: "r1", MaxFileAge: time.Hour, FlushInterval: time.Hour})
			for i, e := range tt.entities {
				r := row(i, "churn", "m", t0)
				r.Entities = fmt.Sprintf(`{"user_id":%q}`, e)
				w.Write(r)
			}
			settle(t, w)
			if _, err := deleteEntity(dir, "user_id", "u3", t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			flush(t, w)
			if n := countRows(t, dir); n != int64(tt.want) {
				t.Errorf("%d rows, want %d", n, tt.want)
			}
			files, _ := List(dir)
			if want := min(tt.want, 1); len(files) != want {
				t.Errorf("%d files, want %d", len(files), want)
			}
			if st := w.Stats(); st.Deleted != int64(len(tt.entities)-tt.want) {
				t.Errorf("stats %+v, want %d deleted", st, len(tt.entities)-tt.want)
			}
			if tmp := filesNamed(t, dir, isTemp); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestWriterDeleteEntityOthers deletes through one replica the rows another
// holds: they are gone from its reads at once and never reach a file.
func TestWriterDeleteEntityOthers(t *testing.T) {
	dir := t.TempDir()
	ws := openFleet(t, dir, Options{MaxFileAge: time.Hour, FlushInterval: time.Hour})
	for i := range 20 {
		ws[1].Write(fleetRow("r2", i, t0)) // u0 ... u9
	}
	settle(t, ws[1])
	n, err := ws[0].DeleteEntity(context.Background(), "user_id", "u4")
	if err != nil || n != 0 {
		t.Fatalf("DeleteEntity = %d, %v; want 0 rows in files", n, err)
	}
	if ids := readHeld(t, ws[1], Filter{}); len(ids) != 18 {
		t.Errorf("r2 reads %d rows, want 18", len(ids))
	}
	closeWriter(t, ws[1])
	if n := countRows(t, dir); n != 18 {
		t.Errorf("%d rows, want 18", n)
	}
}

// TestRecheckRecentFiles adds a tombstone without rewriting the files, as
// a delete on NFS does that lists a directory as its client cached it: the
// writer takes the rows out of the files it renamed lately, not older ones.
func TestRecheckRecentFiles(t *testing.T) {
	tests := []struct {
		name string
		age  time.Duration // of the file when the tombstone comes
		want int64
	}{
		{"recent", time.Minute, 18},
		{"old", recentFor + 2*time.Minute, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, Replica: "r1", FlushInterval: time.Minute, MaxFileAge: time.Hour}
			tk := fakeClock(&opts)
			w := open(t, opts)
			for i := range 20 {
				w.Write(row(i, "churn", "m", t0)) // u0 ... u9
			}
			flush(t, w)
			tk.tick(t, int(tt.age/time.Minute))
			f, err := openDeletes(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := addTombstone(f, tombstone{column: "user_id", value: "u3", before: t0.Add(time.Second)}); err != nil {
				t.Fatal(err)
			}
			tk.tick(t, 2)
			if n := countRows(t, dir); n != tt.want {
				t.Errorf("%d rows, want %d", n, tt.want)
			}
			if st := w.Stats(); st.Deleted != 20-tt.want {
				t.Errorf("stats %+v, want %d deleted", st, 20-tt.want)
			}
			if tmp := filesNamed(t, dir, isTemp); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestAdopt has a replica crash with rows in its log and spill files, and
// never come back under its id: another replica writes them, at its Open
// or within a minute, unless the first one is running.
func TestAdopt(t *testing.T) {
	tests := []struct {
		name    string
		other   string // the replica that crashes
		running bool   // it does not crash after all
		atOpen  bool   // the adopter opens after the crash
	}{
		{name: "crashed, at a tick", other: "r1"},
		{name: "crashed, at Open", other: "r1", atOpen: true},
		{name: "running", other: "r1", running: true},
		{name: "a writer without id", other: "", atOpen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			oopts := Options{Dir: dir, Replica: tt.other, QueueSize: 10, Spill: true, MaxFileAge: time.Hour}
			otk := fakeClock(&oopts)
			o := open(t, oopts)
			for i := range 100 {
				o.Write(fleetRow("o", i, t0))
				if i == 49 {
					flush(t, o) // 50 rows in files
				}
			}
			settle(t, o)
			otk.tick(t, 1) // 50 rows in the fsync'd log
			resume := pause(t, o)
			for i := 100; i < 130; i++ {
				o.Write(fleetRow("o", i, t0)) // 10 queued, 20 spilled
			}

			aopts := Options{Dir: dir, Replica: "r9", FlushInterval: 10 * time.Second, MaxFileAge: time.Hour}
			atk := fakeClock(&aopts)
			var a *Writer
			if !tt.atOpen {
				a = open(t, aopts)
			}
			if !tt.running {
				o.abandon()
			}
			if tt.atOpen {
				a = open(t, aopts)
			}
			atk.tick(t, int(adoptEvery/aopts.FlushInterval))
			flush(t, a)
			want := int64(70) // but the 10 queued, lost in the crash
			if tt.running {
				want = 0
			}
			if st := a.Stats(); st.Recovered != want {
				t.Errorf("the adopter's stats %+v, want %d recovered", st, want)
			}
			if n := countRows(t, dir); n != 50+want {
				t.Errorf("%d rows, want %d", n, 50+want)
			}
			if tt.running {
				resume()
				closeWriter(t, o)
				if n := countRows(t, dir); n != 130 {
					t.Errorf("%d rows once the running replica closed, want 130", n)
				}
				return
			}
			if tt.other != "" {
				if _, err := os.Stat(filepath.Join(dir, walDir, tt.other)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the adopted log's directory is left: %v", err)
				}
			}
			again := open(t, Options{Dir: dir, Replica: tt.other})
			closeWriter(t, again)
			if st := again.Stats(); st.Recovered != 0 {
				t.Errorf("the crashed replica, opened again, recovered %d rows, want none", st.Recovered)
			}
			closeWriter(t, a)
			ids := idCounts(t, dir)
			for id, k := range ids {
				if k != 1 {
					t.Errorf("row %s read %d times", id, k)
				}
			}
		})
	}
}

func TestOpenTwice(t *testing.T) {
	for _, id := range []string{"", "r1"} {
		dir := t.TempDir()
		w := open(t, Options{Dir: dir, Replica: id})
		_, err := Open(Options{Dir: dir, Replica: id})
		if !errors.Is(err, errkind.Conflict) || !strings.Contains(err.Error(), dir+" open") {
			t.Errorf("Open of replica %q twice = %v, want a Conflict error naming %s", id, err, dir)
		}
		closeWriter(t, w)
		closeWriter(t, open(t, Options{Dir: dir, Replica: id}))
	}
}

// TestLockFileUnlinked takes the lock of a file that its holder unlinks
// before it lets go, as adoptReplica does: the lock got is on the file now
// at the path, not on the unlinked one.
func TestLockFileUnlinked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	a, err := lockFile(path, syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *os.File)
	go func() {
		b, err := lockFile(path, syscall.LOCK_EX)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := <-got
	defer b.Close()
	held, err := b.Stat()
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(held, now) {
		t.Errorf("the lock is on a file no longer at %s (%v)", path, err)
	}
}
