"""A design: wanted, first-guess, designed (and measured) learning times; the densities."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from freqdyn.analysis.design import density_values

if TYPE_CHECKING:
    from freqdyn.analysis.design import Design


def design_figure(d: Design, modal=None, measured=None, title: str = ""):
    """Wanted vs PDE-predicted (vs net-measured) learning time per peak frequency."""

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    w = d.probe.peaks
    ax0.semilogy(w, d.wanted, "k-", lw=2, label="wanted")
    ax0.semilogy(w, d.achieved_first_guess, "C1^--", label="first guess ρ ∝ 1/T (PDE)")
    ax0.semilogy(w, d.achieved, "C0o-", label="designed (PDE, finite differences)")
    if modal is not None:
        ax0.semilogy(w, modal, "C0x", ms=9, label="designed (PDE, modal FEM solver)")
    if measured is not None:
        ax0.semilogy(w, measured, "C3s", mfc="none", ms=9, label="designed (trained nets)")
    finite = np.where(np.isfinite(d.gaussian), d.gaussian, np.nan)
    ax0.semilogy(w, finite, "C2v:", label="Gaussian s = B/4 (PDE)")
    ax0.set_xlabel("peak frequency ω (cycles per unit x)")
    ax0.set_ylabel("learning time (|û(ω)| to 1/e), PDE time")
    ax0.grid(True, which="both", alpha=0.3)
    ax0.legend(fontsize=7)
    xi = d.probe.nodes
    ax1.plot(xi, density_values(d.coeffs, xi, d.probe.band), "C0", label="designed ρ_w")
    ax1.plot(xi, density_values(d.first_guess, xi, d.probe.band), "C1--",
             label="first guess")
    b = d.probe.band / 4
    ax1.plot(xi, np.exp(-xi**2 / (2 * b**2)) / (math.sqrt(2 * np.pi) * b), "C2:",
             label="Gaussian s = B/4")
    ax1.set_xlabel("ξ")
    ax1.set_ylabel("ρ_w(ξ)")
    ax1.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def scale_figure(scale_design, title: str | None = None, measured: dict | None = None
                 ) -> plt.Figure:
    """Predicted test and train MSE against the ρ_w scale, the chosen scale marked; with
    ``measured`` the networks' test MSE (mean ± std over seeds) on the same axes."""
    sd = scale_design
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    at = "" if sd.width is None else f", m = {sd.width}"
    ax.plot(sd.scales, sd.test_mse, "o-", ms=3, label=f"test MSE (theory{at})")
    if sd.test_mse_std is not None:
        ax.fill_between(sd.scales, np.maximum(sd.test_mse - sd.test_mse_std, 1e-300),
                        sd.test_mse + sd.test_mse_std, color="C0", alpha=0.2,
                        label=f"± spread over {sd.draws} draws")
    ax.plot(sd.scales, sd.train_mse, "s--", ms=3, label=f"train MSE (theory{at})")
    if measured is not None:
        ax.errorbar(sd.scales, measured["test_mse_mean"], yerr=measured["test_mse_std"],
                    fmt="x", color="C3", capsize=2,
                    label=f"test MSE (networks, m = {measured['width']})")
    ax.axvline(sd.scale, color="k", lw=0.8, label=f"chosen {sd.key} = {sd.scale:.3g}")
    ax.set(xscale="log", yscale="log", xlabel=f"rho_w {sd.key} ({sd.family})",
           ylabel=f"mean squared error at t = {sd.time:g}")
    ax.legend(fontsize=8)
    ax.set_title(title or "predicted error against the frequency scale", fontsize=10)
    return fig
