package drift

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"testing"
)

func TestNumeric_Bins(t *testing.T) {
	h, err := NewNumeric([]float64{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		x    float64
		want int
	}{
		{-0.5, 0}, {math.Inf(-1), 0}, {math.Nextafter(0, -1), 0},
		{0, 1}, {0.5, 1}, {math.Nextafter(1, 0), 1},
		{1, 2}, {1.5, 2},
		{2, 3}, {2.5, 3}, {3, 3}, // the last inner bin is closed
		{math.Nextafter(3, 4), 4}, {1e300, 4}, {math.Inf(1), 4},
		{math.NaN(), -1},
	} {
		if got := h.Bin(tt.x); got != tt.want {
			t.Errorf("Bin(%v) = %d, want %d", tt.x, got, tt.want)
		}
	}
}

func TestNumeric_AddAndSnapshot(t *testing.T) {
	h, _ := NewNumeric([]float64{0, 10})
	if s := h.Snapshot(); s.Count != 0 || s.Min != 0 || s.Max != 0 || s.Mean() != 0 {
		t.Errorf("empty snapshot = %+v", s)
	}
	for _, x := range []float64{-1, 3, 4, 12, math.NaN(), math.Inf(1), math.Inf(-1)} {
		h.Add(x)
	}
	s := h.Snapshot()
	want := NumericSnapshot{Edges: []float64{0, 10}, Counts: []int64{1, 2, 1}, Count: 4, Sum: 18, Min: -1, Max: 12}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("snapshot = %+v, want %+v", s, want)
	}
	if s.Mean() != 4.5 {
		t.Errorf("mean = %v, want 4.5", s.Mean())
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("marshal snapshot: %v", err)
	}
}

func TestNewNumeric_Invalid(t *testing.T) {
	for _, edges := range [][]float64{
		nil, {1}, {1, 1}, {2, 1}, {0, math.NaN()}, {0, math.Inf(1)}, make([]float64, MaxBins+2),
	} {
		if _, err := NewNumeric(edges); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewNumeric(%v) = %v, want ErrInvalid", edges, err)
		}
	}
}

// Merging the histograms of two parts of a sample gives the histogram of
// the whole sample.
func TestNumeric_MergeIsUnion(t *testing.T) {
	edges := []float64{-2, -1, 0, 0.5, 1, 2}
	rng := rand.New(rand.NewPCG(1, 2))
	whole, _ := NewNumeric(edges)
	a, _ := NewNumeric(edges)
	b, _ := NewNumeric(edges)
	for i := range 5000 {
		x := rng.NormFloat64() * 1.5
		// Quarter-integers, so that sums are exact whatever the order.
		x = math.Round(x*4) / 4
		whole.Add(x)
		if i%3 == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if got, want := a.Snapshot(), whole.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %+v, want %+v", got, want)
	}
	c := whole.Clone()
	whole.Add(100)
	if c.Count() != 5000 || whole.Count() != 5001 {
		t.Errorf("clone shares state: clone %d, original %d", c.Count(), whole.Count())
	}
	empty, _ := NewNumeric(edges)
	if err := c.Merge(empty); err != nil || !reflect.DeepEqual(c.Snapshot(), a.Snapshot()) {
		t.Errorf("merging an empty histogram changed it: %v", err)
	}
}

