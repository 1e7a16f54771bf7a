package tables

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	Path     string `json:"path"`  // relative to the table's directory, with '/'
	Table    string `json:"table"` // TableInference or TableLabels
	Endpoint string `json:"endpoint,omitempty"`
	Model    string `json:"model,omitempty"` // for rows without an endpoint
	Date     string `json:"date"`            // YYYY-MM-DD, UTC
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
}

// List returns the complete files of the inference and label tables in dir,
// sorted by path, with their row counts from the Parquet metadata. Files
// being written are not listed.
func List(dir string) ([]File, error) {
	var files []File
	for _, labels := range []bool{false, true} {
		rels, err := parts(dir, labels, nil)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		for _, rel := range rels {
			f, err := describeFile(dir, rel, labels)
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
	if labels {
		out.Table = TableLabels
	}
	for _, part := range strings.Split(filepath.Dir(rel), string(filepath.Separator)) {
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		if v, err := url.PathUnescape(val); err == nil {
			val = v
		}
		switch key + "=" {
		case endpointKey:
			out.Endpoint = val
		case modelKey:
			out.Model = val
		case dateKey:
			out.Date = val
		}
	}
	return out, nil
}

// parts returns the paths, relative to dir and sorted, of the complete files
// of the inference table (or of the labels), in the partitions keep accepts
// (all if nil). top is the partition's first directory (endpoint=... or
// model=...), date its date.
func parts(dir string, labels bool, keep func(top string, date time.Time) bool) ([]string, error) {
	var tops []string
	if labels {
		tops = []string{labelsDir}
	} else {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && (strings.HasPrefix(e.Name(), endpointKey) || strings.HasPrefix(e.Name(), modelKey)) {
				tops = append(tops, e.Name())
			}
		}
	}
	var rels []string
	for _, top := range tops {
		dates, err := os.ReadDir(filepath.Join(dir, top))
		if errors.Is(err, fs.ErrNotExist) {
			continue
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
			if err != nil || (keep != nil && !keep(top, date)) {
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
	}
	slices.Sort(rels)
	return rels, nil
}

// Filter selects rows of the inference table. Zero fields select all.
type Filter struct {
	Endpoint string    // rows of this endpoint
	Model    string    // rows of this model, through any endpoint
	From, To time.Time // rows with From <= Timestamp < To
}

func (f *Filter) keepPartition(top string, date time.Time) bool {
	if f.Endpoint != "" && top != endpointKey+escapePart(f.Endpoint) {
		return false
	}
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

// DeleteEntity rewrites the complete files of the inference table in dir
// without the rows whose entities JSON object has column == value, and
// returns how many rows it removed. A string value compares as its text, any
// other JSON value (a number, say) as its JSON text. Each file is replaced
// by a rename, so readers see it whole, before or after; a file left without
// rows is removed. Files still being written are not touched: while a Writer
// owns dir, use Writer.DeleteEntity.
func DeleteEntity(dir, column, value string) (int64, error) {
	if column == "" {
		return 0, errkind.New(ErrInvalid, "delete entity: column is empty")
	}
	rels, err := parts(dir, false, nil)
	if err != nil {
		return 0, fmt.Errorf("delete entity: %w", err)
	}
	var removed int64
	for _, rel := range rels {
		n, err := deleteFrom(filepath.Join(dir, rel), column, value)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("delete entity: %w", err)
		}
	}
	return removed, nil
}

// deleteFrom removes the matching rows from the file at path.
func deleteFrom(path, column, value string) (int64, error) {
	var match, total int64
	batch := make([]Row, readBatch)
	err := readFile(path, batch, func(rows []Row) error {
		for i := range rows {
			total++
			if entityIs(rows[i].Entities, column, value) {
				match++
			}
		}
		return nil
	})
	if err != nil || match == 0 {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return 0, err
	}
	if match == total {
		if err := os.Remove(path); err != nil {
			return 0, err
		}
		return match, syncDir(filepath.Dir(path))
	}
	dir, name := filepath.Split(path)
	t := &tmpFile[Row]{dir: dir, name: name}
	os.Remove(t.tmpPath()) // left by a crash
	t, err = createTmpFor[Row](dir, name)
	if err != nil {
		return 0, err
	}
	err = readFile(path, batch, func(rows []Row) error {
		kept := rows[:0]
		for _, r := range rows {
			if !entityIs(r.Entities, column, value) {
				kept = append(kept, r)
			}
		}
		_, err := t.pw.Write(kept)
		return err
	})
	if err != nil {
		t.discard()
		return 0, err
	}
	if err := t.commit(); err != nil {
		return 0, err
	}
	return match, nil
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
	if !ok {
		return false
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil && s == value
	}
	return string(raw) == value
}

// AppendLabels writes labels to the label table in dir: one new file per
// date (UTC) of their timestamps, <dir>/_labels/date=<d>/, each written
// under a temporary name and renamed. A zero Timestamp is set to the current
// time. It returns an ErrInvalid error if a label has no request id.
func AppendLabels(dir string, labels []Label) error {
	now := time.Now()
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
		t, err := createTmp[Label](filepath.Join(dir, labelsDir, dateKey+d), now)
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
