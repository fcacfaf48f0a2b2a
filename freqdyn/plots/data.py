"""A data case's dynamics: train and test MSE over time, and the error left per |ξ| band."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from freqdyn.analysis.data_spectrum import band_power_ratio
from freqdyn.plots.registry import figure_set


def data_figure(ds: xr.Dataset, title: str | None = None, measured: xr.Dataset | None = None
                ) -> plt.Figure:
    """Left: train and test MSE against t (``measured`` adds the networks' as markers).
    Right: the fraction of each |ξ| band's initial error power left at each report time."""
    times = ds["time"].values
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    positive = times > 0
    for name, style in (("train_mse", "-"), ("test_mse", "--")):
        if name in ds and np.isfinite(ds[name].values).any():
            ax0.plot(times[positive], ds[name].values[positive], style, marker="o", ms=3,
                     label=f"{name.replace('_', ' ')} (theory)")
        if measured is not None and name in measured:
            ax0.plot(measured["time"].values, measured[name].values, "x",
                     label=f"{name.replace('_', ' ')} (networks)")
    ax0.set(xscale="log", yscale="log", xlabel="time t", ylabel="mean squared error")
    ax0.legend(fontsize=8)
    centres, ratio = band_power_ratio(ds)
    colors = plt.cm.viridis(np.linspace(0, 1, times.size))
    for t, row, color in zip(times, ratio, colors, strict=True):
        ax1.plot(centres, row, color=color, label=f"t = {t:.3g}")
    ax1.set(yscale="log", xlabel="|ξ| (cycles per unit x)",
            ylabel="error power left, band / initial")
    ax1.legend(fontsize=7, ncol=2)
    fig.suptitle(title or f"{ds.attrs.get('case_name', 'data')}: "
                          f"{ds.attrs.get('method', '')}")
    return fig


def scale_confirmation_figure(scales, predicted, frozen, measured, title: str,
                              key: str = "scale", width_mean=None, width_std=None,
                              width: int | None = None) -> plt.Figure:
    """Test MSE against the ρ_w scale: theory (trained and frozen frequencies, infinite
    width; at the networks' width, mean ± spread) and the networks (each seed a dot, their
    mean a line)."""
    measured = np.asarray(measured)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    ax.plot(scales, predicted, "o-", ms=3, label="theory (trained w, infinite width)")
    if width_mean is not None:
        mean, std = np.asarray(width_mean), np.asarray(width_std)
        ax.plot(scales, mean, "-", color="C2", lw=1, label=f"theory at m = {width}")
        ax.fill_between(scales, np.maximum(mean - std, 1e-300), mean + std, color="C2",
                        alpha=0.2, label="± predicted spread of one network")
    ax.plot(scales, frozen, ":", label="theory, frozen w (wrong model)")
    for column in measured.T:
        ax.plot(scales, column, "x", color="C3", ms=4)
    ax.plot(scales, measured.mean(axis=1), "-", color="C3", lw=0.8,
            label=f"networks ({measured.shape[1]} seed(s), mean)")
    ax.set(xscale="log", yscale="log", xlabel=f"rho_w {key}", ylabel="test MSE")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


@figure_set("data-scale")
def data_scale_figures(**data) -> dict:
    """The figure set of the ``data-scale`` kind: ``scales.png``."""
    return {"scales": scale_confirmation_figure(**data)}
