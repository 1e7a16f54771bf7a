"""Reference values for the drift statistics (metrics_test.go) and for the
baseline builder's quantile edges (baseline_test.go).

Run from this directory: python3 gen_reference.py > reference.json

Each case is a pair of histograms over the same bins or categories, given as
whole-number counts: "baseline" and "window". The values are computed
independently of the Go code, with numpy and scipy:

  psi     numpy, by the formula sum((q - p) * ln(q / p)) with
          p = max(b / B, 1e-4), q = max(w / W, 1e-4)
  ks_d    numpy: the largest |cumsum(b)/B - cumsum(w)/W| over the bins
          (the binned ECDFs; scipy.stats.ks_2samp cannot take binned data)
  ks_p    scipy.stats.kstwobign.sf(sqrt(n) * ks_d), n = B * W / (B + W)
  js      scipy.spatial.distance.jensenshannon(b, w, base=2)
  chi2    scipy.stats.chi2_contingency(table, correction=False) on the 2 x k
          table after grouping the columns as drift.ChiSquare documents:
          drop empty columns, pool those whose smaller expected count is
          below 5, and add the pool to the column of smallest total when its
          own smaller expected count is still below 5.

Builder cases: edges = unique(numpy.quantile(x, linspace(0, 1, bins + 1)))
(numpy's default "linear" method), counts = [0] + numpy.histogram(x, edges)
+ [0] (empty underflow and overflow bins).
"""
import json

import numpy as np
import scipy
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, kstwobign


def psi(b, w):
    p = np.maximum(b / b.sum(), 1e-4)
    q = np.maximum(w / w.sum(), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def ks(b, w):
    B, W = b.sum(), w.sum()
    d = float(np.max(np.abs(np.cumsum(b) / B - np.cumsum(w) / W)))
    n = B * W / (B + W)
    return d, float(kstwobign.sf(np.sqrt(n) * d))


def grouped_columns(b, w):
    B, W = b.sum(), w.sum()
    N = B + W
    cols, pool = [], np.zeros(2)
    for bj, wj in zip(b, w):
        c = bj + wj
        if c == 0:
            continue
        if min(B, W) * c / N < 5:
            pool += (bj, wj)
        else:
            cols.append(np.array([bj, wj], dtype=float))
    if pool.sum() > 0:
        if min(B, W) * pool.sum() / N >= 5 or not cols:
            cols.append(pool)
        else:
            j = int(np.argmin([c.sum() for c in cols]))
            cols[j] = cols[j] + pool
    return cols


def chi2(b, w):
    cols = grouped_columns(b, w)
    if len(cols) < 2:
        return 0.0, 1.0, 0
    table = np.array(cols).T
    res = chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue), int(res.dof)


def case(name, b, w):
    b, w = np.asarray(b, dtype=float), np.asarray(w, dtype=float)
    d, p = ks(b, w)
    stat, chi2p, dof = chi2(b, w)
    return {
        "name": name,
        "baseline": [int(x) for x in b],
        "window": [int(x) for x in w],
        "psi": psi(b, w),
        "ks_d": d,
        "ks_p": p,
        "js": float(jensenshannon(b, w, base=2)),
        "chi2": stat,
        "chi2_p": chi2p,
        "chi2_df": dof,
    }


rng = np.random.default_rng(20261101)


def binned_normal(n, mean, edges):
    x = rng.normal(mean, 1.0, n)
    inner = np.histogram(x, edges)[0]
    return [int((x < edges[0]).sum())] + [int(c) for c in inner] + [int((x > edges[-1]).sum())]


edges = np.quantile(rng.normal(0, 1, 100000), np.linspace(0, 1, 11)[1:-1])
cases = [
    case("same shape", [0, 100, 200, 300, 200, 100, 0], [0, 10, 20, 30, 20, 10, 0]),
    case("mild shift", [0, 120, 250, 400, 250, 120, 0], [0, 90, 230, 410, 280, 150, 3]),
    case("empty bins", [0, 50, 0, 70, 30, 0], [5, 40, 10, 0, 35, 2]),
    case("small samples", [3, 4, 5, 2], [1, 0, 2, 6]),
    case("normal vs normal", binned_normal(20000, 0, edges), binned_normal(2000, 0, edges)),
    case("normal shifted 0.1 sd", binned_normal(20000, 0, edges), binned_normal(2000, 0.1, edges)),
    case("normal shifted 1 sd", binned_normal(20000, 0, edges), binned_normal(2000, 1, edges)),
    case("categories same", [5000, 3000, 2000], [497, 305, 198]),
    case("categories swapped", [5000, 3000, 2000], [200, 300, 500]),
    case("new category once", [5000, 3000, 1900, 100, 0], [480, 310, 200, 8, 2]),
    case("rare categories pooled", [5000, 3000, 30, 30, 30, 30, 0], [500, 280, 3, 2, 8, 5, 4]),
    case("disjoint", [10, 0, 0], [0, 0, 7]),
    case("one column", [10, 0], [7, 0]),
]


def builder_case(name, x, bins):
    x = np.asarray(x, dtype=float)
    e = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    counts = [0] + [int(c) for c in np.histogram(x, e)[0]] + [0]
    return {"name": name, "values": [float(v) for v in x], "bins": bins,
            "edges": [float(v) for v in e], "counts": counts}


builder = [
    builder_case("normal", np.round(rng.normal(10, 3, 203), 3), 7),
    builder_case("ties", rng.integers(0, 5, 120), 10),
    builder_case("skewed", np.round(rng.exponential(2.0, 500), 2), 10),
]

print(json.dumps({
    "generator": "gen_reference.py with scipy %s, numpy %s" % (scipy.__version__, np.__version__),
    "psi_epsilon": 1e-4,
    "cases": cases,
    "builder": builder,
}, indent=1))
