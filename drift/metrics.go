package drift

import (
	"math"

	"github.com/mlgate/mlgate/internal/stats"
)

// The statistics compare two histograms over the same bins (or categories,
// in the same order): b, the baseline's counts, and w, the window's, with
// totals B and W, shares P_i = b_i/B and Q_i = w_i/W. Each panics if the
// slices differ in length. When either histogram is empty there is no
// evidence of drift: PSI and JensenShannon return 0, KS returns D = 0 and
// p = 1, ChiSquare returns 0 and p = 1.

// PSIEpsilon replaces a share of 0 in PSI, so that an empty bin adds a large
// but finite term.
const PSIEpsilon = 1e-4

// PSI returns the population stability index
//
//	PSI = Σ_i (q_i − p_i) · ln(q_i / p_i),  p_i = max(P_i, ε), q_i = max(Q_i, ε), ε = PSIEpsilon
//
// (a bin empty in both adds 0). Rules of thumb: below 0.1 stable, 0.1 to 0.2
// a moderate shift, above 0.2 a significant one.
func PSI(b, w []int64) float64 {
	B, W := totals(b, w)
	if B == 0 || W == 0 {
		return 0
	}
	var psi float64
	for i := range b {
		p := max(float64(b[i])/B, PSIEpsilon)
		q := max(float64(w[i])/W, PSIEpsilon)
		psi += (q - p) * math.Log(q/p)
	}
	return psi
}

// KS returns the two-sample Kolmogorov–Smirnov statistic of the binned data,
// the largest distance between the two empirical distribution functions at
// the bin boundaries,
//
//	D = max_k |Σ_{i<=k} P_i − Σ_{i<=k} Q_i|,
//
// and its asymptotic p-value P(K > √n·D), K Kolmogorov-distributed, with the
// effective sample size n = B·W/(B+W). The distribution functions are only
// compared at the bin edges, so D is a lower bound of the D of the raw
// values, and p an upper bound of theirs: binning makes the test
// conservative, more so with fewer bins.
func KS(b, w []int64) (d, p float64) {
	B, W := totals(b, w)
	if B == 0 || W == 0 {
		return 0, 1
	}
	var cb, cw int64
	for i := range len(b) - 1 {
		cb += b[i]
		cw += w[i]
		d = max(d, math.Abs(float64(cb)/B-float64(cw)/W))
	}
	n := B * W / (B + W)
	return d, stats.KolmogorovP(math.Sqrt(n) * d)
}

// JensenShannon returns the Jensen–Shannon distance, the square root of the
// Jensen–Shannon divergence in bits, between the two distributions:
//
//	M_i = (P_i + Q_i)/2
//	JSD = ½ Σ_i P_i log₂(P_i/M_i) + ½ Σ_i Q_i log₂(Q_i/M_i)   (0·log 0 = 0)
//	JS  = √JSD, in [0, 1]: 0 for equal distributions, 1 for disjoint ones.
func JensenShannon(b, w []int64) float64 {
	B, W := totals(b, w)
	if B == 0 || W == 0 {
		return 0
	}
	var jsd float64
	for i := range b {
		p, q := float64(b[i])/B, float64(w[i])/W
		m := (p + q) / 2
		if p > 0 {
			jsd += p * math.Log2(p/m)
		}
		if q > 0 {
			jsd += q * math.Log2(q/m)
		}
	}
	return math.Sqrt(min(max(jsd/2, 0), 1))
}

// ChiSquare runs Pearson's chi-square test of homogeneity on the 2×k table
// of the two histograms (no continuity correction):
//
//	N = B + W,  c_j = b_j + w_j,  E_bj = B·c_j/N,  E_wj = W·c_j/N
//	χ² = Σ_j (b_j − E_bj)²/E_bj + (w_j − E_wj)²/E_wj,  df = columns − 1
//
// and p = P(χ²_df >= χ²). The approximation needs expected counts of about 5
// or more, so columns are grouped first: columns empty in both are dropped;
// columns whose smaller expected count, min(B,W)·c_j/N, is below 5 are
// pooled into one column; and if that pooled column's smaller expected count
// is still below 5, it is added to the column of smallest total (the first
// of equals). A handful of values never seen in the baseline thus raise no
// alarm, while a mass of them does. With fewer than two columns left the
// test returns 0, p = 1 and df = 0.
func ChiSquare(b, w []int64) (stat, p float64, df int) {
	B, W := totals(b, w)
	if B == 0 || W == 0 {
		return 0, 1, 0
	}
	N := B + W
	small := min(B, W) / N // min expected count per observation in a column
	var cols [][2]float64
	var pooled [2]float64
	for i := range b {
		c := float64(b[i] + w[i])
		switch {
		case c == 0:
		case small*c < 5:
			pooled[0] += float64(b[i])
			pooled[1] += float64(w[i])
		default:
			cols = append(cols, [2]float64{float64(b[i]), float64(w[i])})
		}
	}
	if c := pooled[0] + pooled[1]; c > 0 {
		if small*c >= 5 || len(cols) == 0 {
			cols = append(cols, pooled)
		} else {
			j := 0
			for i := range cols {
				if cols[i][0]+cols[i][1] < cols[j][0]+cols[j][1] {
					j = i
				}
			}
			cols[j][0] += pooled[0]
			cols[j][1] += pooled[1]
		}
	}
	if len(cols) < 2 {
		return 0, 1, 0
	}
	for _, col := range cols {
		c := col[0] + col[1]
		eb, ew := B*c/N, W*c/N
		stat += (col[0]-eb)*(col[0]-eb)/eb + (col[1]-ew)*(col[1]-ew)/ew
	}
	df = len(cols) - 1
	return stat, stats.ChiSquareP(stat, df), df
}

func totals(b, w []int64) (B, W float64) {
	if len(b) != len(w) {
		panic("drift: the histograms differ in length")
	}
	var sb, sw int64
	for i := range b {
		sb += b[i]
		sw += w[i]
	}
	return float64(sb), float64(sw)
}
