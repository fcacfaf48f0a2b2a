"""Loss-curve spectra: predicting grokking from the early training loss (Notsawo et al. 2023).

The "spectral signature" of arXiv 2306.13253 is a Fourier transform **over training
time** of the training-loss curve L[t], t = 0 … T0−1 (T0 = 400 full-batch steps).  It has
nothing to do with the input-space frequencies of :mod:`freqdyn.grok.nudft`: here k counts
cycles per T0 steps, and a frequency is k/T0 cycles per step.

Signal processing (Notsawo et al. 2023; freqdyn's reconstruction where the paper is silent)
---------------------------------------------------------------------------------
The paper wants a zero-mean oscillation L̃ made by removing the "non-oscillatory
components" (it says "low-pass" where a high-pass / detrend is meant).  Three detrend
variants, all recorded (:data:`DETRENDS`):

* ``linear``: subtract the least-squares line a + b t;
* ``smooth`` (**default**): subtract a Savitzky–Golay trend (window w = 51 steps,
  polynomial order 2, ``mode="interp"``: the edge windows are polynomial fits, so a
  polynomial trend of order ≤ 2 is removed exactly everywhere).  Its transfer function is
  ≈ 1 below ≈ (order + 1)/(2w) cycles per step, so L̃ keeps oscillations with periods
  shorter than about 30 steps;
* ``fft-highpass``: real FFT of L over the window, zero the bins k ≤ k_c (default k_c = 2:
  periods longer than T0/2), inverse FFT.  The FFT treats L as periodic, so a trend
  (L[T0−1] ≠ L[0]) leaks into all bins as a saw-tooth; this variant is recorded as the
  paper states it, the default is ``smooth``.

and the same three on log L (``log-…``), since the paper does not say which it used.

Hjorth parameters of the detrended signal x = L̃ (discrete, Δx_t = x_{t+1} − x_t):

* activity A = (1/T0) Σ_t x_t² = (1/T0²) Σ_k |F_k|² (Parseval, unnormalised DFT F);
  units loss² (for ``log-…``: (log loss)²).  The paper plots this;
* mobility M = √(var Δx / var x), in radians per step;
* complexity C = √(var Δ²x / var Δx) / M (Hjorth's definition, dimensionless) and the
  paper footnote's un-normalised √(var Δ²x / var Δx) (``complexity_paper``).

For a sinusoid x_t = a sin(ωt + φ): Δx_t = 2a sin(ω/2) cos(ωt + φ + ω/2) and
Δ²x_t = −4 sin²(ω/2) x_{t+1}, so over whole periods A = a²/2, M = 2|sin(ω/2)| (→ ω for
ω ≪ 1: the finite difference sees 2 sin(ω/2) where the derivative sees ω) and C = 1.

Predictor evaluation (freqdyn's own protocol; the paper gives no decision rule)
-------------------------------------------------------------------------------
Over a grid of runs with early activity A_i and final validation accuracy v_i:
Spearman ρ(A, v) with a bootstrap interval (its sign is kept free: the paper allows
either direction); the AUROC of A for the label "groks" (v ≥ 0.99); and the accuracy of
a one-threshold rule "groks iff s·A > c" (direction s and threshold c chosen on the
training folds only) under cross-validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal, stats

from freqdyn.errors import InputError

#: Detrend variants of the loss curve; ``smooth`` is the default.
DETRENDS = ("linear", "smooth", "fft-highpass")
DEFAULT_DETREND = "smooth"
#: The paper's spectral window: the first T0 training steps.
T0 = 400
#: Validation accuracy at the outcome horizon that counts as "groks".
GROKS_AT = 0.99


def detrend(curve, method: str = DEFAULT_DETREND, *, window: int = 51, polyorder: int = 2,
            cutoff: int = 2) -> np.ndarray:
    """The oscillating part L̃ = L − trend of a curve sampled once per step.

    ``method``: ``"linear"`` (least-squares line), ``"smooth"`` (Savitzky–Golay trend of
    ``window`` steps (odd) and order ``polyorder``) or ``"fft-highpass"`` (zero the real-FFT
    bins k ≤ ``cutoff`` cycles per curve length).  Same units as ``curve``.
    """
    x = np.asarray(curve, dtype=float)
    if x.ndim != 1 or x.size < 4:
        raise InputError("curve", f"must be 1-D with at least 4 steps, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("curve", "contains NaN or infinite values")
    if method == "linear":
        return signal.detrend(x, type="linear")
    if method == "smooth":
        if window % 2 == 0 or window < 3 or window > x.size:
            raise InputError("settings.detrend_window",
                            f"must be odd, ≥ 3 and ≤ the curve length {x.size}, got {window}")
        if not 0 <= polyorder < window:
            raise InputError("settings.detrend_polyorder",
                            f"must be in [0, window), got {polyorder}")
        return x - signal.savgol_filter(x, window, polyorder, mode="interp")
    if method == "fft-highpass":
        spectrum = np.fft.rfft(x)
        if not 0 <= cutoff < spectrum.size - 1:
            raise InputError("settings.highpass_cutoff",
                            f"must be in [0, {spectrum.size - 1}), got {cutoff}")
        spectrum[: cutoff + 1] = 0.0
        return np.fft.irfft(spectrum, n=x.size)
    raise InputError("settings.detrend", f"unknown detrend {method!r}; known: {DETRENDS}")


@dataclass(frozen=True)
class Hjorth:
    """Hjorth parameters of a detrended curve (see the module docstring)."""

    activity: float
    mobility: float
    complexity: float
    complexity_paper: float


def hjorth(x) -> Hjorth:
    """Activity mean(x²), mobility √(var Δx/var x), complexity (Hjorth's and the paper's)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 3:
        raise InputError("curve", f"needs at least 3 steps, got shape {x.shape}")
    d1 = np.diff(x)
    d2 = np.diff(x, n=2)
    var0, var1, var2 = np.var(x), np.var(d1), np.var(d2)
    mobility = float(np.sqrt(var1 / var0)) if var0 > 0 else float("nan")
    paper = float(np.sqrt(var2 / var1)) if var1 > 0 else float("nan")
    complexity = paper / mobility if mobility > 0 else float("nan")
    return Hjorth(activity=float(np.mean(x * x)), mobility=mobility, complexity=complexity,
                  complexity_paper=paper)


