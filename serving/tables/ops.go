package tables

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mlgate/mlgate/internal/errkind"
)

// Tables of a directory, as File.Table names them.
const (
	TableInference = "inference"
	TableLabels    = "labels"
)

// File is a complete Parquet file of a table.
type File struct {
	Path    string `json:"path"`              // relative to the table's directory, with '/'
	Table   string `json:"table"`             // TableInference or TableLabels
	Date    string `json:"date"`              // YYYY-MM-DD, UTC
	Replica string `json:"replica,omitempty"` // the replica id of the writer, if it had one
	Rows    int64  `json:"rows"`
	Bytes   int64  `json:"bytes"`
}

// List returns the complete files of the inference and label tables in dir,
// sorted by path, with their row counts from the Parquet metadata. Files
// being written are not listed. Files of the old layout not yet moved (see
// migrate) are listed under their old path.
func List(dir string) ([]File, error) {
	var files []File
	for _, labels := range []bool{false, true} {
		rels, err := parts(dir, labels, nil)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		for _, rel := range rels {
			f, err := describeFile(dir, rel, labels)
			if moved, ok := movedPath(rel); ok && errors.Is(err, fs.ErrNotExist) {
				f, err = describeFile(dir, moved, labels)
			}
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since it was listed
			}
			if err != nil {
				return nil, fmt.Errorf("list tables: %w", err)
			}
			files = append(files, f)
		}
	}
	return files, nil
}

func describeFile(dir, rel string, labels bool) (File, error) {
	f, pf, err := openParquet(filepath.Join(dir, rel))
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	out := File{Path: filepath.ToSlash(rel), Table: TableInference, Rows: pf.NumRows(), Bytes: st.Size()}
	out.Replica, _ = partReplica(filepath.Base(rel))
	if labels {
		out.Table = TableLabels
	}
	out.Date = strings.TrimPrefix(filepath.Base(filepath.Dir(rel)), dateKey)
	return out, nil
}

// parts returns the paths, relative to dir and sorted, of the complete files
// of the inference table (or of the labels) in the date partitions keep
// accepts (all if nil). The inference table's files of the old layout not
// yet moved (see migrate) are among them: listed first, so that a file
// moved meanwhile is found again at its new path, and left out there if it
// is. One moved after this listing is read at its new path (see movedPath).
func parts(dir string, labels bool, keep func(date time.Time) bool) ([]string, error) {
	if labels {
		return partsUnder(dir, labelsDir, keep, nil)
	}
	tops, err := legacyTops(dir)
	if err != nil {
		return nil, err
	}
	var old []string
	for _, top := range tops {
		if old, err = partsUnder(dir, top, keep, old); err != nil {
			return nil, err
		}
	}
	rels, err := partsUnder(dir, "", keep, nil)
	if err != nil {
		return nil, err
	}
	if len(old) > 0 {
		seen := make(map[string]bool, len(rels))
		for _, rel := range rels {
			seen[rel] = true
		}
		for _, rel := range old {
			if moved, _ := movedPath(rel); !seen[moved] {
				rels = append(rels, rel)
			}
		}
	}
	slices.Sort(rels)
	return rels, nil
}

// partsUnder appends to rels the paths, relative to dir, of the complete
// files in the date partitions under dir/top that keep accepts (all if
// nil). A top that does not exist holds none.
func partsUnder(dir, top string, keep func(date time.Time) bool, rels []string) ([]string, error) {
	dates, err := os.ReadDir(filepath.Join(dir, top))
	if errors.Is(err, fs.ErrNotExist) {
		return rels, nil
	}
	if err != nil {
		return nil, err
	}
	for _, d := range dates {
		day, ok := strings.CutPrefix(d.Name(), dateKey)
		if !ok || !d.IsDir() {
			continue
		}
		date, err := time.Parse(dateLayout, day)
		if err != nil || (keep != nil && !keep(date)) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, top, d.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, f := range files {
			if f.Type().IsRegular() && isPart(f.Name()) {
				rels = append(rels, filepath.Join(top, d.Name(), f.Name()))
			}
		}
	}
	return rels, nil
}

// Filter selects rows of the inference table. Zero fields select all.
type Filter struct {
	Endpoint string    // rows of this endpoint
	Model    string    // rows of this model, through any endpoint
	From, To time.Time // rows with From <= Timestamp < To
}

// keepPartition reports whether the partition of the date may hold rows
// that f selects.
func (f *Filter) keepPartition(date time.Time) bool {
	if !f.From.IsZero() && !date.Add(24*time.Hour).After(f.From) {
		return false
	}
	return f.To.IsZero() || date.Before(f.To)
}

func (f *Filter) keep(r *Row) bool {
	return (f.Endpoint == "" || r.Endpoint == f.Endpoint) &&
		(f.Model == "" || r.ModelName == f.Model) &&
		(f.From.IsZero() || !r.Timestamp.Before(f.From)) &&
		(f.To.IsZero() || r.Timestamp.Before(f.To))
}

// DeleteEntity deletes the rows whose entities JSON object has column ==
// value from the inference table in dir, and returns how many rows it
// removed from complete files. A string value compares as its text, any
// other JSON value (a number, say) as its JSON text.
//
// It holds the table's lock (<dir>/_deletes, see "Fleets" in the package
// documentation) exclusively, so that two deletes, from any processes, run
// one after the other; appends a tombstone, so that the entity's rows with
// an earlier timestamp that any Writer still holds (queued, spilled, in an
// open file or in its write-ahead log, or left by a crash) never reach a
// file; and rewrites every complete file, whichever replica wrote it,
// without the entity's rows. Each file is replaced by a rename, so readers
// see it whole, before or after; a file left without rows is removed.
// Writers go on meanwhile; only their renames wait for the lock.
func DeleteEntity(dir, column, value string) (int64, error) {
	return deleteEntity(dir, column, value, time.Now())
}

