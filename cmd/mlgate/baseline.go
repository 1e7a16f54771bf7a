package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/mlgate/mlgate/drift"
)

// A baseline file is a table of training data, CSV with a header line or
// Parquet with flat columns. Every column is a feature named by its header,
// as the gateway names a model's features: "x[0]", "x[1]" for column j of a
// raw input x, "user:age" for a feature of a feature spec. A column named
// "prediction:NAME" is the prediction output NAME. Numbers make a numeric
// histogram, any other text (or a bool) a categorical one; empty cells and
// nulls are missing values.

// predictionPrefix marks a baseline file's prediction columns.
const predictionPrefix = "prediction:"

// baselineFileBins is how many bins a numeric series of a baseline computed
// from a file has.
const baselineFileBins = 10

// metadataWithBaseline returns the registration metadata: the JSON object of
// the metadata file (none when metadataPath is ""), with the baseline
// computed from baselinePath as its "baseline".
func metadataWithBaseline(metadataPath, baselinePath string) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if metadataPath != "" {
		raw, err := os.ReadFile(metadataPath)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
				return nil, fmt.Errorf("--metadata %s: want a JSON object: %v", metadataPath, err)
			}
		}
		if b, ok := fields["baseline"]; ok && string(bytes.TrimSpace(b)) != "null" {
			return nil, fmt.Errorf("--metadata %s has a baseline and --baseline %s gives another: drop one of them", metadataPath, baselinePath)
		}
	}
	b, rows, err := fileBaseline(baselinePath)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	fields["baseline"] = raw
	fmt.Fprintf(stdout, "baseline from %s: %s, %s, %s\n", filepath.Base(baselinePath),
		plural(int(rows), "row", "rows"), plural(len(b.Features), "feature", "features"), plural(len(b.Predictions), "prediction", "predictions"))
	return json.Marshal(fields)
}

// fileBaseline computes a baseline from a CSV or Parquet file, told apart by
// the name's extension (.parquet or .pq is Parquet, anything else CSV). It
// returns the number of rows read too.
func fileBaseline(path string) (*drift.Baseline, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("--baseline: %w", err)
	}
	defer f.Close()
	b := &baselineBuilder{b: drift.NewBaselineBuilder()}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		b.unit = "row"
		err = b.readParquet(f)
	default:
		b.unit = "line"
		err = b.readCSV(f)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("--baseline %s: %w", path, err)
	}
	if b.rows == 0 {
		return nil, 0, fmt.Errorf("--baseline %s: no rows of data", path)
	}
	baseline := b.b.Build(baselineFileBins)
	if err := baseline.Check(); err != nil {
		if len(baseline.Features)+len(baseline.Predictions) == 0 {
			return nil, 0, fmt.Errorf("--baseline %s: every cell is empty", path)
		}
		return nil, 0, fmt.Errorf("--baseline %s: %w", path, err)
	}
	return baseline, b.rows, nil
}

// baselineBuilder feeds the cells of a file to a drift.BaselineBuilder,
// keeping each column to numbers or to text.
type baselineBuilder struct {
	b    *drift.BaselineBuilder
	cols []baselineColumn
	rows int64
	unit string // "line" (CSV) or "row" (Parquet), for errors
}

type baselineColumn struct {
	header     string // as in the file
	name       string // the series, without the prediction prefix
	prediction bool
	// kind is "" until the first value, then "number" or "text"; first is
	// the line (or row) of that value.
	kind  string
	first int64
}

// setColumns checks the header: names not empty, not repeated, and a
// prediction column naming its output.
func (b *baselineBuilder) setColumns(header []string) error {
	seen := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		c := baselineColumn{header: h, name: h}
		if rest, ok := strings.CutPrefix(h, predictionPrefix); ok {
			c.name, c.prediction = rest, true
		}
		switch {
		case h == "":
			return fmt.Errorf("column %d has no name", i+1)
		case c.name == "":
			return fmt.Errorf("column %d, %q: name the prediction output after %q, e.g. %sy[0]", i+1, h, predictionPrefix, predictionPrefix)
		}
		if j, dup := seen[h]; dup {
			return fmt.Errorf("column %d, %q: the same name as column %d", i+1, h, j+1)
		}
		seen[h] = i
		b.cols = append(b.cols, c)
	}
	return nil
}

// add records a value of column i at line (or row) n: a float64, a string
// or a bool.
func (b *baselineBuilder) add(i int, n int64, v any) error {
	c := &b.cols[i]
	kind := "text"
	if _, ok := v.(float64); ok {
		kind = "number"
	}
	switch c.kind {
	case "":
		c.kind, c.first = kind, n
	case kind:
	default:
		return fmt.Errorf("column %q: %s, but its first value (%s %d) is a %s: a column holds numbers or text, not both; leave a missing value empty",
			c.header, describe(v), b.unit, c.first, c.kind)
	}
	var err error
	if c.prediction {
		err = b.b.AddPrediction(c.name, v)
	} else {
		err = b.b.Add(c.name, v)
	}
	if err != nil {
		return fmt.Errorf("column %q: %w", c.header, err)
	}
	return nil
}

func describe(v any) string {
	switch x := v.(type) {
	case float64:
		return fmt.Sprintf("%v is a number", x)
	case string:
		return fmt.Sprintf("%.40q is text", x)
	}
	return fmt.Sprintf("%v is text", v)
}

