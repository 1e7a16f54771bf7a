package tables

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Row is one prediction. Entities, Features, FeatureStatus, Request and
// Response hold JSON text; an empty string is written as null.
type Row struct {
	RequestID     string    `parquet:"request_id" json:"request_id"`
	Timestamp     time.Time `parquet:"timestamp,timestamp(microsecond)" json:"timestamp"`
	Endpoint      string    `parquet:"endpoint,optional,dict" json:"endpoint,omitempty"`
	Variant       string    `parquet:"variant,optional,dict" json:"variant,omitempty"`
	IsShadow      bool      `parquet:"is_shadow" json:"is_shadow,omitempty"`
	ModelName     string    `parquet:"model_name,dict" json:"model_name"`
	ModelVersion  int64     `parquet:"model_version" json:"model_version"`
	ModelUUID     string    `parquet:"model_uuid,optional,dict" json:"model_uuid,omitempty"`
	StatusCode    int32     `parquet:"status_code" json:"status_code"`
	LatencyUS     int64     `parquet:"latency_us" json:"latency_us"`
	Entities      string    `parquet:"entities,optional" json:"entities,omitempty"`
	Features      string    `parquet:"features,optional" json:"features,omitempty"`
	FeatureStatus string    `parquet:"feature_status,optional" json:"feature_status,omitempty"`
	Request       string    `parquet:"request,optional" json:"request,omitempty"`
	Response      string    `parquet:"response,optional" json:"response,omitempty"`
	Error         string    `parquet:"error,optional" json:"error,omitempty"`
}

// Label is the ground truth of one prediction, joined by request id.
type Label struct {
	RequestID string    `parquet:"request_id"`
	Label     float64   `parquet:"label"`
	Timestamp time.Time `parquet:"timestamp,timestamp(microsecond)"`
}

// Names of the partition directories.
const (
	dateKey       = "date="
	labelsDir     = "_labels"
	walDir        = "_wal"
	spillDir      = "_spill"
	quarantineDir = "_quarantine"
	dateLayout    = "2006-01-02"
)

// isPart reports whether name is a complete data file.
func isPart(name string) bool {
	return strings.HasPrefix(name, "part-") && strings.HasSuffix(name, ".parquet")
}

// isTemp reports whether name is a file being written.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp")
}

// partName returns the name of a data file: part-<replica>-<unixnano>-<seq>.parquet,
// or part-<unixnano>-<seq>.parquet without a replica id.
func partName(replica string, now time.Time, seq int64) string {
	if replica == "" {
		return fmt.Sprintf("part-%d-%d.parquet", now.UnixNano(), seq)
	}
	return fmt.Sprintf("part-%s-%d-%d.parquet", replica, now.UnixNano(), seq)
}

// partReplica returns the replica id in the name of a data file that
// partName made ("" for none), possibly with the "~<n>" a move out of the
// old layout adds before ".parquet" (see migrate), and whether name is one.
func partReplica(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "part-")
	if !ok {
		return "", false
	}
	if rest, ok = strings.CutSuffix(rest, ".parquet"); !ok {
		return "", false
	}
	if i := strings.LastIndexByte(rest, '~'); i >= 0 && allDigits(rest[i+1:]) {
		rest = rest[:i]
	}
	i := strings.LastIndexByte(rest, '-') // before <seq>
	if i < 0 || !allDigits(rest[i+1:]) {
		return "", false
	}
	rest = rest[:i]
	i = strings.LastIndexByte(rest, '-') // before <unixnano>, if there is a replica id
	if !allDigits(rest[i+1:]) {
		return "", false
	}
	if i < 0 {
		return "", true
	}
	return rest[:i], rest[:i] != ""
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// tempOf returns the name of the temporary file of the final name.
func tempOf(name string) string { return "." + name + ".tmp" }

// tempReplica returns the replica id of a temporary file a Writer (or
// AppendLabels) made, and whether name is one: .<name>.tmp (see tempOf) or
// .<name>.filter.tmp, where <name> is a name partName makes. DeleteEntity's
// (.del-<name>.tmp) are none.
func tempReplica(name string) (string, bool) {
	inner, ok := strings.CutPrefix(name, ".")
	if !ok {
		return "", false
	}
	if inner, ok = strings.CutSuffix(inner, ".tmp"); !ok {
		return "", false
	}
	if i := strings.Index(inner, ".parquet"); i >= 0 {
		inner = inner[:i+len(".parquet")] // .<name>.filter.tmp (see Writer.commitFiltered and recheck)
	}
	return partReplica(inner)
}

