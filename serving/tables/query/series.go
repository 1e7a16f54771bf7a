package query

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/mlgate/mlgate/serving/tables"
)

// Series is one entity row of a recorded prediction: its features and its
// predictions, by name.
type Series struct {
	Features, Predictions map[string]any
}

// SeriesOf splits a row of the inference table into its entity rows, named
// as online (see the package documentation): features from the recorded
// feature values, else the request's inputs; predictions from the
// response's outputs. It reads the bodies of both predict and V2 requests;
// what it cannot read it leaves out.
func SeriesOf(r tables.Row) []Series {
	var features map[string][]any
	if r.Features != "" {
		json.Unmarshal([]byte(r.Features), &features)
	}
	inputs := namedTensors(r.Request, "inputs")
	outputs := namedTensors(r.Response, "outputs")
	n := 0
	for _, vs := range features {
		n = max(n, len(vs))
	}
	for _, t := range inputs {
		n = max(n, t.rows)
	}
	for _, t := range outputs {
		n = max(n, t.rows)
	}
	rows := make([]Series, n)
	for i := range rows {
		rows[i] = Series{Features: map[string]any{}, Predictions: map[string]any{}}
		for name, vs := range features {
			if i < len(vs) {
				rows[i].Features[name] = vs[i]
			}
		}
	}
	if features == nil {
		for _, t := range inputs {
			t.spread(rows, func(s Series) map[string]any { return s.Features })
		}
	}
	for _, t := range outputs {
		t.spread(rows, func(s Series) map[string]any { return s.Predictions })
	}
	return rows
}

// jsonTensor is a tensor read back from a recorded body.
type jsonTensor struct {
	name   string
	rows   int
	rank1  bool
	values []any // flat
}

// spread puts row i of t into rows[i], named as the package documentation
// says.
func (t jsonTensor) spread(rows []Series, into func(Series) map[string]any) {
	if t.rows != len(rows) || t.rows == 0 {
		return
	}
	width := len(t.values) / t.rows
	for i, r := range rows {
		m := into(r)
		if t.rank1 {
			m[t.name] = t.values[i]
			continue
		}
		for j := range width {
			m[t.name+"["+strconv.Itoa(j)+"]"] = t.values[i*width+j]
		}
	}
}

// namedTensors reads the tensors under key of a recorded body: a predict
// body's object of nested arrays, or a V2 body's list of {name, shape, data}.
func namedTensors(body, key string) []jsonTensor {
	var doc map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &doc) != nil || doc[key] == nil {
		return nil
	}
	var out []jsonTensor
	var nested map[string]any
	if json.Unmarshal(doc[key], &nested) == nil {
		for name, v := range nested {
			rows, ok := v.([]any)
			if !ok {
				continue
			}
			t := jsonTensor{name: name, rows: len(rows), rank1: true}
			for _, r := range rows {
				if _, isArray := r.([]any); isArray {
					t.rank1 = false
				}
				t.values = flatten(t.values, r)
			}
			out = append(out, t)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
		return out
	}
	var list []struct {
		Name  string  `json:"name"`
		Shape []int64 `json:"shape"`
		Data  any     `json:"data"`
	}
	if json.Unmarshal(doc[key], &list) != nil {
		return nil
	}
	for _, e := range list {
		if len(e.Shape) == 0 {
			continue
		}
		values := flatten(nil, e.Data)
		if e.Shape[0] < 0 || e.Shape[0] > int64(len(values)) {
			continue // not the shape of its data
		}
		out = append(out, jsonTensor{name: e.Name, rows: int(e.Shape[0]), rank1: len(e.Shape) == 1, values: values})
	}
	return out
}

// flatten appends the leaves of v, nested arrays, to out.
func flatten(out []any, v any) []any {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			out = flatten(out, e)
		}
		return out
	}
	return append(out, v)
}
