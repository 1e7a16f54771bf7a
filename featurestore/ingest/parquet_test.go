package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"

	"github.com/mlgate/mlgate/featurestore"
)

// writeParquet writes rows as a Parquet file with row groups of at most
// perGroup rows.
func writeParquet[T any](t testing.TB, rows []T, perGroup int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.MaxRowsPerRowGroup(perGroup))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readParquet(t testing.TB, v *featurestore.View, b []byte) ([]Record, error) {
	t.Helper()
	r, err := NewParquet(bytes.NewReader(b), int64(len(b)), v)
	if err != nil {
		return nil, err
	}
	return readAll(r)
}

func ptr[T any](x T) *T { return &x }

type userRow struct {
	UserID  string    `parquet:"user_id"`
	Age     *float32  `parquet:"age,optional"`
	Score   *float64  `parquet:"score,optional"`
	Visits  *int64    `parquet:"visits,optional"`
	Name    *string   `parquet:"name,optional"`
	Active  *bool     `parquet:"active,optional"`
	Emb     []float32 `parquet:"emb,list,optional"`
	EventTS time.Time `parquet:"event_ts,timestamp(microsecond)"`
}

func TestParquetValues(t *testing.T) {
	ts := time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)
	var rows []userRow
	var want []map[string]any
	for i := range 250 {
		r := userRow{UserID: fmt.Sprintf("u%d", i), EventTS: ts.Add(time.Duration(i) * time.Second)}
		w := map[string]any{"user_id": r.UserID, "event_ts": r.EventTS.Format(time.RFC3339Nano)}
		if i%3 != 0 { // every third row has nulls only
			r.Age, r.Score, r.Visits = ptr(float32(i)+0.5), ptr(float64(i)/4), ptr(int64(i)-100)
			r.Name, r.Active, r.Emb = ptr(fmt.Sprint("name ", i)), ptr(i%2 == 0), []float32{float32(i), -1}
			w["age"], w["score"], w["visits"] = float32(i)+0.5, float64(i)/4, int64(i)-100
			w["name"], w["active"], w["emb"] = fmt.Sprint("name ", i), i%2 == 0, []float32{float32(i), -1}
		}
		if i == 7 {
			r.Emb, w["emb"] = []float32{}, []float32{}
		}
		rows = append(rows, r)
		want = append(want, w)
	}
	b := writeParquet(t, rows, 100)
	p, err := NewParquet(bytes.NewReader(b), int64(len(b)), testView)
	if err != nil {
		t.Fatal(err)
	}
	if p.NumRows() != 250 || len(p.groups) != 3 {
		t.Fatalf("NumRows = %d in %d row groups, want 250 in 3", p.NumRows(), len(p.groups))
	}
	recs, err := readAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want) {
		t.Fatalf("got %d rows, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if r.Line != int64(i+1) {
			t.Errorf("row %d: Line = %d", i, r.Line)
		}
		if !reflect.DeepEqual(r.Values, want[i]) {
			t.Errorf("row %d:\n got  %#v\n want %#v", i, r.Values, want[i])
		}
	}
}

