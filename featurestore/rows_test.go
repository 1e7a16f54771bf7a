package featurestore

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testView = &View{Name: "user", Entities: []string{"user_id", "day"}, Features: []Feature{
	{"age", Float}, {"income", Double}, {"visits", Int}, {"city", String}, {"vip", Bool}, {"emb", FloatList},
}}

// testLimits are the default limits.
var testLimits = Limits{MaxRows: 10000, MaxStringBytes: 64 << 10}

func TestDecodeRows(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rows, err := DecodeRows(testView, []byte(`{"rows": [
		{"user_id": "u1", "day": 3, "age": 31.5, "income": 1e3, "visits": -2, "city": "Zürich", "vip": true, "emb": [1, -0.5], "event_ts": "2026-11-21T10:00:00.5+01:00"},
		{"user_id": "u2", "day": "x", "age": null}]}`), now, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Key: "u1\x1f3", EventTS: time.Date(2026, 11, 21, 9, 0, 0, 5e8, time.UTC), Values: []Value{
			{Type: Float, Num: 31.5}, {Type: Double, Num: 1000}, {Type: Int, Int: -2}, {Type: String, Str: "Zürich"},
			{Type: Bool, Int: 1}, {Type: FloatList, List: []float32{1, -0.5}}}},
		{Key: "u2\x1fx", EventTS: now, Values: make([]Value, 6)},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows\n %+v\nwant\n %+v", rows, want)
	}
	bad := []struct{ body, want string }{
		{`{"rows": [{"user_id": "u1"}]}`, "rows[0].day: missing"},
		{`{"rows": [{"user_id": "u1", "day": 1, "age": "x"}]}`, `rows[0].age: "x" is not a float`},
		{`{"rows": [{"user_id": "u1", "day": 1, "age": 1e39}]}`, "out of range for float"},
		{`{"rows": [{"user_id": "u1", "day": 1, "visits": 9223372036854775808}]}`, "rows[0].visits"},
		{`{"rows": [{"user_id": "u1", "day": 1, "vip": 1}]}`, "is not a bool"},
		{`{"rows": [{"user_id": "u1", "day": 1, "city": 5}]}`, "is not a string"},
		{`{"rows": [{"user_id": "u1", "day": 1, "emb": "1,2"}]}`, "is not a float_list"},
		{`{"rows": [{"user_id": "", "day": 1}]}`, "rows[0].user_id"},
		{`{"rows": [{"user_id": "a\u001fb", "day": 1}]}`, "U+001F"},
		{`{"rows": [{"user_id": {}, "day": 1}]}`, "is not a string or a number"},
		{`{"rows": [{"user_id": "u", "day": 1, "zip": 1}]}`, `rows[0].zip: view user has no such column`},
		{`{"rows": [{"user_id": "u", "day": 1, "event_ts": 5}]}`, "rows[0].event_ts"},
		{`{"rowz": []}`, `unknown field "rowz"`},
		{`{"rows": 5}`, "request body"},
	}
	for _, b := range bad {
		_, err := DecodeRows(testView, []byte(b.body), now, testLimits)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("DecodeRows(%s) = %v, want ErrInvalid containing %q", b.body, err, b.want)
		}
	}
}

func TestDecodeRowsLimits(t *testing.T) {
	now := time.Now()
	lim := Limits{MaxRows: 2, MaxStringBytes: 8}
	tests := []struct{ body, want string }{
		{`{"rows": []}`, "rows: at least one row is required"},
		{`{"rows": [{"user_id": "a", "day": 1}, {"user_id": "b", "day": 1}, {"user_id": "c", "day": 1}]}`,
			"rows: 3 rows is more than limits.max_rows (2)"},
		{`{"rows": [{"user_id": "123456789", "day": 1}]}`, "rows[0].user_id: a string of 9 bytes is longer than limits.max_string_bytes (8)"},
		{`{"rows": [{"user_id": "u", "day": 1, "city": "Zürich!!"}]}`, "rows[0].city: a string of 9 bytes is longer than limits.max_string_bytes (8)"},
	}
	for _, tt := range tests {
		_, err := DecodeRows(testView, []byte(tt.body), now, lim)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeRows(%s) = %v, want ErrInvalid containing %q", tt.body, err, tt.want)
		}
	}
	rows, err := DecodeRows(testView, []byte(`{"rows": [{"user_id": "12345678", "day": 1, "city": "\u00e9\u00e9\u00e9\u00e9"}, {"user_id": "b", "day": 2}]}`), now, lim)
	if err != nil || len(rows) != 2 {
		t.Errorf("rows at the limits: %v %v", rows, err)
	}
}

func TestValueEncoding(t *testing.T) {
	values := []Value{
		{Type: Float, Num: -1.5}, {Type: Double, Num: math.Pi}, {Type: Int, Int: math.MinInt64},
		{Type: String, Str: "héllo"}, {Type: String}, {Type: Bool, Int: 1}, {Type: Bool},
		{Type: FloatList, List: []float32{1, 2, 3}}, {Type: FloatList, List: []float32{}},
	}
	for _, v := range values {
		got, err := DecodeValue(v.Type, AppendValue(nil, v))
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Errorf("round trip of %+v = %+v, %v", v, got, err)
		}
	}
	for _, c := range []struct {
		t Type
		b []byte
	}{{Float, []byte{1, 2}}, {Int, nil}, {FloatList, []byte{1, 2, 3}}, {"decimal", nil}} {
		if _, err := DecodeValue(c.t, c.b); err == nil {
			t.Errorf("DecodeValue(%s, %v) accepted corrupt bytes", c.t, c.b)
		}
	}
}

// FuzzDecodeRows feeds arbitrary write requests to the rows decoder: it must
// never panic, every refusal must be the caller's error, and every accepted
// row must be well formed and survive the store encoding.
func FuzzDecodeRows(f *testing.F) {
	for _, seed := range []string{
		`{"rows": [{"user_id": "u1", "day": 3, "age": 31.5, "income": 1e3, "visits": -2, "city": "x", "vip": true, "emb": [1, -0.5], "event_ts": "2026-11-21T10:00:00Z"}]}`,
		`{"rows": [{"user_id": 1, "day": 2}, {"user_id": "a", "day": "b", "age": null}]}`,
		`{"rows": [{"user_id": "u1", "day": 1, "age": "x"}]}`,
		`{"rows": []}`, `{}`, `null`, `{"rows": [null]}`, `{"rows": [{"user_id": 1e999, "day": 1}]}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		rows, err := DecodeRows(testView, body, now, testLimits)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		for _, r := range rows {
			if len(r.Values) != len(testView.Features) || r.Key == "" {
				t.Fatalf("malformed row %+v", r)
			}
			for i, v := range r.Values {
				if !v.Present() {
					continue
				}
				if v.Type != testView.Features[i].Type {
					t.Fatalf("value %d has type %s, feature is %s", i, v.Type, testView.Features[i].Type)
				}
				back, err := DecodeValue(v.Type, AppendValue(nil, v))
				if err != nil {
					t.Fatalf("value %+v does not survive encoding: %v", v, err)
				}
				if v.Type != Float && !reflect.DeepEqual(back, v) {
					t.Fatalf("value %+v encodes back as %+v", v, back)
				}
			}
			if _, err := json.Marshal(r.Values[0].JSON()); err != nil {
				t.Fatalf("value does not marshal: %v", err)
			}
		}
	})
}
