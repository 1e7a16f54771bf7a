package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/mlgate/mlgate/drift"
	"github.com/mlgate/mlgate/serving/tables"
)

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// table writes rows to a new table, through three replicas in turn as a
// fleet does, and returns it, read from their files as one table.
func table(t *testing.T, rows ...tables.Row) tables.Dir {
	t.Helper()
	dir := t.TempDir()
	var ws []*tables.Writer
	for _, id := range []string{"r1", "r2", "r3"} {
		w, err := tables.Open(tables.Options{Dir: dir, Replica: id})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for i, r := range rows {
		ws[i%len(ws)].Write(r)
	}
	for _, w := range ws {
		if err := w.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return tables.Dir(dir)
}

// answered returns a row of a prediction of endpoint e answered at ts.
func answered(id, e string, ts time.Time, request, response string) tables.Row {
	return tables.Row{RequestID: id, Timestamp: ts, Endpoint: e, Variant: "champion", ModelName: "m", ModelVersion: 1,
		StatusCode: 200, Request: request, Response: response}
}

func TestSeriesOf(t *testing.T) {
	type m = map[string]any
	tests := []struct {
		name string
		row  tables.Row
		want []Series
	}{
		{
			name: "feature values recorded",
			row: tables.Row{
				Features: `{"user:age": [30, 40], "user:country": ["FR", "DE"]}`,
				Request:  `{"entities": {"user_id": ["u1", "u2"]}, "inputs": {"ignored": [1, 2]}}`,
				Response: `{"outputs": {"score": [0.25, 0.75]}}`,
			},
			want: []Series{
				{m{"user:age": 30.0, "user:country": "FR"}, m{"score": 0.25}},
				{m{"user:age": 40.0, "user:country": "DE"}, m{"score": 0.75}},
			},
		},
		{
			name: "predict inputs of two dimensions",
			row:  tables.Row{Request: `{"inputs": {"x": [[1, 2], [3, 4]]}}`, Response: `{"outputs": {"y": [[0.5], [0.7]]}}`},
			want: []Series{
				{m{"x[0]": 1.0, "x[1]": 2.0}, m{"y[0]": 0.5}},
				{m{"x[0]": 3.0, "x[1]": 4.0}, m{"y[0]": 0.7}},
			},
		},
		{
			name: "V2 tensors",
			row: tables.Row{
				Request:  `{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`,
				Response: `{"outputs": [{"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 1]}]}`,
			},
			want: []Series{
				{m{"x[0]": 1.0, "x[1]": 2.0}, m{"label": 0.0}},
				{m{"x[0]": 3.0, "x[1]": 4.0}, m{"label": 1.0}},
			},
		},
		{
			name: "V2 shape that is not its data's",
			row:  tables.Row{Request: `{"inputs": [{"name": "x", "shape": [1000000000000, 1], "data": [1]}, {"name": "z", "shape": [-1], "data": [1]}]}`},
			want: []Series{},
		},
		{
			name: "not JSON",
			row:  tables.Row{Features: "{", Request: "x", Response: `{"outputs": 1}`},
			want: []Series{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SeriesOf(tt.row); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SeriesOf\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// FuzzSeriesOf checks that no recorded body makes SeriesOf or the reading
// of a prediction panic, and that every series has both maps.
func FuzzSeriesOf(f *testing.F) {
	f.Add(`{"user:age": [30, 40]}`, `{"inputs": {"x": [[1, 2], [3, 4]]}}`, `{"outputs": {"y": [[0.5], [0.7]]}}`)
	f.Add(``, `{"inputs": [{"name": "x", "shape": [2, 2], "data": [[1, 2], [3, 4]]}]}`, `{"outputs": [{"name": "p", "shape": [1], "data": [{"1": 0.5}]}]}`)
	f.Add(`{"a": 1}`, `{"inputs": [{"name": "x", "shape": [], "data": 1}]}`, `{"outputs": {"y": [[[1]], 2]}}`)
	f.Add(`null`, `{"inputs": [{"shape": [3]}]}`, `{"outputs": [null]}`)
	f.Fuzz(func(t *testing.T, features, request, response string) {
		for _, s := range SeriesOf(tables.Row{Features: features, Request: request, Response: response}) {
			if s.Features == nil || s.Predictions == nil {
				t.Fatalf("series %+v without its maps", s)
			}
		}
		firstPrediction(response)
	})
}

func TestMeasure(t *testing.T) {
	classified := func(id string, label, p1 float64) tables.Row {
		return answered(id, "iris", t0, "", fmt.Sprintf(`{"outputs": {"label": [%g], "probabilities": [{"0": %g, "1": %g}]}}`, label, 1-p1, p1))
	}
	shadow := classified("shadow", 1, 0.9)
	shadow.IsShadow = true
	failed := classified("failed", 1, 0.9)
	failed.StatusCode = 500
	regressed := func(id string, y float64) tables.Row {
		r := answered(id, "price", t0, "", fmt.Sprintf(`{"outputs": [{"name": "y", "shape": [1, 1], "data": [%g]}]}`, y))
		r.Variant, r.ModelName, r.ModelVersion = "challenger", "gbm", 3
		return r
	}
	dir := table(t,
		classified("r0", 1, 0.9), classified("r1", 1, 0.8), classified("r2", 0, 0.3), classified("r3", 0, 0.3), classified("r4", 1, 0.7),
		shadow, failed, classified("unlabelled", 0, 0.1),
		regressed("g0", 2.5), regressed("g1", 3.5),
	)
	labels := map[string]float64{"r0": 1, "r1": 0, "r2": 0, "r3": 1, "r4": 1, "shadow": 0, "failed": 0, "g0": 3, "g1": 3}
	got, err := Measure(t.Context(), dir, labels, tables.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(v float64) *float64 { return &v }
	// Positives .9, .3, .7 against negatives .8, .3: 3 pairs won, 1 tied, of 6.
	want := []Performance{
		{Endpoint: "iris", Variant: "champion", Model: "m", Version: 1, Labelled: 5, Kind: "classifier", Accuracy: ptr(0.6), AUC: ptr(3.5 / 6)},
		{Endpoint: "price", Variant: "challenger", Model: "gbm", Version: 3, Labelled: 2, Kind: "regressor", MAE: ptr(0.5), RMSE: ptr(0.5)},
	}
	if a, b := jsonOf(t, got), jsonOf(t, want); a != b {
		t.Errorf("Measure\n got %s\nwant %s", a, b)
	}
	if got, err := Measure(t.Context(), dir, labels, tables.Filter{Endpoint: "price"}); err != nil || len(got) != 1 || got[0].Endpoint != "price" {
		t.Errorf("Measure of endpoint price = %+v, %v", got, err)
	}
	if got, err := Measure(t.Context(), failing{}, nil, tables.Filter{}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Measure without labels = %#v, %v; want none, without reading", got, err)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// failing is a table that cannot be read.
type failing struct{}

func (failing) ReadRows(context.Context, tables.Filter, func(tables.Row) error) error {
	return errors.New("read")
}

// TestBinaryAUC compares the ranks' AUC with the count over every pair, on
// scores with many ties.
func TestBinaryAUC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		ss := make([]scored, 1+rng.IntN(60))
		for i := range ss {
			ss[i] = scored{label: float64(rng.IntN(2)), score: float64(rng.IntN(5)) / 4}
		}
		var wins, pairs float64
		for _, p := range ss {
			for _, n := range ss {
				if p.label != 1 || n.label != 0 {
					continue
				}
				pairs++
				switch {
				case p.score > n.score:
					wins++
				case p.score == n.score:
					wins += 0.5
				}
			}
		}
		got, ok := binaryAUC(ss)
		if ok != (pairs > 0) || (ok && math.Abs(got-wins/pairs) > 1e-12) {
			t.Fatalf("binaryAUC(%v) = %v, %v; want %v over %v pairs", ss, got, ok, wins/pairs, pairs)
		}
	}
}

func TestBaseline(t *testing.T) {
	row := func(id string, ts time.Time, x float64) tables.Row {
		return answered(id, "e", ts, fmt.Sprintf(`{"inputs": {"x": [%g]}}`, x), `{"outputs": {"y": [1]}}`)
	}
	var rows []tables.Row
	for i := range 20 {
		rows = append(rows, row(fmt.Sprint("in-", i), t0.Add(time.Duration(i)*time.Minute), float64(i)))
	}
	other := row("other", t0, 100)
	other.Endpoint = "other"
	rows = append(rows, row("late", t0.Add(time.Hour), 100), other)
	dir := table(t, rows...)
	spec := drift.MonitorSpec{Name: "m", Endpoint: "e"}
	b, err := Baseline(t.Context(), dir, spec, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	x, y := b.Features["x"], b.Predictions["y"]
	if len(b.Features) != 1 || len(b.Predictions) != 1 || x.Edges[0] != 0 || x.Edges[len(x.Edges)-1] != 19 || y.Total() != 20 {
		t.Errorf("baseline %s, want x from 0 to 19 and 20 predictions y", jsonOf(t, b))
	}
	if _, err := Baseline(t.Context(), dir, spec, t0.Add(-time.Hour), t0); !errors.Is(err, drift.ErrInvalid) {
		t.Errorf("Baseline of a range without predictions = %v, want drift.ErrInvalid", err)
	}
}

func TestObserve(t *testing.T) {
	dir := table(t,
		answered("a", "e", t0, `{"inputs": {"x": [1, 2]}}`, `{"outputs": {"y": [0, 1]}}`),
		answered("b", "e", t0, `{"inputs": {"x": [3]}}`, `{"outputs": {"y": [1]}}`),
	)
	var xs []any
	err := Observe(t.Context(), dir, MonitorFilter(drift.MonitorSpec{Endpoint: "e"}, time.Time{}, time.Time{}), func(features, predictions map[string]any) {
		xs = append(xs, features["x"])
	})
	if err != nil || !reflect.DeepEqual(xs, []any{1.0, 2.0, 3.0}) {
		t.Errorf("Observe saw x %v, %v; want 1, 2, 3", xs, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Observe(ctx, dir, tables.Filter{}, func(_, _ map[string]any) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Observe with its context ended = %v, want context.Canceled", err)
	}
}

func TestMonitorFilter(t *testing.T) {
	for _, tt := range []struct {
		spec drift.MonitorSpec
		want tables.Filter
	}{
		{drift.MonitorSpec{Endpoint: "churn"}, tables.Filter{Endpoint: "churn", From: t0, To: t0.Add(time.Hour)}},
		{drift.MonitorSpec{Model: "churn-xgb@champion"}, tables.Filter{Model: "churn-xgb", From: t0, To: t0.Add(time.Hour)}},
		{drift.MonitorSpec{Model: "churn-xgb/3"}, tables.Filter{Model: "churn-xgb", From: t0, To: t0.Add(time.Hour)}},
	} {
		if got := MonitorFilter(tt.spec, t0, t0.Add(time.Hour)); got != tt.want {
			t.Errorf("MonitorFilter(%+v) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}
