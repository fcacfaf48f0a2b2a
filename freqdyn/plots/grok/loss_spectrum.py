"""Figures of :mod:`freqdyn.grok.loss_spectrum` (each returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from freqdyn.plots.registry import figure_set


@figure_set("grok.loss-spectrum-grid")
def grid_figures(ds, signature: dict, examples: dict) -> dict:
    """Fig 2-style heat maps, the Fig 8-right scatter, loss curves and their spectra of the
    ``examples`` (name → grid index: a grokking and a non-grokking run)."""

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