// nameSeq makes the names of the files this process writes unique.
var nameSeq atomic.Int64

// writerOptions are those of every Parquet file the package writes.
func writerOptions() []parquet.WriterOption {
	return []parquet.WriterOption{parquet.Compression(&parquet.Snappy)}
}

// tmpFile is a Parquet file being written under a hidden temporary name.
type tmpFile[T any] struct {
	dir, name string // the final name, in dir
	tmp       string // the temporary name, in dir
	f         *os.File
	buf       *bufio.Writer
	pw        *parquet.GenericWriter[T]
}

// createTmp creates dir and a temporary file in it for a new data file of
// the replica (see partName), choosing the name so that neither it nor its
// temporary name exists yet.
func createTmp[T any](dir, replica string, now time.Time) (*tmpFile[T], error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for {
		name := partName(replica, now, nameSeq.Add(1))
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			if err != nil {
				return nil, err
			}
			continue
		}
		t, err := createTmpFor[T](dir, name, tempOf(name))
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return t, err
	}
}

// createTmpFor creates the temporary file tmp in dir for the final name.
func createTmpFor[T any](dir, name, tmp string) (*tmpFile[T], error) {
	f, err := os.OpenFile(filepath.Join(dir, tmp), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(f, 256<<10)
	return &tmpFile[T]{dir: dir, name: name, tmp: tmp, f: f, buf: buf, pw: parquet.NewGenericWriter[T](buf, writerOptions()...)}, nil
}

func (t *tmpFile[T]) tmpPath() string { return filepath.Join(t.dir, t.tmp) }

// path returns the file's final path.
func (t *tmpFile[T]) path() string { return filepath.Join(t.dir, t.name) }

// close completes the file and makes it durable, under its temporary name.
func (t *tmpFile[T]) close() error {
	err := t.pw.Close()
	if err == nil {
		err = t.buf.Flush()
	}
	if err == nil {
		err = t.f.Sync()
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit completes the file, makes it durable and renames it to its final
// name, replacing any file of that name. On error the temporary file is
// removed.
func (t *tmpFile[T]) commit() error {
	if err := t.close(); err != nil {
		os.Remove(t.tmpPath())
		return fmt.Errorf("write %s: %w", t.path(), err)
	}
	return t.rename()
}

// rename gives the closed file its final name, and makes the name durable.
// On error the temporary file is removed.
func (t *tmpFile[T]) rename() error {
	if err := os.Rename(t.tmpPath(), t.path()); err != nil {
		os.Remove(t.tmpPath())
		return fmt.Errorf("write %s: %w", t.path(), err)
	}
	return syncDir(t.dir)
}

// discard removes the temporary file.
func (t *tmpFile[T]) discard() {
	t.f.Close()
	os.Remove(t.tmpPath())
}

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// openParquet opens the Parquet file at path, reading its footer. The
// caller closes the returned *os.File.
func openParquet(path string) (_ *os.File, _ *parquet.File, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read %s: not a readable Parquet file: %v", path, r)
		}
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, pf, nil
}

// readFile calls fn with the rows of the Parquet file at path, a batch at a
// time; the batch is reused after fn returns. fn's error is returned as is.
func readFile[T any](path string, batch []T, fn func([]T) error) error {
	f, pf, err := openParquet(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var rd *parquet.GenericReader[T]
	// The library panics on some corrupt files; read reports that as an error.
	read := func() (n int, err error) {
		defer func() {
			if r := recover(); r != nil {
				n, err = 0, fmt.Errorf("corrupt Parquet file: %v", r)
			}
		}()
		if rd == nil {
			rd = parquet.NewGenericReader[T](pf)
		}
		return rd.Read(batch)
	}
	defer func() {
		if rd != nil {
			rd.Close()
		}
	}()
	for {
		n, err := read()
		if n > 0 {
			if ferr := fn(batch[:n]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
}
