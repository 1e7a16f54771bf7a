package tables

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// writeOldFile writes rows, all of one date, as a complete file of the old
// layout under dir/top (endpoint=<e> or model=<m>), named for the replica,
// and returns its path relative to dir.
func writeOldFile(t testing.TB, dir, top, replica string, rows []Row) string {
	t.Helper()
	date := dateKey + rows[0].Timestamp.UTC().Format(dateLayout)
	f, err := createTmp[Row](filepath.Join(dir, top, date), replica, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := f.commit(); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, f.path())
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// oldTable is a table in the old layout, with labels: each file's rows
// and the ids of them all.
type oldTable struct {
	files map[string][]Row // by path, relative to the table's directory
	ids   []string         // sorted
}

// writeOldTable writes, in dir, files of the old layout: n files of each of
// two endpoints, of a model called directly and of the unknown model, on
// two days, two rows each; and labels for some of their rows.
func writeOldTable(t testing.TB, dir string, n int) oldTable {
	t.Helper()
	tab := oldTable{files: map[string][]Row{}}
	tops := []struct{ top, endpoint, model string }{
		{"endpoint=churn", "churn", "churn-xgb"},
		{"endpoint=a%20b", "a b", "m"},
		{"model=fraud", "", "fraud"},
		{"model=_unknown", "", "invented"},
	}
	i := 0
	for _, p := range tops {
		for k := range n {
			ts := t0.AddDate(0, 0, k%2)
			var rows []Row
			for range 2 {
				r := row(i, p.endpoint, p.model, ts)
				i++
				rows = append(rows, r)
				tab.ids = append(tab.ids, r.RequestID)
			}
			tab.files[writeOldFile(t, dir, p.top, "old", rows)] = rows
		}
	}
	slices.Sort(tab.ids)
	if err := AppendLabels(dir, []Label{{RequestID: tab.ids[0], Label: 1, Timestamp: t0}, {RequestID: tab.ids[1], Label: 0, Timestamp: t0}}); err != nil {
		t.Fatal(err)
	}
	return tab
}

// readIDs returns the sorted request ids of every row Dir.ReadRows reads in
// dir.
func readIDs(t testing.TB, dir string) []string {
	t.Helper()
	var ids []string
	for _, r := range readAll(t, dir, Filter{}) {
		ids = append(ids, r.RequestID)
	}
	slices.Sort(ids)
	return ids
}

// topDirs returns the names of the directories in dir, but the table's own
// (starting with '_').
func topDirs(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), "_") {
			names = append(names, e.Name())
		}
	}
	return names
}

// labelFiles returns the label files of the table in dir.
func labelFiles(t testing.TB, dir string) []File {
	t.Helper()
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(files, func(f File) bool { return f.Table != TableLabels })
}

