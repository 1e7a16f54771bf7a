package drift

import (
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Histogram limits: a numeric histogram has 1 to MaxBins bins between its
// underflow and overflow bins (2 to MaxBins+1 edges); a categorical one
// counts at most DefaultMaxCategories distinct values unless told otherwise,
// the rest in its other bucket.
const (
	MaxBins              = 1000
	DefaultMaxCategories = 1000
)

// Numeric is a streaming histogram of numbers over fixed edges e[0] < e[1] <
// ... < e[k−1], with k+1 bins numbered as a baseline's counts are:
//
//	bin 0      x < e[0]                (underflow)
//	bin i      e[i−1] <= x < e[i]      for 1 <= i <= k−2
//	bin k−1    e[k−2] <= x <= e[k−1]   (the last inner bin is closed, as numpy's)
//	bin k      x > e[k−1]              (overflow)
//
// It also keeps the sum, minimum and maximum of the values. Add, Merge and
// Snapshot are safe for concurrent use and take no lock: every count is an
// atomic. Two histograms over the same edges merge into the histogram of
// the union of their values, so replicas add up.
type Numeric struct {
	edges  []float64
	counts []atomic.Int64
	sum    atomicFloat
	min    atomicFloat
	max    atomicFloat
}

// NumericSnapshot is a copy of a Numeric histogram's state. Count is the sum
// of Counts; Sum, Min and Max are 0 while Count is 0. A snapshot taken while
// values are being added may be off by those in flight (Sum against Counts).
type NumericSnapshot struct {
	Edges  []float64 `json:"edges"`
	Counts []int64   `json:"counts"`
	Count  int64     `json:"count"`
	Sum    float64   `json:"sum"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

// Mean returns Sum/Count, or 0 when there are no values.
func (s NumericSnapshot) Mean() float64 {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / float64(s.Count)
}

// NewNumeric returns an empty histogram over a copy of edges, which must be
// finite, strictly increasing, and 2 to MaxBins+1 of them. Errors match
// ErrInvalid.
func NewNumeric(edges []float64) (*Numeric, error) {
	if err := checkEdges("edges", edges); err != nil {
		return nil, err
	}
	return newNumeric(slices.Clone(edges)), nil
}

// newNumeric shares edges, which the caller has checked and never modifies.
func newNumeric(edges []float64) *Numeric {
	h := &Numeric{edges: edges, counts: make([]atomic.Int64, len(edges)+1)}
	h.min.store(math.Inf(1))
	h.max.store(math.Inf(-1))
	return h
}

func checkEdges(field string, edges []float64) error {
	if len(edges) < 2 || len(edges) > MaxBins+1 {
		return invalid("%s: want 2 to %d edges, got %d", field, MaxBins+1, len(edges))
	}
	for i, e := range edges {
		switch {
		case math.IsNaN(e) || math.IsInf(e, 0):
			return invalid("%s[%d]: must be a finite number", field, i)
		case i > 0 && e <= edges[i-1]:
			return invalid("%s[%d]: must be greater than %s[%d] (%v), got %v", field, i, field, i-1, edges[i-1], e)
		}
	}
	return nil
}

// Edges returns a copy of the histogram's edges.
func (h *Numeric) Edges() []float64 { return slices.Clone(h.edges) }

// Bin returns the number of the bin x falls in (see Numeric). NaN falls in
// none: Bin returns −1.
func (h *Numeric) Bin(x float64) int { return bin(h.edges, x) }

func bin(edges []float64, x float64) int {
	k := len(edges)
	switch {
	case x < edges[0]:
		return 0
	case x > edges[k-1]:
		return k
	case x == edges[k-1]:
		return k - 1
	case x != x:
		return -1
	}
	// The first edge greater than x, in 1..k−1.
	lo, hi := 1, k-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if edges[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// Add counts x. NaN and ±Inf are not counted: they have no place in a
// distribution's bins, and would poison the sum.
func (h *Numeric) Add(x float64) {
	if math.IsInf(x, 0) {
		return
	}
	i := bin(h.edges, x)
	if i < 0 {
		return
	}
	h.counts[i].Add(1)
	h.sum.add(x)
	h.min.lower(x)
	h.max.raise(x)
}

// Merge adds o's values to h. The histograms must have the same edges;
// otherwise Merge returns an error matching ErrInvalid and changes nothing.
func (h *Numeric) Merge(o *Numeric) error { return h.MergeSnapshot(o.Snapshot()) }

// MergeSnapshot adds a snapshot's values to h (its Count is not read; the
// counts are). The snapshot must have h's edges and one count per bin, none
// negative; otherwise it returns an error matching ErrInvalid and changes
// nothing.
func (h *Numeric) MergeSnapshot(s NumericSnapshot) error {
	if !slices.Equal(s.Edges, h.edges) {
		return invalid("merge: the histograms' edges differ")
	}
	if len(s.Counts) != len(h.counts) {
		return invalid("merge: want %d counts, got %d", len(h.counts), len(s.Counts))
	}
	var n int64
	for i, c := range s.Counts {
		if c < 0 {
			return invalid("merge: counts[%d]: must not be negative, got %d", i, c)
		}
		n += c
	}
	if n == 0 {
		return nil
	}
	for i, c := range s.Counts {
		h.counts[i].Add(c)
	}
	h.sum.add(s.Sum)
	h.min.lower(s.Min)
	h.max.raise(s.Max)
	return nil
}

// Snapshot returns a copy of the histogram's state.
func (h *Numeric) Snapshot() NumericSnapshot {
	s := NumericSnapshot{Edges: slices.Clone(h.edges), Counts: make([]int64, len(h.counts))}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	if s.Count > 0 {
		s.Sum, s.Min, s.Max = h.sum.load(), h.min.load(), h.max.load()
	}
	return s
}

// Count returns the number of values counted.
func (h *Numeric) Count() int64 {
	var n int64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Clone returns an independent copy of h.
func (h *Numeric) Clone() *Numeric {
	c := newNumeric(h.edges) // edges are never modified, so they can be shared
	// The snapshot has h's edges and counts, so merging cannot fail.
	_ = c.MergeSnapshot(h.Snapshot())
	return c
}

// Categorical is a streaming histogram of strings: a count per distinct
// value, for at most a fixed number of distinct values; the values that come
// after those are counted together in an "other" bucket. Add, Merge and
// Snapshot are safe for concurrent use. Counting a value already seen takes
// no lock (the map of counters is replaced whole, copy on write, when a value
// is new), so a histogram seeded with the expected values is cheap to feed.
type Categorical struct {
	max  int
	cats atomic.Pointer[map[string]*atomic.Int64]
	full atomic.Bool // len(*cats) >= max
	mu   sync.Mutex  // serializes changes of cats
	// other counts the values beyond max.
	other atomic.Int64
}

// CategoricalSnapshot is a copy of a Categorical histogram's state: the
// count of each value counted at least once, the count of other values, and
// their total.
type CategoricalSnapshot struct {
	Categories map[string]int64 `json:"categories"`
	Other      int64            `json:"other"`
	Count      int64            `json:"count"`
}

// NewCategorical returns an empty histogram that counts up to maxCategories
// distinct values (DefaultMaxCategories if maxCategories <= 0, and at least
// len(seed)), with a counter for each seed value ready.
func NewCategorical(maxCategories int, seed ...string) *Categorical {
	if maxCategories <= 0 {
		maxCategories = DefaultMaxCategories
	}
	h := &Categorical{max: max(maxCategories, len(seed))}
	m := make(map[string]*atomic.Int64, len(seed))
	for _, s := range seed {
		m[s] = new(atomic.Int64)
	}
	h.cats.Store(&m)
	h.full.Store(len(m) >= h.max)
	return h
}

// Add counts one occurrence of v.
func (h *Categorical) Add(v string) { h.add(v, 1) }

func (h *Categorical) add(v string, n int64) {
	if c, ok := (*h.cats.Load())[v]; ok {
		c.Add(n)
		return
	}
	if h.full.Load() {
		h.other.Add(n)
		return
	}
	h.counter(v).Add(n)
}

// counter returns v's counter, adding one if there is room, or the other
// bucket's.
func (h *Categorical) counter(v string) *atomic.Int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.cats.Load()
	if c, ok := old[v]; ok {
		return c
	}
	if len(old) >= h.max {
		return &h.other
	}
	m := make(map[string]*atomic.Int64, len(old)+1)
	maps.Copy(m, old)
	c := new(atomic.Int64)
	// The key may be a slice of a large request body; keep only its bytes.
	m[strings.Clone(v)] = c
	h.cats.Store(&m)
	h.full.Store(len(m) >= h.max)
	return c
}

// Merge adds o's counts to h. Values h has no room for go to its other
// bucket, as do o's other values.
func (h *Categorical) Merge(o *Categorical) {
	// o's snapshot has no negative counts, so merging cannot fail.
	_ = h.MergeSnapshot(o.Snapshot())
}

// MergeSnapshot adds a snapshot's counts to h (its Count is not read). A
// negative count is an error matching ErrInvalid, and then nothing changes.
func (h *Categorical) MergeSnapshot(s CategoricalSnapshot) error {
	if s.Other < 0 {
		return invalid("merge: other: must not be negative, got %d", s.Other)
	}
	for v, n := range s.Categories {
		if n < 0 {
			return invalid("merge: categories[%q]: must not be negative, got %d", v, n)
		}
	}
	// In sorted order, so that which values get a counter when h fills up
	// does not depend on map iteration.
	for _, v := range slices.Sorted(maps.Keys(s.Categories)) {
		if n := s.Categories[v]; n > 0 {
			h.add(v, n)
		}
	}
	h.other.Add(s.Other)
	return nil
}

// Snapshot returns a copy of the histogram's state.
func (h *Categorical) Snapshot() CategoricalSnapshot {
	m := *h.cats.Load()
	s := CategoricalSnapshot{Categories: make(map[string]int64, len(m)), Other: h.other.Load()}
	s.Count = s.Other
	for v, c := range m {
		if n := c.Load(); n > 0 {
			s.Categories[v] = n
			s.Count += n
		}
	}
	return s
}

// Count returns the number of values counted.
func (h *Categorical) Count() int64 {
	n := h.other.Load()
	for _, c := range *h.cats.Load() {
		n += c.Load()
	}
	return n
}

// Clone returns an independent copy of h, with room for as many values.
func (h *Categorical) Clone() *Categorical {
	c := NewCategorical(h.max)
	c.Merge(h)
	return c
}

// atomicFloat is a float64 updated by compare-and-swap.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) load() float64   { return math.Float64frombits(f.bits.Load()) }
func (f *atomicFloat) store(x float64) { f.bits.Store(math.Float64bits(x)) }

func (f *atomicFloat) add(x float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+x)) {
			return
		}
	}
}

// lower sets f to x if x is smaller.
func (f *atomicFloat) lower(x float64) {
	for {
		old := f.bits.Load()
		if !(x < math.Float64frombits(old)) || f.bits.CompareAndSwap(old, math.Float64bits(x)) {
			return
		}
	}
}

// raise sets f to x if x is larger.
func (f *atomicFloat) raise(x float64) {
	for {
		old := f.bits.Load()
		if !(x > math.Float64frombits(old)) || f.bits.CompareAndSwap(old, math.Float64bits(x)) {
			return
		}
	}
}
