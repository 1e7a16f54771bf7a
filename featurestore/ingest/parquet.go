package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/mlgate/mlgate/featurestore"
)

// ParquetReader reads the rows of a Parquet file, one row group at a time
// and, within a row group, page by page: memory stays bounded by a row
// group's pages, not the file.
//
// The file's top-level columns are the view's entity columns (all required),
// its features (each optional) and event_ts (optional), of these types:
//
//	entity      BYTE_ARRAY (STRING, ENUM or none), or INT32/INT64 (as decimal text)
//	float       FLOAT or DOUBLE (in float32 range), or INT32/INT64
//	double
//	int         INT32 or INT64 (signed or unsigned)
//	bool        BOOLEAN
//	string      BYTE_ARRAY (STRING, ENUM, JSON or none)
//	float_list  LIST of FLOAT or DOUBLE (or a repeated FLOAT/DOUBLE column)
//	event_ts    INT64 TIMESTAMP (any unit), INT96, INT32 DATE, or an RFC 3339 string
//	            (an empty string is absent)
//
// A null is an absent value (a null entity value is an error); a null
// element inside a float_list is an error. Timestamps not adjusted to UTC
// are read as UTC.
type ParquetReader struct {
	r       io.ReaderAt
	size    int64
	file    *parquet.File
	fields  []*pqField // by leaf column index
	scratch [][]parquet.Value
	groups  []parquet.RowGroup
	group   int // index of the next row group to open
	rows    parquet.Rows
	left    int64 // rows of the open row group not read yet
	buf     []parquet.Row
	n, i    int   // rows in buf, and the next one to decode
	row     int64 // rows returned so far
	total   int64
	err     error
}

// pqField is a top-level column of the file, matched to the view.
type pqField struct {
	col    column
	leaf   int
	kind   parquet.Kind // of the leaf
	maxDef int          // the leaf's maximum definition level
	// emptyDef is, for a list, the definition level of an empty list; below
	// it the list is null.
	emptyDef int
	list     bool
	scalar   func(parquet.Value) (any, error)
	elem     func(parquet.Value) (float32, error)
}

// NewParquet opens a Parquet file of size bytes for view v, reading its
// footer only. Errors about the file's columns are *Error values that name
// the column.
func NewParquet(f io.ReaderAt, size int64, v *featurestore.View) (p *ParquetReader, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("not a readable Parquet file: %v", r)
		}
	}()
	byName, err := viewColumns(v)
	if err != nil {
		return nil, err
	}
	footerLen, err := checkFooter(f, size)
	if err != nil {
		return nil, err
	}
	if err := checkFooterThrift(f, size, footerLen); err != nil {
		return nil, err
	}
	file, err := parquet.OpenFile(f, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("not a readable Parquet file: %w", err)
	}
	leaves := len(file.Schema().Columns())
	p = &ParquetReader{
		r:       f,
		size:    size,
		file:    file,
		fields:  make([]*pqField, leaves),
		scratch: make([][]parquet.Value, leaves),
		groups:  file.RowGroups(),
		buf:     make([]parquet.Row, 128),
	}
	seen := map[string]bool{}
	for _, c := range file.Root().Columns() {
		name := c.Name()
		col, ok := byName[name]
		if !ok {
			return nil, &Error{Unit: "row", Column: name, Err: unknownColumn(v)}
		}
		if seen[name] {
			return nil, &Error{Unit: "row", Column: name, Err: errors.New("appears twice in the file's schema")}
		}
		seen[name] = true
		fld, err := newPQField(col, c)
		if err != nil {
			return nil, &Error{Unit: "row", Column: name, Err: err}
		}
		if fld.leaf < 0 || fld.leaf >= leaves || p.fields[fld.leaf] != nil {
			return nil, &Error{Unit: "row", Column: name, Err: errors.New("bad column index in the file's schema")}
		}
		p.fields[fld.leaf] = fld
	}
	for _, e := range v.Entities {
		if !seen[e] {
			return nil, &Error{Unit: "row", Err: fmt.Errorf("the file has no column %q, an entity column of view %s", e, v.Name)}
		}
	}
	for i, fld := range p.fields {
		if fld == nil {
			return nil, &Error{Unit: "row", Err: fmt.Errorf("leaf column %d of the file belongs to no top-level column", i)}
		}
	}
	for _, g := range p.groups {
		if g.NumRows() < 0 {
			return nil, errors.New("not a readable Parquet file: a row group has a negative number of rows")
		}
		p.total += g.NumRows()
	}
	return p, nil
}

