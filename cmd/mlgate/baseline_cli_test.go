package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type trainRow struct {
	X0      float32  `parquet:"x[0]"`
	X1      *float64 `parquet:"x[1],optional"`
	N       int32    `parquet:"n"`
	Country string   `parquet:"user:country"`
	Flag    bool     `parquet:"flag"`
	Y       float64  `parquet:"prediction:y[0]"`
}

// TestBaselineFromParquet computes a baseline from a Parquet file with
// numbers, nulls, text and bools.
func TestBaselineFromParquet(t *testing.T) {
	dir := t.TempDir()
	var rows []trainRow
	for i := range 100 {
		r := trainRow{X0: float32(i), N: int32(i % 7), Country: []string{"fr", "de", "it"}[i%3], Flag: i%2 == 0, Y: float64(i) / 100}
		if i%4 != 0 {
			x := float64(-i)
			r.X1 = &x
		}
		rows = append(rows, r)
	}
	path := filepath.Join(dir, "train.parquet")
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	b, n, err := fileBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Errorf("rows = %d, want 100", n)
	}
	x0, x1 := b.Features["x[0]"], b.Features["x[1]"]
	if !x0.IsNumeric() || x0.Total() != 100 || x0.Edges[0] != 0 || x0.Edges[len(x0.Edges)-1] != 99 || len(x0.Edges) != 11 {
		t.Errorf("x[0] = %+v", x0)
	}
	if !x1.IsNumeric() || x1.Total() != 75 {
		t.Errorf("x[1] = %+v, want 75 values (nulls skipped)", x1)
	}
	if c := b.Features["user:country"]; c.Categories["fr"] != 34 || c.Categories["de"] != 33 {
		t.Errorf("user:country = %+v", c)
	}
	if f := b.Features["flag"]; f.Categories["true"] != 50 || f.Categories["false"] != 50 {
		t.Errorf("flag = %+v", f)
	}
	if !b.Features["n"].IsNumeric() || b.Predictions["y[0]"].Total() != 100 {
		t.Errorf("n = %+v, prediction y[0] = %+v", b.Features["n"], b.Predictions["y[0]"])
	}

	type listRow struct {
		A    float64  `parquet:"a"`
		Tags []string `parquet:"tags,list"`
	}
	nested := filepath.Join(dir, "nested.parquet")
	if err := parquet.WriteFile(nested, []listRow{{A: 1, Tags: []string{"x"}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fileBaseline(nested); err == nil || !strings.Contains(err.Error(), `column "tags" is nested or repeated`) {
		t.Errorf("nested column: err = %v", err)
	}
	garbage := filepath.Join(dir, "garbage.parquet")
	if err := os.WriteFile(garbage, []byte("not parquet at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fileBaseline(garbage); err == nil || !strings.Contains(err.Error(), "not a readable Parquet file") {
		t.Errorf("garbage: err = %v", err)
	}
}
