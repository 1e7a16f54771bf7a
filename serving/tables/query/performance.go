package query

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/mlgate/mlgate/serving/tables"
)

// Performance is a model's measured quality on the labelled predictions of
// one endpoint variant and model version: accuracy (and, for binary labels
// with a probability output, AUC) when the predictions are class labels,
// else mean absolute and root mean squared error.
type Performance struct {
	Endpoint string   `json:"endpoint,omitempty"`
	Variant  string   `json:"variant,omitempty"`
	Model    string   `json:"model"`
	Version  int64    `json:"version"`
	Labelled int      `json:"labelled"`
	Kind     string   `json:"kind"` // classifier or regressor
	Accuracy *float64 `json:"accuracy,omitempty"`
	AUC      *float64 `json:"auc,omitempty"`
	MAE      *float64 `json:"mae,omitempty"`
	RMSE     *float64 `json:"rmse,omitempty"`
}

// scored is one labelled prediction.
type scored struct {
	label, prediction float64
	score             float64 // probability of class 1, or NaN
}

// Measure joins labels, by request id, with the served predictions f
// selects, and measures each endpoint variant and model version on them,
// in that order. A request's label is compared with its first entity row's
// prediction: the first numeric output's first column. It reads no row when
// there are no labels; it returns ctx's error once ctx ends, and wraps the
// errors of reading the table.
func Measure(ctx context.Context, rows Rows, labels map[string]float64, f tables.Filter) ([]Performance, error) {
	if len(labels) == 0 {
		return []Performance{}, nil
	}
	type key struct {
		endpoint, variant, model string
		version                  int64
	}
	groups := map[key][]scored{}
	err := rows.ReadRows(ctx, f, func(r tables.Row) error {
		label, ok := labels[r.RequestID]
		if !ok || !isServed(&r) {
			return nil
		}
		if s, ok := firstPrediction(r.Response); ok {
			s.label = label
			k := key{r.Endpoint, r.Variant, r.ModelName, r.ModelVersion}
			groups[k] = append(groups[k], s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the inference table for the labelled predictions: %w", err)
	}
	out := []Performance{}
	for k, ss := range groups {
		p := Performance{Endpoint: k.endpoint, Variant: k.variant, Model: k.model, Version: k.version, Labelled: len(ss)}
		p.measure(ss)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Endpoint != b.Endpoint || a.Variant != b.Variant {
			return a.Endpoint+"\x00"+a.Variant < b.Endpoint+"\x00"+b.Variant
		}
		return a.Model+strconv.FormatInt(a.Version, 10) < b.Model+strconv.FormatInt(b.Version, 10)
	})
	return out, nil
}

// firstPrediction reads a recorded answer's first numeric output at row 0,
// and the probability of class "1" when an output gives class probabilities.
func firstPrediction(response string) (scored, bool) {
	s := scored{score: math.NaN()}
	found := false
	for _, t := range namedTensors(response, "outputs") {
		if len(t.values) == 0 {
			continue
		}
		switch v := t.values[0].(type) {
		case float64:
			if !found {
				s.prediction, found = v, true
			}
		case map[string]any:
			if p, ok := v["1"].(float64); ok {
				s.score = p
			}
		}
	}
	return s, found
}

// measure fills p's kind and figures from its labelled predictions.
func (p *Performance) measure(ss []scored) {
	classes := true
	for _, s := range ss {
		if s.label != math.Trunc(s.label) || s.prediction != math.Trunc(s.prediction) {
			classes = false
		}
	}
	if classes {
		p.Kind = "classifier"
		right := 0
		for _, s := range ss {
			if s.label == s.prediction {
				right++
			}
		}
		acc := float64(right) / float64(len(ss))
		p.Accuracy = &acc
		if auc, ok := binaryAUC(ss); ok {
			p.AUC = &auc
		}
		return
	}
	p.Kind = "regressor"
	var abs, sq float64
	for _, s := range ss {
		d := s.prediction - s.label
		abs += math.Abs(d)
		sq += d * d
	}
	mae, rmse := abs/float64(len(ss)), math.Sqrt(sq/float64(len(ss)))
	p.MAE, p.RMSE = &mae, &rmse
}

// binaryAUC is the area under the ROC curve of the class-1 probabilities
// against 0/1 labels: the share of (positive, negative) pairs the scores
// order rightly, ties counting half. It counts them from the ranks of the
// positives among all scores (the Mann-Whitney U), tied scores sharing
// their mean rank.
func binaryAUC(ss []scored) (float64, bool) {
	var pos, neg float64
	for _, s := range ss {
		if math.IsNaN(s.score) || (s.label != 0 && s.label != 1) {
			return 0, false
		}
		if s.label == 1 {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return 0, false
	}
	byScore := slices.SortedFunc(slices.Values(ss), func(a, b scored) int { return cmp.Compare(a.score, b.score) })
	var ranks float64 // of the positives, from 1
	for i := 0; i < len(byScore); {
		j := i + 1
		for j < len(byScore) && byScore[j].score == byScore[i].score {
			j++
		}
		mean := float64(i+1+j) / 2
		for _, s := range byScore[i:j] {
			if s.label == 1 {
				ranks += mean
			}
		}
		i = j
	}
	return (ranks - pos*(pos+1)/2) / (pos * neg), true
}
