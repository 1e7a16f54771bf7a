package drift

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// reference is testdata/reference.json, written by testdata/gen_reference.py:
// PSI by its formula in numpy, the binned KS statistic in numpy with its
// p-value from scipy.stats.kstwobign, the Jensen–Shannon distance from
// scipy.spatial.distance.jensenshannon(base=2), and the chi-square test from
// scipy.stats.chi2_contingency(correction=False) on the grouped table; and
// the quantile edges of BaselineBuilder.Build from numpy.quantile and
// numpy.histogram. See the script's doc string.
type reference struct {
	PSIEpsilon float64 `json:"psi_epsilon"`
	Cases      []struct {
		Name             string
		Baseline, Window []int64
		PSI              float64 `json:"psi"`
		KSD              float64 `json:"ks_d"`
		KSP              float64 `json:"ks_p"`
		JS               float64 `json:"js"`
		Chi2             float64 `json:"chi2"`
		Chi2P            float64 `json:"chi2_p"`
		Chi2DF           int     `json:"chi2_df"`
	}
	Builder []struct {
		Name   string
		Values []float64
		Bins   int
		Edges  []float64
		Counts []int64
	}
}

func loadReference(t *testing.T) reference {
	t.Helper()
	data, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 || len(ref.Builder) == 0 {
		t.Fatal("reference.json has no cases")
	}
	return ref
}

// near reports whether got is within a relative 1e-12 of want (p-values of
// 1e-116 included), or an absolute 1e-15 of a want of 0.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-12*math.Abs(want) || math.Abs(got-want) <= 1e-15
}

func TestStatistics_MatchReference(t *testing.T) {
	ref := loadReference(t)
	if ref.PSIEpsilon != PSIEpsilon {
		t.Fatalf("reference uses epsilon %v, PSIEpsilon is %v", ref.PSIEpsilon, PSIEpsilon)
	}
	for _, c := range ref.Cases {
		b, w := c.Baseline, c.Window
		if got := PSI(b, w); !near(got, c.PSI) {
			t.Errorf("%s: PSI = %.17g, want %.17g", c.Name, got, c.PSI)
		}
		d, p := KS(b, w)
		if !near(d, c.KSD) || !near(p, c.KSP) {
			t.Errorf("%s: KS = D %.17g p %.17g, want D %.17g p %.17g", c.Name, d, p, c.KSD, c.KSP)
		}
		if got := JensenShannon(b, w); !near(got, c.JS) {
			t.Errorf("%s: JensenShannon = %.17g, want %.17g", c.Name, got, c.JS)
		}
		stat, p, df := ChiSquare(b, w)
		if !near(stat, c.Chi2) || !near(p, c.Chi2P) || df != c.Chi2DF {
			t.Errorf("%s: ChiSquare = %.17g p %.17g df %d, want %.17g p %.17g df %d", c.Name, stat, p, df, c.Chi2, c.Chi2P, c.Chi2DF)
		}
	}
}

func TestStatistics_EmptyHistogram(t *testing.T) {
	for _, tt := range []struct{ b, w []int64 }{
		{[]int64{0, 0, 0}, []int64{1, 2, 3}},
		{[]int64{1, 2, 3}, []int64{0, 0, 0}},
		{nil, nil},
	} {
		if got := PSI(tt.b, tt.w); got != 0 {
			t.Errorf("PSI(%v, %v) = %v, want 0", tt.b, tt.w, got)
		}
		if d, p := KS(tt.b, tt.w); d != 0 || p != 1 {
			t.Errorf("KS(%v, %v) = %v, %v, want 0, 1", tt.b, tt.w, d, p)
		}
		if got := JensenShannon(tt.b, tt.w); got != 0 {
			t.Errorf("JensenShannon(%v, %v) = %v, want 0", tt.b, tt.w, got)
		}
		if stat, p, df := ChiSquare(tt.b, tt.w); stat != 0 || p != 1 || df != 0 {
			t.Errorf("ChiSquare(%v, %v) = %v, %v, %v, want 0, 1, 0", tt.b, tt.w, stat, p, df)
		}
	}
}

func TestStatistics_PanicOnLengthMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("PSI of histograms of different lengths did not panic")
		}
	}()
	PSI([]int64{1, 2}, []int64{1, 2, 3})
}

// Binning can only hide distance between the distribution functions: the
// binned D never exceeds the D of the raw values.
func TestKS_BinnedIsLowerBound(t *testing.T) {
	xs := []float64{0.1, 0.4, 0.45, 0.9, 1.3, 1.35, 2.2, 2.8, 3.1, 3.3}
	ys := []float64{0.2, 1.1, 1.2, 1.25, 1.4, 2.1, 2.15, 2.5}
	raw := 0.0
	for _, t := range append(append([]float64{}, xs...), ys...) {
		raw = max(raw, math.Abs(ecdf(xs, t)-ecdf(ys, t)))
	}
	for _, edges := range [][]float64{{1, 2, 3}, {0.5, 1.5, 2.5}, {0.3, 1.22, 2.0, 3.2}} {
		hx, _ := NewNumeric(edges)
		hy, _ := NewNumeric(edges)
		for _, x := range xs {
			hx.Add(x)
		}
		for _, y := range ys {
			hy.Add(y)
		}
		d, _ := KS(hx.Snapshot().Counts, hy.Snapshot().Counts)
		if d > raw+1e-15 {
			t.Errorf("edges %v: binned D %v > raw D %v", edges, d, raw)
		}
	}
}

func ecdf(xs []float64, t float64) float64 {
	n := 0
	for _, x := range xs {
		if x <= t {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

func BenchmarkStatistics_Bins10(b *testing.B) {
	base := []int64{1965, 1954, 2012, 2076, 1997, 2034, 1938, 1969, 2047, 2008, 0, 0}
	win := []int64{19, 38, 61, 77, 110, 137, 186, 225, 326, 821, 0, 3}
	b.ReportAllocs()
	for b.Loop() {
		PSI(base, win)
		KS(base, win)
		JensenShannon(base, win)
		ChiSquare(base, win)
	}
}
