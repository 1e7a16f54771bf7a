package drift

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeBaseline(t *testing.T) {
	good := `{"features": {
		"age": {"edges": [18, 30, 45, 90], "counts": [0, 410, 380, 210, 0]},
		"country": {"categories": {"fr": 520, "de": 300, "it": 0}, "other": 30}},
	 "predictions": {"score": {"edges": [0, 0.5, 1], "counts": [0, 700, 300, 0]}}}`
	b, err := DecodeBaseline([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := &Baseline{
		Features: map[string]FeatureBaseline{
			"age":     {Edges: []float64{18, 30, 45, 90}, Counts: []int64{0, 410, 380, 210, 0}},
			"country": {Categories: map[string]int64{"fr": 520, "de": 300, "it": 0}, Other: 30},
		},
		Predictions: map[string]FeatureBaseline{
			"score": {Edges: []float64{0, 0.5, 1}, Counts: []int64{0, 700, 300, 0}},
		},
	}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("DecodeBaseline = %+v, want %+v", b, want)
	}
	if b.Features["age"].Total() != 1000 || !b.Features["age"].IsNumeric() || b.Features["country"].IsNumeric() {
		t.Errorf("age total %d", b.Features["age"].Total())
	}
	// It round-trips through its own JSON.
	data, _ := json.Marshal(b)
	if again, err := DecodeBaseline(data); err != nil || !reflect.DeepEqual(again, b) {
		t.Errorf("round trip: %v, %+v", err, again)
	}
}

func TestDecodeBaseline_Errors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "baseline: malformed JSON"},
		{`[]`, "baseline: expected an object, got array"},
		{`{"feature": {}}`, `baseline: unknown field "feature"`},
		{`{}`, "baseline: want at least one feature or prediction"},
		{`{"features": {}}`, "baseline: want at least one feature or prediction"},
		{`{"features": {"a": {"edgs": [1, 2]}}}`, `baseline.features["a"]: unknown field "edgs"`},
		{`{"features": {"a": {"edges": "x"}}}`, `baseline.features["a"]: field "edges": expected an array, got string`},
		{`{"features": {"a": {"edges": [1, 2], "counts": [0, 1.5, 0]}}}`, `baseline.features["a"]: field "counts"`},
		{`{"features": {"a": null}}`, `baseline.features["a"]: want "edges" and "counts" (numeric) or "categories" (categorical)`},
		{`{"features": {"a": {"edges": [1, 2], "counts": [0, 1]}}}`, `baseline.features["a"].counts: want 3 counts (underflow, 1 bins, overflow), got 2`},
		{`{"features": {"a": {"edges": [1], "counts": [0, 1]}}}`, `baseline.features["a"].edges: want 2 to 1001 edges, got 1`},
		{`{"features": {"a": {"edges": [2, 1], "counts": [0, 1, 0]}}}`, `baseline.features["a"].edges[1]: must be greater than`},
		{`{"features": {"a": {"counts": [0, 1, 0]}}}`, `baseline.features["a"].edges: want 2 to 1001 edges, got 0`},
		{`{"features": {"a": {"edges": [1, 2], "counts": [0, -1, 0]}}}`, `baseline.features["a"].counts[1]: must not be negative`},
		{`{"features": {"a": {"edges": [1, 2], "counts": [0, 0, 0]}}}`, `baseline.features["a"]: no observations`},
		{`{"features": {"a": {"edges": [1, 2], "counts": [0, 1, 0], "categories": {"x": 1}}}}`, `baseline.features["a"]: has both`},
		{`{"features": {"a": {"categories": {"x": -1, "y": 3}}}}`, `baseline.features["a"].categories["x"]: must not be negative`},
		{`{"features": {"a": {"categories": {}, "other": -1}}}`, `baseline.features["a"].other: must not be negative`},
		{`{"features": {"a": {"categories": {"x": 0}}}}`, `baseline.features["a"]: no observations`},
		{`{"features": {"": {"categories": {"x": 1}}}}`, `baseline.features[""]: a name of 1 to 256 bytes`},
		{`{"predictions": {"p": {"categories": {"x": 1}}}, "features": {"a": {}}}`, `baseline.features["a"]: want`},
		{`{"predictions": {"p": {"categories": 3}}}`, `baseline.predictions["p"]: field "categories": expected an object, got number`},
		{"{\"features\": {\"a\xff\": {}}}", "baseline: not valid UTF-8"},
	}
	for _, tt := range tests {
		_, err := DecodeBaseline([]byte(tt.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeBaseline(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

// The builder's edges and counts match numpy.quantile and numpy.histogram
// on the same values (testdata/reference.json, see metrics_test.go).
func TestBaselineBuilder_MatchesNumpy(t *testing.T) {
	for _, c := range loadReference(t).Builder {
		bb := NewBaselineBuilder()
		for _, x := range c.Values {
			if err := bb.Add("x", x); err != nil {
				t.Fatal(err)
			}
		}
		f := bb.Build(c.Bins).Features["x"]
		if len(f.Edges) != len(c.Edges) {
			t.Errorf("%s: edges %v, want %v", c.Name, f.Edges, c.Edges)
			continue
		}
		for i := range f.Edges {
			if math.Abs(f.Edges[i]-c.Edges[i]) > 1e-12*math.Max(1, math.Abs(c.Edges[i])) {
				t.Errorf("%s: edges[%d] = %.17g, want %.17g", c.Name, i, f.Edges[i], c.Edges[i])
			}
		}
		if !reflect.DeepEqual(f.Counts, c.Counts) {
			t.Errorf("%s: counts %v, want %v", c.Name, f.Counts, c.Counts)
		}
	}
}

func TestBaselineBuilder(t *testing.T) {
	bb := NewBaselineBuilder()
	for i := range 100 {
		mustAdd(t, bb.Add("n", i))
		mustAdd(t, bb.Add("c", []string{"a", "b", "b", "c"}[i%4]))
		mustAdd(t, bb.Add("flag", i%10 == 0))
		mustAdd(t, bb.Add("const", json.Number("7")))
		mustAdd(t, bb.Add("missing", nil))
		mustAdd(t, bb.Add("n", math.NaN()))
		mustAdd(t, bb.AddPrediction("p", float32(i)/100))
	}
	b := bb.Build(4)
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	want := map[string]FeatureBaseline{
		"n":     {Edges: []float64{0, 24.75, 49.5, 74.25, 99}, Counts: []int64{0, 25, 25, 25, 25, 0}},
		"c":     {Categories: map[string]int64{"a": 25, "b": 50, "c": 25}},
		"flag":  {Categories: map[string]int64{"true": 10, "false": 90}},
		"const": {Edges: []float64{7, math.Nextafter(7, 8)}, Counts: []int64{0, 100, 0}},
	}
	if !reflect.DeepEqual(b.Features, want) {
		t.Errorf("features = %+v, want %+v", b.Features, want)
	}
	if p := b.Predictions["p"]; len(p.Edges) != 5 || p.Total() != 100 {
		t.Errorf("prediction p = %+v", p)
	}

	for _, tt := range []struct {
		feature string
		value   any
		want    string
	}{
		{"n", "x", `feature "n": got string, but earlier values were numbers`},
		{"c", 3.5, `feature "c": got float64, but earlier values were strings or bools`},
		{"m", []int{1}, `feature "m": want a number, string or bool, got []int`},
	} {
		if err := bb.Add(tt.feature, tt.value); !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
			t.Errorf("Add(%q, %v) = %v, want %q", tt.feature, tt.value, err, tt.want)
		}
	}
}

func mustAdd(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Beyond MaxValues the builder keeps a uniform sample: the edges still fall
// near the true quantiles.
func TestBaselineBuilder_Reservoir(t *testing.T) {
	bb := NewBaselineBuilder()
	bb.MaxValues = 2000
	for i := range 100000 {
		mustAdd(t, bb.Add("u", float64(i%1000)/1000))
	}
	f := bb.Build(4).Features["u"]
	if f.Total() != 2000 {
		t.Errorf("total = %d, want 2000", f.Total())
	}
	for i, want := range []float64{0.25, 0.5, 0.75} {
		if got := f.Edges[i+1]; math.Abs(got-want) > 0.05 {
			t.Errorf("edges[%d] = %v, want about %v", i+1, got, want)
		}
	}
}

func TestBaselineBuilder_CategoryCap(t *testing.T) {
	bb := NewBaselineBuilder()
	for i := range DefaultMaxCategories + 10 {
		v := string(rune('A'+i%26)) + strings.Repeat("x", i/26)
		n := 1
		if i < 5 {
			n = 3
		}
		for range n {
			mustAdd(t, bb.Add("c", v))
		}
	}
	f := bb.Build(0).Features["c"]
	if len(f.Categories) != DefaultMaxCategories || f.Other != 10 || f.Categories["A"] != 3 {
		t.Errorf("%d categories, other %d, A %d", len(f.Categories), f.Other, f.Categories["A"])
	}
}

func FuzzDecodeBaseline(f *testing.F) {
	for _, seed := range []string{
		`{"features": {"a": {"edges": [0, 1, 2], "counts": [1, 2, 3, 4]}}}`,
		`{"features": {"c": {"categories": {"x": 1, "y": 2}, "other": 3}}, "predictions": {"p": {"edges": [0, 1], "counts": [0, 5, 0]}}}`,
		`{"features": {"a": {"edges": [2, 1], "counts": [1, 2, 3]}}}`,
		`{"features": {"a": null}}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBaseline(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		// A decoded baseline serves a monitor.
		spec := MonitorSpec{Name: "m", Model: "x", Baseline: BaselineModel, Window: Duration(MinWindow), Thresholds: Thresholds{PSI: 0.2, KSP: 0.01, JS: 0.1, Chi2P: 0.01}}
		spec.Predictions = len(b.Predictions) > 0
		if len(b.Features) == 0 {
			return
		}
		m, err := NewMonitor(spec, b, ModelInfo{}, fixedNow)
		if err != nil {
			t.Fatalf("NewMonitor: %v", err)
		}
		m.Observe(map[string]any{"a": 1.0, "c": "x"}, map[string]any{"p": 0.5})
		rep, _ := m.Evaluate(fixedNow, true)
		if _, err := json.Marshal(rep); err != nil {
			t.Fatalf("report does not marshal: %v", err)
		}
	})
}
