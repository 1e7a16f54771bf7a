package tables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Dir is the table in a directory, read from its complete files: what a
// Writer has put in the files it completed, and the labels. Writer.ReadRows
// reads the rows it still holds too.
type Dir string

// readBatch is how many rows the readers decode at a time.
const readBatch = 256

// ReadRows calls fn with each row of the inference table that f selects,
// file by file in path order, reading a batch of rows at a time. Files
// being written are not read; files of the old layout are read where they
// are, or where a Writer moves them meanwhile (see migrate). It stops at fn's first error and returns it
// unwrapped, and returns ctx's error once ctx ends (it looks before it
// starts and between batches).
func (d Dir) ReadRows(ctx context.Context, f Filter, fn func(Row) error) error {
	return d.readRows(ctx, f, nil, fn)
}

// readRows is ReadRows, skipping the files at the paths in skip (relative
// to d, as parts returns them).
func (d Dir) readRows(ctx context.Context, f Filter, skip map[string]bool, fn func(Row) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := string(d)
	rels, err := parts(dir, false, f.keepPartition)
	if err != nil {
		return fmt.Errorf("read rows: %w", err)
	}
	batch := make([]Row, readBatch)
	for _, rel := range rels {
		if skip[rel] {
			continue
		}
		read := func(rows []Row) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			for i := range rows {
				if f.keep(&rows[i]) {
					if err := fn(rows[i]); err != nil {
						return err
					}
				}
			}
			return nil
		}
		err := readFile(filepath.Join(dir, rel), batch, read)
		if moved, ok := movedPath(rel); ok && errors.Is(err, fs.ErrNotExist) {
			err = readFile(filepath.Join(dir, moved), batch, read)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since it was listed
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadLabels returns the labels by request id. When a request has several,
// the one with the latest timestamp wins. It returns ctx's error once ctx
// ends (it looks before it starts and between batches).
func (d Dir) ReadLabels(ctx context.Context) (map[string]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := string(d)
	rels, err := parts(dir, true, nil)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	type label struct {
		v  float64
		ts time.Time
	}
	latest := map[string]label{}
	batch := make([]Label, readBatch)
	for _, rel := range rels {
		err := readFile(filepath.Join(dir, rel), batch, func(ls []Label) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			for _, l := range ls {
				if old, ok := latest[l.RequestID]; !ok || !l.Timestamp.Before(old.ts) {
					latest[l.RequestID] = label{l.Label, l.Timestamp}
				}
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read labels: %w", err)
		}
	}
	out := make(map[string]float64, len(latest))
	for id, l := range latest {
		out[id] = l.v
	}
	return out, nil
}

// ReadRows calls fn with each row of the table that f selects: those of
// the complete files, as Dir.ReadRows reads them, then those the writer
// has accepted but not yet put in a complete file (queued, spilled or in an
// open file), in the order it took them. It completes no file: files roll
// by MaxFileBytes and MaxFileAge alone, however often the table is read.
//
// The rows of the open files are read from the write-ahead log, through
// hard links (hidden, in <dir>/_wal/<replica>/) that keep its segments while the
// writer goes on and deletes them; the log's records not yet written to
// the OS are copied. The read sees every row accepted before it, each once,
// and may see rows accepted since; not those of entities deleted (see
// DeleteEntity). While the disk fails it may miss rows:
// spilled ones, those the writer failed to write (Stats.Failed), those
// whose records the log gave up (Stats.Unlogged); and it may see some that
// failed, which reach the table only at the next Open. It stops at fn's
// first error and returns it unwrapped; it returns an error matching ctx's
// once ctx ends, and one matching ErrClosed after Close.
func (w *Writer) ReadRows(ctx context.Context, f Filter, fn func(Row) error) error {
	h, err := w.hold(ctx)
	if err != nil {
		return fmt.Errorf("read rows: %w", err)
	}
	defer h.release()
	if err := Dir(w.opts.Dir).readRows(ctx, f, h.paths, fn); err != nil {
		return err
	}
	return h.readRows(ctx, f, fn)
}

// held is what a read needs of the rows in a Writer's open files: the log
// segments holding them, linked, and the records the log has not written to
// the OS yet. In a segment numbered s, a record is a row of the open file of
// its partition if that file's first row is in a segment numbered s or
// less: every completed file is followed by a new segment (see trimLog).
type held struct {
	open  map[partition]int64 // the open files' partitions, each with the segment of its first row
	paths map[string]bool     // the open files' final paths, relative to the table's directory
	segs  []heldSegment
	tail  []byte // the records after the segments', in segment last
	last  int64
	drop  tombSet // the tombstones: the rows of deleted entities are not read
}

// heldSegment is a log segment's records, read through a link.
type heldSegment struct {
	segment
	link string
}

// linkSeq makes the names of the links unique.
var linkSeq atomic.Int64

// hold has the writer goroutine take what a read needs (see takeHeld). If ctx
// ends first, what the goroutine takes after that is released.
func (w *Writer) hold(ctx context.Context) (*held, error) {
	var (
		mu   sync.Mutex
		h    *held
		gone bool
	)
	_, err := w.call(ctx, func() (int64, error) {
		got, err := w.takeHeld()
		mu.Lock()
		defer mu.Unlock()
		if gone {
			got.release()
		} else {
			h = got
		}
		return 0, err
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		gone = true
		h.release()
		return nil, err
	}
	return h, nil
}

// takeHeld takes the queued rows, and the spilled ones unless the log is
// failing (see step), into their files, then links the log segments that
// hold the open files' rows and copies the records not yet written. On
// error it removes the links it made.
func (w *Writer) takeHeld() (*held, error) {
	for range len(w.q) {
		w.add(<-w.q)
	}
	if w.spill.pending.Load() && !w.wal.failed {
		w.takeSpill()
	}
	w.noteErr(w.refreshDeletes())
	h := &held{open: make(map[partition]int64, len(w.files)), paths: make(map[string]bool, len(w.files)), last: w.wal.seq, drop: w.dels.since(0)}
	if len(w.files) == 0 {
		return h, nil
	}
	first := int64(math.MaxInt64)
	for key, pf := range w.files {
		h.open[key] = pf.firstSeg
		h.paths[filepath.Join(key.dir(), pf.name)] = true
		first = min(first, pf.firstSeg)
	}
	for _, s := range w.wal.from(first) {
		link := filepath.Join(w.wal.dir, fmt.Sprintf(".read-%d-%020d%s.tmp", linkSeq.Add(1), s.seq, walExt))
		if err := os.Link(segPath(w.wal.dir, s.seq, walExt), link); err != nil {
			h.release()
			return nil, fmt.Errorf("link the write-ahead log: %w", err)
		}
		h.segs = append(h.segs, heldSegment{s, link})
	}
	h.tail = bytes.Clone(w.wal.unwritten())
	return h, nil
}

// readRows calls fn with each held row that f selects.
func (h *held) readRows(ctx context.Context, f Filter, fn func(Row) error) error {
	var stop error // fn's or ctx's, returned unwrapped
	in := func(seq int64) func(Row) error {
		return func(r Row) error {
			if stop = ctx.Err(); stop != nil {
				return stop
			}
			if first, ok := h.open[partitionOf(&r)]; !ok || seq < first || !f.keep(&r) || h.drop.drops(&r) {
				return nil
			}
			stop = fn(r)
			return stop
		}
	}
	for _, s := range h.segs {
		if err := s.read(in(s.seq)); err != nil {
			if stop != nil {
				return stop
			}
			return fmt.Errorf("read rows: %w", err)
		}
	}
	_, err := readRecords(bufio.NewReader(bytes.NewReader(h.tail)), in(h.last), nil)
	return err // only stop: the tail is in memory
}

// read calls fn with each row of the segment's records, and stops at fn's
// first error.
func (s heldSegment) read(fn func(Row) error) error {
	f, err := os.Open(s.link)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = readRecords(bufio.NewReaderSize(io.LimitReader(f, s.size), 64<<10), fn, nil)
	return err
}

// release removes the links. h may be nil.
func (h *held) release() {
	if h == nil {
		return
	}
	for _, s := range h.segs {
		os.Remove(s.link)
	}
}
