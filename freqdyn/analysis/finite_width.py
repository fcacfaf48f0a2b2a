"""Finite width: the predicted spread of a width-m network around the PDE (docs/theory.md §12).

A width-m network's empirical NTK on its N training samples is a Monte-Carlo average
over its m independent units, A_m = (1/m) Σ_j A_{u_j} with E[A_u] = A, the
infinite-width operator of the error flow in PDE time (A = V (α/N) Θ(X, X), V = (2R)^d):

    ∂_t r = −A_m r,    r(0) = −g(X).

To first order in δA = A_m − A the error is r = r_∞ + δr with

    δr(t) = −∫_0^t e^{−A(t−s)} δA e^{−As} r(0) ds = (1/m) Σ_j ρ_{u_j}(t),

a sum of i.i.d. zero-mean *unit responses* ρ_u (each a solve of the flow with the source
−(A_u − A) r_∞(s)).  In the eigenbasis A = Q Λ Qᵀ, with ũ₀ = Qᵀ r(0) and the unit's
features φ_p (A_u = Σ_p φ_p φ_pᵀ: the gradients of f with respect to a, b and w of one
unit, :mod:`freqdyn.nets.fourier`) in modal coordinates φ̃_p = Qᵀ φ_p,

    ρ̃_u(t)_k = −Σ_p φ̃_{p,k} Σ_i Φ_{ki}(t) φ̃_{p,i} ũ₀_i + t λ_k e^{−λ_k t} ũ₀_k,
    Φ_{ki}(t) = ∫_0^t e^{−λ_k (t−s)} e^{−λ_i s} ds = (e^{−λ_i t} − e^{−λ_k t})/(λ_k − λ_i),

(t e^{−λt} on the diagonal).  The network's error transform is measured as the networks'
are (the Riemann sum over the samples, weight V/N), so δû(t) = (1/m) Σ_j S_{u_j}(t): by the
central limit theorem a Gaussian field with covariance C(t) = Cov_u[S_u(t)]/m, estimated
from U unit draws.  With the systematic part b(t) = û_∞(t) − û_pde(t) (sampling and box),
the network's distance to the PDE, e = ‖b + δû‖, has (in the real vector space of û)

    E e² = ‖b‖² + tr C,    Var e² = 4 bᵀCb + 2 tr C²,

so its predicted mean is √(E e²) and its spread (standard deviation over draws of the m
units) √(Var e²)/(2√(E e²)), both divided by ‖û_∞(t)‖ as the measured rel L²(ξ) error is.
Without b the spread is √(tr C²/(2 tr C))/‖û_∞‖ ∝ m^{−1/2}.  At the target peaks the
predicted standard deviation of |û(ω_k, t)|/|û(ω_k, 0)| is that of the projection of δû on
the direction of û_∞(ω_k, t).

Dense in N (one symmetric eigendecomposition), so for at most :data:`MAX_SAMPLES` training
samples on the cell-centred grid.  Beyond linear (the motion of the kernel, O(1/m)) and
gradient descent's steps (the flow is used) are left out; the linearised twin of each
network (:mod:`freqdyn.nets.twin`) measures the first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from freqdyn.analysis.stats import mean_std
from freqdyn.errors import InputError
from freqdyn.inputs.fourier import relative_l2, riemann_transform
from freqdyn.nets import transforms as tf
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.nets.measure import error_transform_of_values, measurement_axis
from freqdyn.nets.passes import sample_layout
from freqdyn.nets.settings import train_settings
from freqdyn.nets.setup import build_model, independent_units, training_samples
from freqdyn.nets.twin import exact_linear_flow
from freqdyn.results import frequency_dataset, peak_ratios
from freqdyn.theory.ntk import FourierFeatureKernel

#: Largest number of training samples the dense prediction takes.
MAX_SAMPLES = 4000
#: Unit draws of the Monte-Carlo covariance (by input dimension).
DEFAULT_UNITS = {1: 4000, 2: 1000}


@dataclass(frozen=True)
class SpreadPrediction:
    """The predicted finite-width statistics of a network's error, per time."""

    times: np.ndarray
    independent_units: int  # m (f0 centred or random) or m/2 (doubled)
    mean_error: np.ndarray  # predicted E of rel L²(ξ) error network vs pde
    spread: np.ndarray  # predicted std over draws of that error
    peak_ratio_std: np.ndarray  # (peaks, times): std of |û(ω_k,t)|/|û(ω_k,0)|
    systematic: np.ndarray  # ‖b‖/‖û_∞‖: infinite width on the samples vs pde
    effective_rank: np.ndarray  # (tr C)²/tr C²
    estimate_error: np.ndarray  # relative Monte-Carlo error of tr C (U unit draws)
    unit_draws: int

    def record(self) -> dict:
        return {
            "times": self.times, "independent_units": self.independent_units,
            "predicted_mean_error": self.mean_error, "predicted_spread": self.spread,
            "predicted_peak_ratio_std": self.peak_ratio_std,
            "systematic": self.systematic, "effective_rank": self.effective_rank,
            "estimate_relative_error": self.estimate_error, "unit_draws": self.unit_draws,
        }


