"""Reference values of the Kolmogorov distribution's upper tail for
kolmogorov_test.go: scipy.stats.kstwobign.sf(x) at fixed points.

Run from this directory: python3 gen_kolmogorov.py > kolmogorov.json
"""
import json

import numpy as np
import scipy
from scipy.stats import kstwobign

xs = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0,
      1.01, 1.1, 1.2, 1.2238478702170836, 1.3, 1.358098733, 1.5, 1.6276236115189478,
      2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0]
print(json.dumps({
    "generator": "scipy %s, numpy %s: scipy.stats.kstwobign.sf(x)" % (scipy.__version__, np.__version__),
    "points": [{"x": x, "p": float(kstwobign.sf(x))} for x in xs],
}, indent=1))