func (b *baselineBuilder) readCSV(r io.Reader) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return errors.New("empty file: want a header line naming the columns, then rows")
	}
	if err != nil {
		return csvError(err, 0)
	}
	if err := b.setColumns(header); err != nil {
		return fmt.Errorf("line 1: %w", err)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(err, len(b.cols))
		}
		b.rows++
		for i, cell := range rec {
			line, _ := cr.FieldPos(i)
			if !utf8.ValidString(cell) {
				return fmt.Errorf("line %d, column %q: not valid UTF-8", line, b.cols[i].header)
			}
			cell = strings.TrimSpace(cell)
			if cell == "" {
				continue
			}
			var v any = cell
			if x, err := strconv.ParseFloat(cell, 64); err == nil {
				switch {
				case !math.IsNaN(x) && !math.IsInf(x, 0):
					v = x
				case b.cols[i].kind == "number":
					// NaN or ±Inf in a column of numbers: missing.
					continue
				}
			}
			if err := b.add(i, int64(line), v); err != nil {
				return fmt.Errorf("line %d, %w", line, err)
			}
		}
	}
}

// csvError words a CSV error by its line.
func csvError(err error, columns int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Errorf("line %d: want %d cells, one per column of the header", pe.StartLine, columns)
		}
		return fmt.Errorf("line %d, character %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return err
}

// parquetLeaf reads one column's values.
type parquetLeaf struct {
	col    int // in b.cols
	maxDef int
	value  func(parquet.Value) (any, error)
}

func (b *baselineBuilder) readParquet(f *os.File) (err error) {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt Parquet file: %v", r)
		}
	}()
	file, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("not a readable Parquet file: %w", err)
	}
	top := file.Root().Columns()
	names := make([]string, len(top))
	for i, c := range top {
		names[i] = c.Name()
	}
	if err := b.setColumns(names); err != nil {
		return err
	}
	leaves := make([]*parquetLeaf, len(file.Schema().Columns()))
	for i, c := range top {
		if !c.Leaf() || c.Repeated() {
			return fmt.Errorf("column %q is nested or repeated: give each value a column of its own, e.g. x[0], x[1]", c.Name())
		}
		value, err := parquetValue(c)
		if err != nil {
			return fmt.Errorf("column %q: %w", c.Name(), err)
		}
		idx := c.Index()
		if idx < 0 || idx >= len(leaves) || leaves[idx] != nil {
			return fmt.Errorf("corrupt Parquet file: column %q has a bad index", c.Name())
		}
		leaves[idx] = &parquetLeaf{col: i, maxDef: c.MaxDefinitionLevel(), value: value}
	}
	buf := make([]parquet.Row, 256)
	for _, g := range file.RowGroups() {
		rows := g.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				b.rows++
				for _, v := range row {
					c := v.Column()
					if c < 0 || c >= len(leaves) || leaves[c] == nil {
						rows.Close()
						return fmt.Errorf("row %d: corrupt Parquet file: a value of leaf column %d", b.rows, c)
					}
					l := leaves[c]
					if v.IsNull() || v.DefinitionLevel() < l.maxDef {
						continue
					}
					x, err := l.value(v)
					if err == nil && x != nil {
						err = b.add(l.col, b.rows, x)
					} else if err != nil {
						err = fmt.Errorf("column %q: %w", b.cols[l.col].header, err)
					}
					if err != nil {
						rows.Close()
						return fmt.Errorf("row %d, %w", b.rows, err)
					}
				}
			}
			if err == io.EOF || (err == nil && n == 0) {
				break
			}
			if err != nil {
				rows.Close()
				return fmt.Errorf("row %d: reading the Parquet file: %w", b.rows+1, err)
			}
		}
		rows.Close()
	}
	return nil
}

// parquetValue returns the conversion of a leaf column's values: numbers to
// float64 (decimals scaled), bools as they are, byte arrays to strings.
func parquetValue(c *parquet.Column) (func(parquet.Value) (any, error), error) {
	t := c.Type()
	scale := 0.0
	if lt := t.LogicalType(); lt != nil {
		if d, ok := lt.Value.(*format.DecimalType); ok {
			scale = math.Pow10(-int(d.Scale))
		}
	} else if ct := t.ConvertedType(); ct != nil && *ct == deprecated.Decimal {
		return nil, errors.New("a decimal without its scale in a logical type is not supported; write it as a double")
	}
	switch t.Kind() {
	case parquet.Boolean:
		return func(v parquet.Value) (any, error) { return v.Boolean(), nil }, nil
	case parquet.Int32, parquet.Int64:
		return func(v parquet.Value) (any, error) {
			x := float64(v.Int64())
			if t.Kind() == parquet.Int32 {
				x = float64(v.Int32())
			}
			if scale != 0 {
				x *= scale
			}
			return x, nil
		}, nil
	case parquet.Float:
		return func(v parquet.Value) (any, error) { return finite(float64(v.Float())), nil }, nil
	case parquet.Double:
		return func(v parquet.Value) (any, error) { return finite(v.Double()), nil }, nil
	case parquet.ByteArray, parquet.FixedLenByteArray:
		if scale != 0 {
			return nil, errors.New("a decimal stored as bytes is not supported; write it as a double")
		}
		return func(v parquet.Value) (any, error) {
			s := string(v.ByteArray())
			if !utf8.ValidString(s) {
				return nil, errors.New("not valid UTF-8 text")
			}
			return s, nil
		}, nil
	}
	return nil, fmt.Errorf("values of type %v are not supported", t)
}

// finite returns x, or nil (missing) for NaN and ±Inf.
func finite(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}
