package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mlgate/mlgate/internal/stats"
)

func route(t testing.TB, salt string, variants ...Variant) *Route {
	t.Helper()
	r, err := NewRoute(Endpoint{Name: "churn", Salt: salt, Policy: Policy{Variants: variants}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func unit(i int) string { return fmt.Sprintf("user-%d", i) }

// (a) Each variant gets its weight's share of units.
func TestChoose_SharesFollowWeights(t *testing.T) {
	r := route(t, "s", Variant{"control", "m", 90}, Variant{"treatment", "m", 10})
	const n = 10_000
	treated := 0
	for i := range n {
		treated += r.Choose(unit(i), nil)
	}
	// 99.9% binomial interval: n·p ± 3.29·sqrt(n·p·(1−p)) = 1000 ± 98.7.
	if sd := math.Sqrt(n * 0.1 * 0.9); math.Abs(float64(treated)-n*0.1) > 3.29*sd {
		t.Errorf("treatment got %d of %d units, want 1000 ± %.0f", treated, n, 3.29*sd)
	}
}

func TestChoose_SharesFollowWeights_Variants8(t *testing.T) {
	var variants []Variant
	var shares []float64
	for i := range 8 {
		w := []int{1, 2, 3, 5, 8, 13, 21, 34}[i]
		variants = append(variants, Variant{fmt.Sprintf("v%d", i), "m", w})
		shares = append(shares, float64(w))
	}
	r := route(t, "s", variants...)
	observed := make([]float64, 8)
	for i := range 100_000 {
		observed[r.Choose(unit(i), nil)]++
	}
	if stat, p := stats.GoodnessOfFit(observed, shares); p < 0.001 {
		t.Errorf("units per variant %v do not fit the weights: chi-square %.1f, p %.2g", observed, stat, p)
	}
}

// (b) The same unit always gets the same variant, in this route and in any
// route compiled from the same endpoint.
func TestChoose_Sticky(t *testing.T) {
	r := route(t, "s", Variant{"control", "m", 50}, Variant{"treatment", "m", 50})
	again := route(t, "s", Variant{"control", "m", 50}, Variant{"treatment", "m", 50})
	for i := range 1000 {
		first := r.Choose(unit(i), rand.Float64)
		for range 100 {
			if v := r.Choose(unit(i), rand.Float64); v != first {
				t.Fatalf("%s got variant %d, then %d", unit(i), first, v)
			}
		}
		if v := again.Choose(unit(i), rand.Float64); v != first {
			t.Fatalf("%s got variant %d, and %d from a recompiled route", unit(i), first, v)
		}
	}
}

// The hash is part of the contract: replicas, restarts and offline analyses
// must assign alike. These assignments must never change; they were
// reproduced outside Go from the function documented on Choose.
func TestChoose_Golden(t *testing.T) {
	r := route(t, "churn", Variant{"control", "m", 50}, Variant{"treatment", "m", 30}, Variant{"other", "m", 20})
	got := ""
	for i := range 24 {
		got += fmt.Sprint(r.Choose(unit(i), nil))
	}
	const want = "002000002202010020112112"
	if got != want {
		t.Errorf("assignments of user-0..user-23 = %s, want %s", got, want)
	}
	if h := fmix64(fnvString(fnvByte(fnvString(fnvByte(fnvString(fnvOffset, "salt"), 0), "unit"), 0), "variant")); h != 0x7d98b94efa0be67c {
		t.Errorf("hash(salt, unit, variant) = %#x", h)
	}
}

// (c) Moving from 90/10 to 80/20 moves the fewest units: about 10%, all
// from control to treatment.
func TestChoose_WeightChangeMovesFewest(t *testing.T) {
	before := route(t, "s", Variant{"control", "m", 90}, Variant{"treatment", "m", 10})
	after := route(t, "s", Variant{"control", "m", 80}, Variant{"treatment", "m", 20})
	const n = 100_000
	moved := 0
	for i := range n {
		b, a := before.Choose(unit(i), nil), after.Choose(unit(i), nil)
		if a != b {
			moved++
			if b != 0 || a != 1 {
				t.Fatalf("%s moved from %d to %d", unit(i), b, a)
			}
		}
	}
	if f := float64(moved) / n; f < 0.09 || f > 0.11 {
		t.Errorf("%.2f%% of units moved, want about 10%%", 100*f)
	}
}

// Canary steps only ever move units onto the canary.
func TestChoose_CanaryStepsOnlyAddUnits(t *testing.T) {
	e, _ := NewEndpoint("churn", Policy{Variants: []Variant{{"control", "churn@champion", 1}}}, t0)
	onCanary := map[string]bool{}
	for _, step := range []int{5, 10, 25, 50, 75, 100} {
		e.Policy.Variants = stepVariants([]Variant{{"control", "churn@champion", 1}}, "churn/8", step)
		r, err := NewRoute(e)
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for i := range 20_000 {
			u := unit(i)
			now := r.Name(r.Choose(u, nil)) == CanaryVariant
			if onCanary[u] && !now {
				t.Fatalf("step %d%%: %s left the canary", step, u)
			}
			onCanary[u] = now
			if now {
				count++
			}
		}
		if f := float64(count) / 20_000; math.Abs(f-float64(step)/100) > 0.015 {
			t.Errorf("step %d%%: canary got %.1f%% of units", step, 100*f)
		}
	}
}

// (d) A variant of weight 0 gets no traffic, hashed or drawn.
func TestChoose_ZeroWeight(t *testing.T) {
	r := route(t, "s", Variant{"a", "m", 50}, Variant{"off", "m", 0}, Variant{"b", "m", 50})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20_000 {
		if r.Choose(unit(i), nil) == 1 || r.Choose("", rng.Float64) == 1 {
			t.Fatal("a variant of weight 0 was chosen")
		}
	}
	for _, x := range []float64{0, 0.5, math.Nextafter(1, 0), 1} {
		if r.Choose("", func() float64 { return x }) == 1 {
			t.Fatalf("a variant of weight 0 was drawn at %v", x)
		}
	}
	if i, ok := r.Variant("off"); !ok || i != 1 {
		t.Errorf(`Variant("off") = %d, %v; want 1, true`, i, ok)
	}
	if _, ok := r.Variant("nope"); ok {
		t.Error(`Variant("nope") found a variant`)
	}
}

// (e) Different salts give independent assignments.
func TestChoose_SaltsDiffer(t *testing.T) {
	a := route(t, "experiment-1", Variant{"control", "m", 90}, Variant{"treatment", "m", 10})
	b := route(t, "experiment-2", Variant{"control", "m", 90}, Variant{"treatment", "m", 10})
	const n = 100_000
	var both, differ int
	for i := range n {
		x, y := a.Choose(unit(i), nil), b.Choose(unit(i), nil)
		if x != y {
			differ++
		}
		if x == 1 && y == 1 {
			both++
		}
	}
	// Independent: 2·0.9·0.1 = 18% differ, 1% are treated by both.
	if f := float64(differ) / n; math.Abs(f-0.18) > 0.005 {
		t.Errorf("%.2f%% of units differ between salts, want about 18%%", 100*f)
	}
	if f := float64(both) / n; math.Abs(f-0.01) > 0.002 {
		t.Errorf("%.2f%% of units are treated under both salts, want about 1%%", 100*f)
	}
}

func TestChoose_NoUnitDrawsByWeight(t *testing.T) {
	r := route(t, "s", Variant{"control", "m", 90}, Variant{"treatment", "m", 10})
	for _, tt := range []struct {
		x    float64
		want int
	}{{0, 0}, {0.5, 0}, {0.8999, 0}, {0.9, 1}, {0.9999, 1}, {1, 1}} {
		if got := r.Choose("", func() float64 { return tt.x }); got != tt.want {
			t.Errorf("Choose(\"\") with rnd %v = %d, want %d", tt.x, got, tt.want)
		}
	}
}

func TestRoute_Accessors(t *testing.T) {
	e := Endpoint{Name: "churn", Revision: 4, Salt: "s", Policy: Policy{
		Variants: []Variant{{"control", "churn@champion", 90}, {"treatment", "churn/3", 10}},
		Sticky:   &Sticky{Entity: "user_id"},
		Shadow:   &Shadow{Model: "churn/7", Percent: 25},
	}}
	r, err := NewRoute(e)
	if err != nil {
		t.Fatal(err)
	}
	if r.Endpoint() != "churn" || r.Revision() != 4 || r.Sticky() != "user_id" || r.Len() != 2 ||
		r.Name(1) != "treatment" || r.Model(1) != (ModelRef{Name: "churn", Version: 3}) || r.Weight(0) != 90 {
		t.Errorf("route accessors disagree with %+v", e)
	}
	for _, tt := range []struct {
		x    float64
		want bool
	}{{0, true}, {0.2499, true}, {0.25, false}, {0.9, false}} {
		ref, ok := r.Shadow(func() float64 { return tt.x })
		if ok != tt.want || ok && ref.Version != 7 {
			t.Errorf("Shadow at %v = %v, %v; want %v", tt.x, ref, ok, tt.want)
		}
	}
	if _, err := NewRoute(Endpoint{Name: "x"}); err == nil {
		t.Error("NewRoute compiled an empty policy")
	}
}

func TestRoute_ShadowAlwaysOrNever(t *testing.T) {
	never := func() float64 { panic("rnd called") }
	for _, tt := range []struct {
		shadow *Shadow
		want   bool
	}{{nil, false}, {&Shadow{"m/1", 0}, false}, {&Shadow{"m/1", 100}, true}} {
		r, _ := NewRoute(Endpoint{Policy: Policy{Variants: []Variant{{"a", "m", 1}}, Shadow: tt.shadow}})
		if _, ok := r.Shadow(never); ok != tt.want {
			t.Errorf("Shadow with %+v = %v", tt.shadow, ok)
		}
	}
}

func benchmarkChoose(b *testing.B, n int) {
	variants := make([]Variant, n)
	for i := range variants {
		variants[i] = Variant{fmt.Sprintf("variant-%d", i), "m", 10 + i}
	}
	r := route(b, "churn", variants...)
	units := make([]string, 1024)
	for i := range units {
		units[i] = fmt.Sprintf("user-%08d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Choose(units[i&1023], rand.Float64)
		i++
	}
}

func BenchmarkChoose_Variants2(b *testing.B)  { benchmarkChoose(b, 2) }
func BenchmarkChoose_Variants8(b *testing.B)  { benchmarkChoose(b, 8) }
func BenchmarkChoose_Variants16(b *testing.B) { benchmarkChoose(b, 16) }

func BenchmarkChoose_NoUnit_Variants8(b *testing.B) {
	variants := make([]Variant, 8)
	for i := range variants {
		variants[i] = Variant{fmt.Sprintf("variant-%d", i), "m", 10 + i}
	}
	r := route(b, "churn", variants...)
	b.ReportAllocs()
	for b.Loop() {
		r.Choose("", rand.Float64)
	}
}
