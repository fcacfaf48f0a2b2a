"""Figures of :mod:`freqdyn.grok.algorithmic` (each returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from freqdyn.plots.registry import figure_set


def mark_phases(ax, times: dict, color) -> None:
    """Dotted vertical lines at the phase times that were reached (step 0 drawn at 1, for
    logarithmic step axes)."""
    for step in times.values():
        if step is not None:
            ax.axvline(max(step, 1), color=color, lw=0.8, ls=":")


def curves_figure(runs, title: str):
    """Accuracy and loss (train solid, validation dashed) with t1–t4, and ‖θ‖₂, per seed."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for i, run in enumerate(runs):
        color = f"C{i}"
        steps = np.maximum(np.asarray(run.log.eval_steps), 1)
        axes[0].plot(steps, run.log.evals("train_acc"), color=color, label=f"seed {run.seed}")
        axes[0].plot(steps, run.log.evals("val_acc"), color=color, ls="--")
        axes[1].plot(steps, run.log.evals("train_loss"), color=color)
        axes[1].plot(steps, run.log.evals("val_loss"), color=color, ls="--")
        axes[2].plot(np.maximum(run.log.steps, 1), run.log.every("param_norm"), color=color)
        for ax in axes[:2]:
            mark_phases(ax, run.phase_times, color)
    axes[0].set(xscale="log", xlabel="update", ylabel="accuracy",
                title="train (solid), validation (dashed); t1–t4 dotted")
    axes[1].set(xscale="log", yscale="log", xlabel="update", ylabel="cross-entropy (nats)")
    axes[2].set(xscale="log", xlabel="update", ylabel="‖θ‖₂", title="weight norm")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@figure_set("grok.curves")
def curves_figures(runs, title: str) -> dict:
    """The curves of modular runs (:class:`freqdyn.grok.algorithmic.ModularRun`)."""
    return {"curves": curves_figure(runs, title)}
