package tables

import (
	"errors"
	"fmt"
	"io/fs"
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
// <dir>/_spill/<seq>.spill; records that can never be written go to
// <dir>/_quarantine/<seq>.rec.
const (
	walExt        = ".wal"
	spillExt      = ".spill"
	quarantineExt = ".rec"
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

// The write-ahead log gathers records in memory and writes them to the OS
// once walWriteSize bytes are waiting; it fsyncs every FlushInterval, and
// early once walSyncSize bytes wait for an fsync. It keeps every record
// until an fsync covers it, so that after an I/O error it can write them
// again, to a new segment: a failed write or fsync may have lost them. While
// the disk fails it keeps at most walBufferLimit bytes.
const (
	walWriteSize   = 256 << 10
	walSyncSize    = 8 << 20
	walBufferLimit = 64 << 20
)

// wal is the write-ahead log. Only the writer goroutine uses it.
type wal struct {
	dir     string
	seq     int64     // the current segment
	f       *os.File  // nil until the current segment's first write, and after an error
	size    int64     // the bytes written to f
	buf     []byte    // the records no fsync has covered yet
	rows    int64     // how many
	written int       // the bytes of buf written to f
	failed  bool      // an error since the last sync: only sync tries again
	limit   int       // the most buf keeps while the disk fails: walBufferLimit
	pay     []byte    // scratch for a payload
	closed  []segment // earlier segments still on disk
}

// segment is an earlier segment still on disk, and the length of the
// records in it that no later segment holds again: all of it, or, for a
// segment a write or fsync failed on, what an fsync covered before.
type segment struct {
	seq, size int64
}

func newWAL(dir string, seq int64) *wal {
	return &wal{dir: dir, seq: seq, limit: walBufferLimit}
}

// append adds r to the log. It returns how many records the log gave up,
// because the disk failed for longer than walBufferLimit bytes of records
// take to come (their rows are still on their way to their files), and the
// error of a write it tried.
func (l *wal) append(r *Row) (dropped int64, err error) {
	var rec []byte
	rec, l.pay = appendRecord(l.buf, l.pay, r)
	l.buf = rec
	l.rows++
	switch {
	case l.failed:
	case len(l.buf) >= walSyncSize:
		err = l.sync()
	case len(l.buf)-l.written >= walWriteSize:
		err = l.write()
	}
	if len(l.buf) >= l.limit {
		dropped = l.rows
		l.buf, l.rows, l.written = l.buf[:0], 0, 0
	}
	return dropped, err
}

// write writes the records of buf not yet written to the current segment,
// creating it if need be.
func (l *wal) write() error {
	if l.f == nil {
		f, err := os.OpenFile(segPath(l.dir, l.seq, walExt), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, fs.ErrExist) {
			l.seq++ // left by a write that failed after creating it
		}
		if err != nil {
			l.failed = true
			return fmt.Errorf("write-ahead log: %w", err)
		}
		l.f, l.size, l.written = f, 0, 0
	}
	n, err := l.f.Write(l.buf[l.written:])
	l.size += int64(n)
	l.written += n
	if err != nil {
		l.abandonSegment()
		return fmt.Errorf("write-ahead log: %w", err)
	}
	return nil
}

// abandonSegment closes the current segment after an error and moves on to
// the next: the records not yet covered by an fsync will be written there,
// in whole. The segment stays on disk (and in closed) with what it holds.
func (l *wal) abandonSegment() {
	l.f.Close()
	l.closed = append(l.closed, segment{l.seq, l.size - int64(l.written)})
	l.f, l.written, l.failed = nil, 0, true
	l.seq++
}

// sync writes the records of buf and fsyncs them, writing them again to a
// new segment if an earlier write or fsync failed. On success buf is empty.
func (l *wal) sync() error {
	if len(l.buf) == 0 {
		l.failed = false
		return nil
	}
	if err := l.write(); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		l.abandonSegment()
		return fmt.Errorf("write-ahead log: %w", err)
	}
	l.buf, l.rows, l.written, l.failed = l.buf[:0], 0, 0, false
	return nil
}

// durable reports whether every record appended is covered by an fsync.
func (l *wal) durable() bool { return len(l.buf) == 0 }

// rotate makes the current segment durable, closes it and starts the next.
// If the segment cannot be made durable its records wait in buf for a later
// sync, to the next segment.
func (l *wal) rotate() error {
	err := l.sync()
	if l.f == nil {
		return err
	}
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write-ahead log: %w", cerr)
	}
	l.closed = append(l.closed, segment{l.seq, l.size})
	l.f, l.written = nil, 0
	l.seq++
	return err
}

