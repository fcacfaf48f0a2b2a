"""Figures of :mod:`freqdyn.grok.lazy_rich` (each returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from freqdyn.analysis.stats import mean_std
from freqdyn.plots.registry import figure_set


def after_start(ds: xr.Dataset) -> tuple[xr.Dataset, np.ndarray]:
    """The logged steps t ≥ 1 (for log-scale step axes) and their step values."""
    ds = ds.isel(step=ds["step"].values > 0)
    return ds, ds["step"].values


def figure_toy_curves(ds: xr.Dataset):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ds, t = after_start(ds)
    for i, seed in enumerate(ds["seed"].values):
        color = f"C{i}"
        ax.plot(t, ds["train_loss"][i], color=color, label=f"seed {seed}: train")
        ax.plot(t, ds["test_loss"][i], color=color, ls="--", label="test")
        ax.plot(t, ds["twin_train_loss"][i], color=color, ls=":", alpha=0.7,
                label="linearised twin (train, test)")
        ax.plot(t, ds["twin_test_loss"][i], color=color, ls=":", alpha=0.7)
        ax.axhline(float(ds["k0_regression_test_loss"][i]), color=color, lw=0.8, alpha=0.6,
                   label="K₀ regression test MSE")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GD step")
    ax.set_ylabel("MSE")
    ax.set_title("committee machine: lazy plateau, then feature learning")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[:4], labels[:4], fontsize=7)
    return fig


def figure_decomposition(ds: xr.Dataset):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ds, t = after_start(ds)
    ax.plot(t, ds["variance_term"][0], "r--", label="variance error")
    ax.plot(t, ds["misalignment_term"][0], "g--", label="misalignment error")
    ax.plot(t, ds["linear_term"][0], "k--", label="power in linear modes")
    ax.plot(t, ds["population_loss"][0], color="orange", label="sum (population MSE)")
    ax.plot(t, ds["test_loss"][0], color="C0", alpha=0.5, lw=0.8, label="test-set MSE")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GD step")
    ax.set_ylabel("MSE")
    ax.set_ylim(1e-3 * float(ds["population_loss"][0].max()), None)
    ax.set_title(f"exact test-loss decomposition, seed {int(ds['seed'][0])}")
    ax.legend(fontsize=7)
    return fig


def figure_alignment(ds: xr.Dataset):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ds, t = after_start(ds)
    right = ax.twinx()
    for i, seed in enumerate(ds["seed"].values):
        ax.plot(t, ds["alignment"][i], color=f"C{i}", label=f"seed {seed}: NTK alignment")
        right.plot(t, ds["param_norm"][i], color=f"C{i}", ls="--", alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("GD step")
    ax.set_ylabel("test-set NTK–label alignment")
    right.set_ylabel("weight norm ‖W‖_F (dashed)")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def figure_alpha_sweep(ds: xr.Dataset, n_alpha: int):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    normalised = {k: ds[k] / ds[k].isel(step=0)
                  for k in ("train_loss", "test_loss", "k0_descent_test_loss")}
    norm_ds, t = after_start(xr.Dataset(normalised))
    for j, alpha in enumerate(ds["alpha"].values):
        color = "grey" if j >= n_alpha else f"C{j}"
        label = f"α = {alpha:g}" + (" (lazy limit)" if j >= n_alpha else "")
        left.plot(t, norm_ds["train_loss"][0, j], color=color, label=label)
        left.plot(t, norm_ds["test_loss"][0, j], color=color, ls="--")
    left.plot(t, norm_ds["k0_descent_test_loss"][0], color="k", ls=":",
              label="K₀ kernel GD (test)")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("GD step")
    left.set_ylabel("L(t)/L(0): train solid, test dashed")
    left.legend(fontsize=7)
    alphas = ds["alpha"].values[:n_alpha]
    amount = ds["grok_amount"].values[:, :n_alpha]
    for i in range(amount.shape[0]):
        right.plot(alphas, amount[i], "o", color="grey", alpha=0.6)
    mean, std = mean_std(amount)
    right.errorbar(alphas, mean, yerr=np.nan_to_num(std), color="C3", marker="s",
                   capsize=3, label="mean ± std over seeds")
    right.set_xscale("log", base=2)
    right.set_xlabel("output scale α")
    right.set_ylabel("grok amount (GD steps)")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_phase(ds: xr.Dataset):
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    mean = ds["grok_amount"].mean("seed", skipna=False).values
    image = ax.imshow(mean, origin="lower", aspect="auto", cmap="viridis")
    ax.set_yticks(range(ds.sizes["alpha"]), [f"{a:g}" for a in ds["alpha"].values])
    ax.set_xticks(range(ds.sizes["eps"]), [f"{e:g}" for e in ds["eps"].values])
    censored = ds["censored"].mean("seed").values
    for i, j in zip(*np.nonzero(censored), strict=True):
        ax.text(j, i, f"{censored[i, j]:.0%}\nno pass", ha="center", va="center", fontsize=6,
                color="white")
    ax.set_ylabel("laziness α")
    ax.set_xlabel("kernel alignment ε")
    ax.set_title("amount of grokking (GD steps, seed mean)")
    fig.colorbar(image, ax=ax)
    return fig


def figure_modular(ds: xr.Dataset):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    t = ds["step"].values
    for i, seed in enumerate(ds["seed"].values):
        left.plot(t, ds["train_accuracy"][i], color=f"C{i}", label=f"seed {seed}: train")
        left.plot(t, ds["val_accuracy"][i], color=f"C{i}", ls="--", label="validation")
        right.plot(t, ds["train_loss"][i], color=f"C{i}")
        right.plot(t, ds["val_loss"][i], color=f"C{i}", ls="--")
    norm = left.twinx()
    norm.plot(t, ds["weight_norm"][0], color="orange", ls=":", label="weight norm (seed 0)")
    norm.set_ylabel("‖W₁‖ + ‖W₂‖ (dotted)")
    left.set_xlabel("GD step")
    left.set_ylabel("accuracy")
    left.legend(fontsize=7, loc="center right")
    right.set_yscale("log")
    right.set_xlabel("GD step")
    right.set_ylabel("MSE (train solid, validation dashed)")
    fig.tight_layout()
    return fig


@figure_set("grok.lazy-rich-toy")
def toy_figures(ds: xr.Dataset) -> dict:
    """The lazy → rich toy's learning curves, kernel decomposition and alignment."""
    return {"learning_curves": figure_toy_curves(ds), "decomposition": figure_decomposition(ds),
            "alignment": figure_alignment(ds)}


@figure_set("grok.alpha-sweep")
def alpha_sweep_figures(ds: xr.Dataset, n_alpha: int) -> dict:
    return {"alpha_sweep": figure_alpha_sweep(ds, n_alpha)}


@figure_set("grok.phase-diagram")
def phase_figures(ds: xr.Dataset) -> dict:
    return {"phase_diagram": figure_phase(ds)}


@figure_set("grok.modular-mlp")
def modular_figures(ds: xr.Dataset) -> dict:
    return {"modular_mlp": figure_modular(ds)}
