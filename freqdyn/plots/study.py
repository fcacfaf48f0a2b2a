"""A study's figures: heatmaps, per-peak decays, loss against Parseval, error against width.

* ``heatmaps-<arm>.png``: log10|û(ξ, t)| predicted | measured (seed mean) | their
  difference, the difference shown only where |û| is above 10⁻³ of its maximum (out of
  band both are round-off and finite-width noise, and their ratio says nothing).
* ``peaks.png``: per target peak (one colour each) |û(ω_k, t)|/|û(ω_k, 0)|: the pde
  prediction solid, the other predictions dashed and dotted, networks as markers with a
  ±1 std band over seeds; the dotted grey line is 1/e, the learning-time threshold.
* ``loss-<arm>.png``: the measured loss and its Parseval prediction (α/2V)∫|û_pred|²dξ.
* ``width.png`` (several widths): the error against m on log–log axes, fitted slope.

The figures read data only: ``plan`` is any object with a study plan's ``name``, ``pde``,
``predictions`` and ``widths`` (the runner passes :class:`freqdyn.runs.study.StudyPlan`),
``arm`` one with an arm's fields; this module imports nothing from the layers above it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from freqdyn.analysis import compare
from freqdyn.plots.dynamics import time_rows
from freqdyn.plots.registry import figure_set
from freqdyn.results import u_hat

#: Below this fraction of the largest |û| the difference panel is left blank.
DIFFERENCE_FLOOR = 1e-3


def _log10_abs(values: np.ndarray) -> np.ndarray:
    mag = np.abs(values)
    with np.errstate(invalid="ignore"):  # NaN (an excluded ball) stays NaN: left blank
        return np.log10(np.maximum(mag, np.nanmax(mag) * 1e-12 + 1e-300))


def heatmap_figure(pred, runs, title: str):
    """log10|û| predicted | measured (seed mean) | log10|û_net| − log10|û_pred|.

    1D: ξ across, PDE time t up (each report at its time).  2D/3D: one row per reported
    time t > 0 (at most three; 3D: the slice ξ2 = 0).
    """


    meas = compare.mean_dataset(runs)
    up = compare.on_grid(pred, meas).values
    um = u_hat(meas).values
    kept = compare.kept_frequencies(pred, meas)
    if kept is not None:  # the LFP's excluded ball |ξ| < ε: blank in all three panels
        up, um = np.where(kept, up, np.nan), np.where(kept, um, np.nan)
    names = compare.xi_names(meas)
    lp, lm = _log10_abs(up), _log10_abs(um)
    floor = np.log10(DIFFERENCE_FLOOR * max(np.nanmax(np.abs(up)), np.nanmax(np.abs(um))))
    with np.errstate(invalid="ignore"):
        diff = np.where(np.maximum(lp, lm) > floor, lm - lp, np.nan)
    vmax = float(max(np.nanmax(lp), np.nanmax(lm)))
    times = meas["time"].values
    labels = (f"predicted ({pred.attrs.get('method')})", f"measured (mean of {len(runs)})",
              "log10|û_net| − log10|û_pred| (where |û| > 1e-3 max)")
    styles = [{"cmap": "magma", "vmin": vmax - 8, "vmax": vmax}] * 2 + \
        [{"cmap": "RdBu_r", "vmin": -1, "vmax": 1}]
    if len(names) == 1:
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.9), sharey=True, layout="constrained")
        xi = meas[names[0]].values
        for ax, field, label, style in zip(axes, (lp, lm, diff), labels, styles, strict=True):
            mesh = time_rows(ax, xi, times, field, **style)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("ξ (cycles per unit x)")
            fig.colorbar(mesh, ax=ax, pad=0.01)
        axes[0].set_ylabel("PDE time t")
    else:
        rows = [i for i, t in enumerate(times) if t > 0][:3] or [0]
        fig, axes = plt.subplots(len(rows), 3, figsize=(12.5, 3.5 * len(rows)), squeeze=False,
                                 layout="constrained")
        x0, x1 = meas[names[0]].values, meas[names[1]].values
        for r, i in enumerate(rows):
            for c, (field, label, style) in enumerate(zip((lp[i], lm[i], diff[i]), labels,
                                                          styles, strict=True)):
                if len(names) == 3:
                    field = field[:, :, field.shape[2] // 2]
                mesh = axes[r, c].pcolormesh(x0, x1, field.T, shading="nearest", **style)
                axes[r, c].set_title(f"{label}, t = {times[i]:g}", fontsize=8)
                axes[r, c].set_aspect("equal")
                fig.colorbar(mesh, ax=axes[r, c], pad=0.01)
    fig.suptitle(title)
    return fig


def _method_order(plan) -> list[str]:
    """The pde prediction first (drawn solid), then the others in file order."""
    rest = [m for m in plan.predictions if m != plan.pde]
    return ([plan.pde] if plan.pde else []) + rest


def peaks_figure(plan, data: dict, reports: dict, bands: dict | None = None):
    """Per-peak decay: pde solid, other predictions dashed/dotted, networks as circles with
    their ± 1 std, their linearised twins as crosses, and the predicted finite-width spread
    (pde ± 1 predicted std, docs/theory.md §12) as a hatched band.

    ``bands`` (optional) maps an arm name to (lower, upper) ratio curves (peaks, times)
    that replace the predicted band.
    """

    n = len(data)
    fig, axes = plt.subplots(1, n, figsize=(5.6 * n, 4.4), squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    line_styles = ["-", "--", ":", "-."]
    methods = _method_order(plan)
    for ax, (name, (arm, _, _)) in zip(axes[0], data.items(), strict=True):
        rep = reports[name]
        times = np.asarray(rep["times"])
        net = compare.largest_width(rep)
        band = (bands or {}).get(name) or _predicted_band(rep, plan.pde)
        for k, _peak in enumerate(arm.case.peaks):
            color = colors[k % len(colors)]
            for j, method in enumerate(methods):
                r = np.asarray(rep["predictions"][method]["peak_ratios"])[k]
                ax.semilogy(times, np.maximum(r, 1e-12), line_styles[j % 4], color=color)
            if net is not None:
                mean = np.asarray(net["peak_ratios_net"]["mean"])[k]
                std = np.nan_to_num(np.asarray(net["peak_ratios_net"]["std"], float)[k])
                ax.semilogy(times, np.maximum(mean, 1e-12), "o", color=color, mfc="none")
                ax.fill_between(times, np.maximum(mean - std, 1e-12), mean + std,
                                color=color, alpha=0.2, lw=0)
                if "peak_ratios_twin" in net:
                    twin = np.asarray(net["peak_ratios_twin"])[k]
                    ax.semilogy(times, np.maximum(twin, 1e-12), "x", color=color, ms=5)
            if band is not None:
                lo, hi = band
                ax.fill_between(times, np.maximum(lo[k], 1e-12), hi[k], facecolor="none",
                                edgecolor=color, hatch="///", lw=0)
        ax.axhline(compare.LEARNED, color="grey", lw=0.8, ls=":")
        ax.text(times[-1], compare.LEARNED, " 1/e: learned", color="grey", fontsize=7,
                va="bottom", ha="right")
        ax.set_title(arm.case.name, fontsize=9)
        ax.set_xlabel("PDE time t")
        ax.set_ylabel("|û(ω_k, t)| / |û(ω_k, 0)|")
        ax.grid(True, which="both", alpha=0.3)
        peak_handles = [Line2D([], [], color=colors[k % len(colors)], lw=3,
                               label="ω = " + ", ".join(f"{c:.3g}" for c in peak))
                        for k, peak in enumerate(arm.case.peaks)]
        style_handles = [Line2D([], [], color="k", ls=line_styles[j % 4],
                                label=f"{m} (pde)" if m == plan.pde else m)
                         for j, m in enumerate(methods)]
        if net is not None:
            style_handles.append(Line2D([], [], color="k", marker="o", mfc="none", ls="none",
                                        label="networks ± 1 std"))
            if "peak_ratios_twin" in net:
                style_handles.append(Line2D([], [], color="k", marker="x", ls="none",
                                            label="linearised twins"))
        if band is not None:
            from matplotlib.patches import Patch

            style_handles.append(Patch(facecolor="none", edgecolor="k", hatch="///",
                                       label="predicted spread (± 1 std)"))
        first = ax.legend(handles=peak_handles, fontsize=7, loc="lower left", title="peak",
                          title_fontsize=7)
        ax.add_artist(first)
        ax.legend(handles=style_handles, fontsize=7, loc="lower center")
    fig.suptitle(f"{plan.name}: per-peak decay (lines: theory, markers: networks, "
                 f"m = {max(plan.widths) if plan.widths else '-'})")
    return fig


def _predicted_band(rep: dict, pde: str | None):
    """pde ratio ± the predicted std of the peak ratios at the largest width, or None."""
    fw = rep.get("finite_width") or {}
    std = fw.get("predicted_peak_ratio_std")
    if std is None or pde is None:
        return None
    ratio = np.asarray(rep["predictions"][pde]["peak_ratios"], float)
    std = np.nan_to_num(np.asarray(std, float))
    return ratio - std, ratio + std


def loss_figure(arm, pred, runs):
    """Measured loss L(τ) of each seed against the Parseval prediction (α/2V)∫|û_pred|²dξ."""

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
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


def width_figure(plan, reports: dict):
    """max_{t>0} error of the pde prediction vs networks against m, log–log, fitted slope;
    with one arm also its common and per-network parts and the twin-vs-net (beyond-linear)
    difference, against m^-1."""

    fig, ax = plt.subplots(figsize=(5.8, 4.2), layout="constrained")
    key = f"rel_l2_{plan.pde}_vs_net"
    for name, rep in reports.items():
        later = np.asarray(rep["times"]) > 0
        widths = sorted(int(w) for w in rep["widths"])
        means = [np.asarray(rep["widths"][str(w)][key]["mean"])[later] for w in widths]
        stds = [np.nan_to_num(np.asarray(rep["widths"][str(w)][key]["std"], float))[later]
                for w in widths]
        errs = np.array([m.max() for m in means])
        bars = np.array([s[np.argmax(m)] for m, s in zip(means, stds, strict=True)])
        slope, c = compare.fit_loglog_slope(widths, errs)
        ax.errorbar(widths, errs, yerr=bars, fmt="o", capsize=3, label=name)
        ax.loglog(widths, np.exp(c) * np.asarray(widths, float) ** slope, "-",
                  label=f"fit: m^{slope:.2f}")
        ref = np.asarray(widths, float)
        ax.loglog(ref, errs[0] * (ref / ref[0]) ** -0.5, "k:", label="m^-0.5")
        entries = [rep["widths"][str(w)] for w in widths]
        split = f"error_split_{plan.pde}"
        if len(reports) == 1 and all(split in e for e in entries):
            # the parts at each width's time of largest error (0: below the seeds' noise)
            at = [int(np.flatnonzero(later)[np.argmax(m)]) for m in means]
            for part, style in (("per_network", "v--"), ("common", "^--")):
                vals = np.array([np.asarray(e[split][part])[i]
                                 for e, i in zip(entries, at, strict=True)])
                shown = vals > 0
                ax.loglog(ref[shown], vals[shown], style, ms=4, lw=0.8,
                          label=f"{part.replace('_', '-')} part")
        if len(reports) == 1 and all("rel_l2_twin_vs_net" in e for e in entries):
            twin = [np.max(np.asarray(e["rel_l2_twin_vs_net"]["mean"])[later]) for e in entries]
            ax.loglog(ref, twin, "s:", ms=3, lw=0.8, color="0.4", label="twin vs net")
            ax.loglog(ref, twin[0] * (ref / ref[0]) ** -1.0, "-", lw=0.6, color="0.7",
                      label="m^-1")
    ax.set_xlabel("width m")
    ax.set_ylabel(f"max over t > 0 of rel. L²(ξ) error, {plan.pde} vs net")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


@figure_set("study")
def study_figures(plan, data: dict, reports: dict, bands=None) -> dict:
    """Every figure of a study, by file name (without .png)."""
    figures = {}
    for name, (arm, preds, runs_by_width) in data.items():
        pred = preds.get(plan.pde) if plan.pde else None
        if runs_by_width:
            largest = max(runs_by_width)
            runs = runs_by_width[largest]
            if pred is not None:
                figures[f"heatmaps-{name}"] = heatmap_figure(
                    pred, runs, f"{arm.case.name}: log10|û(ξ, t)|, m = {largest}")
            figures[f"loss-{name}"] = loss_figure(arm, pred, runs)
    figures["peaks"] = peaks_figure(plan, data, reports, bands)
    if plan.pde and len(plan.widths) > 1:
        figures["width"] = width_figure(plan, reports)
    return figures
