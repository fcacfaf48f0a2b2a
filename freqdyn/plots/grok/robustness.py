"""Figures of :mod:`freqdyn.grok.robustness` (each returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from freqdyn.plots.registry import figure_set

#: Colours of the training modes.
MODE_COLORS = {"standard": "C0", "perturbed": "C3", "penalty": "C2", "paper": "C1"}


def eval_axis(run) -> np.ndarray:
    return np.maximum(np.asarray(run.log.eval_steps, dtype=float), 1.0)


def accuracy_figure(by_mode: dict, name: str):
    """Fig 4 analogue: train (dashed) and validation (solid) accuracy, per mode and seed."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for mode, runs in by_mode.items():
        for i, r in enumerate(runs):
            steps = eval_axis(r.run)
            ax.plot(steps, r.run.log.evals("val_acc"), color=MODE_COLORS[mode], lw=1.2,
                    label=f"{mode}: validation" if i == 0 else None)
            ax.plot(steps, r.run.log.evals("train_acc"), color=MODE_COLORS[mode], lw=0.8,
                    ls="--", label=f"{mode}: train" if i == 0 else None)
    ax.axhline(0.95, color="0.6", lw=0.6, ls=":")
    ax.set(xscale="log", xlabel="update", ylabel="accuracy", title=f"{name}: perturbed vs standard")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def weight_norm_figure(by_mode: dict, jumps: dict):
    """Fig 1 analogue: accuracies and ‖θ‖₂ with the norm peak and the validation jump
    (``jumps``: per mode, each run's step of steepest validation-accuracy change)."""
    fig, axes = plt.subplots(1, len(by_mode), figsize=(5.2 * len(by_mode), 3.8), squeeze=False)
    for ax, (mode, runs) in zip(axes[0], by_mode.items(), strict=True):
        twin = ax.twinx()
        for i, r in enumerate(runs):
            color = f"C{i}"
            ax.plot(eval_axis(r.run), r.run.log.evals("val_acc"), color=color,
                    label=f"seed {r.run.seed}")
            ax.plot(eval_axis(r.run), r.run.log.evals("train_acc"), color=color, ls="--",
                    lw=0.8)
            norm = r.run.log.every("param_norm")
            twin.plot(np.maximum(r.run.log.steps, 1), norm, color=color, ls=":", lw=1.0)
            peak = int(np.argmax(norm))
            twin.plot(max(peak, 1), norm[peak], "s", color=color, ms=5)
            jump = jumps[mode][i]
            if jump is not None:
                ax.axvline(jump, color=color, lw=0.6, ls="-.")
        ax.set(xscale="log", xlabel="update", ylabel="accuracy (train dashed, val solid)",
               title=f"{mode}: ‖θ‖₂ dotted (peak ■), val jump dash-dot")
        twin.set_ylabel("‖θ‖₂")
        ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return fig


