"""A study's figures: heatmaps, per-peak decays, loss against Parseval, error against width."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from freqdyn.analysis import compare

if TYPE_CHECKING:
    from freqdyn.runs.study import Arm, Study


def _log10_abs(values: np.ndarray) -> np.ndarray:
    mag = np.abs(values)
    return np.log10(np.maximum(mag, mag.max() * 1e-12 + 1e-300))


def heatmap_figure(pred, runs, title: str):
    """log10|û| predicted | measured (seed mean) | difference log10|û_net| − log10|û_pred|.

    1D: ξ across, PDE time t up.  2D/3D: one row per reported time t > 0 (3D: ξ2 = 0).
    """
    import matplotlib.pyplot as plt

    from freqdyn.results import u_hat

    meas = compare.mean_dataset(runs)
    up = compare.on_grid(pred, meas).values
    um = u_hat(meas).values
    names = compare.xi_names(meas)
    lp, lm = _log10_abs(up), _log10_abs(um)
    vmax = float(max(lp.max(), lm.max()))
    times = meas["time"].values
    labels = (f"predicted ({pred.attrs.get('method')})", f"measured (mean of {len(runs)})",
              "log10|û_net| − log10|û_pred|")
    if len(names) == 1:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), sharey=True)
        xi = meas[names[0]].values
        for ax, field, label in zip(axes, (lp, lm, lm - lp), labels, strict=True):
            diff = label.startswith("log10|û_net|")
            mesh = ax.pcolormesh(xi, times, field, shading="nearest",
                                 cmap="RdBu_r" if diff else "magma",
                                 vmin=-1 if diff else vmax - 8, vmax=1 if diff else vmax)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("ξ (cycles per unit x)")
            fig.colorbar(mesh, ax=ax)
        axes[0].set_ylabel("PDE time t")
    else:
        rows = [i for i, t in enumerate(times) if t > 0][:3] or [0]
        fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.4 * len(rows)), squeeze=False)
        x0, x1 = meas[names[0]].values, meas[names[1]].values
        for r, i in enumerate(rows):
            panels = [lp[i], lm[i], lm[i] - lp[i]]
            for c, (field, label) in enumerate(zip(panels, labels, strict=True)):
                if len(names) == 3:
                    field = field[:, :, field.shape[2] // 2]
                diff = c == 2
                mesh = axes[r, c].pcolormesh(x0, x1, field.T, shading="nearest",
                                             cmap="RdBu_r" if diff else "magma",
                                             vmin=-1 if diff else vmax - 8,
                                             vmax=1 if diff else vmax)
                axes[r, c].set_title(f"{label}, t = {times[i]:g}", fontsize=8)
                axes[r, c].set_aspect("equal")
                fig.colorbar(mesh, ax=axes[r, c])
    fig.suptitle(title)
    return fig


def peaks_figure(study: Study, data: dict, reports: dict):
    """Per-peak |û(ω_k, t)|/|û(ω_k, 0)|: theory lines, network markers with ±1 std bands."""
    import matplotlib.pyplot as plt

    n = len(data)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4), squeeze=False)
    for ax, (name, (arm, preds, _)) in zip(axes[0], data.items(), strict=True):
        rep = reports[name]
        times = np.asarray(rep["times"])
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        styles = ["-", "--", ":", "-."]
        for k, peak in enumerate(arm.case.peaks):
            color = colors[k % len(colors)]
            label = "ω = " + ", ".join(f"{c:.3g}" for c in peak)
            for j, method in enumerate(preds):
                r = np.asarray(rep["predictions"][method]["peak_ratios"])[k]
                ax.semilogy(times, np.maximum(r, 1e-12), styles[j % 4], color=color,
                            label=f"{label} {method}")
            net = compare.largest_width(rep)
            if net is not None:
                mean = np.asarray(net["peak_ratios_net"]["mean"])[k]
                std = np.asarray(net["peak_ratios_net"]["std"])[k]
                ax.semilogy(times, np.maximum(mean, 1e-12), "o", color=color, mfc="none",
                            label=f"{label} net")
                ax.fill_between(times, np.maximum(mean - std, 1e-12), mean + std,
                                color=color, alpha=0.2)
        ax.axhline(compare.LEARNED, color="grey", lw=0.6, ls=":")
        ax.set_title(f"{arm.case.name}", fontsize=9)
        ax.set_xlabel("PDE time t")
        ax.set_ylabel("|û(ω_k, t)| / |û(ω_k, 0)|")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(f"{study.name}: per-peak decay (lines: theory, markers: networks, "
                 f"m = {max(study.widths) if study.widths else '-'})")
    return fig


def loss_figure(arm: Arm, pred, runs):
    """Measured loss L(τ) of each seed against the Parseval prediction (α/2V)∫|û_pred|²dξ."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    volume = float(runs[0].attrs["box_volume"])
    for i, run in enumerate(runs):
        ax.semilogy(run["loss_time"].values, run["loss"].values, color="C0", lw=1,
                    alpha=0.7, label="measured loss" if i == 0 else None)
    if pred is not None:
        ax.semilogy(pred["time"].values,
                    compare.parseval_loss(pred, arm.case.loss_scale, volume), "ks",
                    mfc="none", label=f"(α/2V)∫|û|²dξ, {pred.attrs.get('method')}")
    ax.set_xlabel("PDE time t")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{arm.case.name}: loss and its Parseval prediction", fontsize=9)
    return fig


def width_figure(study: Study, reports: dict):
    """max_{t>0} error of the pde prediction vs networks against m, log–log, fitted slope."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, rep in reports.items():
        later = np.asarray(rep["times"]) > 0
        widths = sorted(int(w) for w in rep["widths"])
        key = f"rel_l2_{study.pde}_vs_net"
        errs = np.array([np.max(np.asarray(rep["widths"][str(w)][key]["mean"])[later])
                         for w in widths])
        stds = np.array([np.asarray(rep["widths"][str(w)][key]["std"])[later][
            np.argmax(np.asarray(rep["widths"][str(w)][key]["mean"])[later])] for w in widths])
        slope, c = compare.fit_loglog_slope(widths, errs)
        ax.errorbar(widths, errs, yerr=stds, fmt="o", capsize=3, label=f"{name}")
        ax.loglog(widths, np.exp(c) * np.asarray(widths, float) ** slope, "-",
                  label=f"fit: m^{slope:.2f}")
    ref = np.asarray(widths, float)
    ax.loglog(ref, errs[0] * (ref / ref[0]) ** -0.5, "k:", label="m^-0.5")
    ax.set_xlabel("width m")
    ax.set_ylabel(f"max over t > 0 of rel. L²(ξ) error, {study.pde} vs net")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