def power_spectrum(x) -> tuple[np.ndarray, np.ndarray]:
    """One-sided power P_k of a curve of n steps over training time, k = 0 … n//2.

    P_k = w_k |F_k|² / n² with F the unnormalised DFT and w_k = 2 for the bins that stand
    for ±k (w = 1 at k = 0 and, for even n, at k = n/2), so Σ_k P_k = mean(x²) = the
    activity (Parseval).  k counts cycles per n steps; units: those of x squared.
    Returns ``(k, P)``.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    power = np.abs(np.fft.rfft(x)) ** 2 / n**2
    weights = np.full(power.size, 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    return np.arange(power.size), weights * power


def band_energy(power, k, band) -> float:
    """Σ P_k over the bins k1 ≤ k ≤ k2 of ``band = (k1, k2)`` (units of P)."""
    k1, k2 = band
    k = np.asarray(k)
    return float(np.sum(np.asarray(power)[(k >= k1) & (k <= k2)]))


def variant_names() -> tuple[str, ...]:
    """Every recorded variant: the detrends on L, then on log L (``log-…``)."""
    return DETRENDS + tuple(f"log-{m}" for m in DETRENDS)


def spectral_signature(loss, *, t0: int = T0, window: int = 51, polyorder: int = 2,
                       cutoff: int = 2, bands=((3, 10), (11, 50), (51, 200))) -> dict:
    """Hjorth parameters and band energies of the first ``t0`` steps of a training loss.

    Returns ``{variant: {"activity", "mobility", "complexity", "complexity_paper",
    "band_<k1>_<k2>"...}}`` for every variant of :func:`variant_names`.  ``loss`` is the
    per-step full-batch training loss (positive, needed for the log variants).
    """
    loss = np.asarray(loss, dtype=float)
    if loss.ndim != 1 or loss.size < t0:
        raise InputError("settings.t0", f"the loss curve has {loss.size} steps, fewer than "
                                       f"t0 = {t0}")
    head = loss[:t0]
    if np.any(head <= 0):
        raise InputError("curve", "the training loss must be positive for the log variants")
    out = {}
    for name in variant_names():
        base = np.log(head) if name.startswith("log-") else head
        method = name.removeprefix("log-")
        residual = detrend(base, method, window=window, polyorder=polyorder, cutoff=cutoff)
        record = asdict(hjorth(residual))
        k, power = power_spectrum(residual)
        for band in bands:
            record[f"band_{band[0]}_{band[1]}"] = band_energy(power, k, band)
        out[name] = record
    return out


def minmax_normalise(values) -> np.ndarray:
    """(v − min)/(max − min) over all finite entries (the grid normalisation of Fig 8-right).

    A constant grid maps to zeros; NaN entries stay NaN.
    """
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.full_like(v, np.nan)
    low, high = finite.min(), finite.max()
    return (v - low) / (high - low) if high > low else np.where(np.isfinite(v), 0.0, v)


# --------------------------------------------------------------------------------------
# Predictor evaluation


def _rank_correlation_rows(x_ranks: np.ndarray, y_ranks: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair of rank arrays (NaN where a row is constant)."""
    xc = x_ranks - x_ranks.mean(axis=-1, keepdims=True)
    yc = y_ranks - y_ranks.mean(axis=-1, keepdims=True)
    denom = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    num = (xc * yc).sum(axis=-1)
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, num / safe, np.nan)


