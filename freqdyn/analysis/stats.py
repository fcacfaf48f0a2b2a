"""The one mean ± spread convention of every report (studies and experiments alike).

Over seeds (the first axis) freqdyn reports the **mean and the sample standard deviation**
(ddof = 1, the unbiased variance); with a single value the standard deviation is NaN
(written as null), not 0, since one draw says nothing about the spread.

Nothing is left out in silence: a non-finite entry makes the mean and the spread of its
column NaN.  The time of an event that may not happen (a peak learned, a network
grokked) is NaN in a seed where it was not reached; :func:`event_statistics` reports
how many seeds reached it next to the mean, which exists only when all of them did.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2, norm


def mean_std(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sample std with ddof = 1) over ``axis``; NaN where any entry is non-finite;
    std is NaN for one value."""
    arr = np.asarray(values, dtype=float)
    arr = arr.reshape(1) if arr.ndim == 0 else arr
    finite = np.all(np.isfinite(arr), axis=axis)
    count = arr.shape[axis]
    safe = np.where(np.isfinite(arr), arr, 0.0)
    mean = np.mean(safe, axis=axis) if count else np.full(finite.shape, np.nan)
    std = (np.std(safe, axis=axis, ddof=1) if count > 1 else np.full(np.shape(mean), np.nan))
    mean = np.where(finite & (count > 0), mean, np.nan)
    std = np.where(finite, std, np.nan)
    return (mean[()] if mean.ndim == 0 else mean), (std[()] if std.ndim == 0 else std)


def event_statistics(per_seed, horizon: float) -> dict:
    """Times of events per seed (seeds × events; NaN: not reached by ``horizon``).

    ``mean``/``std`` (:func:`mean_std`) are NaN for an event that some seed did not reach;
    ``reached`` counts, per event, the seeds that reached it, of ``seeds``.  A time that
    was not reached is never a number: it is only known to exceed ``horizon``.
    """
    arr = np.asarray(per_seed, dtype=float)
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim else arr.reshape(1, 1)
    mean, std = mean_std(arr)
    return {"mean": mean, "std": std, "reached": np.sum(np.isfinite(arr), axis=0),
            "seeds": int(arr.shape[0]), "not_reached_by": float(horizon), "per_seed": arr}


def std_interval(std: float, count: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided ``level`` confidence interval of σ from a sample std of ``count`` normal
    draws: s·√((n−1)/χ²_{(1±level)/2, n−1}).  For 8 draws at 95 %: s·[0.66, 2.04]."""

    if count < 2 or not np.isfinite(std):
        return (float("nan"), float("nan"))
    dof = count - 1
    lo = std * np.sqrt(dof / chi2.ppf(0.5 + level / 2, dof))
    hi = std * np.sqrt(dof / chi2.ppf(0.5 - level / 2, dof))
    return float(lo), float(hi)


def family_limit(comparisons: int, level: float = 0.01) -> float:
    """z such that the largest of ``comparisons`` independent |N(0, 1)| exceeds it with
    probability at most ``level`` (Bonferroni: z = Φ⁻¹(1 − level/(2K))); for K = 9 and
    1 %: 3.26."""
    return float(norm.isf(level / (2 * comparisons)))
