// Package stats holds the small pieces of statistics the gateway computes
// itself: the chi-square distribution's upper tail and Pearson's
// goodness-of-fit test, used to detect sample ratio mismatch in traffic splits,
// and the Kolmogorov distribution's upper tail, for the drift monitors'
// Kolmogorov–Smirnov tests.
package stats

import "math"

// ChiSquareP returns the probability that a chi-square variable with df
// degrees of freedom is at least stat: the p-value of a chi-square test. It is
// Q(df/2, stat/2), the regularized upper incomplete gamma function. It returns
// 1 for stat <= 0 and NaN for df < 1 or a NaN stat.
func ChiSquareP(stat float64, df int) float64 {
	switch {
	case df < 1 || math.IsNaN(stat):
		return math.NaN()
	case stat <= 0:
		return 1
	case math.IsInf(stat, 1):
		return 0
	}
	return upperGamma(float64(df)/2, stat/2)
}

// GoodnessOfFit runs Pearson's chi-square test of observed counts against
// expected shares (any non-negative weights; they are normalised). A category
// whose share is 0 is left out when nothing was observed in it and makes the
// statistic +Inf otherwise. The test has one degree of freedom fewer than the
// categories left in; with fewer than two of them, or no observations, it
// returns 0 and p = 1. It panics if the slices differ in length.
func GoodnessOfFit(observed, expectedShares []float64) (stat, p float64) {
	if len(observed) != len(expectedShares) {
		panic("stats: GoodnessOfFit: observed and expectedShares differ in length")
	}
	var n, total float64
	for i := range observed {
		n += observed[i]
		total += expectedShares[i]
	}
	if n <= 0 || total <= 0 {
		return 0, 1
	}
	k := 0
	for i, o := range observed {
		share := expectedShares[i] / total
		if share <= 0 {
			if o > 0 {
				return math.Inf(1), 0
			}
			continue
		}
		k++
		e := n * share
		stat += (o - e) * (o - e) / e
	}
	if k < 2 {
		return 0, 1
	}
	return stat, ChiSquareP(stat, k-1)
}

// Convergence limits of the series and the continued fraction: both converge
// in a few dozen terms for the arguments chi-square tests produce.
const (
	maxIter = 1000
	epsilon = 1e-15
	tiny    = 1e-300
)

// upperGamma returns Q(a, x) = Γ(a, x) / Γ(a) for a > 0, x > 0. Below x = a+1
// the series for P(a, x) converges fast and Q = 1 − P; above it the continued
// fraction for Q converges fast and avoids the cancellation of 1 − P.
func upperGamma(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	// prefix = x^a e^-x / Γ(a), computed in logs to avoid overflow.
	prefix := math.Exp(a*math.Log(x) - x - lg)
	if x < a+1 {
		return 1 - prefix*lowerSeries(a, x)
	}
	return prefix * upperFraction(a, x)
}

// lowerSeries sums Σ x^n / (a (a+1) ... (a+n)), so that
// P(a, x) = x^a e^-x / Γ(a) · the sum.
func lowerSeries(a, x float64) float64 {
	term := 1 / a
	sum := term
	for n := 1; n < maxIter; n++ {
		term *= x / (a + float64(n))
		sum += term
		if math.Abs(term) < math.Abs(sum)*epsilon {
			break
		}
	}
	return sum
}

// upperFraction evaluates the continued fraction
// 1/(x+1−a− 1·(1−a)/(x+3−a− 2·(2−a)/(x+5−a− ...))) by the modified Lentz
// method, so that Q(a, x) = x^a e^-x / Γ(a) · the fraction.
func upperFraction(a, x float64) float64 {
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	f := d
	for n := 1; n < maxIter; n++ {
		an := -float64(n) * (float64(n) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		f *= delta
		if math.Abs(delta-1) < epsilon {
			break
		}
	}
	return f
}
