"""The one mean ± spread convention of every report (studies and experiments alike).

Over seeds (the first axis) freqdyn reports the **mean and the sample standard deviation**
(ddof = 1, the unbiased variance); with a single value the standard deviation is NaN
(written as null), not 0, since one draw says nothing about the spread.  NaN entries (an
event that did not happen in that seed) are left out of both.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2


def mean_std(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sample std with ddof = 1) over ``axis``, NaN-aware; std is NaN for one value."""
    arr = np.asarray(values, dtype=float)
    count = np.sum(np.isfinite(arr), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(np.where(np.isfinite(arr), arr, 0.0), axis=axis) / count
        dev = np.where(np.isfinite(arr), arr - np.expand_dims(mean, axis), 0.0)
        std = np.sqrt(np.sum(dev**2, axis=axis) / (count - 1))
    mean = np.where(count > 0, mean, np.nan)
    std = np.where(count > 1, std, np.nan)
    return (mean[()] if mean.ndim == 0 else mean), (std[()] if std.ndim == 0 else std)


def std_interval(std: float, count: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided ``level`` confidence interval of σ from a sample std of ``count`` normal
    draws: s·√((n−1)/χ²_{(1±level)/2, n−1}).  For 8 draws at 95 %: s·[0.66, 2.04]."""

    if count < 2 or not np.isfinite(std):
        return (float("nan"), float("nan"))
    dof = count - 1
    lo = std * np.sqrt(dof / chi2.ppf(0.5 + level / 2, dof))
    hi = std * np.sqrt(dof / chi2.ppf(0.5 - level / 2, dof))
    return float(lo), float(hi)
