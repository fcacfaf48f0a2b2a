"""Compare predicted and measured frequency dynamics (schema datasets, any method;
docs/theory.md §8).

All quantities are in the units of the result schema: PDE time t (the t of
∂_t û = κ²α[σ_a²∇·(ρ_w∇û) − ρ_w û]) and frequency ξ in cycles per unit of x
(convention B, û(ξ) = ∫u e^{−2πiξ·x} dx).

* :func:`rel_l2_by_time` — ‖û_a(·, t) − û_b(·, t)‖_{L²(ξ)} / ‖û_b(·, t)‖_{L²(ξ)} per time,
  on the common ξ grid (uniform, so the grid weights cancel); over |ξ| ≥ ε when a
  dataset declares an excluded ball (the LFP models).
* :func:`parseval_loss` — the loss a prediction implies for the trainer.  The trainer
  minimises L = (α/2N) Σ_i (f(x_i) − g(x_i))² over N samples filling the box [−R, R]^d of
  volume V = (2R)^d, an estimate of (α/2V) ∫_box (f − g)² dx.  By Parseval
  ∫|u|² dx = ∫|û|² dξ, so the predicted loss is (α/2V) ∫|û_pred(ξ, t)|² dξ (trapezoid on
  the truncated ξ domain, which holds all but 1e-8 of the target energy).
* :func:`learning_times` — per target peak ω_k the first t with
  |û(ω_k, t)| / |û(ω_k, 0)| = 1/e, by linear interpolation of log ratio between
  reported times; ``inf`` when the ratio never falls to 1/e within the reported times.
* :func:`fit_loglog_slope` — least-squares slope p of log err = p log m + c;
  :func:`slope_interval` — p with its confidence interval (Student t on the fit's
  standard error).
* :func:`error_split` — a prediction's error against S networks split into the part all
  networks share (common) and the part that differs from draw to draw (per network).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from freqdyn.inputs.fourier import relative_l2
from freqdyn.results import peak_ratios, u_hat

#: Learning-time threshold: |û(ω, t)| = e^{-1} |û(ω, 0)|.
LEARNED = float(np.exp(-1.0))


def xi_names(ds: xr.Dataset) -> list[str]:
    """The frequency dimensions of a schema dataset."""
    return [d for d in ds["u_hat_real"].dims if d != "time"]


def on_grid(ds: xr.Dataset, like: xr.Dataset) -> xr.DataArray:
    """Complex û of ``ds`` at the times and on the ξ grid of ``like``.

    Times must coincide (to 1e-9 relative); ξ is linearly interpolated only when the
    grids differ.
    """
    values = u_hat(ds)
    times = like["time"].values
    index = []
    for t in times:
        hit = np.flatnonzero(np.isclose(ds["time"].values, t, rtol=1e-9, atol=1e-12))
        if hit.size == 0:
            raise ValueError(f"{ds.attrs.get('method', 'dataset')} has no result at t = {t:g}")
        index.append(int(hit[0]))
    values = values.isel(time=index).assign_coords(time=times)
    names = xi_names(like)
    same = all(values.sizes[n] == like.sizes[n] and np.allclose(values[n], like[n])
               for n in names)
    if not same:
        values = values.interp({n: like[n].values for n in names})
    return values


def excluded_ball(ds: xr.Dataset) -> float:
    """ε of a dataset whose model leaves out |ξ| < ε (the LFP's ``excluded_ball``), else 0."""
    return float(ds.attrs.get("excluded_ball", 0.0))


def kept_frequencies(a: xr.Dataset, b: xr.Dataset) -> np.ndarray | None:
    """The mask |ξ| ≥ ε on the grid of ``b``, ε the larger excluded ball; None without one."""
    eps = max(excluded_ball(a), excluded_ball(b))
    if eps <= 0:
        return None
    grid = np.stack(np.meshgrid(*(b[n].values for n in xi_names(b)), indexing="ij"), axis=-1)
    return np.linalg.norm(grid, axis=-1) >= eps


def rel_l2_by_time(a: xr.Dataset, b: xr.Dataset) -> np.ndarray:
    """Relative L²(ξ) difference ‖û_a − û_b‖/‖û_b‖ at each time of ``b``.

    Where either dataset leaves out a ball |ξ| < ε (:func:`excluded_ball`, the LFP
    models) the norms are over |ξ| ≥ ε; NaN anywhere else is kept, not hidden.
    """
    ua = on_grid(a, b).values
    ub = u_hat(b).values
    kept = kept_frequencies(a, b)
    if kept is not None:
        return relative_l2(ua[:, kept], ub[:, kept], axes=1)
    axes = tuple(range(1, ub.ndim))
    return relative_l2(ua, ub, axes=axes)


def l2_norm_squared(ds: xr.Dataset) -> np.ndarray:
    """∫|û(ξ, t)|² dξ per time, by the trapezoid rule on the dataset's ξ grid."""
    vals = np.abs(u_hat(ds).values) ** 2
    for name in reversed(xi_names(ds)):
        vals = np.trapezoid(vals, ds[name].values, axis=-1)
    return vals


def parseval_loss(ds: xr.Dataset, loss_scale: float, box_volume: float) -> np.ndarray:
    """Loss (α/2V) ∫|û(ξ, t)|² dξ per time that the trainer's mean-of-squares loss estimates."""
    return 0.5 * loss_scale / box_volume * l2_norm_squared(ds)


def measured_loss_at_reports(ds: xr.Dataset) -> np.ndarray:
    """The trainer's full-batch loss at each reported time (``loss`` at ``report_step``)."""
    return ds["loss"].values[ds["report_step"].values.astype(int)]


def learning_times(times: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """First time each ratio curve (rows of ``ratios``) reaches 1/e; NaN where it does not
    within the times given ("not reached": only known to lie beyond ``times[-1]``), or where
    the curve is undefined (a peak with zero initial amplitude).

    Log-linear interpolation between consecutive reported times: exact for a pure
    exponential decay between them.
    """
    times = np.asarray(times, dtype=float)
    out = []
    for row in np.atleast_2d(ratios):
        if not np.all(np.isfinite(row)):
            out.append(np.nan)
            continue
        logr = np.log(np.maximum(row, 1e-300))
        below = np.flatnonzero(logr <= -1.0)
        if below.size == 0:
            out.append(np.nan)
            continue
        j = int(below[0])
        if j == 0:
            out.append(float(times[0]))
            continue
        t0, t1, r0, r1 = times[j - 1], times[j], logr[j - 1], logr[j]
        out.append(float(t0 + (t1 - t0) * (-1.0 - r0) / (r1 - r0)))
    return np.array(out)


def fit_loglog_slope(widths, errors) -> tuple[float, float]:
    """(p, c) of the least-squares fit log err = p log m + c."""
    x = np.log(np.asarray(widths, dtype=float))
    y = np.log(np.asarray(errors, dtype=float))
    p, c = np.polyfit(x, y, 1)
    return float(p), float(c)


def slope_interval(widths, errors, level: float = 0.95) -> dict:
    """Slope p of log err = p log m + c with its ``level`` confidence interval.

    The interval is p ± t_{(1+level)/2, n−2} · se(p), se from the residuals of the
    least-squares fit (scipy.stats.linregress); with two widths it is unbounded (NaN).
    """

    x = np.log(np.asarray(widths, dtype=float))
    y = np.log(np.asarray(errors, dtype=float))
    fit = stats.linregress(x, y)
    n = x.size
    if n < 3:
        return {"slope": float(fit.slope), "interval": [float("nan"), float("nan")],
                "level": level}
    half = float(stats.t.ppf(0.5 + level / 2, n - 2) * fit.stderr)
    return {"slope": float(fit.slope), "interval": [float(fit.slope - half),
                                                     float(fit.slope + half)], "level": level}


def width_model_fit(widths, errors, level: float = 0.95) -> dict:
    """The finite-width model of the error, err(m) = A m^{−1/2} + B m^{−1} (docs/theory.md
    §12: the Monte-Carlo part and the beyond-linear part), by least squares, with
    ``level`` confidence intervals of A and B (t_{(1+level)/2, n−2} standard errors from
    the residuals; NaN with two widths, where the fit is exact)."""

    m = np.asarray(widths, dtype=float)
    y = np.asarray(errors, dtype=float)
    design = np.stack([m ** -0.5, 1.0 / m], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    n = m.size
    out = {"A": float(coef[0]), "B": float(coef[1]), "level": level,
           "A_interval": [float("nan")] * 2, "B_interval": [float("nan")] * 2}
    if n > 2:
        resid = y - design @ coef
        cov = np.linalg.inv(design.T @ design) * float(resid @ resid) / (n - 2)
        half = stats.t.ppf(0.5 + level / 2, n - 2) * np.sqrt(np.diag(cov))
        out["A_interval"] = [float(coef[0] - half[0]), float(coef[0] + half[0])]
        out["B_interval"] = [float(coef[1] - half[1]), float(coef[1] + half[1])]
    return out


def error_split(pred: xr.Dataset, runs: list[xr.Dataset],
                mean: xr.Dataset | None = None) -> dict:
    """A prediction's error against S ≥ 2 networks, split per time into two parts.

    With e_s = û_s − û_pred the error of network s and ē = (1/S) Σ e_s (the error of the
    seed-mean network), the vector identity (1/S) Σ‖e_s‖² = ‖ē‖² + (1/S) Σ‖e_s − ē‖²
    gives unbiased estimates of

    * ``per_network``² = (1/(S−1)) Σ_s ‖e_s − ē‖²: what differs from draw to draw (the
      Monte-Carlo error of each network's own kernel and samples, ∝ m^{-1/2});
    * ``common``² = ‖ē‖² − per_network²/S: what every network shares (beyond-NTK drift,
      ∝ 1/m, or a discretisation error of the trainer or the reference, which stays);
      clipped at 0 when the estimate is negative (the common part is below the noise).

    Both are relative to ‖û‖ of the seed-mean network (over |ξ| ≥ ε where a ball is
    left out), so that per_network² + common² ≈ the mean squared rel L² error of one net.
    ``mean``: :func:`mean_dataset` of ``runs`` where the caller has it already.
    """
    if len(runs) < 2:
        raise ValueError("error_split needs at least two networks")
    mean = mean_dataset(runs) if mean is None else mean
    kept = kept_frequencies(pred, mean)
    u_pred = on_grid(pred, mean).values
    errs = np.stack([u_hat(r).values - u_pred for r in runs])
    ref = u_hat(mean).values
    if kept is not None:
        errs, ref = errs[:, :, kept], ref[:, kept]
    axes = tuple(range(2, errs.ndim))
    norm2 = np.sum(np.abs(ref) ** 2, axis=tuple(range(1, ref.ndim)))
    e_bar = errs.mean(axis=0)
    spread2 = np.sum(np.abs(errs - e_bar) ** 2, axis=axes).sum(axis=0) / (len(runs) - 1)
    common2 = np.sum(np.abs(e_bar) ** 2, axis=tuple(range(1, e_bar.ndim))) - spread2 / len(runs)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"common": np.sqrt(np.maximum(common2, 0.0) / norm2),
                "per_network": np.sqrt(spread2 / norm2), "networks": len(runs)}


def mean_dataset(datasets: list[xr.Dataset]) -> xr.Dataset:
    """The seed-mean of measured datasets (û averaged; attributes of the first)."""
    first = datasets[0]
    out = first[["u_hat_real", "u_hat_imag"]].copy()
    for name in ("u_hat_real", "u_hat_imag"):
        out[name] = sum(d[name] for d in datasets) / len(datasets)
    out.attrs = dict(first.attrs)
    return out


def largest_width(arm_report: dict) -> dict | None:
    """The entry of the largest width in a study's per-arm report (None without networks)."""
    widths = arm_report["widths"]
    return widths[max(widths, key=int)] if widths else None


def compare(prediction, measurement, *, times_after: float = 0.0) -> dict:
    """How far a prediction is from a measurement (or any two schema results).

    Returns ``rel_l2`` (per time of the measurement: ‖û_pred − û_meas‖/‖û_meas‖ over ξ),
    ``times``, ``max_rel_l2`` (the largest over times > ``times_after``: t = 0 compares
    two initial conditions, not dynamics) and the per-peak ``peak_ratios`` of both.  A
    measurement may also be a :class:`freqdyn.nets.train.TrainResult` (its ``.dataset``).
    """

    meas = getattr(measurement, "dataset", measurement)
    pred = getattr(prediction, "dataset", prediction)
    errors = rel_l2_by_time(pred, meas)
    times = meas["time"].values
    later = times > times_after
    return {"rel_l2": errors, "times": times,
            "max_rel_l2": float(np.max(errors[later])) if later.any() else float(errors[0]),
            "peak_ratios_prediction": peak_ratios(on_grid(pred, meas).to_dataset(
                name="u").pipe(_as_schema, meas)),
            "peak_ratios_measurement": peak_ratios(meas)}


def _as_schema(ds, like):
    """A dataset of ``like``'s schema holding the complex variable ``u``."""
    out = like[["u_hat_real", "u_hat_imag"]].copy()
    out["u_hat_real"] = ds["u"].real
    out["u_hat_imag"] = ds["u"].imag
    return out