def spearman_interval(x, y, *, n_boot: int = 2000, level: float = 0.95,
                      rng: np.random.Generator | None = None) -> dict:
    """Spearman ρ(x, y), its two-sided p-value, and a percentile bootstrap interval.

    The bootstrap resamples the (x, y) pairs with replacement ``n_boot`` times; resamples
    in which x or y is constant (ρ undefined) are dropped and counted (``dropped``).
    ``sign`` is +1/−1 by ρ and ``sign_certain`` says whether the interval excludes 0.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise InputError("predictor", f"needs two equal 1-D samples of ≥ 3 runs, got "
                                     f"{x.shape} and {y.shape}")
    rng = np.random.default_rng(0) if rng is None else rng
    rho = _rank_correlation_rows(stats.rankdata(x), stats.rankdata(y))[()]
    if np.isfinite(rho):
        p_value = float(stats.spearmanr(x, y).pvalue)
    else:
        p_value = float("nan")
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boot = _rank_correlation_rows(stats.rankdata(x[idx], axis=1), stats.rankdata(y[idx], axis=1))
    kept = boot[np.isfinite(boot)]
    tail = (1.0 - level) / 2.0
    low, high = (np.quantile(kept, [tail, 1.0 - tail]) if kept.size else (np.nan, np.nan))
    return {"rho": float(rho), "p_value": p_value, "low": float(low), "high": float(high),
            "level": level, "n": int(x.size), "n_boot": n_boot,
            "dropped": int(n_boot - kept.size), "sign": int(np.sign(rho)) if np.isfinite(rho)
            else 0, "sign_certain": bool(low > 0 or high < 0)}


def auroc(score, label) -> float:
    """Area under the ROC curve of ``score`` for the boolean ``label`` (ties count ½).

    = P(score of a positive > score of a negative) + ½ P(equal), the Mann–Whitney U of the
    positives over n₊n₋.  NaN when one class is empty.  Below ½: low scores mark positives.
    """
    score = np.asarray(score, dtype=float)
    label = np.asarray(label, dtype=bool)
    pos, neg = score[label], score[~label]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic").statistic
    return float(u / (pos.size * neg.size))


def best_threshold(score, label) -> tuple[int, float, float]:
    """The rule "label iff direction·score > threshold" with the best accuracy on the data.

    Candidates: both directions, thresholds below all scores, between consecutive
    distinct scores (midpoints) and above all scores.  Ties are broken towards the first
    candidate found (direction +1, lowest threshold).  Returns ``(direction, threshold, accuracy)``.
    """
    score = np.asarray(score, dtype=float)
    label = np.asarray(label, dtype=bool)
    best = (1, -np.inf, -1.0)
    for direction in (1, -1):
        s = direction * score
        values = np.unique(s)
        cuts = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2.0,
                               [values[-1] + 1.0]])
        accuracy = ((s[None, :] > cuts[:, None]) == label[None, :]).mean(axis=1)
        i = int(np.argmax(accuracy))
        if accuracy[i] > best[2]:
            best = (direction, float(cuts[i]), float(accuracy[i]))
    return best


def cv_threshold_accuracy(score, label, groups=None) -> dict:
    """Cross-validated accuracy of the one-threshold rule of :func:`best_threshold`.

    For each held-out group (``groups``: one label per run, e.g. the training fraction r;
    ``None``: leave-one-out) the direction and threshold are chosen on the other runs and
    applied to the held-out runs.  ``accuracy`` is over all held-out predictions;
    ``majority`` is the accuracy of always predicting the more common label, the number
    the rule has to beat.
    """
    score = np.asarray(score, dtype=float)
    label = np.asarray(label, dtype=bool)
    groups = np.arange(score.size) if groups is None else np.asarray(groups)
    if groups.shape != score.shape or label.shape != score.shape:
        raise InputError("predictor", "score, label and groups must have one entry per run")
    distinct = np.unique(groups)
    if distinct.size < 2:
        raise InputError("predictor", "cross-validation needs at least two groups")
    correct = np.zeros(score.size, dtype=bool)
    for g in distinct:
        held = groups == g
        direction, threshold, _ = best_threshold(score[~held], label[~held])
        correct[held] = (direction * score[held] > threshold) == label[held]
    majority = max(label.mean(), 1.0 - label.mean())
    return {"accuracy": float(correct.mean()), "majority": float(majority),
            "folds": int(distinct.size)}


def evaluate_predictor(activity, val_acc, *, groks_at: float = GROKS_AT, groups=None,
                       n_boot: int = 2000, rng: np.random.Generator | None = None) -> dict:
    """Spearman ρ with bootstrap interval, AUROC and CV threshold accuracy of ``activity``.

    ``val_acc``: validation accuracy at the outcome horizon (fraction in [0, 1]); a run
    "groks" when it is ≥ ``groks_at``.  ``groups`` as in :func:`cv_threshold_accuracy`.
    """
    activity = np.asarray(activity, dtype=float)
    val_acc = np.asarray(val_acc, dtype=float)
    groks = val_acc >= groks_at
    result = {"spearman": spearman_interval(activity, val_acc, n_boot=n_boot, rng=rng),
              "auroc": auroc(activity, groks), "n_groks": int(groks.sum()),
              "n_runs": int(groks.size)}
    if 0 < groks.sum() < groks.size:
        result["cv"] = cv_threshold_accuracy(activity, groks, groups)
    else:
        result["cv"] = {"accuracy": float("nan"), "majority": 1.0, "folds": 0}
    return result


# --------------------------------------------------------------------------------------
# The grid experiment (kind "loss-spectrum-grid")
