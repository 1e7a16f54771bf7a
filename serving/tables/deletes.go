package tables

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Deleting an entity's rows while writers go on (see "Fleets" in the
// package documentation). The file <dir>/_deletes is both the lock of the
// table's files and the list of its deletions:
//
//   - DeleteEntity holds it exclusively (flock) while it appends a
//     tombstone record and rewrites the complete files;
//   - a Writer holds it shared while it reads the tombstones and renames
//     its files, so a file is renamed either before a delete lists the
//     files, or after, filtered by that delete's tombstone.
//
// A tombstone says: the rows whose entities have column == value and whose
// timestamp is before the delete's time are deleted, including those that
// reach a file later (from a writer's queue, spill file or write-ahead log,
// or replayed by Open after a crash). The records are framed as those of
// the write-ahead log (see appendFrame):
//
//	payload = tombstoneVersion (1 byte), varint Unix microseconds of before,
//	          uvarint(len) column, uvarint(len) value
const deletesFile = "_deletes"

// tombstoneVersion is the first byte of a tombstone's payload.
const tombstoneVersion = 1

// tombstone is one DeleteEntity.
type tombstone struct {
	column, value string
	before        time.Time // rows with an earlier timestamp are deleted
}

// appendTombstone appends the record of t to dst.
func appendTombstone(dst []byte, t tombstone) []byte {
	p := []byte{tombstoneVersion}
	p = binary.AppendVarint(p, t.before.UnixMicro())
	for _, s := range []string{t.column, t.value} {
		p = binary.AppendUvarint(p, uint64(len(s)))
		p = append(p, s...)
	}
	return appendFrame(dst, p)
}

// parseTombstones decodes the tombstone records at the start of b. It
// returns them, the length of b their records take, and how many records
// it skipped because they are damaged (their checksum fails) or do not
// decode. A record cut short at the end of b (being appended, or torn by
// a crash) is not taken, nor counted in n; damage to a record's length
// loses the framing, and parsing stops there.
func parseTombstones(b []byte) (ts []tombstone, n int, skipped int) {
	for n < len(b) {
		size, k := binary.Uvarint(b[n:])
		if k <= 0 || size > maxRecord {
			return ts, n, skipped
		}
		end := uint64(n+k) + size + 4
		if end > uint64(len(b)) {
			return ts, n, skipped
		}
		payload := b[n+k : n+k+int(size)]
		sum := binary.LittleEndian.Uint32(b[n+k+int(size):])
		n = int(end)
		t, ok := decodeTombstone(payload)
		if crc32.Checksum(payload, crcTable) != sum || !ok {
			skipped++
			continue
		}
		ts = append(ts, t)
	}
	return ts, n, skipped
}

// decodeTombstone decodes a tombstone's payload.
func decodeTombstone(p []byte) (tombstone, bool) {
	if len(p) == 0 || p[0] != tombstoneVersion {
		return tombstone{}, false
	}
	p = p[1:]
	us, k := binary.Varint(p)
	if k <= 0 {
		return tombstone{}, false
	}
	p = p[k:]
	var s [2]string
	for i := range s {
		size, k := binary.Uvarint(p)
		if k <= 0 || size > uint64(len(p)-k) {
			return tombstone{}, false
		}
		s[i], p = string(p[k:k+int(size)]), p[k+int(size):]
	}
	if len(p) != 0 || s[0] == "" {
		return tombstone{}, false
	}
	return tombstone{column: s[0], value: s[1], before: time.UnixMicro(us).UTC()}, true
}

// tombSet matches rows against tombstones.
type tombSet struct {
	by     map[string]map[string]time.Time // column, value: the latest before
	latest time.Time                       // the latest before of all
}

func (s *tombSet) add(t tombstone) {
	if s.by == nil {
		s.by = map[string]map[string]time.Time{}
	}
	vals := s.by[t.column]
	if vals == nil {
		vals = map[string]time.Time{}
		s.by[t.column] = vals
	}
	if t.before.After(vals[t.value]) {
		vals[t.value] = t.before
	}
	if t.before.After(s.latest) {
		s.latest = t.before
	}
}

// drops reports whether a tombstone deletes r. A row newer than every
// tombstone, as nearly all are, costs one comparison.
func (s *tombSet) drops(r *Row) bool {
	if !r.Timestamp.Before(s.latest) || r.Entities == "" {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(r.Entities), &m) != nil {
		return false
	}
	for col, raw := range m {
		if vals := s.by[col]; vals != nil {
			if before, ok := vals[entityText(raw)]; ok && r.Timestamp.Before(before) {
				return true
			}
		}
	}
	return false
}

// entityText is the text an entity value compares as: a string's text,
// any other JSON value's JSON text.
func entityText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// deletes is a Writer's view of <dir>/_deletes. Only the writer goroutine
// (or Open before it starts) uses it.
type deletes struct {
	f       *os.File
	read    int64       // the length of f's records taken into list
	list    []tombstone // in the order of the file
	all     tombSet     // of list
	skipped int64       // damaged records
}

// openDeletes opens (creating it if need be) the deletions file of the
// table in dir, for reading and locking.
func openDeletes(dir string) (*os.File, error) {
	path := filepath.Join(dir, deletesFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// refresh takes the tombstones appended since the last refresh. Without the
// lock held it may miss the latest, or the start of one being appended.
func (d *deletes) refresh() error {
	st, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", d.f.Name(), err)
	}
	if st.Size() <= d.read {
		return nil
	}
	b := make([]byte, st.Size()-d.read)
	k, err := d.f.ReadAt(b, d.read)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", d.f.Name(), err)
	}
	ts, n, skipped := parseTombstones(b[:k])
	d.read += int64(n)
	d.skipped += int64(skipped)
	for _, t := range ts {
		d.list = append(d.list, t)
		d.all.add(t)
	}
	return nil
}

// since returns the tombstones from the i-th on.
func (d *deletes) since(i int) tombSet {
	var s tombSet
	for _, t := range d.list[i:] {
		s.add(t)
	}
	return s
}

// errLocked is returned by flock for a lock held elsewhere, with LOCK_NB.
var errLocked = syscall.EWOULDBLOCK

// flock applies the flock(2) operation how to f, again if a signal cuts it
// short. Locks of different open files exclude each other, in one process
// too; on NFS (v4, or v3 with lockd) Linux takes them on the server.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
