package stats

import "math"

// KolmogorovP returns P(K > x) for the Kolmogorov distribution, the limit
// law of √n·D for the Kolmogorov–Smirnov statistic D: the asymptotic
// p-value of a KS test (scipy's kstwobign.sf). It returns 1 for x <= 0, 0
// for +Inf and NaN for NaN.
//
// Below x = 1 it uses Jacobi's form of the distribution function,
// P(K <= x) = √(2π)/x · Σ_{k>=1} exp(−(2k−1)²π²/(8x²)), whose terms shrink
// fastest there; from x = 1 on, the alternating tail series
// P(K > x) = 2 Σ_{k>=1} (−1)^(k−1) exp(−2k²x²), which keeps full relative
// precision for the tiny p-values of a large x.
func KolmogorovP(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return math.NaN()
	case x <= 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	if x < 1 {
		c := -math.Pi * math.Pi / (8 * x * x)
		var sum float64
		for k := 1; k < 100; k++ {
			m := float64(2*k - 1)
			term := math.Exp(c * m * m)
			sum += term
			if term <= epsilon*sum {
				break
			}
		}
		return 1 - math.Sqrt(2*math.Pi)/x*sum
	}
	var sum float64
	sign := 1.0
	for k := 1; k < 100; k++ {
		kf := float64(k)
		term := math.Exp(-2 * kf * kf * x * x)
		sum += sign * term
		if term <= epsilon*sum {
			break
		}
		sign = -sign
	}
	return math.Min(1, 2*sum)
}
