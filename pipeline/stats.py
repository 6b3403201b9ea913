"""Statistics over seeds: is a difference between two variants larger than the seed-to-seed spread?

- `summarize`: mean, standard deviation and a 95% bootstrap confidence interval of the mean
  (percentile method, 10,000 resamples, seeded so reports are reproducible).
- `permutation_test`: two-sided p-value for a difference in means between two variants' seeds, by
  exact enumeration of every relabelling when there are few (as with seeds), else 20,000 random
  ones. Its smallest possible p-value is 2 / C(n + m, n) for equal groups (the most extreme split and its mirror
  image are equally far apart): with 3 seeds each that is 0.1, so 3 seeds can never show a difference at the 5%
  level; 5 seeds each can (0.008). For unequal groups the mirror split differs, and the floor is 1 / C(n + m, n).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

ALPHA = 0.05
RESAMPLES = 10_000


def summarize(values: Sequence[float], seed: int = 0) -> dict[str, float | int | None]:
    """{mean, sd, ci_low, ci_high, n} of finite `values`; sd and the interval are None below 2 values."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"mean": None, "sd": None, "ci_low": None, "ci_high": None, "n": 0}
    if n == 1:
        return {"mean": float(x[0]), "sd": None, "ci_low": None, "ci_high": None, "n": 1}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(RESAMPLES, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)), "ci_low": float(low), "ci_high": float(high), "n": n}


def permutation_test(a: Sequence[float], b: Sequence[float], seed: int = 0, max_exact: int = 20_000) -> float | None:
    """Two-sided p-value of |mean(a) - mean(b)| under random relabelling; None with fewer than 2 values a side."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return None
    pooled, n = np.concatenate([a, b]), len(a)
    observed = abs(a.mean() - b.mean())
    if math.comb(len(pooled), n) <= max_exact:
        splits = (list(c) for c in itertools.combinations(range(len(pooled)), n))
    else:
        rng = np.random.default_rng(seed)
        splits = (rng.permutation(len(pooled))[:n] for _ in range(max_exact))
    total = extreme = 0
    for idx in splits:
        mask = np.zeros(len(pooled), dtype=bool)
        mask[idx] = True
        diff = abs(pooled[mask].mean() - pooled[~mask].mean())
        extreme += diff >= observed - 1e-12
        total += 1
    return extreme / total


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest p-value `permutation_test` can return for these sample sizes: 2 / C(n_a + n_b, n_a) when the
    groups are equal (a split and its mirror are equally extreme), 1 / C(n_a + n_b, n_a) when they are not."""
    return (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a)
