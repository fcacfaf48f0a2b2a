"""``freqdyn design``: choose ρ_w so that each frequency is learned when you want it.

Wanted: a per-frequency learning-time profile T_w(ξ) on a band [−B, B] (1D), where the
learning time of a target peak ω is the first PDE time t with
|û(ω, t)| = e^{−1}|û(ω, 0)| (PDE time: the t of ∂_t û = κ²α[σ_a²(ρ_w û′)′ − ρ_w û]).

The rule ρ_w = λ/∫λ with λ = 1/T_w (docs/theory.md §11) is exact only without diffusion.  With it,
a narrow peak also spreads at the rate σ_a²ρ_w/(peak width)², and the zero-flux walls
of a compactly supported ρ_w slow the spreading of peaks near ±B.  So the design

1. builds a probe target g(x) = e^{−x²/2ℓ²} Σ_k cos(2π ω_k x) with K peaks
   ω_k = B(k + ½)/K, k = 0..K−1, of width σ_ξ = 1/(2πℓ) = B/(6K) in ξ;
2. parametrises ρ_w(ξ) ∝ exp(Σ_{j=1}^{J} c_j cos(jπξ/B)) on [−B, B] (even, smooth,
   positive; zero outside), starting from the first guess ρ_w ∝ 1/T_w;
3. computes the learning times of the probe peaks from the PDE by a conservative
   finite-difference generalised eigen-decomposition on the support (exact in time,
   lumped mass, the same natural boundary conditions as the FEM solver) and adjusts
   c by least squares on log T_k − log T_w(ω_k) (shape only: the level is set by the
   loss scale α, since every rate scales with κ²α);
4. checks the result with the package's modal (FEM) solver and writes a case file
   (``design.toml``, an ``expression`` density with ``support``) ready for
   ``freqdyn validate``, ``design.json`` and ``design.png`` (wanted, first guess,
   optimised, and a Gaussian of scale B/4 for comparison).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import sympy as sp
from scipy import optimize

from freqdyn.analysis.compare import learning_times
from freqdyn.errors import InputError
from freqdyn.inputs.symbols import axis_symbols, parse_expression
from freqdyn.predict.fd import FDModes, learning_time
from freqdyn.predict.registry import predict
from freqdyn.results import peak_ratios

#: Largest ratio of wanted learning times across the probe peaks that a design attempts.
MAX_SPREAD = 1e3
#: Cosine terms of the log-density.
TERMS = 6
#: Finite-difference nodes between consecutive peaks' centres, per half spacing.
NODES_PER_HALF_SPACING = 20


def parse_profile(text: str):
    """T_w(ξ) up to a constant: ``flat``, ``power:<p>`` (|ξ|^p) or a sympy expression in xi."""
    if text == "flat":
        return lambda xi: np.ones_like(np.asarray(xi, dtype=float))
    if text.startswith("power:"):
        try:
            p = float(text.split(":", 1)[1])
        except ValueError:
            raise InputError("--profile", f"power:<p> needs a number, got {text!r}") from None
        return lambda xi: np.abs(np.asarray(xi, dtype=float)) ** p

    try:
        expr = parse_expression(text, "xi", 1)
    except ValueError as exc:
        raise InputError("--profile", str(exc)) from None
    xi = axis_symbols("xi", 1)[0]
    fn = sp.lambdify(xi, expr, modules="numpy")
    return lambda v: np.broadcast_to(np.asarray(fn(np.asarray(v, float)), float),
                                     np.shape(v)).copy()


@dataclass
class Probe:
    """The probe target: band, peaks, window and the finite-difference grid."""

    band: float
    peaks: np.ndarray
    ell: float
    nodes: np.ndarray
    peak_index: np.ndarray

    @classmethod
    def build(cls, band: float, count: int) -> Probe:
        if not band > 0 or count < 1:
            raise InputError("band", f"needs B > 0 and at least one peak, got {band}, {count}")
        peaks = band * (np.arange(count) + 0.5) / count
        ell = 6 * count / (2 * np.pi * band)
        q = 2 * NODES_PER_HALF_SPACING
        n = 2 * count * q + 1
        nodes = np.linspace(-band, band, n)
        index = np.array([int(round((p + band) / (2 * band) * (n - 1))) for p in peaks])
        return cls(band, peaks, ell, nodes, index)

    def target_text(self) -> str:
        terms = " + ".join(f"cos(2*pi*{p:.10g}*x)" for p in self.peaks)
        return f"exp(-x**2/(2*{self.ell:.10g}**2))*({terms})"

    def initial(self) -> np.ndarray:
        """û(ξ, 0) = −ĝ(ξ) at the nodes (docs/theory.md §1, 1D)."""
        xi = self.nodes[:, None]
        s = math.sqrt(2 * np.pi) * self.ell / 2
        g = s * (np.exp(-2 * np.pi**2 * self.ell**2 * (xi - self.peaks) ** 2)
                 + np.exp(-2 * np.pi**2 * self.ell**2 * (xi + self.peaks) ** 2))
        return -g.sum(axis=1)


def density_values(coeffs: np.ndarray, xi: np.ndarray, band: float) -> np.ndarray:
    """Normalised ρ_w(ξ) ∝ exp(Σ_j c_j cos(jπξ/B)) on [−B, B] (trapezoid mass = 1)."""
    j = np.arange(1, len(coeffs) + 1)
    logr = np.cos(np.pi * np.outer(xi, j) / band) @ coeffs
    rho = np.exp(logr - logr.max())
    return rho / np.trapezoid(rho, xi)


def density_text(coeffs: np.ndarray, band: float) -> str:
    """The case-file ``expression`` density (normalised automatically by freqdyn)."""
    return "exp(" + " + ".join(f"({c:.10g})*cos({j}*pi*w/{band:.10g})"
                               for j, c in enumerate(coeffs, start=1)) + ")"


def learning_times_fd(rho: np.ndarray, probe: Probe, sigma_a: float,
                      rate_factor: float = 1.0) -> np.ndarray:
    """Learning times of the probe peaks under ∂_t û = κ²α[σ_a²(ρû′)′ − ρû] on [−B, B].

    The ``fd`` predictor's discretisation (:class:`freqdyn.predict.fd.FDModes`: conservative
    differences, zero flux at ±B, exact in time) on the probe's nodes; each peak's 1/e
    crossing by :func:`freqdyn.predict.fd.learning_time`.
    """
    modes = FDModes(probe.nodes, rate_factor * rho, rate_factor * sigma_a**2 * rho)
    u0 = probe.initial()
    rate_max = rate_factor * rho.max()
    return np.array([learning_time(modes.node_history(u0, i), abs(u0[i]), rate_max)
                     for i in probe.peak_index])


@dataclass
class Design:
    """The designed density and its achieved learning times."""

    probe: Probe
    sigma_a: float
    coeffs: np.ndarray
    first_guess: np.ndarray
    loss_scale: float
    wanted: np.ndarray  # at the peaks, at the chosen level
    achieved: np.ndarray  # finite differences, with the loss scale
    achieved_first_guess: np.ndarray
    gaussian: np.ndarray  # Gaussian ρ_w of scale B/4, same loss scale
    cost_evaluations: int


def design(profile, band: float, sigma_a: float = 0.3, peaks: int = 5,
           level: float | None = None) -> Design:
    """Optimise ρ_w on [−B, B] for the wanted learning-time profile (see module doc)."""
    if level is not None and not (math.isfinite(level) and level > 0):
        raise InputError("--time", f"must be a finite time > 0, got {level}")
    if not 1 <= peaks <= 20:
        raise InputError("--peak-count", f"must be between 1 and 20, got {peaks}")
    probe = Probe.build(band, peaks)
    xi = probe.nodes
    # ρ_w is even: the profile is read at |ξ| (ξ = 0 itself just next to it)
    with np.errstate(all="ignore"):
        dense_wanted = np.asarray(profile(np.maximum(np.abs(xi), 1e-9)), dtype=float)
        wanted_shape = np.asarray(profile(probe.peaks), dtype=float)
    if not np.all(np.isfinite(dense_wanted)) or np.any(dense_wanted <= 0):
        at = xi[np.flatnonzero(~np.isfinite(dense_wanted) | (dense_wanted <= 0))[0]]
        raise InputError("--profile", f"must be finite and > 0 on (0, B] (read at |ξ|); it "
                                      f"is {profile(np.array([abs(at)]))[0]!r} at ξ = "
                                      f"{abs(at):.3g}")
    spread = float(wanted_shape.max() / wanted_shape.min())
    if spread > MAX_SPREAD:
        raise InputError("--profile", f"asks for learning times {spread:.3g}x apart across "
                                      f"the peaks; a density on the band can realise at most "
                                      f"about {MAX_SPREAD:g}x (the rates are ρ_w itself); "
                                      "use a gentler profile or a narrower band")
    j = np.arange(1, TERMS + 1)
    basis = np.cos(np.pi * np.outer(xi, j) / band)
    # First guess ρ ∝ 1/T_w: least-squares fit of −log T_w(ξ) by the cosine basis.
    first = np.linalg.lstsq(basis, -np.log(dense_wanted) + np.log(dense_wanted).mean(),
                            rcond=None)[0]
    target = np.log(wanted_shape) - np.log(wanted_shape).mean()
    count = 0

    def residual(c):
        nonlocal count
        count += 1
        t = learning_times_fd(density_values(c, xi, band), probe, sigma_a)
        logt = np.log(np.where(np.isfinite(t), t, 1e12))
        return np.concatenate([logt - logt.mean() - target, 1e-3 * c])

    fit = optimize.least_squares(residual, first, x_scale=1.0, diff_step=1e-4, xtol=1e-10,
                                 ftol=1e-10, max_nfev=200)
    coeffs = fit.x
    base = learning_times_fd(density_values(coeffs, xi, band), probe, sigma_a)
    geo = float(np.exp(np.mean(np.log(base))))
    wanted = wanted_shape / np.exp(np.mean(np.log(wanted_shape)))
    if level is None:
        alpha = 1.0
        wanted = wanted * geo
    else:
        alpha = geo / level
        wanted = wanted * level
    gauss = np.exp(-xi**2 / (2 * (band / 4) ** 2)) / (math.sqrt(2 * np.pi) * band / 4)
    return Design(
        probe=probe, sigma_a=sigma_a, coeffs=coeffs, first_guess=first, loss_scale=alpha,
        wanted=wanted,
        achieved=base / alpha,
        achieved_first_guess=learning_times_fd(density_values(first, xi, band), probe,
                                               sigma_a, alpha),
        gaussian=_gaussian_times(probe, sigma_a, alpha, gauss),
        cost_evaluations=count,
    )


def _gaussian_times(probe: Probe, sigma_a: float, alpha: float, gauss: np.ndarray):
    """Learning times for a Gaussian ρ_w of scale B/4 on the same probe.

    The Gaussian's mass outside [−B, B] (6·10⁻⁵) is neglected: the FD domain is the band.
    """
    return learning_times_fd(gauss, probe, sigma_a, alpha)


def case_table(d: Design, name: str) -> dict:
    """The designed case as a TOML-ready dict, with report times that resolve every wanted
    learning time: 0.6 … 1.5 times each wanted time (two significant digits, so that the
    trainer hits each with a whole number of steps), and twice the longest."""
    fractions = (0.6, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5)
    times = {0.0, float(f"{2 * float(np.max(d.wanted)):.2g}")}
    for wanted in d.wanted:
        times |= {float(f"{f * float(wanted):.2g}") for f in fractions}
    times = sorted(times)
    band = d.probe.band
    return {
        "name": name,
        "description": f"designed rho_w on [-{band:g}, {band:g}] for a wanted learning-time "
                       f"profile ({len(d.probe.peaks)} probe peaks)",
        "network": {"dim": 1, "sigma_a": d.sigma_a, "loss_scale": float(d.loss_scale),
                    "rho_w": {"family": "expression",
                              "density": density_text(d.coeffs, band),
                              "support": [-band, band]}},
        "target": {"g": d.probe.target_text(),
                   "peaks": [float(p) for p in d.probe.peaks]},
        "frequency": {"bounds": [-(band + 1.0), band + 1.0], "times": times,
                      "points": int(2 * 40 * (band + 1.0) + 1)},
    }


def report(d: Design, modal=None) -> dict:
    """Numbers of a design: wanted, achieved and the deviations."""
    def dev(t):
        t = np.asarray(t, float)
        return float(np.max(np.abs(t / d.wanted - 1)))

    def miss(t):
        t = np.asarray(t, float)
        return float(np.max(np.maximum(t / d.wanted, d.wanted / t)))

    out = {"peaks": d.probe.peaks, "wanted": d.wanted, "loss_scale": d.loss_scale,
           "sigma_a": d.sigma_a, "band": d.probe.band, "coefficients": d.coeffs,
           "density": density_text(d.coeffs, d.probe.band),
           "achieved_fd": d.achieved, "max_rel_dev_fd": dev(d.achieved),
           "achieved_first_guess": d.achieved_first_guess,
           "max_rel_dev_first_guess": dev(d.achieved_first_guess),
           "gaussian": d.gaussian, "gaussian_miss_factor": miss(d.gaussian),
           "evaluations": d.cost_evaluations}
    if modal is not None:
        out["achieved_modal"] = modal
        out["max_rel_dev_modal"] = dev(modal)
    return out


def modal_learning_times(case) -> np.ndarray:
    """Learning times of the case's peaks from the modal (FEM) solver on 121 times."""


    dense = np.linspace(0.0, float(case.times[-1]), 121)
    ds = predict(replace(case, times=dense), "modal")
    return learning_times(dense, peak_ratios(ds, case.peaks))