def divided_differences(lam: np.ndarray, t: float) -> np.ndarray:
    """Φ_{ki}(t) = ∫_0^t e^{−λ_k(t−s)} e^{−λ_i s} ds for λ ≥ 0, shape (N, N), stably."""
    lk, li = lam[:, None], lam[None, :]
    diff = lk - li
    mean = 0.5 * (lk + li)
    z = 0.5 * diff * t
    small = np.abs(z) < 1e-3
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # (e^{−λ_i t} − e^{−λ_k t})/(λ_k − λ_i) = t e^{−λ̄t} sinh(z)/z
        general = (np.exp(-li * t) - np.exp(-lk * t)) / np.where(small, 1.0, diff)
    series = t * np.exp(-mean * t) * (1 + z**2 / 6)
    return np.where(small, series, general)


def unit_features(x: np.ndarray, w: np.ndarray, a: np.ndarray, b: np.ndarray, kappa: float,
                  train_w: bool) -> list[np.ndarray]:
    """Per unit, ∂f/∂(a, b, w) of one unit of f = κ Σ [a cos(2πw·x) + b sin(2πw·x)]:
    the features φ_p (N, U) with Θ_u(x, x') = Σ_p φ_p(x) φ_p(x') (so E_u Θ_u = Θ)."""
    phase = 2 * np.pi * (x @ w.T)
    cos, sin = np.cos(phase), np.sin(phase)
    feats = [kappa * cos, kappa * sin]
    if train_w:
        psi = b[None, :] * cos - a[None, :] * sin  # ∂/∂w of (a cos + b sin) over 2πx
        feats += [kappa * 2 * np.pi * x[:, [k]] * psi for k in range(x.shape[1])]
    return feats


def kernel_draws(case, overrides: dict | None = None, times=None, reference=None,
                 draws: int = 16, seed: int = 10_000, rtol: float = 1e-8) -> dict:
    """The linearised network's error over ``draws`` random draws of its m units.

    Per draw, the exact flow of the draw's empirical operator A_m = V (α/N) J₀J₀ᵀ on the
    training samples, r(t) = e^{−A_m t} r(0) (Lanczos; each product two fast transforms),
    and the function it implies on the measurement grid, f(x*) = f₀(x*) −
    V(α/N) J₀(x*) J₀ᵀ ∫₀ᵗ r ds, measured exactly as a trained network is.  No network is
    trained.  Returns per draw and time the rel L²(ξ) error against ``reference`` (or,
    when None, against the mean over draws) and the peak ratios.
    """

    s = train_settings(case, dict(overrides or {}, dtype="float64", twin=False))
    if s.model != "fourier" or s.sampling != "grid":
        raise InputError("train", "kernel draws are for the 2-layer model on grid samples")
    times = case.times if times is None else np.asarray(times, dtype=float)
    x = training_samples(case, s)
    n, volume = x.shape[0], (2 * s.R) ** case.dim
    weight = volume * case.loss_scale / n
    layout = sample_layout(s, x, case.dim)
    target = case.target(x)
    u_hats, ratios, iterations = [], [], []
    for k in range(draws):
        model = build_model(case, replace(s, seed=seed + k))
        transforms = tf.FourierTransforms(layout, torch.float64, 1e-12)
        axis = measurement_axis(case, s.R, model, s.measure_points)
        grid = tf.FourierTransforms(tf.GridSamples.of_axis(axis, case.dim), torch.float64,
                                    1e-12)
        _, on_grid, its = exact_linear_flow(model, transforms, grid, target, weight, times,
                                            s.f0 == "random", rtol)
        iterations.append(its)
        values = on_grid.reshape(times.size, *(axis.size,) * case.dim)
        u_hat = error_transform_of_values(values, case, axis)
        u_hats.append(u_hat)
        ratios.append(peak_ratios_of(u_hat, case))
    ref = np.mean(u_hats, axis=0) if reference is None else np.asarray(reference)
    xi_axes = tuple(range(1, ref.ndim))
    errors = np.array([relative_l2(ref, u, axes=xi_axes) for u in u_hats])
    return {"times": times, "rel_l2": errors, "peak_ratios": np.array(ratios),
            "lanczos_iterations": iterations}


