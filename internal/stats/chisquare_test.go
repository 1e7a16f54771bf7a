package stats

import (
	"math"
	"testing"
)

func TestChiSquareP(t *testing.T) {
	tests := []struct {
		stat float64
		df   int
		want float64
	}{
		// Critical values of the chi-square distribution.
		{3.841458820694124, 1, 0.05},
		{10.827566170662733, 1, 0.001},
		{6.634896601021214, 1, 0.01},
		{5.991464547107979, 2, 0.05},
		{7.814727903251178, 3, 0.05},
		{16.26623619623813, 3, 0.001},
		{23.209251158954356, 10, 0.01},
		{0.4549364231195724, 1, 0.5},
		{9.341817765591966, 10, 0.5},
		{124.34211340400407, 100, 0.05},
		// Closed forms: df = 2 gives e^(-x/2), df = 4 gives e^(-x/2)(1 + x/2).
		{2, 2, math.Exp(-1)},
		{30, 4, math.Exp(-15) * 16},
		{0, 3, 1},
		{-1, 3, 1},
		{math.Inf(1), 3, 0},
		{1000, 1, 0},
		{1000, 16, 0},
	}
	for _, tt := range tests {
		got := ChiSquareP(tt.stat, tt.df)
		if math.Abs(got-tt.want) > 1e-9*math.Max(1, tt.want) && math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("ChiSquareP(%v, %d) = %.12g, want %.12g", tt.stat, tt.df, got, tt.want)
		}
	}
	if p := ChiSquareP(1, 0); !math.IsNaN(p) {
		t.Errorf("ChiSquareP(1, 0) = %v, want NaN", p)
	}
	if p := ChiSquareP(math.NaN(), 1); !math.IsNaN(p) {
		t.Errorf("ChiSquareP(NaN, 1) = %v, want NaN", p)
	}
}

// With one degree of freedom the tail is erfc(sqrt(x/2)), which checks both
// the series (x < 1.5 after halving) and the continued fraction.
func TestChiSquareP_OneDegreeMatchesErfc(t *testing.T) {
	for x := 0.01; x < 60; x *= 1.3 {
		got, want := ChiSquareP(x, 1), math.Erfc(math.Sqrt(x/2))
		if math.Abs(got-want) > 1e-12*math.Max(want, 1e-300)+1e-15 {
			t.Errorf("ChiSquareP(%v, 1) = %.15g, want %.15g", x, got, want)
		}
	}
}

// For even df the tail is a finite sum: e^(-x/2) Σ_{k<df/2} (x/2)^k / k!.
func TestChiSquareP_EvenDegreesMatchPoissonSum(t *testing.T) {
	for df := 2; df <= 40; df += 2 {
		for x := 0.1; x < 200; x *= 1.7 {
			h := x / 2
			term, sum := 1.0, 1.0
			for k := 1; k < df/2; k++ {
				term *= h / float64(k)
				sum += term
			}
			want := math.Exp(-h) * sum
			got := ChiSquareP(x, df)
			if math.Abs(got-want) > 1e-10*want+1e-15 {
				t.Errorf("ChiSquareP(%v, %d) = %.15g, want %.15g", x, df, got, want)
			}
		}
	}
}

func TestGoodnessOfFit(t *testing.T) {
	tests := []struct {
		name      string
		observed  []float64
		shares    []float64
		wantStat  float64
		wantP     float64
		tolerance float64
	}{
		{"exact fit", []float64{900, 100}, []float64{90, 10}, 0, 1, 1e-12},
		{"shares need not sum to one", []float64{50, 50}, []float64{1, 1}, 0, 1, 1e-12},
		// (520-500)²/500 · 2 = 1.6, df 1.
		{"fair coin", []float64{520, 480}, []float64{0.5, 0.5}, 1.6, math.Erfc(math.Sqrt(0.8)), 1e-12},
		// 9000/1000 expected, 8850/1150: 150²/9000 + 150²/1000 = 25.
		{"mismatch", []float64{8850, 1150}, []float64{0.9, 0.1}, 25, math.Erfc(math.Sqrt(12.5)), 1e-12},
		{"zero share without traffic is left out", []float64{520, 0, 480}, []float64{1, 0, 1}, 1.6, math.Erfc(math.Sqrt(0.8)), 1e-12},
		{"zero share with traffic", []float64{5, 1}, []float64{1, 0}, math.Inf(1), 0, 0},
		{"one category", []float64{10}, []float64{1}, 0, 1, 0},
		{"no observations", []float64{0, 0}, []float64{1, 1}, 0, 1, 0},
	}
	for _, tt := range tests {
		stat, p := GoodnessOfFit(tt.observed, tt.shares)
		if !(stat == tt.wantStat || math.Abs(stat-tt.wantStat) <= tt.tolerance*math.Max(1, tt.wantStat)) {
			t.Errorf("%s: stat = %v, want %v", tt.name, stat, tt.wantStat)
		}
		if math.Abs(p-tt.wantP) > 1e-9 {
			t.Errorf("%s: p = %v, want %v", tt.name, p, tt.wantP)
		}
	}
}

func BenchmarkChiSquareP_Df3(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ChiSquareP(7.8, 3)
	}
}
