"""Figures of :mod:`freqdyn.grok.frequency_view` (each returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from freqdyn.errors import InputError
from freqdyn.plots.registry import figure_set

#: Train and test curves' colours.
COLORS = {"train": "tab:blue", "test": "tab:orange"}


def band(ax, steps, curves, color, label):
    """Mean over seeds with a min–max band; ``curves`` shape (seeds, steps)."""
    ax.plot(steps, curves.mean(0), color=color, label=label)
    ax.fill_between(steps, curves.min(0), curves.max(0), color=color, alpha=0.25, lw=0)


def aliasing_loss_figure(ds: xr.Dataset, layouts) -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, cond in zip(axes, ds.condition.values, strict=True):
        for part in ("train", "test"):
            band(ax, ds.step.values, ds[f"{part}_loss"].sel(condition=cond).values,
                  COLORS[part], part)
        ax.set_yscale("log")
        ax.set_title(f"{layouts[cond][0]}, n = {layouts[cond][1]}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("MSE (mean, min–max over seeds)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def aliasing_function_figure(ds: xr.Dataset, x_sparse: np.ndarray) -> plt.Figure:
    snaps = ds.snapshot.values
    fig, axes = plt.subplots(1, snaps.size, figsize=(4 * snaps.size, 3.2), sharey=True)
    x = ds.x.values
    for ax, step in zip(np.atleast_1d(axes), snaps, strict=True):
        ax.plot(x, ds.sparse_output_snapshot.sel(snapshot=step).isel(seed=0), color="tab:red",
                label="output h(x)")
        ax.plot(x_sparse, np.sin(6 * x_sparse), "*", color="tab:blue", label="training data")
        ax.set_title(f"step {step}")
        ax.set_xlabel("x")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def aliasing_spectra_figure(ds: xr.Dataset, snaps) -> plt.Figure:
    fig, axes = plt.subplots(2, len(snaps), figsize=(4 * len(snaps), 6), sharex=True,
                             squeeze=False)
    sparse = ds.sel(condition="sparse").isel(seed=0)
    target = {"train": sparse.target_train_amplitude.values,
              "test": ds.target_test_amplitude.values}
    for row, where in enumerate(("train", "test")):
        for col, step in enumerate(snaps):
            ax = axes[row, col]
            ax.plot(ds.k, target[where], "o-", color="tab:orange", label="target")
            ax.plot(ds.k, sparse[f"output_{where}_amplitude"].sel(step=step), "s--",
                    color="tab:blue", label="output")
            ax.set_title(f"{where} points, step {step}")
        axes[row, 0].set_ylabel("|F(k)|")
    for ax in axes[-1]:
        ax.set_xlabel("k")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def aliasing_data_figure(ds: xr.Dataset, layouts) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(ds.k, ds.target_test_amplitude, "k-", lw=2, label="test (1000 even)")
    for cond in ds.condition.values:
        ax.plot(ds.k, ds.target_train_amplitude.sel(condition=cond).isel(seed=0), "o--",
                label=f"train, {layouts[cond][0]} n = {layouts[cond][1]}")
    ax.set_xlabel("k")
    ax.set_ylabel("|F[sin 6x](k)|")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parity_loss_figure(ds: xr.Dataset) -> plt.Figure:
    fractions = ds.fraction.values
    fig, axes = plt.subplots(1, fractions.size, figsize=(4 * fractions.size, 3.4),
                             sharey=True, squeeze=False)
    for ax, frac in zip(axes[0], fractions, strict=True):
        for part in ("train", "test"):
            band(ax, ds.step.values, ds[f"{part}_loss"].sel(fraction=frac).values,
                  COLORS[part], part)
        ax.set_title(f"training fraction {frac:g}")
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[0, 0].set_ylabel("MSE (mean, min–max over seeds)")
    axes[0, 0].legend()
    fig.tight_layout()
    return fig


def parity_data_figure(ds: xr.Dataset) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    shades = plt.cm.Blues(np.linspace(0.4, 1.0, ds.fraction.size))
    for frac, color in zip(ds.fraction.values, shades, strict=True):
        ax.plot(ds.k, ds.target_train_amplitude.sel(fraction=frac).mean("seed"), color=color,
                label=f"training subset {frac:g} (seed mean)")
    ax.plot(ds.k, ds.target_full_amplitude, color="tab:orange", lw=2, label="all points")
    ax.set_xlabel("k (along the projection direction)")
    ax.set_ylabel("|F_d[y](k)|")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parity_output_figure(ds: xr.Dataset, focus: float) -> plt.Figure:
    if focus not in ds.fraction.values:
        raise InputError("settings.focus_fraction", f"{focus} is not one of the fractions")
    sel = ds.output_full_amplitude.sel(fraction=focus).isel(seed=0)
    steps = ds.step.values
    halves = (steps[: max(2, steps.size // 3)], steps[steps.size // 3:])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, window in zip(axes, halves, strict=True):
        picks = window[np.linspace(0, window.size - 1, min(6, window.size)).astype(int)]
        shades = plt.cm.Blues(np.linspace(0.35, 1.0, picks.size))
        for step, color in zip(picks, shades, strict=True):
            ax.plot(ds.k, sel.sel(step=step), color=color, label=f"step {step}")
        ax.plot(ds.k, ds.target_full_amplitude, color="tab:orange", lw=2, label="parity")
        ax.set_xlabel("k")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"|F_d[h](k)| on all points, fraction {focus:g}")
    fig.tight_layout()
    return fig


def _setting_title(setting) -> str:
    """"α = 8, adamw lr 0.001, wd 0.01" from (alpha, optimizer, lr, weight_decay)."""
    alpha, opt, lr, weight_decay = setting
    return f"α = {alpha:g}, {opt} lr {lr:g}" + (f", wd {weight_decay:g}" if weight_decay else "")


def image_accuracy_figure(ds: xr.Dataset, arms) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    steps = np.maximum(ds.step.values, 1)
    for ax, arm in zip(axes, ds.arm.values, strict=True):
        for part in ("train", "test"):
            band(ax, steps, ds[f"{part}_acc"].sel(arm=arm).values, COLORS[part], part)
        ax.set_title(_setting_title(arms[arm]))
        ax.set_xscale("log")
        ax.set_xlabel("step")
    axes[0].set_ylabel("accuracy (mean, min–max over seeds)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def image_spectra_figure(ds: xr.Dataset, arm: str, snaps, setting) -> plt.Figure:
    fig, axes = plt.subplots(2, len(snaps), figsize=(4 * len(snaps), 6), sharex=True,
                             squeeze=False)
    sel = ds.sel(arm=arm).isel(seed=0)
    for row, where in enumerate(("train", "full")):
        for col, step in enumerate(snaps):
            ax = axes[row, col]
            ax.plot(ds.k, sel[f"output_{where}_amplitude"].sel(step=step), color="tab:blue",
                    label="output")
            ax.plot(ds.k, sel[f"target_{where}_amplitude"], color="tab:orange", label="target")
            ax.set_title(f"{where} set, step {step}")
        axes[row, 0].set_ylabel("rss over classes of |F_d(k)|")
    for ax in axes[-1]:
        ax.set_xlabel("k along the first principal direction")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(_setting_title(setting))
    fig.tight_layout()
    return fig


@figure_set("grok.aliasing")
def aliasing_figures(ds: xr.Dataset, layouts, x_sparse: np.ndarray, snaps) -> dict:
    """The aliasing study's losses, functions, output and data spectra."""
    return {"losses": aliasing_loss_figure(ds, layouts),
            "functions": aliasing_function_figure(ds, x_sparse),
            "spectra": aliasing_spectra_figure(ds, snaps),
            "data_spectra": aliasing_data_figure(ds, layouts)}


@figure_set("grok.parity")
def parity_figures(ds: xr.Dataset, focus: float) -> dict:
    """The parity study's losses, data spectra and output spectra."""
    return {"losses": parity_loss_figure(ds), "data_spectra": parity_data_figure(ds),
            "output_spectra": parity_output_figure(ds, focus)}


@figure_set("grok.images")
def image_figures(ds: xr.Dataset, arms, snaps) -> dict:
    """The image study's accuracies and, per arm, its spectra."""
    figures = {"accuracy": image_accuracy_figure(ds, arms)}
    for arm in ds.arm.values:
        figures[f"spectra_{arm}"] = image_spectra_figure(ds, arm, snaps, arms[arm])
    return figures
