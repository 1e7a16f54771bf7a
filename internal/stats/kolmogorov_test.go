package stats

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// The reference values in testdata/kolmogorov.json are scipy's
// kstwobign.sf(x), written by testdata/gen_kolmogorov.py.
func TestKolmogorovP_MatchesScipy(t *testing.T) {
	data, err := os.ReadFile("testdata/kolmogorov.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Points []struct{ X, P float64 }
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Points) == 0 {
		t.Fatal("no reference points")
	}
	for _, pt := range ref.Points {
		got := KolmogorovP(pt.X)
		if math.Abs(got-pt.P) > 1e-12+1e-10*pt.P {
			t.Errorf("KolmogorovP(%v) = %.17g, want %.17g", pt.X, got, pt.P)
		}
	}
}

// Both series agree where they meet, and the tail decreases.
func TestKolmogorovP_ContinuousAndDecreasing(t *testing.T) {
	below, at := KolmogorovP(math.Nextafter(1, 0)), KolmogorovP(1)
	if math.Abs(below-at) > 1e-14 {
		t.Errorf("KolmogorovP jumps at 1: %.17g then %.17g", below, at)
	}
	prev := 1.0
	for x := 0.01; x < 7; x += 0.01 {
		p := KolmogorovP(x)
		if p > prev || p < 0 || p > 1 {
			t.Fatalf("KolmogorovP(%v) = %v after %v", x, p, prev)
		}
		prev = p
	}
}

func TestKolmogorovP_Edges(t *testing.T) {
	for _, tt := range []struct{ x, want float64 }{
		{0, 1}, {-1, 1}, {math.Inf(1), 0}, {40, 0},
	} {
		if got := KolmogorovP(tt.x); got != tt.want {
			t.Errorf("KolmogorovP(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	if p := KolmogorovP(math.NaN()); !math.IsNaN(p) {
		t.Errorf("KolmogorovP(NaN) = %v, want NaN", p)
	}
}

func BenchmarkKolmogorovP(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		KolmogorovP(1.1)
	}
}
