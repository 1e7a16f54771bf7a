package drift

import (
	"cmp"
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/mlgate/mlgate/internal/jsonerr"
)

// Baseline limits, generous enough for any honest use.
const (
	MaxBaselineSeries = 1000 // features, and predictions, each
	maxSeriesName     = 256
	maxCategoryName   = 1024
	DefaultBins       = 10
)

// Baseline is the distribution a model version saw in training, against
// which drift is measured: a histogram per input feature and per prediction
// output. Registered with the model version as metadata "baseline", or
// computed from a reference window of the inference table.
type Baseline struct {
	Features    map[string]FeatureBaseline `json:"features"`
	Predictions map[string]FeatureBaseline `json:"predictions,omitempty"`
}

// FeatureBaseline is one feature's (or prediction's) baseline histogram,
// either numeric or categorical.
//
// Numeric: Edges e[0] < ... < e[k−1] (2 to MaxBins+1 finite numbers) and
// k+1 Counts: counts[0] of values below e[0] (underflow), counts[i] of
// values in [e[i−1], e[i]) for 1 <= i <= k−1 (the last of these closed,
// [e[k−2], e[k−1]]), and counts[k] of values above e[k−1] (overflow). A
// baseline computed from samples has edges from the minimum to the maximum,
// so its underflow and overflow counts are 0.
//
// Categorical: Categories maps each value to its count (at most
// DefaultMaxCategories values), and Other counts the values not listed.
//
// In JSON: {"edges": [0, 1.5, 3], "counts": [0, 40, 60, 0]} or
// {"categories": {"fr": 10, "de": 7}, "other": 2}. Counts are whole numbers
// of observations, not shares: the tests need the sample size.
type FeatureBaseline struct {
	Edges      []float64        `json:"edges,omitempty"`
	Counts     []int64          `json:"counts,omitempty"`
	Categories map[string]int64 `json:"categories,omitempty"`
	Other      int64            `json:"other,omitempty"`
}

// IsNumeric reports whether the histogram is numeric (has edges).
func (f FeatureBaseline) IsNumeric() bool { return f.Edges != nil }

// Total returns the number of observations in the histogram.
func (f FeatureBaseline) Total() int64 {
	n := f.Other
	for _, c := range f.Counts {
		n += c
	}
	for _, c := range f.Categories {
		n += c
	}
	return n
}

// DecodeBaseline decodes a baseline strictly (unknown fields are errors) and
// checks it. Errors match ErrInvalid and name the field, as in
// `baseline.features["age"].counts: want 4 counts ...`.
func DecodeBaseline(raw []byte) (*Baseline, error) {
	if !utf8.Valid(raw) {
		return nil, invalid("baseline: not valid UTF-8")
	}
	var doc struct {
		Features    map[string]json.RawMessage `json:"features"`
		Predictions map[string]json.RawMessage `json:"predictions"`
	}
	if err := jsonerr.Decode(raw, &doc); err != nil {
		return nil, invalid("baseline: %v", err)
	}
	b := &Baseline{}
	for _, group := range []struct {
		field string
		raw   map[string]json.RawMessage
		out   *map[string]FeatureBaseline
	}{
		{"features", doc.Features, &b.Features},
		{"predictions", doc.Predictions, &b.Predictions},
	} {
		if group.raw == nil {
			continue
		}
		if len(group.raw) > MaxBaselineSeries {
			return nil, invalid("baseline.%s: at most %d, got %d", group.field, MaxBaselineSeries, len(group.raw))
		}
		*group.out = make(map[string]FeatureBaseline, len(group.raw))
		for _, name := range slices.Sorted(maps.Keys(group.raw)) {
			var f FeatureBaseline
			if err := jsonerr.Decode(group.raw[name], &f); err != nil {
				return nil, invalid("baseline.%s[%q]: %v", group.field, name, err)
			}
			(*group.out)[name] = f
		}
	}
	if err := b.Check(); err != nil {
		return nil, err
	}
	return b, nil
}