def information_figure(by_mode: dict):
    """Figs 8–9 analogue: PMI and PE on the training set, with validation accuracy."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key in zip(axes, ("pmi", "pe"), strict=True):
        twin = ax.twinx()
        for mode, runs in by_mode.items():
            for i, r in enumerate(runs):
                values = r.run.log.evals(key)
                finite = np.isfinite(values)
                ax.plot(eval_axis(r.run)[finite], values[finite],
                        color=MODE_COLORS[mode],
                        label=mode if i == 0 else None)
                twin.plot(eval_axis(r.run), r.run.log.evals("val_acc"),
                          color=MODE_COLORS[mode], lw=0.6, ls=":")
        ax.set(xscale="log", xlabel="update", ylabel=f"{key.upper()} (nats)",
               title=f"{key.upper()} on the training set (val acc dotted)")
        twin.set_ylabel("validation accuracy")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def robustness_figure(runs: list):
    """Fig 2 analogue: perturbation error and sharpness λ_max under standard training."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, r in enumerate(runs):
        for ax, key in zip(axes, ("perturbation_error", "sharpness"), strict=True):
            values = r.run.log.evals(key)
            finite = np.isfinite(values)
            ax.plot(eval_axis(r.run)[finite], values[finite], "o-", ms=3, color=f"C{i}",
                    label=f"seed {r.run.seed}")
            if r.run.phase_times["t2"] is not None:
                ax.axvline(max(r.run.phase_times["t2"], 1), color=f"C{i}", lw=0.6, ls=":")
    axes[0].set(xscale="log", yscale="log", xlabel="update", ylabel="E‖f(x+Δ) − f(x)‖²",
                title="perturbation error (t2 dotted)")
    axes[1].set(xscale="log", yscale="log", xlabel="update", ylabel="λ_max(∇²L_train)",
                title="sharpness")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def landscape_figure(runs: list, pcas: list):
    """The standard runs' trajectories in the plane of their two leading PCA directions
    (``pcas``: each run's :class:`freqdyn.grok.landscape.TrajectoryPCA`, or None)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for i, (r, pca) in enumerate(zip(runs, pcas, strict=True)):
        if pca is None:
            continue
        ax.plot(pca.projections[:, 0], pca.projections[:, 1], ".-", ms=3, color=f"C{i}",
                label=f"seed {r.run.seed}: PC1+2 = {100 * pca.top2_share:.1f} %")
    ax.plot(0, 0, "k*", ms=9, label="θ_T")
    ax.set(xlabel="PC 1", ylabel="PC 2", title="weight trajectory (standard training)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def abelian_figure(by_mode: dict, threshold: float):
    """Figs 5–6 analogue: abelian accuracy on the training set with train/val accuracy."""
    fig, axes = plt.subplots(1, len(by_mode), figsize=(5 * len(by_mode), 3.8), squeeze=False,
                             sharey=True)
    for ax, (mode, runs) in zip(axes[0], by_mode.items(), strict=True):
        for i, r in enumerate(runs):
            steps = eval_axis(r.run)
            ax.plot(steps, r.run.log.evals("abelian_acc"), color=f"C{i}", lw=1.4,
                    label=f"abelian, seed {r.run.seed}")
            ax.plot(steps, r.run.log.evals("train_acc"), color=f"C{i}", lw=0.7, ls="--")
            ax.plot(steps, r.run.log.evals("val_acc"), color=f"C{i}", lw=0.7, ls=":")
        ax.axhline(threshold, color="0.6", lw=0.6)
        ax.set(xscale="log", xlabel="update", title=f"{mode}: abelian test (train --, val ··)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("fraction")
    fig.tight_layout()
    return fig


def logit_distance_figure(by_mode: dict):
    """Fig 7 analogue: ‖z(a, b) − z(b, a)‖² over training, per mode."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for mode, runs in by_mode.items():
        for i, r in enumerate(runs):
            ax.plot(eval_axis(r.run), r.run.log.evals("logit_distance"),
                    color=MODE_COLORS[mode],
                    lw=1.0, label=mode if i == 0 else None)
    ax.set(xscale="log", yscale="log", xlabel="update", ylabel="mean ‖z(a,b) − z(b,a)‖²",
           title="logit-distance abelian test (training pairs)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@figure_set("grok.robustness")
def robustness_figures(by_mode: dict, name: str, jumps: dict, standard_pcas: list) -> dict:
    """Figs 1, 4, 8–9 analogues, robustness and the weight trajectory."""
    return {"accuracy": accuracy_figure(by_mode, name),
            "weight_norm": weight_norm_figure(by_mode, jumps),
            "information": information_figure(by_mode),
            "robustness": robustness_figure(by_mode["standard"]),
            "landscape": landscape_figure(by_mode["standard"], standard_pcas)}


@figure_set("grok.abelian")
def abelian_figures(by_mode: dict, threshold: float) -> dict:
    """The abelian test and the logit distance, per mode."""
    return {"abelian_test": abelian_figure(by_mode, threshold),
            "logit_distance": logit_distance_figure(by_mode)}
