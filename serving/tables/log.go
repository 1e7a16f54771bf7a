package tables

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Rows wait in the write-ahead log and in spill files as records (see
// appendRecord), in numbered segments: <dir>/_wal/<seq>.wal and
// <dir>/_spill/<seq>.spill.
const (
	walExt   = ".wal"
	spillExt = ".spill"
)

func segPath(dir string, seq int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", seq, ext))
}

// segments returns the numbers of the segments in dir, in order.
func segments(dir, ext string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for _, e := range ents {
		num, ok := strings.CutSuffix(e.Name(), ext)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if seq, err := strconv.ParseInt(num, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// wal is the write-ahead log. Only the writer goroutine uses it.
type wal struct {
	dir    string
	seq    int64    // the current segment
	f      *os.File // nil until the current segment's first row
	buf    *bufio.Writer
	rec    []byte  // scratch for a record
	pay    []byte  // scratch for a payload
	dirty  bool    // rows appended since the last sync
	closed []int64 // earlier segments still on disk
}

func newWAL(dir string, seq int64) *wal {
	return &wal{dir: dir, seq: seq, buf: bufio.NewWriterSize(nil, 256<<10)}
}

// append appends r to the buffer of the current segment.
func (l *wal) append(r *Row) error {
	if l.f == nil {
		f, err := os.OpenFile(segPath(l.dir, l.seq, walExt), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("write-ahead log: %w", err)
		}
		l.f = f
		l.buf.Reset(f)
	}
	l.dirty = true
	l.rec, l.pay = appendRecord(l.rec[:0], l.pay, r)
	if _, err := l.buf.Write(l.rec); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	return nil
}

// sync writes the buffered rows to the OS and fsyncs the segment.
func (l *wal) sync() error {
	if !l.dirty {
		return nil
	}
	if err := l.buf.Flush(); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	l.dirty = false
	return nil
}

// rotate closes the current segment, if it has rows, and starts the next.
func (l *wal) rotate() error {
	if l.f == nil {
		return nil
	}
	err := l.sync()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write-ahead log: %w", cerr)
	}
	l.closed = append(l.closed, l.seq)
	l.f = nil
	l.seq++
	return err
}

// trim deletes the closed segments numbered below keep.
func (l *wal) trim(keep int64) error {
	var err error
	kept := l.closed[:0]
	for _, seq := range l.closed {
		if seq >= keep {
			kept = append(kept, seq)
			continue
		}
		if rerr := os.Remove(segPath(l.dir, seq, walExt)); rerr != nil && err == nil {
			err = fmt.Errorf("write-ahead log: %w", rerr)
		}
	}
	l.closed = kept
	return err
}

// abandon closes the current segment without writing its buffer, as a
// crash would.
func (l *wal) abandon() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// spill is where Write puts rows when the queue is full. Callers of Write
// append to it; the writer goroutine takes whole segments.
type spill struct {
	dir     string
	pending atomic.Bool // a segment has rows
	mu      sync.Mutex
	seq     int64    // the current segment
	f       *os.File // nil until the current segment's first row
	rec     []byte   // scratch for a record
	pay     []byte   // scratch for a payload
}

// append writes r to the current segment, in one write: once it returns
// the row survives the process.
func (s *spill) append(r *Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		f, err := os.OpenFile(segPath(s.dir, s.seq, spillExt), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		s.f = f
	}
	s.rec, s.pay = appendRecord(s.rec[:0], s.pay, r)
	if _, err := s.f.Write(s.rec); err != nil {
		return err
	}
	s.pending.Store(true)
	return nil
}

// take closes the current segment and returns its path, or "" if it has no
// rows; later rows go to a new segment.
func (s *spill) take() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return "", nil
	}
	err := s.f.Close()
	path := segPath(s.dir, s.seq, spillExt)
	s.f = nil
	s.seq++
	s.pending.Store(false)
	return path, err
}

// sync fsyncs the current segment. The lock is not held during the fsync,
// so Write does not wait for it; only the writer goroutine calls take and
// sync, so the file stays open meanwhile.
func (s *spill) sync() error {
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Sync()
}
