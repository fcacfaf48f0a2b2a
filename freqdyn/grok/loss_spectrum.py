"""Loss-curve spectra: predicting grokking from the early training loss (Notsawo et al. 2023).

The "spectral signature" of arXiv 2306.13253 is a Fourier transform **over training
time** of the training-loss curve L[t], t = 0 … T0−1 (T0 = 400 full-batch steps).  It has
nothing to do with the input-space frequencies of :mod:`freqdyn.grok.nudft`: here k counts
cycles per T0 steps, and a frequency is k/T0 cycles per step.

Signal processing (spec G3.3, freqdyn's reconstruction where the paper is silent)
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
  spec states it, the default is ``smooth``.

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

import functools
import hashlib
import json
import sys
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr
from scipy import signal, stats

from freqdyn.errors import InputError
from freqdyn.progress import progress_enabled
from freqdyn.runs.runner import Outcome
from freqdyn.runs.sweep import run_sweep, sweep_settings

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

#: Settings that define the grid rather than one run.
GRID_KEYS = ("learning_rates", "weight_decays", "train_fractions")
#: Settings read by the signature and the evaluation, not by the training run.
SIGNATURE_KEYS = ("t0", "detrend", "detrend_window", "detrend_polyorder", "highpass_cutoff",
                  "bands", "groks_at", "n_boot", "min_abs_rho")


def grid_cell(cell: dict, *, train: dict, signature: dict, device: str = "cpu") -> dict:
    """One grid run: train the modular model of ``train`` at the cell's (r, lr, wd, seed).

    Returns the spectral signature of the first ``t0`` steps of its per-step training loss
    (every variant), the final validation and training accuracy, the phase times and the
    curves the figures need.  Runs with one torch thread (the sweep runs cells in parallel).
    """
    import torch

    from freqdyn.grok.algorithmic import train_modular

    torch.set_num_threads(1)
    cfg = {**train, "train_fraction": cell["r"], "lr": cell["lr"], "weight_decay": cell["wd"]}
    run = train_modular(cfg, cell["seed"], device=device)
    loss = run.log.every("loss")
    sig = spectral_signature(loss, t0=signature["t0"], window=signature["detrend_window"],
                             polyorder=signature["detrend_polyorder"],
                             cutoff=signature["highpass_cutoff"], bands=signature["bands"])
    return {"signature": sig, "val_acc": float(run.final["val_acc"]),
            "train_acc": float(run.final["train_acc"]), "grokked": bool(run.final["grokked"]),
            "phase_times": {k: (None if v is None else int(v))
                            for k, v in run.phase_times.items()},
            "loss": loss.tolist(), "eval_steps": [int(s) for s in run.log.eval_steps],
            "val_acc_curve": run.log.evals("val_acc").tolist(),
            "train_acc_curve": run.log.evals("train_acc").tolist()}


def _grid_settings(exp) -> tuple[dict, dict, dict]:
    """Split the experiment settings into (grid axes, training cfg, signature settings)."""
    grid = {}
    for key in GRID_KEYS:
        values = exp.require(key)
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                           for v in values)):
            raise InputError(f"settings.{key}", f"must be a non-empty list of numbers ≥ 0, "
                                               f"got {values!r}")
        if len(set(values)) != len(values):
            raise InputError(f"settings.{key}", f"repeats a value: {values}")
        grid[key] = [float(v) for v in values]
    if not all(0 < r < 1 for r in grid["train_fractions"]):
        raise InputError("settings.train_fractions", "every r must lie in (0, 1)")
    if not all(v > 0 for v in grid["learning_rates"]):
        raise InputError("settings.learning_rates", "every learning rate must be > 0")
    t0 = exp.number("t0", T0, low=8, integer=True)
    bands = exp.get("bands", [[3, 10], [11, 50], [51, 200]])
    if (not isinstance(bands, list) or not all(isinstance(b, list) and len(b) == 2
                                               and all(isinstance(k, int) for k in b)
                                               and 0 <= b[0] <= b[1] for b in bands)):
        raise InputError("settings.bands", f"must be a list of [k1, k2] integer pairs, "
                                          f"got {bands!r}")
    detrend_default = exp.get("detrend", DEFAULT_DETREND)
    if detrend_default not in variant_names():
        raise InputError("settings.detrend", f"must be one of {variant_names()}, "
                                            f"got {detrend_default!r}")
    signature = {
        "t0": t0, "detrend": detrend_default,
        "detrend_window": exp.number("detrend_window", 51, low=3, integer=True),
        "detrend_polyorder": exp.number("detrend_polyorder", 2, low=0, integer=True),
        "highpass_cutoff": exp.number("highpass_cutoff", 2, low=0, integer=True),
        "bands": [list(b) for b in bands],
        "groks_at": exp.number("groks_at", GROKS_AT, low=0.0, high=1.0),
        "n_boot": exp.number("n_boot", 2000, low=100, integer=True),
        "min_abs_rho": exp.number("min_abs_rho", 0.5, low=0.0, high=1.0),
    }
    steps = exp.number("steps", low=t0, integer=True)
    train = {k: v for k, v in exp.settings.items()
             if k not in GRID_KEYS + SIGNATURE_KEYS}
    train["steps"] = steps
    train.setdefault("batch_size", "full")  # the paper's full batch: the loss curve is L(θ_t)
    return grid, train, signature


def _cells(exp, grid: dict, config: str) -> list[dict]:
    return [{"r": r, "lr": lr, "wd": wd, "seed": seed, "config": config}
            for r in grid["train_fractions"] for lr in grid["learning_rates"]
            for wd in grid["weight_decays"] for seed in exp.seeds]


def _padded(rows: list[list[float]]) -> np.ndarray:
    width = max(len(row) for row in rows)
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = np.asarray(row, dtype=float)
    return out


def _evaluation_summary(activity, val_acc, normalised, rs, signature, rng) -> dict:
    """Per-r and pooled predictor scores of the default variant (arrays (r, lr, wd, seed))."""
    n_r = activity.shape[0]
    cell_groups = np.broadcast_to(np.arange(activity[0, ..., 0].size).reshape(
        activity.shape[1:3])[..., None], activity.shape[1:]).ravel()
    per_r = [evaluate_predictor(activity[i].ravel(), val_acc[i].ravel(),
                                groks_at=signature["groks_at"], groups=cell_groups,
                                n_boot=signature["n_boot"], rng=rng) for i in range(n_r)]
    summary = {
        "spearman_rho": [e["spearman"]["rho"] for e in per_r],
        "spearman_low": [e["spearman"]["low"] for e in per_r],
        "spearman_high": [e["spearman"]["high"] for e in per_r],
        "spearman_p": [e["spearman"]["p_value"] for e in per_r],
        "spearman_sign": [e["spearman"]["sign"] for e in per_r],
        "sign_certain": [e["spearman"]["sign_certain"] for e in per_r],
        "auroc": [e["auroc"] for e in per_r],
        "cv_accuracy": [e["cv"]["accuracy"] for e in per_r],
        "cv_majority": [e["cv"]["majority"] for e in per_r],
        "n_groks": [e["n_groks"] for e in per_r],
        "n_runs": [e["n_runs"] for e in per_r],
    }
    summary["predicts"] = [bool(c and abs(rho) >= signature["min_abs_rho"])
                           for c, rho in zip(summary["sign_certain"], summary["spearman_rho"],
                                             strict=True)]
    if n_r > 1:
        r_groups = np.broadcast_to(np.asarray(rs)[:, None, None, None], activity.shape).ravel()
        pooled = evaluate_predictor(normalised.ravel(), val_acc.ravel(),
                                    groks_at=signature["groks_at"], groups=r_groups,
                                    n_boot=signature["n_boot"], rng=rng)
        summary.update({
            "pooled_rho": pooled["spearman"]["rho"], "pooled_low": pooled["spearman"]["low"],
            "pooled_high": pooled["spearman"]["high"],
            "pooled_sign_certain": pooled["spearman"]["sign_certain"],
            "pooled_auroc": pooled["auroc"], "pooled_cv_accuracy": pooled["cv"]["accuracy"],
            "pooled_cv_majority": pooled["cv"]["majority"]})
    return summary


def run_grid(exp, out, device: str = "cpu"):
    """Kind ``loss-spectrum-grid``: the (lr, wd) × r grid of modular runs and the predictor.

    Settings: ``learning_rates``, ``weight_decays``, ``train_fractions`` (the grid), ``t0``
    (400), ``detrend`` (the default variant, ``"smooth"``), ``detrend_window`` (51),
    ``detrend_polyorder`` (2), ``highpass_cutoff`` (2), ``bands``, ``groks_at`` (0.99),
    ``n_boot`` (2000), ``min_abs_rho`` (0.5: the |ρ| a certain-sign correlation needs for
    ``predicts``); every other setting goes to :func:`freqdyn.grok.algorithmic.train_modular`
    (``steps`` is the outcome horizon; ``batch_size`` defaults to ``"full"`` as in the
    paper, so the per-step loss is the training loss L(θ_t)).  Besides the scores of
    :func:`evaluate_predictor`, the summary has ``rho_learning_rate``: Spearman ρ of the
    learning rate alone with the final accuracy, the baseline the activity has to beat
    (larger steps both raise the early oscillations and speed up generalisation).  Cells
    run through :mod:`freqdyn.runs.sweep` as configured by the file's ``[sweep]`` table and
    are kept in ``out/cells/``.
    """
    grid, train, signature = _grid_settings(exp)
    cell_signature = {k: signature[k] for k in
                      ("t0", "detrend_window", "detrend_polyorder", "highpass_cutoff", "bands")}
    config = hashlib.sha256(json.dumps({"train": train, "signature": cell_signature},
                                       sort_keys=True).encode()).hexdigest()[:10]
    cells = _cells(exp, grid, config)
    task = functools.partial(grid_cell, train=train, signature=cell_signature, device=device)

    def report(name: str, done: int, total: int) -> None:
        if progress_enabled():
            print(f"loss-spectrum-grid: {done}/{total} cells ({name})", file=sys.stderr)

    records = run_sweep(task, cells, out, sweep_settings(exp.text), on_done=report)
    rs, lrs, wds = grid["train_fractions"], grid["learning_rates"], grid["weight_decays"]
    shape = (len(rs), len(lrs), len(wds), len(exp.seeds))
    results = [rec["result"] for rec in records]
    variants = variant_names()
    quantities = ("activity", "mobility", "complexity", "complexity_paper")
    band_names = [f"band_{b[0]}_{b[1]}" for b in signature["bands"]]

    def grid_of(values) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=float).reshape(shape)

    hjorth_values = {q: np.stack([grid_of([res["signature"][v][q] for res in results])
                                  for v in variants]) for q in quantities}
    bands = np.stack([np.stack([grid_of([res["signature"][v][b] for res in results])
                                for b in band_names]) for v in variants])
    val_acc = grid_of([res["val_acc"] for res in results])
    train_acc = grid_of([res["train_acc"] for res in results])
    phase = {key: grid_of([res["phase_times"].get(key) for res in results])
             for key in ("t1", "t2", "t3", "t4")}
    loss = _padded([res["loss"] for res in results]).reshape(*shape, -1)
    eval_steps = _padded([res["eval_steps"] for res in results])
    val_curve = _padded([res["val_acc_curve"] for res in results]).reshape(*shape, -1)
    train_curve = _padded([res["train_acc_curve"] for res in results]).reshape(*shape, -1)
    seconds = grid_of([rec["seconds"] for rec in records])

    default = variants.index(signature["detrend"])
    activity = hjorth_values["activity"][default]
    normalised = np.stack([minmax_normalise(a) for a in activity])
    method = signature["detrend"].removeprefix("log-")
    spectra = []
    for res in results:
        head = np.asarray(res["loss"][: signature["t0"]], dtype=float)
        base = np.log(head) if signature["detrend"].startswith("log-") else head
        spectra.append(power_spectrum(detrend(
            base, method, window=signature["detrend_window"],
            polyorder=signature["detrend_polyorder"], cutoff=signature["highpass_cutoff"]))[1])
    spectra = np.array(spectra).reshape(*shape, -1)

    rng = np.random.default_rng(exp.seeds[0])
    summary = {"r": rs, "learning_rates": lrs, "weight_decays": wds,
               "detrend": signature["detrend"], "t0": signature["t0"],
               "groks_at": signature["groks_at"]}
    summary.update(_evaluation_summary(activity, val_acc, normalised, rs, signature, rng))
    summary["rho_by_variant"] = {
        v: [spearman_interval(hjorth_values["activity"][i][j].ravel(), val_acc[j].ravel(),
                              n_boot=signature["n_boot"], rng=rng)["rho"]
            for j in range(len(rs))] for i, v in enumerate(variants)}
    summary["auroc_by_variant"] = {
        v: [auroc(hjorth_values["activity"][i][j].ravel(),
                  val_acc[j].ravel() >= signature["groks_at"]) for j in range(len(rs))]
        for i, v in enumerate(variants)}
    summary["rho_mobility"] = [spearman_interval(hjorth_values["mobility"][default][j].ravel(),
                                                 val_acc[j].ravel(), n_boot=100,
                                                 rng=rng)["rho"] for j in range(len(rs))]
    lr_grid = np.broadcast_to(np.asarray(lrs)[:, None, None], shape[1:]).ravel()
    summary["rho_learning_rate"] = [float(stats.spearmanr(lr_grid, val_acc[j].ravel()).statistic)
                                    if np.ptp(val_acc[j]) > 0 else float("nan")
                                    for j in range(len(rs))]
    summary["fraction_grokked"] = [float(np.mean(val_acc[j] >= signature["groks_at"]))
                                   for j in range(len(rs))]
    summary["seconds_per_cell"] = float(np.mean(seconds))
    summary["cells"] = len(records)

    grid_dims = ("r", "lr", "wd", "seed")
    coords = {"r": ("r", rs, {"long_name": "training fraction r = |train|/|table|"}),
              "lr": ("lr", lrs, {"long_name": "AdamW peak learning rate"}),
              "wd": ("wd", wds, {"long_name": "AdamW weight decay"}),
              "seed": ("seed", list(exp.seeds)),
              "variant": ("variant", list(variants),
                          {"long_name": "detrend variant of the loss curve"}),
              "band": ("band", band_names, {"long_name": "bins k1..k2 (cycles per t0 steps)"}),
              "step": ("step", np.arange(loss.shape[-1]), {"long_name": "optimizer step"}),
              "k": ("k", np.arange(spectra.shape[-1]),
                    {"long_name": "cycles per t0 training steps (loss-curve spectrum)"}),
              "eval_index": ("eval_index", np.arange(eval_steps.shape[1]))}
    units = "loss^2 (log-: (log loss)^2)"
    data = {q: (("variant", *grid_dims), hjorth_values[q], {"long_name": f"Hjorth {q} of the "
                f"detrended first t0 steps of the training loss"
                + (f" [{units}]" if q == "activity" else "")}) for q in quantities}
    data.update({
        "band_energy": (("variant", "band", *grid_dims), bands,
                        {"long_name": f"sum of the one-sided power over the band [{units}]"}),
        "activity_normalised": (grid_dims, normalised, {
            "long_name": f"min-max normalised {signature['detrend']} activity within each r"}),
        "val_acc": (grid_dims, val_acc, {"long_name": "validation accuracy after the last step"}),
        "train_acc": (grid_dims, train_acc, {"long_name": "training accuracy after the last "
                                                          "step"}),
        "loss": ((*grid_dims, "step"), loss, {"long_name": "full-batch training loss per step "
                                                           "(cross-entropy, nats)"}),
        "spectrum": ((*grid_dims, "k"), spectra, {
            "long_name": f"one-sided power of the {signature['detrend']}-detrended first t0 "
                         f"steps [{units}]"}),
        "eval_step": ((*grid_dims, "eval_index"), eval_steps.reshape(*shape, -1),
                      {"long_name": "steps at which accuracies were evaluated"}),
        "val_acc_curve": ((*grid_dims, "eval_index"), val_curve,
                          {"long_name": "validation accuracy at eval_step"}),
        "train_acc_curve": ((*grid_dims, "eval_index"), train_curve,
                            {"long_name": "training accuracy at eval_step"}),
        "seconds": (grid_dims, seconds, {"long_name": "wall-clock seconds of the cell's run"}),
    })
    for key, values in phase.items():
        data[key] = (grid_dims, values, {"long_name": f"phase time {key} (steps; NaN: not "
                                                      f"reached)"})
    ds = xr.Dataset(data, coords=coords, attrs={"detrend_default": signature["detrend"],
                                                 "t0": signature["t0"], "config": config})
    figures = _grid_figures(ds, signature)
    return Outcome(dataset=ds, summary=summary, figures=figures)


def _example_runs(ds, groks_at: float) -> dict[str, dict]:
    """Index of a grokking run (highest val acc, earliest t4) and of a non-grokking one
    (lowest val acc among the memorising runs, or overall)."""
    val = ds["val_acc"].values
    t4 = np.nan_to_num(ds["t4"].values, nan=np.inf)
    flat = np.arange(val.size)
    examples = {}
    grok = flat[val.ravel() >= groks_at]
    if grok.size:
        examples["groks"] = np.unravel_index(grok[np.argmin(t4.ravel()[grok])], val.shape)
    memorised = flat[(ds["train_acc"].values.ravel() >= groks_at)
                     & (val.ravel() < groks_at)]
    pool = memorised if memorised.size else flat[val.ravel() < groks_at]
    if pool.size:
        examples["does not grok"] = np.unravel_index(pool[np.argmin(val.ravel()[pool])],
                                                     val.shape)
    return {name: dict(zip(("r", "lr", "wd", "seed"), index, strict=True))
            for name, index in examples.items()}


def _grid_figures(ds, signature: dict) -> dict:
    """Fig 2-style heat maps, the Fig 8-right scatter, loss curves and their spectra."""
    import matplotlib.pyplot as plt

    rs, t0 = ds["r"].values, signature["t0"]
    variant = signature["detrend"]
    figures = {}
    fig, axes = plt.subplots(2, len(rs), figsize=(3.6 * len(rs), 6.4), squeeze=False)
    for j, r in enumerate(rs):
        val = ds["val_acc"].isel(r=j).mean("seed").values
        act = ds["activity"].sel(variant=variant).isel(r=j).mean("seed").values
        for row, (values, title, cmap) in enumerate((
                (100 * val, f"val acc (%) at the last step, r = {r:g}", "viridis"),
                (np.log10(act), f"log10 activity, steps 0-{t0 - 1}, r = {r:g}", "magma"))):
            ax = axes[row, j]
            image = ax.imshow(values, origin="lower", cmap=cmap, aspect="auto")
            fig.colorbar(image, ax=ax, shrink=0.85)
            ax.set_xticks(range(ds.sizes["wd"]), [f"{w:g}" for w in ds["wd"].values])
            ax.set_yticks(range(ds.sizes["lr"]), [f"{v:g}" for v in ds["lr"].values])
            ax.set_xlabel("weight decay")
            ax.set_ylabel("learning rate")
            ax.set_title(title, fontsize=9)
    fig.suptitle(f"final validation accuracy vs early training-loss activity ({variant}), "
                 f"means over {ds.sizes['seed']} seed(s)")
    fig.tight_layout()
    figures["heatmaps"] = fig

    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    for j, r in enumerate(rs):
        ax.scatter(ds["activity_normalised"].isel(r=j).values.ravel(),
                   100 * ds["val_acc"].isel(r=j).values.ravel(), s=14, label=f"r = {r:g}")
    ax.set_xlabel(f"normalised activity ({variant}, steps 0-{t0 - 1})")
    ax.set_ylabel("final val acc (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figures["activity_vs_accuracy"] = fig

    examples = _example_runs(ds, signature["groks_at"])
    if examples:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.0, 5.6), sharex=True)
        spec_fig, spec_ax = plt.subplots(figsize=(5.2, 3.6))
        for name, index in examples.items():
            run = ds.isel(index)
            label = (f"{name}: r={float(run['r']):g}, lr={float(run['lr']):g}, "
                     f"wd={float(run['wd']):g}")
            line, = top.plot(run["step"].values, run["loss"].values, lw=0.8, label=label)
            steps = run["eval_step"].values
            bottom.plot(steps, run["train_acc_curve"].values, "--", color=line.get_color(),
                        lw=0.8)
            bottom.plot(steps, run["val_acc_curve"].values, color=line.get_color(), lw=1.0)
            spectrum = run["spectrum"].values
            spec_ax.semilogy(run["k"].values[1:], np.maximum(spectrum[1:], 1e-30),
                             color=line.get_color(), lw=0.8, label=label)
        top.axvspan(0, t0, color="0.9")
        top.set_yscale("log")
        top.set_ylabel("training loss")
        top.legend(fontsize=7)
        bottom.set_ylabel("accuracy (dashed: train)")
        bottom.set_xlabel("step")
        fig.tight_layout()
        figures["loss_curves"] = fig
        spec_ax.set_xlabel(f"k (cycles per {t0} steps)")
        spec_ax.set_ylabel(f"power of the {variant}-detrended loss")
        spec_ax.legend(fontsize=7)
        spec_fig.tight_layout()
        figures["spectra"] = spec_fig
    return figures