def peak_ratios_of(u_hat: np.ndarray, case) -> np.ndarray:
    """|û(ω_k, t)|/|û(ω_k, 0)| on the case grid (as :func:`freqdyn.results.peak_ratios`)."""

    return peak_ratios(frequency_dataset(case, u_hat, "kernel draw"), case.peaks)


def first_order_spread(case, overrides: dict | None = None, times=None, reference=None,
                   units: int | None = None, seed: int = 0) -> SpreadPrediction:
    """The first-order predicted spread of the case's networks (module text) at ``times``.

    ``overrides``: the ``[train]`` settings of the networks (width, f0, R, samples...);
    ``reference``: the pde prediction's û on the case grid at ``times`` (T, *xi), for the
    systematic part b (None: b = 0, the error is measured from û_∞).
    """

    s = train_settings(case, overrides)
    if s.model != "fourier":
        raise InputError("train.model", "the predicted spread is for the 2-layer model")
    if s.sampling != "grid":
        raise InputError("train.sampling", "the predicted spread needs grid samples")
    if s.n_samples > MAX_SAMPLES:
        raise InputError("train.samples", f"{s.n_samples} training samples: the predicted "
                                          f"spread is dense and takes at most {MAX_SAMPLES}")
    if case.dim not in DEFAULT_UNITS:
        raise InputError("network.dim", "the predicted spread is for 1D and 2D cases")
    times = case.times if times is None else np.asarray(times, dtype=float)
    units = DEFAULT_UNITS[case.dim] if units is None else int(units)
    x = training_samples(case, s)
    n, volume = x.shape[0], (2 * s.R) ** case.dim
    weight = volume * case.loss_scale / n  # A = V (α/N) Θ
    kernel = FourierFeatureKernel.of_case(case, s.train_w)
    lam, q = np.linalg.eigh(weight * kernel(x))
    lam = np.maximum(lam, 0.0)
    r0 = -case.target(x)
    u0 = q.T @ r0

    gen = torch.Generator().manual_seed(seed)
    draw = FourierFeatureNetwork.from_case(case, units, gen, f0="random")
    w, a, b = (p.detach().numpy() for p in (draw.w, draw.a, draw.b))
    feats = [q.T @ (np.sqrt(weight) * f) for f in unit_features(x, w, a, b, case.kappa,
                                                                 s.train_w)]
    axes = [np.unique(x[:, k]) for k in range(case.dim)]
    shape = tuple(ax.size for ax in axes)
    xi_axes = case.xi_axes()
    peaks = np.asarray(case.peaks, dtype=float).reshape(-1, case.dim)
    peak_phase = np.exp(-2j * np.pi * (peaks @ x.T)) * (volume / n)  # (K, N)

    def measure(r_samples):  # (N, ...) on the samples -> û on the ξ grid (..., *xi)
        grid = np.moveaxis(r_samples, 0, -1).reshape(*r_samples.shape[1:], *shape)
        return riemann_transform(grid, axes, xi_axes)

    m_ind = independent_units(s)
    out = {k: [] for k in ("mean", "spread", "peak", "sys", "rank", "err")}
    u_hat0_peak = peak_phase @ r0
    for j, t in enumerate(times):
        ref = None if reference is None else np.asarray(reference)[j]
        stats = _spread_at(float(t), lam, q, u0, feats, measure, ref, m_ind, peak_phase,
                           u_hat0_peak)
        for key, value in stats.items():
            out[key].append(value)
    return SpreadPrediction(
        times=times, independent_units=m_ind, mean_error=np.array(out["mean"]),
        spread=np.array(out["spread"]), peak_ratio_std=np.array(out["peak"]).T,
        systematic=np.array(out["sys"]), effective_rank=np.array(out["rank"]),
        estimate_error=np.array(out["err"]), unit_draws=units)