// Check reports whether the baseline is well formed: at least one feature
// or prediction, each a numeric or a categorical histogram as
// FeatureBaseline describes, with no negative count and at least one
// observation. Errors match ErrInvalid and name the field.
func (b *Baseline) Check() error {
	if len(b.Features) == 0 && len(b.Predictions) == 0 {
		return invalid("baseline: want at least one feature or prediction")
	}
	for _, group := range []struct {
		field  string
		series map[string]FeatureBaseline
	}{{"features", b.Features}, {"predictions", b.Predictions}} {
		if len(group.series) > MaxBaselineSeries {
			return invalid("baseline.%s: at most %d, got %d", group.field, MaxBaselineSeries, len(group.series))
		}
		for _, name := range slices.Sorted(maps.Keys(group.series)) {
			field := "baseline." + group.field + "[" + strconv.Quote(name) + "]"
			if name == "" || len(name) > maxSeriesName {
				return invalid("%s: a name of 1 to %d bytes", field, maxSeriesName)
			}
			if err := group.series[name].check(field); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f FeatureBaseline) check(field string) error {
	numeric := f.Edges != nil || f.Counts != nil
	categorical := f.Categories != nil || f.Other != 0
	switch {
	case numeric && categorical:
		return invalid("%s: has both edges/counts and categories/other; a histogram is numeric or categorical", field)
	case numeric:
		if err := checkEdges(field+".edges", f.Edges); err != nil {
			return err
		}
		if len(f.Counts) != len(f.Edges)+1 {
			return invalid("%s.counts: want %d counts (underflow, %d bins, overflow), got %d",
				field, len(f.Edges)+1, len(f.Edges)-1, len(f.Counts))
		}
		for i, c := range f.Counts {
			if c < 0 {
				return invalid("%s.counts[%d]: must not be negative, got %d", field, i, c)
			}
		}
	case categorical:
		if len(f.Categories) > DefaultMaxCategories {
			return invalid("%s.categories: at most %d, got %d; count the rest in \"other\"", field, DefaultMaxCategories, len(f.Categories))
		}
		for _, v := range slices.Sorted(maps.Keys(f.Categories)) {
			if len(v) > maxCategoryName {
				return invalid("%s.categories: %.40q...: at most %d bytes", field, v, maxCategoryName)
			}
			if c := f.Categories[v]; c < 0 {
				return invalid("%s.categories[%q]: must not be negative, got %d", field, v, c)
			}
		}
		if f.Other < 0 {
			return invalid("%s.other: must not be negative, got %d", field, f.Other)
		}
	default:
		return invalid("%s: want \"edges\" and \"counts\" (numeric) or \"categories\" (categorical)", field)
	}
	if f.Total() <= 0 {
		return invalid("%s: no observations; a baseline needs counts", field)
	}
	return nil
}

// BaselineBuilder computes a Baseline from sample values, such as a training
// set or a reference window of the inference table. Numbers make a numeric
// histogram with edges at quantiles; strings and booleans a categorical one.
// It keeps up to MaxValues numbers per feature (a uniform reservoir sample
// beyond that, drawn from a fixed seed, so the result is reproducible); the
// baseline's counts are then of the values kept. It is not safe for
// concurrent use.
type BaselineBuilder struct {
	// MaxValues bounds the numbers kept per feature, 8 bytes each.
	MaxValues   int
	features    map[string]*samples
	predictions map[string]*samples
}

// DefaultMaxValues is BaselineBuilder.MaxValues unless changed.
const DefaultMaxValues = 1 << 20

type samples struct {
	numeric bool
	values  []float64
	seen    int64
	rng     *rand.Rand
	cats    map[string]int64
}

// NewBaselineBuilder returns an empty builder.
func NewBaselineBuilder() *BaselineBuilder {
	return &BaselineBuilder{
		MaxValues:   DefaultMaxValues,
		features:    make(map[string]*samples),
		predictions: make(map[string]*samples),
	}
}

// Add records one value of a feature: a number (any Go integer or float
// type, or json.Number) or a string or bool. Nil, NaN and ±Inf are skipped
// as missing. A value of the other kind than the feature's earlier ones, or
// of another type, is an error matching ErrInvalid, and is not recorded.
func (b *BaselineBuilder) Add(feature string, value any) error {
	return b.add(b.features, "feature", feature, value)
}

// AddPrediction records one value of a prediction output, as Add does for
// features.
func (b *BaselineBuilder) AddPrediction(name string, value any) error {
	return b.add(b.predictions, "prediction", name, value)
}

func (b *BaselineBuilder) add(group map[string]*samples, what, name string, value any) error {
	if value == nil {
		return nil
	}
	x, isNum := numberOf(value)
	s, isCat := categoryOf(value)
	if !isNum && !isCat {
		return invalid("%s %q: want a number, string or bool, got %T", what, name, value)
	}
	set := group[name]
	if set == nil {
		set = &samples{numeric: isNum}
		if isNum {
			set.rng = rand.New(rand.NewPCG(uint64(len(group)), 0x6d6c67617465))
		} else {
			set.cats = make(map[string]int64)
		}
		group[name] = set
	}
	switch {
	case set.numeric && !isNum:
		return invalid("%s %q: got %T, but earlier values were numbers", what, name, value)
	case !set.numeric && isNum:
		return invalid("%s %q: got %T, but earlier values were strings or bools", what, name, value)
	case isCat:
		set.cats[s]++
	case math.IsNaN(x) || math.IsInf(x, 0):
	default:
		set.seen++
		switch limit := max(b.MaxValues, 1); {
		case len(set.values) < limit:
			set.values = append(set.values, x)
		default:
			if j := set.rng.Int64N(set.seen); j < int64(limit) {
				set.values[j] = x
			}
		}
	}
	return nil
}

// Build returns the baseline of the values recorded so far. A numeric
// feature gets edges at the quantiles 0, 1/bins, 2/bins, ..., 1 of its
// values (linear interpolation between order statistics, numpy's default),
// with repeated edges dropped, so a feature with ties may get fewer bins; a
// feature with one distinct value v gets the edges v and the next float
// above it. bins < 1 means DefaultBins; more than MaxBins means MaxBins. A
// categorical feature keeps its DefaultMaxCategories most frequent values
// (ties broken by value) and counts the rest as Other. Features with no
// value recorded are left out.
func (b *BaselineBuilder) Build(bins int) *Baseline {
	if bins < 1 {
		bins = DefaultBins
	}
	bins = min(bins, MaxBins)
	out := &Baseline{Features: buildGroup(b.features, bins)}
	if len(b.predictions) > 0 {
		out.Predictions = buildGroup(b.predictions, bins)
	}
	return out
}

func buildGroup(group map[string]*samples, bins int) map[string]FeatureBaseline {
	out := make(map[string]FeatureBaseline, len(group))
	for name, s := range group {
		switch {
		case s.numeric && len(s.values) > 0:
			out[name] = numericBaseline(s.values, bins)
		case !s.numeric:
			out[name] = categoricalBaseline(s.cats)
		}
	}
	return out
}

func numericBaseline(values []float64, bins int) FeatureBaseline {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	edges := make([]float64, 0, bins+1)
	for j := 0; j <= bins; j++ {
		e := quantile(sorted, float64(j)/float64(bins))
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	if len(edges) == 1 {
		edges = append(edges, math.Nextafter(edges[0], math.Inf(1)))
	}
	counts := make([]int64, len(edges)+1)
	for _, x := range sorted {
		counts[bin(edges, x)]++
	}
	return FeatureBaseline{Edges: edges, Counts: counts}
}

// quantile returns the q-quantile of sorted values by linear interpolation
// between the order statistics at (n−1)·q (numpy's "linear" method).
func quantile(sorted []float64, q float64) float64 {
	h := float64(len(sorted)-1) * q
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

func categoricalBaseline(cats map[string]int64) FeatureBaseline {
	f := FeatureBaseline{Categories: make(map[string]int64, min(len(cats), DefaultMaxCategories))}
	names := slices.SortedFunc(maps.Keys(cats), func(a, b string) int {
		return cmp.Or(cmp.Compare(cats[b], cats[a]), cmp.Compare(a, b))
	})
	for i, v := range names {
		if i < DefaultMaxCategories {
			f.Categories[v] = cats[v]
		} else {
			f.Other += cats[v]
		}
	}
	return f
}
