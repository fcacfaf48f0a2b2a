"""Figures of :mod:`freqdyn.grok.progress` (each returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from freqdyn.plots.grok.algorithmic import curves_figure
from freqdyn.plots.registry import figure_set


@figure_set("grok.progress")
def progress_figures(measures, title: str) -> dict:
    """Curves with t1–t4, embedding Fourier norms, and the restricted/excluded losses."""
    figures = {"curves": curves_figure([m.run for m in measures], title)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    first = measures[0]
    k = np.arange(first.norms.shape[1])
    axes[0].bar(k, first.norms[-1], color=["C3" if j in first.keys else "C0" for j in k])
    axes[0].set(xlabel="frequency k", ylabel="Fourier norm n_k",
                title=f"final embedding, seed {first.run.seed}: keys {first.keys} carry "
                      f"{100 * first.key_share_final:.1f} % of Σn²")
    image = axes[1].imshow((first.norms / np.linalg.norm(first.norms, axis=1, keepdims=True)).T,
                           aspect="auto", origin="lower", cmap="viridis",
                           extent=(first.steps[0], first.steps[-1], -0.5, k[-1] + 0.5))
    axes[1].set(xlabel="update", ylabel="frequency k", title="n_k / ‖n‖ over training")
    fig.colorbar(image, ax=axes[1])
    fig.tight_layout()
    figures["fourier_norms"] = fig
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for i, m in enumerate(measures):
        color = f"C{i}"
        steps = np.maximum(m.steps, 1)
        axes[0].plot(steps, m.restricted_loss, color=color, label=f"restricted, seed {m.run.seed}")
        axes[0].plot(steps, m.excluded_loss, color=color, ls="-.")
        axes[0].plot(steps, m.test_loss, color=color, ls="--")
        eval_steps = np.maximum(np.asarray(m.run.log.eval_steps), 1)
        axes[1].plot(eval_steps, m.run.log.evals("gini_embedding"), color=color)
        axes[1].plot(eval_steps, m.run.log.evals("gini_output"), color=color, ls="--")
    axes[0].set(xscale="log", yscale="log", xlabel="update", ylabel="cross-entropy (nats)",
                title="restricted (solid), excluded (dash-dot), test (dashed)")
    axes[0].legend(fontsize=8)
    axes[1].set(xscale="log", xlabel="update", ylabel="Gini coefficient",
                title="Gini of Fourier norms: embedding (solid), output map (dashed)")
    fig.tight_layout()
    figures["progress_measures"] = fig
    return figures