// TestParquetTypes reads the other physical and logical types that fit.
func TestParquetTypes(t *testing.T) {
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	ts := day.Add(10*time.Hour + 500*time.Millisecond)
	julian := uint32(2440588 + ts.Unix()/86400)
	nanos := uint64(ts.Sub(day))

	type alt struct {
		UserID  int64            `parquet:"user_id"`
		Age     float64          `parquet:"age"`
		Score   float32          `parquet:"score"`
		Visits  uint32           `parquet:"visits,uint(32)"`
		Emb     []float64        `parquet:"emb,list"`
		Name    string           `parquet:"name,enum"`
		EventTS deprecated.Int96 `parquet:"event_ts"`
	}
	b := writeParquet(t, []alt{{UserID: -12, Age: 1.25, Score: 0.5, Visits: math.MaxUint32, Emb: []float64{0.5, 2},
		Name: "x", EventTS: deprecated.Int96{uint32(nanos), uint32(nanos >> 32), julian}}}, 10)
	recs, err := readParquet(t, testView, b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"user_id": "-12", "age": float32(1.25), "score": 0.5, "visits": int64(math.MaxUint32),
		"emb": []float32{0.5, 2}, "name": "x", "event_ts": "2026-11-21T10:00:00.5Z"}
	if !reflect.DeepEqual(recs[0].Values, want) {
		t.Errorf("got  %#v\nwant %#v", recs[0].Values, want)
	}

	type ints struct {
		UserID  int32     `parquet:"user_id"`
		Age     int32     `parquet:"age"`
		Score   int64     `parquet:"score"`
		Emb     []float32 `parquet:"emb"` // a repeated column, not a LIST
		EventTS string    `parquet:"event_ts"`
	}
	b = writeParquet(t, []ints{{UserID: 5, Age: 30, Score: -2, Emb: []float32{1}, EventTS: "2026-11-21T12:00:00+02:00"}, {UserID: 6}}, 10)
	recs, err = readParquet(t, testView, b)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"user_id": "5", "age": float32(30), "score": float64(-2), "emb": []float32{1}, "event_ts": "2026-11-21T10:00:00Z"}
	if !reflect.DeepEqual(recs[0].Values, want) {
		t.Errorf("got  %#v\nwant %#v", recs[0].Values, want)
	}
	if want := map[string]any{"user_id": "6", "age": float32(0), "score": float64(0), "emb": []float32{}}; !reflect.DeepEqual(recs[1].Values, want) {
		t.Errorf("empty repeated column and event_ts text:\n got  %#v\nwant %#v", recs[1].Values, want)
	}

	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"millis", writeParquet(t, []struct {
			U  string    `parquet:"user_id"`
			TS time.Time `parquet:"event_ts,timestamp(millisecond)"`
		}{{"a", ts}}, 1), "2026-11-21T10:00:00.5Z"},
		{"nanos, local", writeParquet(t, []struct {
			U  string `parquet:"user_id"`
			TS int64  `parquet:"event_ts,timestamp(nanosecond:local)"`
		}{{"a", ts.UnixNano() + 1}}, 1), "2026-11-21T10:00:00.500000001Z"},
		{"date", writeParquet(t, []struct {
			U  string `parquet:"user_id"`
			TS int32  `parquet:"event_ts,date"`
		}{{"a", int32(day.Unix() / 86400)}}, 1), "2026-11-21T00:00:00Z"},
	} {
		recs, err := readParquet(t, testView, tc.file)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if got := recs[0].Values["event_ts"]; got != tc.want {
			t.Errorf("%s: event_ts = %v, want %s", tc.name, got, tc.want)
		}
	}
}