// deleteEntity is DeleteEntity, with the rows before now deleted from the
// files not yet complete.
func deleteEntity(dir, column, value string, now time.Time) (_ int64, err error) {
	if column == "" {
		return 0, errkind.New(ErrInvalid, "delete entity: column is empty")
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("delete entity: %w", err)
		}
	}()
	f, err := openDeletes(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	defer flock(f, syscall.LOCK_UN)
	// The tombstone keeps microseconds: round up, so that every row made
	// before now is deleted.
	before := now.Truncate(time.Microsecond)
	if before.Before(now) {
		before = before.Add(time.Microsecond)
	}
	if err := addTombstone(f, tombstone{column: column, value: value, before: before}); err != nil {
		return 0, err
	}
	rels, err := parts(dir, false, nil)
	if err != nil {
		return 0, err
	}
	var removed int64
	drop := func(r *Row) bool { return entityIs(r.Entities, column, value) }
	for _, rel := range rels {
		name := filepath.Base(rel)
		n, err := deleteFrom(filepath.Join(dir, rel), ".del-"+name+".tmp", drop)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// addTombstone appends t to the deletions file f, whose lock the caller
// holds exclusively, and makes it durable. A record a crashed delete left
// cut short at the end is cut off first, so that the new one is read.
func addTombstone(f *os.File, t tombstone) error {
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Name(), err)
	}
	_, n, _ := parseTombstones(b)
	if n < len(b) {
		if err := f.Truncate(int64(n)); err != nil {
			return fmt.Errorf("truncate %s: %w", f.Name(), err)
		}
	}
	if _, err := f.WriteAt(appendTombstone(nil, t), int64(n)); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if len(b) == 0 {
		return syncDir(filepath.Dir(f.Name()))
	}
	return nil
}

// deleteFrom removes the rows drop matches from the complete file at path,
// through the temporary file tmp, in its directory, renamed over it, and
// returns how many it removed. The caller holds the table's lock so that
// no one else rewrites the file meanwhile.
func deleteFrom(path, tmp string, drop func(*Row) bool) (int64, error) {
	dir, name := filepath.Split(path)
	os.Remove(filepath.Join(dir, tmp)) // left by a crash
	t, n, total, err := filterFile(path, dir, name, tmp, drop)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, nil // removed since it was listed
	case err != nil:
		return 0, err
	case n == 0:
		return 0, nil
	case n == total:
		if err := os.Remove(path); err != nil {
			return 0, err
		}
		return n, syncDir(dir)
	}
	if err := t.commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// filterFile reads the Parquet file at src and returns how many of its rows
// drop matches, and how many it has. If drop matches some but not all, it
// writes the others to the temporary file tmp in dir, for the final name,
// and returns it, complete but not renamed.
func filterFile(src, dir, name, tmp string, drop func(*Row) bool) (_ *tmpFile[Row], match, total int64, err error) {
	batch := make([]Row, readBatch)
	err = readFile(src, batch, func(rows []Row) error {
		for i := range rows {
			total++
			if drop(&rows[i]) {
				match++
			}
		}
		return nil
	})
	if err != nil || match == 0 || match == total {
		return nil, match, total, err
	}
	t, err := createTmpFor[Row](dir, name, tmp)
	if err != nil {
		return nil, 0, 0, err
	}
	err = readFile(src, batch, func(rows []Row) error {
		kept := rows[:0]
		for i := range rows {
			if !drop(&rows[i]) {
				kept = append(kept, rows[i])
			}
		}
		_, err := t.pw.Write(kept)
		return err
	})
	if err != nil {
		t.discard()
		return nil, 0, 0, err
	}
	return t, match, total, nil
}

// entityIs reports whether the JSON object entities has column == value.
func entityIs(entities, column, value string) bool {
	// Skip the decoding when the name cannot be there, even escaped.
	if !strings.Contains(entities, column) && !strings.Contains(entities, `\`) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(entities), &m) != nil {
		return false
	}
	raw, ok := m[column]
	return ok && entityText(raw) == value
}

// AppendLabels writes labels to the label table in dir: one new file per
// date (UTC) of their timestamps, <dir>/_labels/date=<d>/, each written
// under a temporary name and renamed. A zero Timestamp is set to the current
// time. It returns an ErrInvalid error if a label has no request id. In a
// fleet, use Writer.AppendLabels, whose files carry the replica id.
func AppendLabels(dir string, labels []Label) error {
	return appendLabels(dir, "", time.Now(), labels)
}

// appendLabels is AppendLabels, naming the files for the replica, with now
// the current time.
func appendLabels(dir, replica string, now time.Time, labels []Label) error {
	byDate := map[string][]Label{}
	for i, l := range labels {
		if l.RequestID == "" {
			return errkind.New(ErrInvalid, "append labels: label %d has no request id", i)
		}
		if l.Timestamp.IsZero() {
			l.Timestamp = now
		}
		d := l.Timestamp.UTC().Format(dateLayout)
		byDate[d] = append(byDate[d], l)
	}
	for _, d := range slices.Sorted(maps.Keys(byDate)) {
		t, err := createTmp[Label](filepath.Join(dir, labelsDir, dateKey+d), replica, now)
		if err != nil {
			return fmt.Errorf("append labels: %w", err)
		}
		if _, err := t.pw.Write(byDate[d]); err != nil {
			t.discard()
			return fmt.Errorf("append labels: %w", err)
		}
		if err := t.commit(); err != nil {
			return fmt.Errorf("append labels: %w", err)
		}
	}
	return nil
}
