package featurestore

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkFill_Entities100_Features50 lays out the model input of a
// 100 entities × 50 features prediction from rows already read, with their
// statuses and the values used for the inference table.
func BenchmarkFill_Entities100_Features50(b *testing.B) {
	const rows, width = 100, 50
	v := &View{Name: "f50", Entities: []string{"user_id"}, TTL: Duration(time.Hour)}
	refs := make([]string, width)
	for j := range width {
		v.Features = append(v.Features, Feature{Name: "f" + strconv.Itoa(j), Type: Float})
		refs[j] = strconv.Quote("f50:f" + strconv.Itoa(j))
	}
	spec, err := DecodeSpec([]byte(`{"entities": ["user_id"], "inputs": {"x": [` + strings.Join(refs, ",") + `]}}`))
	if err != nil {
		b.Fatal(err)
	}
	p, err := compile(spec, []Input{{Name: "x", Datatype: "FP32", Shape: []int64{-1, width}}}, map[string]*View{"f50": v})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	lookups := []Lookup{{View: v, Features: p.lookups[0].features, Rows: make([]Row, rows)}}
	for r := range lookups[0].Rows {
		row := Row{Key: "u" + strconv.Itoa(r), Found: r%10 != 0, EventTS: now.Add(-time.Duration(r) * time.Minute), Values: make([]Value, width)}
		for j := range row.Values {
			row.Values[j] = Value{Type: Float, Num: float64(r*width + j)}
		}
		lookups[0].Rows[r] = row
	}
	a := &Assembly{Refs: p.refs, Statuses: make([][]Status, rows), defaultsByView: make([]int, 1), Used: make([][]*Value, width)}
	for r := range a.Statuses {
		a.Statuses[r] = make([]Status, width)
	}
	for j := range a.Used {
		a.Used[j] = make([]*Value, rows)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.fill(p.inputs[0], rows, lookups, nil, now); err != nil {
			b.Fatal(err)
		}
	}
}
