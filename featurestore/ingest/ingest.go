// Package ingest decodes files of feature rows (CSV and Parquet) into rows
// typed for a feature view, ready for the gateway's rows API
// (POST /v1/feature-views/{name}/rows).
//
// A row is a map from column name to value: entity columns hold strings;
// feature columns hold float32 (float), float64 (double), int64 (int), string,
// bool or []float32 (float_list); event_ts, when the file has it, holds an
// RFC 3339 timestamp in UTC. An absent value (an empty CSV cell, a Parquet
// null) is left out of the map. Every value marshals to JSON: non-finite
// numbers and invalid UTF-8 are refused, never altered.
//
// Readers stream: a CSV is read record by record, a Parquet file row group by
// row group, page by page.
package ingest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mlgate/mlgate/featurestore"
)

// EventTS is the optional column that holds a row's event time.
const EventTS = "event_ts"

// Record is one decoded row.
type Record struct {
	// Line locates the row in its file: for a CSV, the 1-based line on which
	// the record starts (the header is line 1); for a Parquet file, the
	// 1-based row number.
	Line int64
	// Values maps column names to typed values; absent values are left out.
	Values map[string]any
}

// Reader yields the rows of a file.
type Reader interface {
	// Next returns the next row, or io.EOF after the last one. After any
	// other error the reader is done: Next returns that error again.
	Next() (Record, error)
}

var (
	_ Reader = (*CSVReader)(nil)
	_ Reader = (*ParquetReader)(nil)
)

// Error is a problem with a file, located at a line (CSV) or row (Parquet)
// and, when it concerns one, a column. Its text reads
//
//	line 17, column "age": "abc" is not a float
type Error struct {
	// Unit names what Line counts: "line" (CSV) or "row" (Parquet).
	Unit string
	// Line is the 1-based line or row number; 0 when the problem is not
	// at one row (a Parquet file's schema, for instance).
	Line int64
	// Column is the column at fault, or "".
	Column string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		unit := e.Unit
		if unit == "" {
			unit = "line"
		}
		fmt.Fprintf(&b, "%s %d", unit, e.Line)
	}
	if e.Column != "" {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "column %q", e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// role is what a column of a file is to the view.
type role int

const (
	entityCol role = iota
	featureCol
	eventTSCol
)

// column is one column of a file, matched to the view.
type column struct {
	name string
	role role
	typ  featurestore.Type // for features
}

// viewColumns maps every column a file may have to its role.
func viewColumns(v *featurestore.View) (map[string]column, error) {
	if v == nil {
		return nil, fmt.Errorf("no feature view given")
	}
	if len(v.Entities) == 0 {
		return nil, fmt.Errorf("view %s has no entity columns", v.Name)
	}
	cols := make(map[string]column, len(v.Entities)+len(v.Features)+1)
	add := func(c column) error {
		if _, dup := cols[c.name]; dup {
			return fmt.Errorf("view %s: column %q is given twice", v.Name, c.name)
		}
		cols[c.name] = c
		return nil
	}
	for _, e := range v.Entities {
		if err := add(column{name: e, role: entityCol}); err != nil {
			return nil, err
		}
	}
	for _, f := range v.Features {
		if !knownType(f.Type) {
			return nil, fmt.Errorf("view %s: feature %s has unknown type %q", v.Name, f.Name, f.Type)
		}
		if err := add(column{name: f.Name, role: featureCol, typ: f.Type}); err != nil {
			return nil, err
		}
	}
	if err := add(column{name: EventTS, role: eventTSCol}); err != nil {
		return nil, err
	}
	return cols, nil
}

func knownType(t featurestore.Type) bool {
	for _, k := range featurestore.Types {
		if k == t {
			return true
		}
	}
	return false
}

// unknownColumn describes a column that the view does not have.
func unknownColumn(v *featurestore.View) error {
	names := append([]string(nil), v.Entities...)
	for _, f := range v.Features {
		names = append(names, f.Name)
	}
	names = append(names, EventTS)
	return fmt.Errorf("not a column of view %s (its columns: %s)", v.Name, strings.Join(names, ", "))
}

// quote quotes a value for an error message, shortening a long one.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// checkEntity checks an entity column value.
func checkEntity(s string) error {
	if err := featurestore.CheckEntityValue(s); err != nil {
		return fmt.Errorf("entity value %s", err)
	}
	return nil
}

// checkString checks a string feature value.
func checkString(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", quote(s))
	}
	return nil
}

// toFloat32 narrows f to a float feature value; text, when not "", is how
// the value was written, for messages.
func toFloat32(f float64, text string) (float32, error) {
	if text == "" {
		text = strconv.FormatFloat(f, 'g', -1, 64)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a finite number", quote(text))
	}
	if math.Abs(f) > math.MaxFloat32 {
		return 0, fmt.Errorf("%s is out of range for a float", quote(text))
	}
	return float32(f), nil
}

// checkDouble checks a double feature value.
func checkDouble(f float64, text string) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		if text == "" {
			text = strconv.FormatFloat(f, 'g', -1, 64)
		}
		return fmt.Errorf("%s is not a finite number", quote(text))
	}
	return nil
}

// formatTS writes an event time the way the rows API takes it.
func formatTS(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return "", fmt.Errorf("timestamp %s is outside the years 1 to 9999", t.Format(time.RFC3339Nano))
	}
	return t.Format(time.RFC3339Nano), nil
}

// parseTS parses an RFC 3339 event time.
func parseTS(s string) (string, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%s is not an RFC 3339 timestamp such as 2026-11-21T10:00:00Z", quote(s))
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return "", fmt.Errorf("%s is outside the years 1 to 9999 once in UTC", quote(s))
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}
