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
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2),
                                       gridspec_kw={"width_ratios": [1.4, 1]})
        vmax = float(logmag.max())
        mesh = ax0.pcolormesh(ds["xi"].values, times, logmag.values, shading="nearest",
                              cmap="magma", vmin=vmax - 8, vmax=vmax)
        ax0.set_xlabel("frequency ξ (cycles per unit x)")
        ax0.set_ylabel("PDE time t")
        for p in peaks:
            ax0.axvline(p[0], color="cyan", lw=0.6, ls=":")
            ax0.axvline(-p[0], color="cyan", lw=0.6, ls=":")
        fig.colorbar(mesh, ax=ax0, label="log10 |û(ξ, t)|")
    else:
        ncols = times.size + 1
        fig, axes = plt.subplots(1, ncols, figsize=(3.2 * ncols, 3.4))
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
        fig.colorbar(mesh, ax=axes[:-1].tolist(), label="log10 |û|", shrink=0.8)
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