func TestParquetErrors(t *testing.T) {
	type strAge struct {
		U   string `parquet:"user_id"`
		Age string `parquet:"age"`
	}
	type nested struct {
		U   string `parquet:"user_id"`
		Age struct {
			X float32 `parquet:"x"`
		} `parquet:"age"`
	}
	type optEntity struct {
		U *string `parquet:"user_id,optional"`
	}
	type nullElem struct {
		U   string     `parquet:"user_id"`
		Emb []*float32 `parquet:"emb,list" parquet-element:",optional"`
	}
	type bigUint struct {
		U      string `parquet:"user_id"`
		Visits uint64 `parquet:"visits,uint(64)"`
	}
	good := writeParquet(t, []userRow{{UserID: "a"}, {UserID: "b"}}, 10)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"wrong type", writeParquet(t, []strAge{{"a", "1"}}, 1),
			`column "age": Parquet type BYTE_ARRAY (STRING) cannot hold a float feature (want FLOAT, DOUBLE, INT32 or INT64)`},
		{"group", writeParquet(t, []nested{{U: "a"}}, 1),
			`column "age": Parquet type group (of FLOAT) cannot hold a float feature (want a single value)`},
		{"list for a scalar", writeParquet(t, []struct {
			U     string    `parquet:"user_id"`
			Score []float64 `parquet:"score,list"`
		}{{U: "a"}}, 1),
			`column "score": Parquet type LIST (of DOUBLE) cannot hold a double feature (want a single value)`},
		{"scalar for a list", writeParquet(t, []struct {
			U   string  `parquet:"user_id"`
			Emb float32 `parquet:"emb"`
		}{{U: "a"}}, 1),
			`column "emb": Parquet type FLOAT cannot hold a float_list feature (want a LIST of FLOAT or DOUBLE)`},
		{"list of strings", writeParquet(t, []struct {
			U   string   `parquet:"user_id"`
			Emb []string `parquet:"emb,list"`
		}{{U: "a"}}, 1),
			`column "emb": Parquet type LIST (of BYTE_ARRAY (STRING)) cannot hold a float_list feature (want a LIST of FLOAT or DOUBLE)`},
		{"unknown column", writeParquet(t, []struct {
			U string `parquet:"user_id"`
			X int64  `parquet:"agee"`
		}{{U: "a"}}, 1),
			`column "agee": not a column of view user (its columns: user_id, age, score, visits, name, active, emb, event_ts)`},
		{"missing entity", writeParquet(t, []struct {
			X int64 `parquet:"visits"`
		}{{1}}, 1),
			`the file has no column "user_id", an entity column of view user`},
		{"null entity", writeParquet(t, []optEntity{{ptr("a")}, {nil}}, 10),
			`row 2, column "user_id": entity value is null`},
		{"empty entity", writeParquet(t, []optEntity{{ptr("")}}, 10),
			`row 1, column "user_id": entity value is empty`},
		{"NaN", writeParquet(t, []userRow{{UserID: "a"}, {UserID: "b", Score: ptr(math.NaN())}}, 1),
			`row 2, column "score": "NaN" is not a finite number`},
		{"float range", writeParquet(t, []struct {
			U   string  `parquet:"user_id"`
			Age float64 `parquet:"age"`
		}{{"a", 1e40}}, 1),
			`row 1, column "age": "1e+40" is out of range for a float`},
		{"null list element", writeParquet(t, []nullElem{{"a", []*float32{ptr(float32(1))}}, {"b", []*float32{ptr(float32(1)), nil}}}, 10),
			`row 2, column "emb": element 1 of the list is null`},
		{"uint64", writeParquet(t, []bigUint{{"a", math.MaxUint64}}, 1),
			`row 1, column "visits": 18446744073709551615 is out of range for an int (64 bits)`},
		{"bad UTF-8", writeParquet(t, []userRow{{UserID: "a", Name: ptr("\xff")}}, 1),
			`row 1, column "name": "\xff" is not valid UTF-8`},
		{"bad timestamp text", writeParquet(t, []struct {
			U  string `parquet:"user_id"`
			TS string `parquet:"event_ts"`
		}{{"a", "noon"}}, 1),
			`row 1, column "event_ts": "noon" is not an RFC 3339 timestamp such as 2026-11-21T10:00:00Z`},
		{"not parquet", []byte("user_id\nu1\nu2\nu3\n"), `not a Parquet file: it does not end with PAR1`},
		{"empty", nil, `not a Parquet file: 0 bytes is too short`},
		{"truncated", good[len(good)/2:], `not a readable Parquet file`},
		{"huge footer", append([]byte("PAR1PAR1"), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'), `its footer claims 2147483647 bytes`},
	}
	for _, tt := range tests {
		_, err := readParquet(t, testView, tt.file)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s:\n got  %v\n want %s", tt.name, err, tt.want)
		}
		if err != nil && strings.HasPrefix(tt.want, "row ") {
			var e *Error
			if !errors.As(err, &e) || e.Line == 0 || e.Unit != "row" {
				t.Errorf("%s: %#v is not an *Error with a row", tt.name, err)
			}
		}
	}
}

// countingReaderAt counts the bytes read.
type countingReaderAt struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(b, off)
	c.n.Add(int64(n))
	return n, err
}

// TestParquetStreams checks that reading the first rows does not read the
// whole file.
func TestParquetStreams(t *testing.T) {
	rows := make([]userRow, 20000)
	for i := range rows {
		rows[i] = userRow{UserID: fmt.Sprintf("user-%08d", i), Name: ptr(strings.Repeat("n", i%50)), Emb: []float32{float32(i), 1, 2, 3}}
	}
	b := writeParquet(t, rows, 2000)
	cr := &countingReaderAt{r: bytes.NewReader(b)}
	p, err := NewParquet(cr, int64(len(b)), testView)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if n := cr.n.Load(); n > int64(len(b))/4 {
		t.Errorf("reading the first row read %d of %d bytes", n, len(b))
	}
	recs, err := readAll(p)
	if err != nil || len(recs) != len(rows)-1 {
		t.Fatalf("read %d more rows, err %v", len(recs), err)
	}
	if last := recs[len(recs)-1]; last.Line != int64(len(rows)) || last.Values["user_id"] != "user-00019999" {
		t.Errorf("last row: %d %v", last.Line, last.Values["user_id"])
	}
}
