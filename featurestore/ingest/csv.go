package ingest

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mlgate/mlgate/featurestore"
)

// CSVReader reads the rows of a CSV file (RFC 4180, comma-separated, UTF-8)
// whose first record is a header naming the columns.
//
// Header names are the view's entity columns (all required), its feature
// names (each optional: a feature left out is absent in every row) and
// event_ts (optional). A cell is written as:
//
//	entity      the text, as is
//	float       a decimal or exponent number: 31.5, -2e-3 (float: in float32 range)
//	double
//	int         a decimal integer: -42
//	bool        true, false (any case), 1 or 0
//	string      the text, as is
//	float_list  a JSON array of numbers: [1.5,2,3]
//	event_ts    an RFC 3339 timestamp: 2026-11-21T10:00:00Z
//
// An empty cell is an absent value (so an empty string cannot be given);
// an empty entity cell is an error. Spaces around numbers, booleans and
// timestamps are ignored.
type CSVReader struct {
	r    *csv.Reader
	cols []column // by position in the header
	err  error
}

// NewCSV reads the header of a CSV file for view v. Its errors are *Error
// values that name the header line and, where it applies, the column.
func NewCSV(r io.Reader, v *featurestore.View) (*CSVReader, error) {
	byName, err := viewColumns(v)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &Error{Unit: "line", Line: 1, Err: errors.New("the file is empty: want a header row naming the columns")}
	}
	if err != nil {
		return nil, csvError(err, 0, 0)
	}
	line, _ := cr.FieldPos(0)
	hdrErr := func(col string, err error) error {
		return &Error{Unit: "line", Line: int64(line), Column: col, Err: err}
	}
	c := &CSVReader{r: cr, cols: make([]column, len(header))}
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a byte-order mark, as spreadsheets write
		}
		name := strings.TrimSpace(h)
		if name == "" {
			return nil, hdrErr("", fmt.Errorf("header field %d is empty: want a column name", i+1))
		}
		col, ok := byName[name]
		if !ok {
			return nil, hdrErr(name, unknownColumn(v))
		}
		if seen[name] {
			return nil, hdrErr(name, errors.New("appears twice in the header"))
		}
		seen[name] = true
		c.cols[i] = col
	}
	for _, e := range v.Entities {
		if !seen[e] {
			return nil, hdrErr("", fmt.Errorf("the header has no column %q, an entity column of view %s", e, v.Name))
		}
	}
	cr.FieldsPerRecord = len(header)
	return c, nil
}

// Next returns the next row, or io.EOF after the last.
func (c *CSVReader) Next() (Record, error) {
	if c.err != nil {
		return Record{}, c.err
	}
	rec, err := c.r.Read()
	if err != nil {
		if err != io.EOF {
			err = csvError(err, len(rec), len(c.cols))
		}
		c.err = err
		return Record{}, err
	}
	line, _ := c.r.FieldPos(0)
	values := make(map[string]any, len(rec))
	for i, cell := range rec {
		col := c.cols[i]
		if cell == "" && col.role != entityCol {
			continue
		}
		v, err := parseCell(col, cell)
		if err != nil {
			c.err = &Error{Unit: "line", Line: int64(line), Column: col.name, Err: err}
			return Record{}, c.err
		}
		values[col.name] = v
	}
	return Record{Line: int64(line), Values: values}, nil
}

// Offset returns how many bytes of the input the reader has consumed.
func (c *CSVReader) Offset() int64 { return c.r.InputOffset() }

// csvError turns an error of encoding/csv into an *Error; got and want are
// the field counts of the record and the header.
func csvError(err error, got, want int) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("reading CSV: %w", err)
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return &Error{Unit: "line", Line: int64(pe.StartLine), Err: fmt.Errorf("%w: the record has %d fields, the header %d", pe.Err, got, want)}
	}
	return &Error{Unit: "line", Line: int64(pe.Line), Err: fmt.Errorf("%w (at character %d)", pe.Err, pe.Column)}
}

// parseCell converts a non-empty cell (or an entity cell) of column col.
func parseCell(col column, s string) (any, error) {
	switch col.role {
	case entityCol:
		if err := checkEntity(s); err != nil {
			return nil, err
		}
		return s, nil
	case eventTSCol:
		return parseTS(s)
	}
	t := strings.TrimSpace(s)
	switch col.typ {
	case featurestore.Float:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%s is out of range for a float", quote(s))
			}
			return nil, fmt.Errorf("%s is not a float", quote(s))
		}
		return toFloat32(f, s)
	case featurestore.Double:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%s is out of range for a double", quote(s))
			}
			return nil, fmt.Errorf("%s is not a double", quote(s))
		}
		if err := checkDouble(f, s); err != nil {
			return nil, err
		}
		return f, nil
	case featurestore.Int:
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%s is out of range for an int (64 bits)", quote(s))
			}
			return nil, fmt.Errorf("%s is not an int", quote(s))
		}
		return n, nil
	case featurestore.Bool:
		switch {
		case strings.EqualFold(t, "true") || t == "1":
			return true, nil
		case strings.EqualFold(t, "false") || t == "0":
			return false, nil
		}
		return nil, fmt.Errorf("%s is not a bool (want true, false, 1 or 0)", quote(s))
	case featurestore.String:
		if err := checkString(s); err != nil {
			return nil, err
		}
		return s, nil
	case featurestore.FloatList:
		return parseFloatList(s)
	}
	return nil, fmt.Errorf("unknown feature type %q", col.typ)
}

// parseFloatList parses a float_list cell: a JSON array of numbers.
func parseFloatList(s string) ([]float32, error) {
	bad := func(why string) error {
		return fmt.Errorf("%s is not a float_list (want a JSON array of numbers such as [1.5,2,3])%s", quote(s), why)
	}
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "[") {
		return nil, bad("")
	}
	var raw []any
	if err := json.Unmarshal([]byte(t), &raw); err != nil {
		return nil, bad("")
	}
	out := make([]float32, len(raw))
	for i, e := range raw {
		f, ok := e.(float64)
		if !ok {
			return nil, bad(fmt.Sprintf(": element %d is not a number", i))
		}
		v, err := toFloat32(f, "")
		if err != nil {
			return nil, bad(fmt.Sprintf(": element %d: %v", i, err))
		}
		out[i] = v
	}
	return out, nil
}
