"""The error transform over (ξ, t) and the per-peak decay, for any schema dataset."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from freqdyn.results import peak_ratios, peaks_of, u_hat, xi_dims


def _log_magnitude(ds: xr.Dataset) -> xr.DataArray:
    mag = np.abs(u_hat(ds))
    floor = float(mag.max()) * 1e-12 + 1e-300
    return np.log10(np.maximum(mag, floor))


def _peak_label(peak) -> str:
    return "ω = " + ", ".join(f"{c:.3g}" for c in np.ravel(peak))


def time_rows(ax, xi: np.ndarray, times: np.ndarray, field: np.ndarray, **style):
    """A (time, ξ) field drawn with each row at its own time t.

    Dense time grids (more than 40 evenly spread times) are drawn as one heatmap; a few
    reported times as thin bands at t (gaps between them), so that no time appears to
    cover an interval it was not computed on.  Returns the last mesh (for a colorbar).
    """
    times = np.asarray(times, dtype=float)
    if times.size > 40:
        return ax.pcolormesh(xi, times, field, shading="nearest", **style)
    span = float(times[-1] - times[0]) or 1.0
    gaps = np.diff(times)
    half = 0.4 * (float(gaps.min()) if gaps.size else span)
    half = min(half, 0.02 * span) if times.size > 1 else 0.5
    mesh = None
    for t, row in zip(times, field, strict=True):
        mesh = ax.pcolormesh(xi, [t - half, t + half], np.vstack([row, row]),
                             shading="nearest", **style)
    ax.set_ylim(times[0] - 2 * half, times[-1] + 2 * half)
    ax.set_yticks(times, [f"{t:.3g}" for t in times], fontsize=7)
    return mesh


def dynamics_figure(ds: xr.Dataset, title: str | None = None) -> plt.Figure:
    """log10|û| over (ξ, t) and the per-peak decay |û(ω_k, t)|/|û(ω_k, 0)|.

    1D: a heatmap with ξ (cycles per unit x) across and PDE time t up.
    2D/3D: one panel per reported time (3D: the slice ξ2 = 0).
    """
    name = ds.attrs.get("case_name", "case")
    method = ds.attrs.get("method", "")
    title = title or f"{name}: error transform |û(ξ, t)| ({method})"
    logmag = _log_magnitude(ds)
    dims = xi_dims(len([d for d in logmag.dims if d != "time"]))
    peaks = peaks_of(ds)
    times = ds["time"].values
    if len(dims) == 1:
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained",
                                       gridspec_kw={"width_ratios": [1.4, 1]})
        vmax = float(logmag.max())
        mesh = time_rows(ax0, ds["xi"].values, times, logmag.values, cmap="magma",
                         vmin=vmax - 8, vmax=vmax)
        ax0.set_xlabel("frequency ξ (cycles per unit x)")
        ax0.set_ylabel("PDE time t")
        for p in peaks:
            ax0.axvline(p[0], color="cyan", lw=0.6, ls=":")
            ax0.axvline(-p[0], color="cyan", lw=0.6, ls=":")
        fig.colorbar(mesh, ax=ax0, label="log10 |û(ξ, t)|")
    else:
        ncols = times.size + 1
        fig, axes = plt.subplots(1, ncols, figsize=(3.2 * ncols, 3.4), layout="constrained")
        vmax = float(logmag.max())
        for ax, (i, t) in zip(axes[:-1], enumerate(times), strict=True):
            panel = logmag.isel(time=i)
            if len(dims) == 3:
                panel = panel.sel(xi2=0.0, method="nearest")
            mesh = ax.pcolormesh(ds["xi0"].values, ds["xi1"].values, panel.values.T,
                                 shading="nearest", cmap="magma", vmin=vmax - 8, vmax=vmax)
            ax.set_title(f"t = {t:g}")
            ax.set_xlabel("ξ0 (cycles/unit x)")
            ax.set_aspect("equal")
        axes[0].set_ylabel("ξ1 (cycles/unit x)")
        fig.colorbar(mesh, ax=axes[:-1].tolist(), label="log10 |û|", shrink=0.8, pad=0.02)
        ax1 = axes[-1]
    ratios = peak_ratios(ds)
    for peak, ratio in zip(peaks, ratios, strict=True):
        style = "o-" if times.size <= 25 else "-"
        ax1.semilogy(times, np.maximum(ratio, 1e-16), style, label=_peak_label(peak))
    ax1.set_xlabel("PDE time t")
    ax1.set_ylabel("|û(ω, t)| / |û(ω, 0)| at target peaks")
    ax1.grid(True, which="both", alpha=0.3)
    if len(peaks):
        ax1.legend(fontsize=8)
    fig.suptitle(title)
    return fig
