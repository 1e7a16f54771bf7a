package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore"
)

// checkRecords checks what a reader yields for any input: rows whose values
// have the types of the view and marshal to JSON, in increasing line order,
// then io.EOF or an *Error that names a line (or, for a Parquet schema, a
// column), never a panic.
func checkRecords(t *testing.T, v *featurestore.View, r Reader, maxRows int) {
	types := map[string]featurestore.Type{}
	entity := map[string]bool{}
	for _, e := range v.Entities {
		entity[e] = true
	}
	for _, f := range v.Features {
		types[f.Name] = f.Type
	}
	var last int64
	for range maxRows {
		rec, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 {
				t.Fatalf("error %q does not name a line", err)
			}
			if e.Line <= last {
				t.Fatalf("error at line %d, after a row of line %d", e.Line, last)
			}
			if _, again := r.Next(); again != err {
				t.Fatalf("Next after %q gave %v", err, again)
			}
			return
		}
		if rec.Line <= last {
			t.Fatalf("row of line %d after one of line %d", rec.Line, last)
		}
		last = rec.Line
		for _, e := range v.Entities {
			if s, ok := rec.Values[e].(string); !ok || featurestore.CheckEntityValue(s) != nil {
				t.Fatalf("line %d: entity %s = %#v", rec.Line, e, rec.Values[e])
			}
		}
		for k, x := range rec.Values {
			if k == EventTS {
				s, ok := x.(string)
				if _, err := time.Parse(time.RFC3339Nano, s); !ok || err != nil {
					t.Fatalf("line %d: event_ts = %#v", rec.Line, x)
				}
				continue
			}
			typ, isFeature := types[k]
			if entity[k] {
				continue
			}
			if !isFeature {
				t.Fatalf("line %d: unexpected column %s", rec.Line, k)
			}
			ok := false
			switch typ {
			case featurestore.Float:
				f, is := x.(float32)
				ok = is && !math.IsInf(float64(f), 0) && !math.IsNaN(float64(f))
			case featurestore.Double:
				f, is := x.(float64)
				ok = is && !math.IsInf(f, 0) && !math.IsNaN(f)
			case featurestore.Int:
				_, ok = x.(int64)
			case featurestore.Bool:
				_, ok = x.(bool)
			case featurestore.String:
				_, ok = x.(string)
			case featurestore.FloatList:
				_, ok = x.([]float32)
			}
			if !ok {
				t.Fatalf("line %d: %s (%s) = %#v", rec.Line, k, typ, x)
			}
		}
		if _, err := json.Marshal(rec.Values); err != nil {
			t.Fatalf("line %d: %v", rec.Line, err)
		}
	}
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"user_id,age,score,visits,name,active,emb,event_ts\nu1,31.5,0.25,42,Ann,true,\"[1.5,2,3]\",2026-11-21T10:00:00Z\n",
		"user_id,age,score,visits,name,active,emb,event_ts\nu1,,,,,,,\nu2,1e39,,,,,,\n",
		"\ufeffuser_id,emb\r\n\"a\nb\",\"[1,null]\"\r\nc,[]\r\n",
		"user_id,visits\nu1,1\nu2\n",
		"user_id,name\n\"u1\"x,y\n",
		"emb,user_id\n\"[1e400]\",u\n",
		"user_id,active,event_ts\nu,TRUE,2026-11-21T12:00:00+02:00\nv,2,\n",
		"agee\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewCSV(bytes.NewReader(b), testView)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 {
				t.Fatalf("header error %q does not name a line", err)
			}
			return
		}
		checkRecords(t, testView, r, math.MaxInt)
	})
}

func FuzzParquet(f *testing.F) {
	// Smaller pages than real files may have keep each run's memory small.
	maxPageBytes, maxPageValues = 1<<20, 1<<16
	ts := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f.Add(writeParquet(f, []userRow{
		{UserID: "a", Age: ptr(float32(1)), Score: ptr(2.0), Visits: ptr(int64(3)), Name: ptr("n"), Active: ptr(true), Emb: []float32{1, 2}, EventTS: ts},
		{UserID: "b", Emb: []float32{}},
		{UserID: "c"},
	}, 2))
	f.Add(writeParquet(f, []struct {
		U   int64     `parquet:"user_id"`
		Age float64   `parquet:"age"`
		Emb []float64 `parquet:"emb"`
		TS  string    `parquet:"event_ts"`
	}{{1, 2, []float64{3}, "2026-11-21T10:00:00Z"}, {2, 1e40, nil, "x"}}, 1))
	f.Add(writeParquet(f, []struct {
		U      *string    `parquet:"user_id,optional"`
		Visits uint64     `parquet:"visits,uint(64)"`
		Emb    []*float32 `parquet:"emb,list" parquet-element:",optional"`
	}{{ptr("a"), 1, []*float32{ptr(float32(1)), nil}}, {nil, math.MaxUint64, nil}}, 1))
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewParquet(bytes.NewReader(b), int64(len(b)), testView)
		if err != nil {
			return
		}
		checkRecords(t, testView, r, 100000)
	})
}