// checkFooter checks that the file ends with a footer that fits in it, before
// the Parquet library allocates room for it, and returns its length.
func checkFooter(f io.ReaderAt, size int64) (int64, error) {
	var tail [8]byte
	if size < 12 {
		return 0, fmt.Errorf("not a Parquet file: %d bytes is too short", size)
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return 0, fmt.Errorf("reading the Parquet footer: %w", err)
	}
	switch string(tail[4:]) {
	case "PAR1":
	case "PARE":
		return 0, errors.New("encrypted Parquet files are not supported")
	default:
		return 0, errors.New("not a Parquet file: it does not end with PAR1")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 {
		return 0, fmt.Errorf("not a readable Parquet file: its footer claims %d bytes, more than the file holds", n)
	}
	return n, nil
}

// Close releases the row group being read. The file itself is the caller's
// to close.
func (p *ParquetReader) Close() error {
	p.closeRows()
	if p.err == nil {
		p.err = errors.New("ingest: read from a closed ParquetReader")
	}
	return nil
}

// NumRows returns the number of rows the file holds.
func (p *ParquetReader) NumRows() int64 { return p.total }

// Next returns the next row, or io.EOF after the last.
func (p *ParquetReader) Next() (rec Record, err error) {
	if p.err != nil {
		return Record{}, p.err
	}
	defer func() {
		if r := recover(); r != nil {
			rec, err = Record{}, &Error{Unit: "row", Line: p.row + 1, Err: fmt.Errorf("corrupt Parquet file: %v", r)}
		}
		if err != nil {
			p.err = err
			p.closeRows()
		}
	}()
	for p.i >= p.n {
		if err := p.fill(); err != nil {
			return Record{}, err
		}
	}
	row := p.buf[p.i]
	p.i++
	p.row++
	values, err := p.decode(row)
	if err != nil {
		return Record{}, err
	}
	return Record{Line: p.row, Values: values}, nil
}

// fill reads the next rows into buf, opening the next row group when the
// open one is done.
func (p *ParquetReader) fill() error {
	if p.rows == nil {
		if p.group >= len(p.groups) {
			return io.EOF
		}
		g := p.groups[p.group]
		if err := p.checkRowGroup(p.group); err != nil {
			return &Error{Unit: "row", Line: p.row + 1, Err: fmt.Errorf("corrupt Parquet file: row group %d: %w", p.group, err)}
		}
		p.group++
		p.rows, p.left = g.Rows(), g.NumRows()
	}
	want := p.buf
	if p.left < int64(len(want)) {
		want = want[:p.left]
	}
	n, err := 0, error(nil)
	if len(want) > 0 {
		n, err = p.rows.ReadRows(want)
	}
	p.n, p.i = n, 0
	p.left -= int64(n)
	if err != nil && err != io.EOF {
		return &Error{Unit: "row", Line: p.row + 1, Err: fmt.Errorf("reading the Parquet file: %w", err)}
	}
	if p.left == 0 || n == 0 {
		if p.left > 0 {
			return &Error{Unit: "row", Line: p.row + int64(n) + 1, Err: fmt.Errorf("corrupt Parquet file: row group %d ends %d rows short of the %d its metadata gives",
				p.group-1, p.left, p.groups[p.group-1].NumRows())}
		}
		p.closeRows()
	}
	return nil
}

// checkRowGroup checks the page headers of row group i before the Parquet
// library reads its pages.
func (p *ParquetReader) checkRowGroup(i int) error {
	md := p.file.Metadata()
	if i >= len(md.RowGroups) {
		return errors.New("missing from the file's metadata")
	}
	for j := range md.RowGroups[i].Columns {
		if err := checkColumnChunk(p.r, p.size, &md.RowGroups[i].Columns[j].MetaData); err != nil {
			return fmt.Errorf("column %d: %w", j, err)
		}
	}
	return nil
}

func (p *ParquetReader) closeRows() {
	if p.rows != nil {
		p.rows.Close()
		p.rows = nil
	}
}

// decode converts one Parquet row.
func (p *ParquetReader) decode(row parquet.Row) (map[string]any, error) {
	for i := range p.scratch {
		p.scratch[i] = p.scratch[i][:0]
	}
	for _, v := range row {
		c := v.Column()
		if c < 0 || c >= len(p.scratch) {
			return nil, &Error{Unit: "row", Line: p.row, Err: fmt.Errorf("corrupt Parquet file: a value of column index %d", c)}
		}
		p.scratch[c] = append(p.scratch[c], v)
	}
	values := make(map[string]any, len(p.fields))
	for leaf, f := range p.fields {
		x, present, err := f.value(p.scratch[leaf])
		if err != nil {
			return nil, &Error{Unit: "row", Line: p.row, Column: f.col.name, Err: err}
		}
		if present {
			values[f.col.name] = x
		}
	}
	return values, nil
}

// value converts the values of one row of the field's leaf column.
func (f *pqField) value(vals []parquet.Value) (any, bool, error) {
	if len(vals) == 0 {
		return nil, false, errors.New("corrupt Parquet file: no value in this row")
	}
	null := func(v parquet.Value) bool { return v.IsNull() || v.DefinitionLevel() < f.maxDef }
	if !f.list {
		if len(vals) != 1 {
			return nil, false, fmt.Errorf("corrupt Parquet file: %d values for a single-valued column", len(vals))
		}
		v := vals[0]
		if null(v) {
			if f.col.role == entityCol {
				return nil, false, errors.New("entity value is null")
			}
			return nil, false, nil
		}
		if v.Kind() != f.kind {
			return nil, false, fmt.Errorf("corrupt Parquet file: a %s value in a %s column", v.Kind(), f.kind)
		}
		x, err := f.scalar(v)
		if err == errAbsent {
			return nil, false, nil
		}
		return x, err == nil, err
	}
	if len(vals) == 1 && null(vals[0]) && vals[0].DefinitionLevel() <= f.emptyDef {
		if vals[0].DefinitionLevel() < f.emptyDef {
			return nil, false, nil // a null list
		}
		return []float32{}, true, nil
	}
	out := make([]float32, len(vals))
	for i, v := range vals {
		if null(v) {
			return nil, false, fmt.Errorf("element %d of the list is null", i)
		}
		if v.Kind() != f.kind {
			return nil, false, fmt.Errorf("corrupt Parquet file: a %s value in a %s column", v.Kind(), f.kind)
		}
		x, err := f.elem(v)
		if err != nil {
			return nil, false, fmt.Errorf("element %d of the list: %w", i, err)
		}
		out[i] = x
	}
	return out, true, nil
}

// newPQField matches the top-level column c of a file to col of the view.
func newPQField(col column, c *parquet.Column) (*pqField, error) {
	f := &pqField{col: col}
	if col.role == featureCol && col.typ == featurestore.FloatList {
		var rep, leaf *parquet.Column
		switch {
		case c.Leaf() && c.Repeated(): // repeated float name
			rep, leaf = c, c
		case !c.Leaf() && isList(c) && len(c.Columns()) == 1 && c.Columns()[0].Repeated():
			rep = c.Columns()[0]
			switch {
			case rep.Leaf(): // two-level list
				leaf = rep
			case len(rep.Columns()) == 1 && rep.Columns()[0].Leaf() && !rep.Columns()[0].Repeated():
				leaf = rep.Columns()[0]
			}
		}
		if leaf == nil || leaf.MaxRepetitionLevel() != 1 {
			return nil, fmt.Errorf("Parquet type %s cannot hold a float_list feature (want a LIST of FLOAT or DOUBLE)", describe(c))
		}
		elem, err := floatReader(leaf.Type())
		if err != nil {
			return nil, fmt.Errorf("Parquet type %s cannot hold a float_list feature (want a LIST of FLOAT or DOUBLE)", describe(c))
		}
		f.list, f.elem = true, elem
		f.leaf, f.kind, f.maxDef, f.emptyDef = leaf.Index(), leaf.Type().Kind(), leaf.MaxDefinitionLevel(), rep.MaxDefinitionLevel()-1
		return f, nil
	}
	if !c.Leaf() || c.Repeated() {
		return nil, fmt.Errorf("Parquet type %s cannot hold %s (want a single value)", describe(c), what(col))
	}
	scalar, want := scalarReader(col, c.Type())
	if scalar == nil {
		return nil, fmt.Errorf("Parquet type %s cannot hold %s (want %s)", describe(c), what(col), want)
	}
	f.scalar = scalar
	f.leaf, f.kind, f.maxDef = c.Index(), c.Type().Kind(), c.MaxDefinitionLevel()
	return f, nil
}

// what names a column of a view for messages.
func what(col column) string {
	switch col.role {
	case entityCol:
		return "an entity column"
	case eventTSCol:
		return "event_ts"
	}
	if col.typ == featurestore.Int {
		return "an int feature"
	}
	return "a " + string(col.typ) + " feature"
}

func logical(t parquet.Type) any {
	if lt := t.LogicalType(); lt != nil {
		return lt.Value
	}
	return nil
}

func isList(c *parquet.Column) bool {
	_, ok := logical(c.Type()).(*format.ListType)
	return ok
}

// describe names the Parquet type of column c for messages.
func describe(c *parquet.Column) string {
	if !c.Leaf() {
		if isList(c) {
			return "LIST (of " + leafTypes(c) + ")"
		}
		return "group (of " + leafTypes(c) + ")"
	}
	s := c.Type().Kind().String()
	if lt := c.Type().LogicalType(); lt != nil && lt.Value != nil {
		s += " (" + lt.String() + ")"
	}
	if c.Repeated() {
		s = "repeated " + s
	}
	return s
}

func leafTypes(c *parquet.Column) string {
	var s string
	var walk func(*parquet.Column)
	walk = func(c *parquet.Column) {
		if c.Leaf() {
			if s != "" {
				s += ", "
			}
			s += describe(c)
			return
		}
		for _, k := range c.Columns() {
			walk(k)
		}
	}
	walk(c)
	return s
}

// intReader reads integer columns (INT32, INT64, with no logical type or an
// INT one), or returns nil.
func intReader(t parquet.Type) func(parquet.Value) (int64, error) {
	lt := logical(t)
	it, isInt := lt.(*format.IntType)
	if lt != nil && !isInt {
		return nil
	}
	unsigned := isInt && !it.IsSigned
	switch t.Kind() {
	case parquet.Int32:
		if unsigned {
			return func(v parquet.Value) (int64, error) { return int64(uint32(v.Int32())), nil }
		}
		return func(v parquet.Value) (int64, error) { return int64(v.Int32()), nil }
	case parquet.Int64:
		if unsigned {
			return func(v parquet.Value) (int64, error) {
				u := v.Uint64()
				if u > math.MaxInt64 {
					return 0, fmt.Errorf("%d is out of range for an int (64 bits)", u)
				}
				return int64(u), nil
			}
		}
		return func(v parquet.Value) (int64, error) { return v.Int64(), nil }
	}
	return nil
}

// floatReader reads FLOAT and DOUBLE columns as float32, or fails.
func floatReader(t parquet.Type) (func(parquet.Value) (float32, error), error) {
	if logical(t) != nil {
		return nil, errors.New("not a plain float")
	}
	switch t.Kind() {
	case parquet.Float:
		return func(v parquet.Value) (float32, error) { return toFloat32(float64(v.Float()), "") }, nil
	case parquet.Double:
		return func(v parquet.Value) (float32, error) { return toFloat32(v.Double(), "") }, nil
	}
	return nil, errors.New("not a float")
}

// isText reports whether t is a BYTE_ARRAY holding text.
func isText(t parquet.Type, json bool) bool {
	if t.Kind() != parquet.ByteArray {
		return false
	}
	switch logical(t).(type) {
	case nil, *format.StringType, *format.EnumType:
		return true
	case *format.JsonType:
		return json
	}
	return false
}

// scalarReader returns the converter of a single-valued column of type t for
// col, or nil and what types would do.
func scalarReader(col column, t parquet.Type) (func(parquet.Value) (any, error), string) {
	ints := intReader(t)
	switch col.role {
	case entityCol:
		if isText(t, false) {
			return func(v parquet.Value) (any, error) {
				s := string(v.ByteArray())
				return s, checkEntity(s)
			}, ""
		}
		if ints != nil {
			return func(v parquet.Value) (any, error) {
				n, err := ints(v)
				return strconv.FormatInt(n, 10), err
			}, ""
		}
		return nil, "BYTE_ARRAY (STRING), INT32 or INT64"
	case eventTSCol:
		return tsReader(t), "INT64 (TIMESTAMP), INT96, INT32 (DATE) or BYTE_ARRAY (STRING) in RFC 3339"
	}
	switch col.typ {
	case featurestore.Float:
		if fr, err := floatReader(t); err == nil {
			return func(v parquet.Value) (any, error) { return fr(v) }, ""
		}
		if ints != nil {
			return func(v parquet.Value) (any, error) {
				n, err := ints(v)
				return float32(n), err
			}, ""
		}
		return nil, "FLOAT, DOUBLE, INT32 or INT64"
	case featurestore.Double:
		if logical(t) == nil {
			switch t.Kind() {
			case parquet.Float:
				return func(v parquet.Value) (any, error) {
					f := float64(v.Float())
					return f, checkDouble(f, "")
				}, ""
			case parquet.Double:
				return func(v parquet.Value) (any, error) {
					f := v.Double()
					return f, checkDouble(f, "")
				}, ""
			}
		}
		if ints != nil {
			return func(v parquet.Value) (any, error) {
				n, err := ints(v)
				return float64(n), err
			}, ""
		}
		return nil, "DOUBLE, FLOAT, INT32 or INT64"
	case featurestore.Int:
		if ints != nil {
			return func(v parquet.Value) (any, error) { return ints(v) }, ""
		}
		return nil, "INT32 or INT64"
	case featurestore.Bool:
		if t.Kind() == parquet.Boolean {
			return func(v parquet.Value) (any, error) { return v.Boolean(), nil }, ""
		}
		return nil, "BOOLEAN"
	case featurestore.String:
		if isText(t, true) {
			return func(v parquet.Value) (any, error) {
				s := string(v.ByteArray())
				return s, checkString(s)
			}, ""
		}
		return nil, "BYTE_ARRAY (STRING)"
	}
	return nil, "a supported type"
}

// tsReader reads event times, or returns nil.
func tsReader(t parquet.Type) func(parquet.Value) (any, error) {
	switch lt := logical(t).(type) {
	case *format.TimestampType:
		if t.Kind() != parquet.Int64 {
			return nil
		}
		var conv func(int64) time.Time
		switch lt.Unit.Value.(type) {
		case *format.MilliSeconds:
			conv = time.UnixMilli
		case *format.MicroSeconds:
			conv = time.UnixMicro
		case *format.NanoSeconds:
			conv = func(n int64) time.Time { return time.Unix(0, n) }
		default:
			return nil
		}
		return func(v parquet.Value) (any, error) { return formatTS(conv(v.Int64())) }
	case *format.DateType:
		if t.Kind() != parquet.Int32 {
			return nil
		}
		return func(v parquet.Value) (any, error) {
			return formatTS(time.Unix(int64(v.Int32())*86400, 0))
		}
	case nil:
		switch t.Kind() {
		case parquet.Int96:
			return func(v parquet.Value) (any, error) { return formatTS(int96Time(v.Int96())) }
		case parquet.ByteArray:
			return textTS
		}
	case *format.StringType:
		if t.Kind() == parquet.ByteArray {
			return textTS
		}
	}
	return nil
}

// textTS reads an event time written as text; an empty one is absent.
func textTS(v parquet.Value) (any, error) {
	if len(v.ByteArray()) == 0 {
		return nil, errAbsent
	}
	return parseTS(string(v.ByteArray()))
}

// errAbsent is what a converter returns for a value that reads as absent.
var errAbsent = errors.New("absent")

// int96Time decodes the legacy INT96 timestamp: nanoseconds of the day in
// the first 8 bytes, the Julian day in the last 4.
func int96Time(x deprecated.Int96) time.Time {
	const unixEpochJulianDay = 2440588
	nanos := int64(uint64(x[1])<<32 | uint64(x[0]))
	return time.Unix((int64(x[2])-unixEpochJulianDay)*86400, nanos)
}