// trim deletes the closed segments numbered below keep. Those it cannot
// delete stay listed, for a later trim.
func (l *wal) trim(keep int64) error {
	var err error
	kept := l.closed[:0]
	for _, s := range l.closed {
		if s.seq >= keep {
			kept = append(kept, s)
			continue
		}
		if rerr := os.Remove(segPath(l.dir, s.seq, walExt)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			kept = append(kept, s)
			if err == nil {
				err = fmt.Errorf("write-ahead log: %w", rerr)
			}
		}
	}
	l.closed = kept
	return err
}

// from returns the segments on disk numbered from seq on, the current one
// included, each with the length of its records that no later segment
// holds again. The records of unwritten follow them.
func (l *wal) from(seq int64) []segment {
	var out []segment
	for _, s := range l.closed {
		if s.seq >= seq {
			out = append(out, s)
		}
	}
	if l.f != nil {
		out = append(out, segment{l.seq, l.size})
	}
	return out
}

// unwritten returns the records not yet written to the OS. They stay valid
// until the next call on l.
func (l *wal) unwritten() []byte { return l.buf[l.written:] }

// abandon closes the current segment without writing the rest of buf, as a
// crash would.
func (l *wal) abandon() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// recordFile is a sequence of numbered segments of records, each appended
// in one write, so that once append returns the record survives the
// process: the spill files (<dir>/_spill/<seq>.spill), where Write puts rows
// when the queue is full, and the quarantine (<dir>/_quarantine/<seq>.rec),
// where the writer puts the records it can never write. Any goroutine may
// append; only the writer goroutine takes and syncs.
type recordFile struct {
	dir, ext string
	pending  atomic.Bool // a segment has records to take
	mu       sync.Mutex
	seq      int64    // the current segment
	f        *os.File // nil until the current segment's first record, and after an error
	full     []int64  // earlier segments not yet taken, closed after an error
	rec      []byte   // scratch for a record
	pay      []byte   // scratch for a payload
}

// append appends the record of r.
func (s *recordFile) append(r *Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec, s.pay = appendRecord(s.rec[:0], s.pay, r)
	return s.write(s.rec)
}

// appendPayload appends a record holding payload.
func (s *recordFile) appendPayload(payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec = appendFrame(s.rec[:0], payload)
	return s.write(s.rec)
}

// write appends rec to the current segment, creating it (and its directory)
// if need be. After an error the segment is closed, since it may end in part
// of rec, and the next record starts a new one.
func (s *recordFile) write(rec []byte) error {
	if s.f == nil {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(segPath(s.dir, s.seq, s.ext), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		s.f = f
	}
	if _, err := s.f.Write(rec); err != nil {
		s.f.Close()
		s.f = nil
		s.full = append(s.full, s.seq)
		s.seq++
		s.pending.Store(true)
		return err
	}
	s.pending.Store(true)
	return nil
}

// take closes the current segment and returns the paths of the segments
// with records, in order; later records go to a new segment.
func (s *recordFile) take() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.f != nil {
		err = s.f.Close()
		s.f = nil
		s.full = append(s.full, s.seq)
		s.seq++
	}
	paths := make([]string, 0, len(s.full))
	for _, seq := range s.full {
		paths = append(paths, segPath(s.dir, seq, s.ext))
	}
	s.full = s.full[:0]
	s.pending.Store(false)
	return paths, err
}

// sync fsyncs the current segment. The lock is not held during the fsync,
// so Write does not wait for it; only the writer goroutine calls take and
// sync, so the file stays open meanwhile.
func (s *recordFile) sync() error {
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Sync()
}

// abandon closes the current segment, as a crash would.
func (s *recordFile) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
