package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// The Parquet library trusts the sizes a file gives: a corrupt footer or page
// header that claims a list of two billion items or a page of two gigabytes
// makes it allocate that much before it finds the file short. The checks
// here read those structures first, without allocating, and refuse sizes
// that the file cannot back.

// Limits on one page of a Parquet file (variables so that the fuzz test can
// lower them). Writers keep pages near 1 MiB and well under a million values.
var (
	maxPageBytes  int64 = 256 << 20
	maxPageValues int64 = 64 << 20
)

// errThrift is a structure that the bytes cannot hold.
var errThrift = errors.New("malformed thrift structure")

// thriftWalker walks Thrift compact-protocol data without keeping any of it,
// checking that every length and count fits in the bytes that remain.
type thriftWalker struct {
	b   []byte
	off int
}

func (w *thriftWalker) left() int { return len(w.b) - w.off }

func (w *thriftWalker) byte() (byte, error) {
	if w.off >= len(w.b) {
		return 0, errThrift
	}
	c := w.b[w.off]
	w.off++
	return c, nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.off:])
	if n <= 0 {
		return 0, errThrift
	}
	w.off += n
	return v, nil
}

func (w *thriftWalker) skipN(n uint64) error {
	if n > uint64(w.left()) {
		return errThrift
	}
	w.off += int(n)
	return nil
}

// Thrift compact-protocol types.
const (
	tcTrue   = 1
	tcFalse  = 2
	tcByte   = 3
	tcI16    = 4
	tcI32    = 5
	tcI64    = 6
	tcDouble = 7
	tcBinary = 8
	tcList   = 9
	tcSet    = 10
	tcMap    = 11
	tcStruct = 12
	tcUUID   = 13
)

// value skips one value of type typ; inList tells that booleans take a byte.
func (w *thriftWalker) value(typ byte, depth int) error {
	if depth > 32 {
		return errThrift
	}
	switch typ {
	case tcTrue, tcFalse:
		return nil // in a struct, the type is the value
	case tcByte:
		return w.skipN(1)
	case tcI16, tcI32, tcI64:
		_, err := w.uvarint()
		return err
	case tcDouble:
		return w.skipN(8)
	case tcUUID:
		return w.skipN(16)
	case tcBinary:
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		return w.skipN(n)
	case tcList, tcSet:
		h, err := w.byte()
		if err != nil {
			return err
		}
		n, elem := uint64(h>>4), h&0xf
		if n == 0xf {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		if n > uint64(w.left()) { // every item takes a byte at least
			return errThrift
		}
		for range n {
			if elem == tcTrue || elem == tcFalse {
				err = w.skipN(1)
			} else {
				err = w.value(elem, depth+1)
			}
			if err != nil {
				return err
			}
		}
		return nil
	case tcMap:
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		if n > uint64(w.left())/2 {
			return errThrift
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		for range n {
			for _, t := range []byte{kv >> 4, kv & 0xf} {
				if t == tcTrue || t == tcFalse {
					err = w.skipN(1)
				} else {
					err = w.value(t, depth+1)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	case tcStruct:
		for {
			h, err := w.byte()
			if err != nil {
				return err
			}
			if h == 0 {
				return nil
			}
			if h>>4 == 0 { // the field id follows
				if _, err := w.uvarint(); err != nil {
					return err
				}
			}
			if err := w.value(h&0xf, depth+1); err != nil {
				return err
			}
		}
	}
	return errThrift
}

// checkThriftStruct reports whether b starts with a well-formed struct whose
// sizes fit in b, and how many bytes it takes.
func checkThriftStruct(b []byte) (int, error) {
	w := thriftWalker{b: b}
	if err := w.value(tcStruct, 0); err != nil {
		return 0, err
	}
	return w.off, nil
}

// checkFooterThrift checks the footer metadata of a file of size bytes whose
// footer is footerLen bytes.
func checkFooterThrift(f io.ReaderAt, size, footerLen int64) error {
	b := make([]byte, footerLen)
	if _, err := f.ReadAt(b, size-8-footerLen); err != nil {
		return fmt.Errorf("reading the Parquet footer: %w", err)
	}
	if _, err := checkThriftStruct(b); err != nil {
		return errors.New("not a readable Parquet file: its footer is malformed")
	}
	return nil
}

// checkColumnChunk walks the page headers of one column chunk, checking that
// each page lies inside the chunk and the chunk inside the file, and that no
// page is larger than the limits.
func checkColumnChunk(f io.ReaderAt, size int64, md *format.ColumnMetaData) error {
	start := md.DataPageOffset
	if md.DictionaryPageOffset != 0 {
		start = md.DictionaryPageOffset
	}
	end := start + md.TotalCompressedSize
	if start < 0 || md.TotalCompressedSize < 0 || end < start || end > size {
		return fmt.Errorf("column chunk at bytes %d to %d lies outside the file", start, end)
	}
	var buf []byte
	for off := start; off < end; {
		// A page header is small; statistics can make it larger.
		n := min(end-off, 4096)
		var hdr format.PageHeader
		var hdrLen int
		for {
			if int64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			b := buf[:n]
			if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
				return err
			}
			l, err := checkThriftStruct(b)
			if err == nil {
				hdrLen = l
				if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[:l], &hdr); err != nil {
					return fmt.Errorf("page header at byte %d: %w", off, err)
				}
				break
			}
			if n == end-off || n >= 16<<20 {
				return fmt.Errorf("page header at byte %d is malformed", off)
			}
			n = min(end-off, n*16)
		}
		body := int64(hdr.CompressedPageSize)
		if body < 0 || body > end-off-int64(hdrLen) {
			return fmt.Errorf("page at byte %d claims %d bytes, more than its column chunk holds", off, body)
		}
		if u := int64(hdr.UncompressedPageSize); u < 0 || u > maxPageBytes {
			return fmt.Errorf("page at byte %d claims %d bytes uncompressed, more than the %d this reader takes", off, u, maxPageBytes)
		}
		var values int64
		switch {
		case hdr.DataPageHeader.Valid:
			values = int64(hdr.DataPageHeader.V.NumValues)
		case hdr.DataPageHeaderV2.Valid:
			values = int64(hdr.DataPageHeaderV2.V.NumValues)
		case hdr.DictionaryPageHeader.Valid:
			values = int64(hdr.DictionaryPageHeader.V.NumValues)
		}
		if values < 0 || values > maxPageValues {
			return fmt.Errorf("page at byte %d claims %d values, more than the %d this reader takes", off, values, maxPageValues)
		}
		off += int64(hdrLen) + body
	}
	return nil
}