// TestMigrate opens a Writer on tables of the old layout, in several
// states a previous version or an interrupted move leaves them, and checks
// that their files move into the date partitions: every row is read once
// before and after, the labels stay where they are, and the old
// directories are gone but for what the move must leave.
func TestMigrate(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string, tab oldTable) // after the old table is written
		left    []string                                     // directories left besides the date partitions
		check   func(t *testing.T, dir string, tab oldTable)
	}{
		{name: "old layout"},
		{
			name: "move interrupted",
			prepare: func(t *testing.T, dir string, tab oldTable) {
				// As a crash after some of the renames: half the files of
				// one directory moved, another directory moved whole but
				// not removed.
				moved := 0
				for rel := range tab.files {
					to, _ := movedPath(rel)
					if strings.HasPrefix(rel, "model=fraud") || (strings.HasPrefix(rel, "endpoint=churn") && moved%2 == 0) {
						if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(to)), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.Rename(filepath.Join(dir, rel), filepath.Join(dir, to)); err != nil {
							t.Fatal(err)
						}
						moved++
					}
				}
				if ids := readIDs(t, dir); !slices.Equal(ids, tab.ids) {
					t.Errorf("halfway through the move, read %d rows, want each of %d once", len(ids), len(tab.ids))
				}
			},
		},
		{
			name: "name taken",
			prepare: func(t *testing.T, dir string, tab oldTable) {
				// A file of the new layout already has the name of a file
				// of the old one: the old one moves under another name.
				for rel := range tab.files {
					if strings.HasPrefix(rel, "model=_unknown") {
						to, _ := movedPath(rel)
						r := row(9999, "", "m", t0)
						other := writeOldFile(t, dir, "model=new", "new", []Row{r})
						if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(to)), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.Rename(filepath.Join(dir, other), filepath.Join(dir, to)); err != nil {
							t.Fatal(err)
						}
						os.RemoveAll(filepath.Join(dir, "model=new"))
						return
					}
				}
			},
			check: func(t *testing.T, dir string, tab oldTable) {
				files, err := List(dir)
				if err != nil {
					t.Fatal(err)
				}
				var suffixed []File
				for _, f := range files {
					if strings.HasSuffix(f.Path, "~1.parquet") {
						suffixed = append(suffixed, f)
					}
				}
				if len(suffixed) != 1 || suffixed[0].Replica != "old" || suffixed[0].Rows != 2 {
					t.Errorf("files renamed by the move %+v, want one of replica old with 2 rows", suffixed)
				}
				if ids := readIDs(t, dir); len(ids) != len(tab.ids)+2 || !slices.Contains(ids, row(9999, "", "", t0).RequestID) {
					t.Errorf("%d rows, want the %d moved, the one of the file whose name was taken and the one written", len(ids), len(tab.ids))
				}
			},
		},
		{
			name: "temporary files",
			prepare: func(t *testing.T, dir string, tab oldTable) {
				// A writer of an older version at work in one partition, a
				// delete that crashed in another, and a directory that is
				// no partition.
				now := time.Unix(1741944413, 0)
				for _, p := range []string{
					filepath.Join(dir, "endpoint=churn", "date=2025-03-14", tempOf(partName("old2", now, 1))),
					filepath.Join(dir, "model=fraud", "date=2025-03-14", ".del-"+partName("old", now, 2)+".tmp"),
					filepath.Join(dir, "model=fraud", "notes", "x"),
				} {
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			left: []string{"endpoint=churn", "model=fraud"},
			check: func(t *testing.T, dir string, tab oldTable) {
				tmp := filesNamed(t, dir, isTemp)
				if len(tmp) != 1 || filepath.Base(filepath.Dir(filepath.Dir(tmp[0]))) != "endpoint=churn" {
					t.Errorf("temporary files left %v, want only the writer's at work", tmp)
				}
				if _, err := os.Stat(filepath.Join(dir, "model=fraud", "notes", "x")); err != nil {
					t.Errorf("a file that is no partition's: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tab := writeOldTable(t, dir, 4)
			if ids := readIDs(t, dir); !slices.Equal(ids, tab.ids) {
				t.Fatalf("before the move, read %d rows, want each of %d once", len(ids), len(tab.ids))
			}
			labels := labelFiles(t, dir)
			if tt.prepare != nil {
				tt.prepare(t, dir, tab)
			}

			w := open(t, Options{Dir: dir, Replica: "r1"})
			w.Write(row(10000, "churn", "churn-xgb", t0))
			closeWriter(t, w)
			if st := w.Stats(); st.Errors != 0 || st.Written != 1 {
				t.Errorf("stats %+v, want 1 row written and no error", st)
			}

			want := append([]string{"date=2025-03-14", "date=2025-03-15"}, tt.left...)
			slices.Sort(want)
			if got := topDirs(t, dir); !slices.Equal(got, want) {
				t.Errorf("directories %v, want %v", got, want)
			}
			files, err := List(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if f.Table == TableInference && !strings.HasPrefix(f.Path, dateKey) {
					t.Errorf("file %s is not in a date partition", f.Path)
				}
			}
			if got := labelFiles(t, dir); !slices.Equal(got, labels) {
				t.Errorf("label files %+v, want them untouched: %+v", got, labels)
			}
			for rel := range tab.files {
				to, _ := movedPath(rel)
				if _, err := os.Stat(filepath.Join(dir, to)); err != nil {
					t.Errorf("file %s not moved to %s: %v", rel, to, err)
				}
			}
			if tt.check != nil {
				tt.check(t, dir, tab)
				return
			}
			want = append(slices.Clone(tab.ids), row(10000, "", "", t0).RequestID)
			slices.Sort(want)
			if ids := readIDs(t, dir); !slices.Equal(ids, want) {
				t.Errorf("after the move, read %d rows, want each of %d once", len(ids), len(want))
			}
		})
	}
}

// TestMigrateWhileReading moves the files of the old layout while readers
// go on: each read sees every row once, from where it was or where it is.
func TestMigrateWhileReading(t *testing.T) {
	dir := t.TempDir()
	tab := writeOldTable(t, dir, 20)
	var (
		done      atomic.Bool
		reads     atomic.Int64
		wg, ready sync.WaitGroup
	)
	const readers = 4
	ready.Add(readers)
	for range readers {
		wg.Go(func() {
			ready.Done()
			for !done.Load() || reads.Load() < 2*readers {
				var ids []string
				err := Dir(dir).ReadRows(t.Context(), Filter{}, func(r Row) error {
					ids = append(ids, r.RequestID)
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				slices.Sort(ids)
				if !slices.Equal(ids, tab.ids) {
					t.Errorf("a read during the move saw %d rows, want each of %d once", len(ids), len(tab.ids))
					return
				}
				files, err := List(dir)
				if err != nil {
					t.Error(err)
					return
				}
				var n int64
				for _, f := range files {
					if f.Table == TableInference {
						n += f.Rows
					}
				}
				if n != int64(len(tab.ids)) {
					t.Errorf("a listing during the move counts %d rows, want %d", n, len(tab.ids))
					return
				}
				reads.Add(1)
			}
		})
	}
	ready.Wait()
	closeWriter(t, open(t, Options{Dir: dir}))
	done.Store(true)
	wg.Wait()
	if got := topDirs(t, dir); !slices.Equal(got, []string{"date=2025-03-14", "date=2025-03-15"}) {
		t.Errorf("directories %v after the move", got)
	}
}

// TestMigrateLater checks that a Writer moves files of the old layout that
// appear while it runs (those of a writer of an older version in a fleet
// being upgraded) at its next look, and not while a delete holds the
// table's lock.
func TestMigrateLater(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, FlushInterval: adoptEvery / 2}
	tk := fakeClock(&opts)
	w := open(t, opts)
	rel := writeOldFile(t, dir, "endpoint=churn", "old", []Row{row(1, "churn", "m", t0)})
	lock := holdDeletes(t, dir)
	tk.tick(t, 2)
	if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
		t.Errorf("the file moved while a delete held the lock: %v", err)
	}
	if err := flock(lock, syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	tk.tick(t, 2)
	to, _ := movedPath(rel)
	if _, err := os.Stat(filepath.Join(dir, to)); err != nil {
		t.Errorf("the file did not move at the next look: %v", err)
	}
	if got := topDirs(t, dir); !slices.Equal(got, []string{"date=2025-03-14"}) {
		t.Errorf("directories %v, want the date partition only", got)
	}
	closeWriter(t, w)
	if st := w.Stats(); st.Errors != 0 {
		t.Errorf("stats %+v, want no error", st)
	}
	if n := len(readAll(t, dir, Filter{})); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

func TestMovedPath(t *testing.T) {
	tests := []struct {
		rel, want string
		ok        bool
	}{
		{"endpoint=churn/date=2025-03-14/part-1-2.parquet", "date=2025-03-14/part-1-2.parquet", true},
		{"model=_unknown/date=2025-03-14/part-1-2.parquet", "date=2025-03-14/part-1-2.parquet", true},
		{"date=2025-03-14/part-1-2.parquet", "", false},
		{"_labels/date=2025-03-14/part-1-2.parquet", "", false},
	}
	for _, tt := range tests {
		got, ok := movedPath(filepath.FromSlash(tt.rel))
		if filepath.ToSlash(got) != tt.want || ok != tt.ok {
			t.Errorf("movedPath(%q) = %q, %v; want %q, %v", tt.rel, got, ok, tt.want, tt.ok)
		}
	}
}