def _spread_at(t, lam, q, u0, feats, measure, reference, m_ind, peak_phase, u_hat0_peak):
    """The first-order statistics at one time t (module text): mean, spread, systematic
    part, effective rank, Monte-Carlo error of tr C and the peaks' ratio std."""
    r_inf = q @ (np.exp(-lam * t) * u0)
    u_inf = measure(r_inf)
    norm = np.linalg.norm(u_inf)
    if t == 0:
        return {"mean": 0.0, "spread": 0.0, "sys": 0.0, "rank": np.nan, "err": 0.0,
                "peak": np.zeros(peak_phase.shape[0])}
    units = feats[0].shape[1]
    phi = divided_differences(lam, t)
    resp = sum(f * (phi @ (f * u0[:, None])) for f in feats)  # (N, U), modal
    resp = -resp + (t * lam * np.exp(-lam * t) * u0)[:, None]  # minus the exact mean
    resp_x = q @ resp
    S = measure(resp_x).reshape(units, -1).T  # (n_xi, U)
    sq = np.sum(np.abs(S) ** 2, axis=0)
    trace = sq.mean() / m_ind
    gram = (S.conj().T @ S).real
    off = (np.sum(gram**2) - np.sum(np.diag(gram) ** 2)) / (units * (units - 1))
    trace2 = off / m_ind**2
    bias = (np.zeros_like(u_inf) if reference is None else u_inf - reference).ravel()
    proj = (S.conj().T @ bias).real
    e2 = np.sum(np.abs(bias) ** 2) + trace
    var_e2 = 4 * np.mean(proj**2) / m_ind + 2 * trace2
    u_peak = peak_phase @ r_inf
    direction = np.conj(u_peak) / np.maximum(np.abs(u_peak), 1e-300)
    dpk = (direction[:, None] * (peak_phase @ resp_x)).real  # (K, U)
    return {"mean": np.sqrt(e2) / norm, "spread": np.sqrt(var_e2) / (2 * np.sqrt(e2)) / norm,
            "sys": np.linalg.norm(bias) / norm,
            "rank": trace**2 / trace2 if trace2 > 0 else np.nan,
            "err": np.std(sq) / (np.sqrt(units) * sq.mean()),
            "peak": np.sqrt(np.mean(dpk**2, axis=1) / m_ind)
            / np.maximum(np.abs(u_hat0_peak), 1e-300)}


#: First order is used while its predicted mean error stays below this (its second-order
#: remainder is then ≲ 10 % of the spread; measured against kernel draws, docs/theory.md §12).
FIRST_ORDER_LIMIT = 0.015


def predicted_spread(case, overrides: dict | None = None, times=None, reference=None,
                     draws: int = 16) -> dict:
    """The predicted finite-width statistics of the case's networks: first order where it
    applies (at most :data:`MAX_SAMPLES` samples, predicted error ≤
    :data:`FIRST_ORDER_LIMIT`), else ``draws`` kernel draws (:func:`kernel_draws`).

    Returns per time ``predicted_mean_error``, ``predicted_spread`` (the standard deviation
    over unit draws of the rel L²(ξ) error against ``reference``) and
    ``predicted_peak_ratio_std`` (peaks, time), with ``method`` and its details.
    """

    s = train_settings(case, overrides)
    if s.n_samples <= MAX_SAMPLES and case.dim in DEFAULT_UNITS:
        first = first_order_spread(case, overrides, times, reference)
        if np.nanmax(first.mean_error) <= FIRST_ORDER_LIMIT:
            return dict(first.record(), method="first-order")

    kd = kernel_draws(case, overrides, times, reference, draws=draws)
    errors = np.asarray(kd["rel_l2"])
    if reference is None and draws > 1:  # to the draws' own mean: √((D−1)/D) of that to û_∞
        errors = errors * np.sqrt(draws / (draws - 1))
    mean, std = mean_std(list(errors))
    return {"times": kd["times"], "method": "kernel-draws", "draws": draws,
            "predicted_mean_error": mean, "predicted_spread": std,
            "predicted_peak_ratio_std": mean_std(list(kd["peak_ratios"]))[1],
            "lanczos_iterations": kd["lanczos_iterations"]}
