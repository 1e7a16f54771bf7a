package ingest

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/featurestore"
)

// testView has a feature of every type.
var testView = &featurestore.View{
	Name:     "user",
	Entities: []string{"user_id"},
	Features: []featurestore.Feature{
		{Name: "age", Type: featurestore.Float},
		{Name: "score", Type: featurestore.Double},
		{Name: "visits", Type: featurestore.Int},
		{Name: "name", Type: featurestore.String},
		{Name: "active", Type: featurestore.Bool},
		{Name: "emb", Type: featurestore.FloatList},
	},
}

// readAll reads every record, stopping at the first error.
func readAll(r Reader) ([]Record, error) {
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

func readCSV(t *testing.T, v *featurestore.View, text string) ([]Record, error) {
	t.Helper()
	r, err := NewCSV(strings.NewReader(text), v)
	if err != nil {
		return nil, err
	}
	return readAll(r)
}

func TestCSVValues(t *testing.T) {
	tests := []struct {
		name string
		csv  string
		want []map[string]any
	}{
		{
			"every type",
			"user_id,age,score,visits,name,active,emb,event_ts\n" +
				"u1,31.5,0.25,42,Ann,true,\"[1.5,2,3]\",2026-11-21T10:00:00Z\n",
			[]map[string]any{{"user_id": "u1", "age": float32(31.5), "score": 0.25, "visits": int64(42), "name": "Ann",
				"active": true, "emb": []float32{1.5, 2, 3}, "event_ts": "2026-11-21T10:00:00Z"}},
		},
		{
			"empty cells are absent",
			"user_id,age,score,visits,name,active,emb,event_ts\nu1,,,,,,,\n",
			[]map[string]any{{"user_id": "u1"}},
		},
		{
			"missing feature columns are absent, columns in any order",
			"emb,user_id\n[],u1\n\"[ -1e-3 , 4 ]\",u2\n",
			[]map[string]any{{"user_id": "u1", "emb": []float32{}}, {"user_id": "u2", "emb": []float32{-0.001, 4}}},
		},
		{
			"bools and spaces around numbers",
			"user_id,active,visits,age\nu1,1,  -7 , 2e3\nu2,0,+3,-0\nu3,TRUE,0,1\nu4,False,0,1\n",
			[]map[string]any{
				{"user_id": "u1", "active": true, "visits": int64(-7), "age": float32(2000)},
				{"user_id": "u2", "active": false, "visits": int64(3), "age": float32(0)},
				{"user_id": "u3", "active": true, "visits": int64(0), "age": float32(1)},
				{"user_id": "u4", "active": false, "visits": int64(0), "age": float32(1)},
			},
		},
		{
			"strings and entities kept as they are",
			"user_id,name\n\" u 1 \",\" x, \"\"y\"\" \"\n",
			[]map[string]any{{"user_id": " u 1 ", "name": ` x, "y" `}},
		},
		{
			"event_ts with an offset is written in UTC",
			"user_id,event_ts\nu1,2026-11-21T12:00:00.5+02:00\n",
			[]map[string]any{{"user_id": "u1", "event_ts": "2026-11-21T10:00:00.5Z"}},
		},
		{
			"byte-order mark and CRLF",
			"\ufeffuser_id,visits\r\nu1,1\r\n",
			[]map[string]any{{"user_id": "u1", "visits": int64(1)}},
		},
		{
			"header only",
			"user_id,age\n",
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := readCSV(t, testView, tt.csv)
			if err != nil {
				t.Fatal(err)
			}
			var got []map[string]any
			for _, r := range recs {
				got = append(got, r.Values)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestCSVLines(t *testing.T) {
	text := "user_id,name\nu1,a\n\nu2,\"two\nlines\"\nu3,c\n"
	recs, err := readCSV(t, testView, text)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int64
	for _, r := range recs {
		lines = append(lines, r.Line)
	}
	if want := []int64{2, 4, 6}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines = %v, want %v", lines, want)
	}
	_, err = readCSV(t, testView, text+"u4,\"bad\nu5,x\n")
	if err == nil || !strings.HasPrefix(err.Error(), "line 8: ") {
		t.Errorf("unterminated quote: err = %v, want line 8", err)
	}
}

// TestCSVJSON checks the JSON the values make in a request body.
func TestCSVJSON(t *testing.T) {
	recs, err := readCSV(t, testView, "user_id,age,score,visits,emb\nu1,0.1,0.1,9007199254740993,\"[0.1,1e-3]\"\n")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(recs[0].Values)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"age":0.1,"emb":[0.1,0.001],"score":0.1,"user_id":"u1","visits":9007199254740993}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestCSVErrors(t *testing.T) {
	const hdr = "user_id,age,score,visits,name,active,emb,event_ts\n"
	tests := []struct {
		csv, want string
	}{
		{hdr + "u1,abc,,,,,,\n", `line 2, column "age": "abc" is not a float`},
		{hdr + "u1,1e39,,,,,,\n", `line 2, column "age": "1e39" is out of range for a float`},
		{hdr + "u1,NaN,,,,,,\n", `line 2, column "age": "NaN" is not a finite number`},
		{hdr + "u1,,1e999,,,,,\n", `line 2, column "score": "1e999" is out of range for a double`},
		{hdr + "u1,,-Inf,,,,,\n", `line 2, column "score": "-Inf" is not a finite number`},
		{hdr + "u1,,x,,,,,\n", `line 2, column "score": "x" is not a double`},
		{hdr + "u1,,,3.5,,,,\n", `line 2, column "visits": "3.5" is not an int`},
		{hdr + "u1,,,99999999999999999999,,,,\n", `line 2, column "visits": "99999999999999999999" is out of range for an int (64 bits)`},
		{hdr + "u1,,,,\xff,,,\n", `line 2, column "name": "\xff" is not valid UTF-8`},
		{hdr + "u1,,,,,yes,,\n", `line 2, column "active": "yes" is not a bool (want true, false, 1 or 0)`},
		{hdr + "u1,,,,,,1.5,\n", `line 2, column "emb": "1.5" is not a float_list (want a JSON array of numbers such as [1.5,2,3])`},
		{hdr + "u1,,,,,,\"[1,null]\",\n", `line 2, column "emb": "[1,null]" is not a float_list (want a JSON array of numbers such as [1.5,2,3]): element 1 is not a number`},
		{hdr + "u1,,,,,,\"[1,1e40]\",\n", `line 2, column "emb": "[1,1e40]" is not a float_list (want a JSON array of numbers such as [1.5,2,3]): element 1: "1e+40" is out of range for a float`},
		{hdr + "u1,,,,,,[1,2],\n", `line 2: wrong number of fields: the record has 9 fields, the header 8`},
		{hdr + "u1,,,,,,,yesterday\n", `line 2, column "event_ts": "yesterday" is not an RFC 3339 timestamp such as 2026-11-21T10:00:00Z`},
		{hdr + ",1,,,,,,\n", `line 2, column "user_id": entity value is empty`},
		{hdr + "a\x1fb,1,,,,,,\n", `line 2, column "user_id": entity value contains the control character U+001F`},
		{hdr + "u1,1,,,,,,\nu2,1\n", `line 3: wrong number of fields: the record has 2 fields, the header 8`},
		{hdr + "u1,\"1\"x,,,,,,\n", `line 2: extraneous or missing " in quoted-field (at character 6)`},
		{hdr + "u1,,,,,,," + strings.Repeat("x", 100) + "\n", `line 2, column "event_ts": "` + strings.Repeat("x", 64) + `"… is not an RFC 3339 timestamp such as 2026-11-21T10:00:00Z`},
		// header errors
		{"", `line 1: the file is empty: want a header row naming the columns`},
		{"user_id,agee\n", `line 1, column "agee": not a column of view user (its columns: user_id, age, score, visits, name, active, emb, event_ts)`},
		{"age,score\n", `line 1: the header has no column "user_id", an entity column of view user`},
		{"user_id,age,age\n", `line 1, column "age": appears twice in the header`},
		{"user_id,,age\n", `line 1: header field 2 is empty: want a column name`},
	}
	for _, tt := range tests {
		_, err := readCSV(t, testView, tt.csv)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n got  %v\n want %s", tt.csv, err, tt.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Line == 0 {
			t.Errorf("%q: %T %v is not an *Error with a line", tt.csv, err, err)
		}
	}
}

// TestCSVStopsAtError checks that the rows before a bad one come out and that
// the error sticks.
func TestCSVStopsAtError(t *testing.T) {
	r, err := NewCSV(strings.NewReader("user_id,visits\nu1,1\nu2,x\nu3,3\n"), testView)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(r)
	if len(recs) != 1 || err == nil || !strings.HasPrefix(err.Error(), "line 3, ") {
		t.Fatalf("got %d records, err %v", len(recs), err)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("next after an error: %v, want %v", again, err)
	}
}

func TestCSVCompositeEntity(t *testing.T) {
	v := &featurestore.View{Name: "pair", Entities: []string{"a", "b"}, Features: []featurestore.Feature{{Name: "x", Type: featurestore.Int}}}
	recs, err := readCSV(t, v, "b,a,x\n1,2,3\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"a": "2", "b": "1", "x": int64(3)}; !reflect.DeepEqual(recs[0].Values, want) {
		t.Errorf("got %v, want %v", recs[0].Values, want)
	}
	if _, err := readCSV(t, v, "a,x\n"); err == nil || !strings.Contains(err.Error(), `no column "b"`) {
		t.Errorf("missing second entity: %v", err)
	}
}

func TestCSVOffset(t *testing.T) {
	text := "user_id\nu1\nu2\n"
	r, err := NewCSV(strings.NewReader(text), testView)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Offset(); got != 8 {
		t.Errorf("offset after the header = %d, want 8", got)
	}
	readAll(r)
	if got := r.Offset(); got != int64(len(text)) {
		t.Errorf("offset at the end = %d, want %d", got, len(text))
	}
}