func TestNumeric_MergeMismatch(t *testing.T) {
	a, _ := NewNumeric([]float64{0, 1})
	b, _ := NewNumeric([]float64{0, 2})
	b.Add(1)
	if err := a.Merge(b); !errors.Is(err, ErrInvalid) {
		t.Errorf("merge of other edges = %v, want ErrInvalid", err)
	}
	if err := a.MergeSnapshot(NumericSnapshot{Edges: []float64{0, 1}, Counts: []int64{1, 2}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("merge of too few counts = %v, want ErrInvalid", err)
	}
	if err := a.MergeSnapshot(NumericSnapshot{Edges: []float64{0, 1}, Counts: []int64{1, -2, 0}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("merge of a negative count = %v, want ErrInvalid", err)
	}
	if a.Count() != 0 {
		t.Errorf("a failed merge changed the histogram: count %d", a.Count())
	}
}

func TestCategorical_MergeIsUnion(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	whole := NewCategorical(0)
	a := NewCategorical(0, "c3")
	b := NewCategorical(0)
	for i := range 3000 {
		v := "c" + strconv.Itoa(int(rng.ExpFloat64()*5))
		whole.Add(v)
		if i%2 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Merge(b)
	if got, want := a.Snapshot(), whole.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %+v, want %+v", got, want)
	}
	if got := a.Clone().Snapshot(); !reflect.DeepEqual(got, whole.Snapshot()) {
		t.Errorf("clone = %+v", got)
	}
}

func TestCategorical_Cap(t *testing.T) {
	h := NewCategorical(2, "a")
	for _, v := range []string{"a", "b", "c", "a", "d", "b"} {
		h.Add(v)
	}
	want := CategoricalSnapshot{Categories: map[string]int64{"a": 2, "b": 2}, Other: 2, Count: 6}
	if got := h.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot = %+v, want %+v", got, want)
	}
	// Seeds beyond the cap raise it; a zero seed is not reported.
	h = NewCategorical(1, "x", "y")
	h.Add("y")
	h.Add("z")
	want = CategoricalSnapshot{Categories: map[string]int64{"y": 1}, Other: 1, Count: 2}
	if got := h.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot = %+v, want %+v", got, want)
	}
	if err := h.MergeSnapshot(CategoricalSnapshot{Categories: map[string]int64{"y": -1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("merge of a negative count = %v, want ErrInvalid", err)
	}
}

// Run with -race: concurrent Add, Merge and Snapshot lose no count.
func TestHistograms_Concurrent(t *testing.T) {
	num, _ := NewNumeric([]float64{0, 1, 2})
	cat := NewCategorical(50)
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				num.Add(float64(i%4) - 0.5)
				cat.Add("v" + strconv.Itoa((g*each+i)%64))
				if i%500 == 0 {
					num.Snapshot()
					cat.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	if got := num.Count(); got != goroutines*each {
		t.Errorf("numeric count = %d, want %d", got, goroutines*each)
	}
	s := num.Snapshot()
	if s.Min != -0.5 || s.Max != 2.5 || s.Sum != goroutines*each/4*(-0.5+0.5+1.5+2.5) {
		t.Errorf("numeric snapshot = %+v", s)
	}
	cs := cat.Snapshot()
	if cs.Count != goroutines*each || len(cs.Categories) != 50 || cs.Other == 0 {
		t.Errorf("categorical: count %d, %d categories, other %d", cs.Count, len(cs.Categories), cs.Other)
	}
}

func BenchmarkNumeric_Add_Bins10(b *testing.B) {
	h, _ := NewNumeric([]float64{-1.28, -0.84, -0.52, -0.25, 0, 0.25, 0.52, 0.84, 1.28, 3})
	b.ReportAllocs()
	x := 0.0
	for b.Loop() {
		h.Add(x)
		x += 0.37
		if x > 3.5 {
			x = -3
		}
	}
}

func BenchmarkNumeric_Add_Bins10_Parallel(b *testing.B) {
	h, _ := NewNumeric([]float64{-1.28, -0.84, -0.52, -0.25, 0, 0.25, 0.52, 0.84, 1.28, 3})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		x := 0.0
		for pb.Next() {
			h.Add(x)
			x += 0.37
			if x > 3.5 {
				x = -3
			}
		}
	})
}

func BenchmarkCategorical_Add_Categories20(b *testing.B) {
	values := make([]string, 20)
	for i := range values {
		values[i] = "category-" + strconv.Itoa(i)
	}
	h := NewCategorical(len(values), values...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Add(values[i%len(values)])
		i++
	}
}
