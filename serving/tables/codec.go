package tables

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
)

// The write-ahead log and the spill files hold rows as records:
//
//	record  = uvarint(len(payload)) payload crc32c(payload) (4 bytes, little endian)
//	payload = the fields of Row in order: strings as uvarint(len) bytes,
//	          Timestamp as varint Unix microseconds, IsShadow as one byte,
//	          the integers as varints
//
// The checksum finds a record torn by a crash or damaged on disk.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// maxRecord bounds the length a record may claim, so that damage does not
// make the reader allocate without limit.
const maxRecord = 1 << 30

// appendRecord appends the record of r to dst, using scratch for the
// payload, and returns both.
func appendRecord(dst, scratch []byte, r *Row) (_, _ []byte) {
	p := appendPayload(scratch[:0], r)
	return appendFrame(dst, p), p
}

// appendPayload appends the payload of r's record to p.
func appendPayload(p []byte, r *Row) []byte {
	str := func(s string) { p = binary.AppendUvarint(p, uint64(len(s))); p = append(p, s...) }
	str(r.RequestID)
	p = binary.AppendVarint(p, r.Timestamp.UnixMicro())
	str(r.Endpoint)
	str(r.Variant)
	shadow := byte(0)
	if r.IsShadow {
		shadow = 1
	}
	p = append(p, shadow)
	str(r.ModelName)
	p = binary.AppendVarint(p, r.ModelVersion)
	str(r.ModelUUID)
	p = binary.AppendVarint(p, int64(r.StatusCode))
	p = binary.AppendVarint(p, r.LatencyUS)
	for _, s := range []*string{&r.Entities, &r.Features, &r.FeatureStatus, &r.Request, &r.Response, &r.Error} {
		str(*s)
	}
	return p
}

// appendFrame appends the record of payload p to dst: its length, p and
// its checksum.
func appendFrame(dst, p []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p)))
	dst = append(dst, p...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(p, crcTable))
}

var errBadPayload = errors.New("malformed record")

// decodePayload decodes the payload of a record.
func decodePayload(p []byte) (Row, error) {
	var r Row
	bad := false
	uvarint := func() uint64 {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			bad = true
			return 0
		}
		p = p[n:]
		return v
	}
	varint := func() int64 {
		v, n := binary.Varint(p)
		if n <= 0 {
			bad = true
			return 0
		}
		p = p[n:]
		return v
	}
	str := func(s *string) {
		n := uvarint()
		if bad || n > uint64(len(p)) {
			bad = true
			return
		}
		*s, p = string(p[:n]), p[n:]
	}
	str(&r.RequestID)
	r.Timestamp = time.UnixMicro(varint()).UTC()
	str(&r.Endpoint)
	str(&r.Variant)
	if len(p) == 0 || p[0] > 1 {
		return Row{}, errBadPayload
	}
	r.IsShadow, p = p[0] == 1, p[1:]
	str(&r.ModelName)
	r.ModelVersion = varint()
	str(&r.ModelUUID)
	status := varint()
	r.StatusCode = int32(status)
	r.LatencyUS = varint()
	for _, s := range []*string{&r.Entities, &r.Features, &r.FeatureStatus, &r.Request, &r.Response, &r.Error} {
		str(s)
	}
	if bad || len(p) != 0 || int64(r.StatusCode) != status {
		return Row{}, errBadPayload
	}
	return r, nil
}

// readLog calls fn with each row of the log or spill segment at path, and
// bad (if not nil) with the payload of each record whose checksum holds but
// which does not decode as a row (written by another version, say). It
// returns how many records it skipped: one torn by a crash at the end, or
// damaged ones (after which, if their length is damaged too, it stops),
// and, when bad is nil, those that do not decode.
func readLog(path string, fn func(Row), bad func(payload []byte)) (skipped int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	skipped, err = readRecords(bufio.NewReaderSize(f, 1<<20), func(r Row) error { fn(r); return nil }, bad)
	if err != nil {
		return skipped, fmt.Errorf("read %s: %w", path, err)
	}
	return skipped, nil
}

// readRecords reads records from br as readLog describes, and stops at fn's
// first error and returns it. The payload given to bad is reused once bad
// returns.
func readRecords(br *bufio.Reader, fn func(Row) error, bad func(payload []byte)) (skipped int64, err error) {
	var buf []byte
	for {
		n, err := readLen(br)
		switch {
		case err == io.EOF:
			return skipped, nil
		case errors.Is(err, io.ErrUnexpectedEOF), err == errBadPayload, err == nil && n > maxRecord:
			return skipped + 1, nil // torn at the end, or the framing is lost
		case err != nil:
			return skipped, err
		}
		if uint64(cap(buf)) < n+4 {
			buf = make([]byte, n+4)
		}
		buf = buf[:n+4]
		if _, err := io.ReadFull(br, buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
				return skipped + 1, nil
			}
			return skipped, err
		}
		payload := buf[:n]
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(buf[n:]) {
			skipped++
			continue
		}
		r, err := decodePayload(payload)
		if err != nil && bad != nil {
			bad(payload)
			continue
		}
		if err != nil {
			skipped++
			continue
		}
		if err := fn(r); err != nil {
			return skipped, err
		}
	}
}

// readLen reads a record's length: io.EOF if there is no record,
// io.ErrUnexpectedEOF if the length is cut short, errBadPayload if it is no
// uvarint.
func readLen(br *bufio.Reader) (uint64, error) {
	var n uint64
	for i := range binary.MaxVarintLen64 {
		b, err := br.ReadByte()
		if err == io.EOF && i > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return 0, err
		}
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return n, nil
		}
	}
	return 0, errBadPayload
}
