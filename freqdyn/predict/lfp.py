"""Linear Frequency Principle (LFP) dynamics of 2-layer ReLU and tanh networks
(docs/theory.md §9).

Network and training (freqdyn's normalisation, see :func:`freqdyn.theory.lfp.derive_lfp`):
f(x) = m^{-1/2} Σ_j a_j σ(w_j·x + b_j), w ∼ 𝒩(0, s_w² I_d), a ∼ 𝒩(0, s_a²),
b ∼ 𝒩(0, σ_b²) with σ_b ≫ 1, all parameters trained by gradient flow on the loss
½∫(f − g)² dx (Lebesgue data), f₀ = 0, so u = f − g starts at −g.

Strong form (radial coefficients of k = |ξ|, valid for ξ ≠ 0 up to O(σ_b^{-2}))

    ∂_t û = ∇_ξ·(D(|ξ|) ∇_ξ û) − c(|ξ|) û        on Ω_ε = {ξ ∈ box : |ξ| ≥ ε},
    D ∇û·n = 0 on ∂Ω_ε,   û(ξ, 0) = −ĝ(ξ),

    c(k) = C_d k^{1−d} E_r[ r^{-1}|σ̂(k/r)|² + s_a² r^{-1}|F[σ'](k/r)|² ],
    D(k) = C_d k^{1−d} E_r[ s_a² r^{-1}|F[σ'](k/r)|² ] / (4π²),
    C_d  = Γ(d/2) / (√(2π) σ_b π^{d/2}),   r = |w|.

ReLU: c = C_d k^{1−d}(E r³/(16π⁴k⁴) + s_a² E r/(4π²k²)), D = C_d k^{1−d} s_a² E r/(16π⁴k²):
closed form.  tanh: |σ̂(η)|² = π² csch²(π²η), the r-integrals are done numerically
(adaptive quadrature on a table of k, interpolated in log–log by a cubic spline).

Weak form: the one of :mod:`freqdyn.predict.fem` on the mesh of the case's ξ box from which the
cells meeting the ball |ξ| < ε are removed (in d = 1 exactly (−ε, ε); in d ≥ 2 a
staircase hull of the ball).  The coefficients blow up like |ξ|^{−(d+3)} at 0, the
LFP is not valid there (the exact kernel has a rank-(d+1) polynomial part of size σ_b²
that acts at ξ ≈ 0 and learns those frequencies almost at once), so the ball is left
out and reported as NaN.  Default ε = min(0.1, 1/σ_b) cycles per unit x: the bias
density has width σ_b in x, i.e. 1/σ_b in ξ, and below that scale the flat-bias
approximation behind the LFP fails.

Effective LFP (the earlier model, damping only): û(ξ, t) = û₀(ξ) e^{−c(|ξ|) t}.

Reference: kernel gradient flow with the exact NTK of the same network (arc-cosine
kernels of Cho & Saul on the augmented input (x, 1)):

    Θ(x, x') = E[σ(ω·x̃) σ(ω·x̃')] + s_a² E[σ'(ω·x̃) σ'(ω·x̃')] (x·x' + 1),
    ω = (w, b),  x̃ = (x, 1);  with z = (s_w x, σ_b), z' likewise and θ = ∠(z, z'):
    E[relu relu] = |z||z'| (sin θ + (π − θ) cos θ) / (2π),   E[step step] = (π − θ)/(2π),

discretised on [−R, R]^d with spacing h and propagated exactly by an eigendecomposition.
Units: ξ in cycles per unit x; t in gradient-flow time of the loss above.  With the case's
output scale κ and loss scale α every rate is multiplied by κ²α (``case.rate_factor``),
as for Fourier features.
"""

from __future__ import annotations

import math
import time as _time

import numpy as np

from freqdyn.errors import InputError
from freqdyn.inputs.fourier import riemann_transform, tensor_grid
from freqdyn.predict.fem.problem import Problem, target_initial
from freqdyn.predict.kernel_flow import kernel_descent
from freqdyn.results import frequency_dataset
from freqdyn.theory.lfp import LFPParams, RadialCoefficients, lfp_data_grid, lfp_params
from freqdyn.theory.ntk import lfp_ntk


def lfp_problem(case, params: LFPParams) -> tuple[Problem, RadialCoefficients]:
    """The LFP PDE on the case's ξ box minus the ball |ξ| < ε (values there: NaN)."""
    k_max = float(np.linalg.norm(np.max(np.abs(case.bounds), axis=1)))
    coef = RadialCoefficients(params, case.dim, k_max)
    rate = case.rate_factor
    damping, diffusion = coef.at("damping"), coef.at("diffusion")
    problem = Problem(
        dim=case.dim, domain=np.array(case.bounds, dtype=float),
        damping=(lambda p: rate * damping(p)) if rate != 1 else damping,
        diffusion=(lambda p: rate * diffusion(p)) if rate != 1 else diffusion,
        initial=target_initial(case.target),
        breakpoints=tuple(np.zeros(1) for _ in range(case.dim)), hole=params.ball,
        outside="nan",
        notes={"domain_choice": f"frequency box without the ball |xi| < {params.ball:g} "
                                "(LFP coefficients singular at 0; NaN there); zero-flux walls",
               "damping": str(coef.symbolic.damping), "diffusion": str(coef.symbolic.diffusion)})
    return problem, coef


def lfp_ode(case, params: LFPParams, times=None, xi_axes=None) -> np.ndarray:
    """Effective LFP (damping only): û₀(ξ) e^{−c(|ξ|) t}, NaN for |ξ| < ε; (time, *xi)."""
    times = case.times if times is None else np.asarray(times, dtype=float)
    xi_axes = case.xi_axes() if xi_axes is None else xi_axes
    k_max = math.sqrt(sum(float(np.max(np.abs(a))) ** 2 for a in xi_axes))
    coef = RadialCoefficients(params, case.dim, max(k_max, params.ball))
    pts = tensor_grid(xi_axes)
    radius = np.linalg.norm(pts, axis=-1)
    rate = case.rate_factor * np.where(radius >= params.ball,
                                       coef.radial("damping", np.maximum(radius, params.ball)),
                                       np.nan)
    u0 = -case.target.transform_on_grid(xi_axes)
    return u0[None] * np.exp(-np.multiply.outer(times, rate))


# ---------------------------------------------------------------------------------------
# Kernel-flow reference with the exact ReLU NTK
# ---------------------------------------------------------------------------------------


def lfp_ode_prediction(case, activation: str, times=None):
    """The effective LFP of ``activation`` as a schema dataset (NaN for |ξ| < ε)."""

    start = _time.perf_counter()
    params = lfp_params(case, activation)
    u_hat = lfp_ode(case, params, times)
    attrs = dict(params.attrs(), seconds=_time.perf_counter() - start,
                 model="effective LFP: u_hat0 exp(-c(|xi|) t); NaN for |xi| < epsilon")
    return frequency_dataset(case, u_hat, f"lfp-{activation}-ode", times=times, attrs=attrs)


def ntk_flow_prediction(case, activation: str, times=None):
    """Kernel flow with the exact NTK of the ``[lfp]`` network as a schema dataset."""

    params = lfp_params(case, activation)
    u_hat, info = lfp_kernel_flow(case, params, times)
    return frequency_dataset(case, u_hat, f"{activation}-ntk-flow", times=times,
                             attrs=dict(params.attrs(), **info))


#: Largest x grid of the dense LFP kernel flow (an eigendecomposition of that size).
MAX_FLOW_POINTS = 12_000


def lfp_kernel_flow(case, params: LFPParams, times=None, R: float | None = None,
                    spacing: float | None = None) -> tuple[np.ndarray, dict]:
    """û(ξ, t) on the case grid from exact kernel flow with the LFP network's NTK; (time, *xi).

    x on [−R, R]^d with spacing h (quadrature weight h^d), u(t) = exp(−t κ²α h^d Θ) u₀ by
    a dense eigendecomposition (:func:`freqdyn.predict.kernel_flow.kernel_descent`), û by
    the Riemann-sum transform.  Θ: the arc-cosine closed form (ReLU) or the quadrature
    of :func:`freqdyn.theory.ntk.tanh_ntk` (tanh, d = 1).  Defaults (R, h):
    :func:`freqdyn.theory.lfp.lfp_data_grid`, the LFP networks' own data grid.
    """

    if params.activation == "tanh" and case.dim != 1:
        raise InputError("settings.predictions", "tanh-ntk-flow (the tanh NTK by quadrature) "
                                                 "is for d = 1; leave it out in d = "
                                                 f"{case.dim}")
    times = case.times if times is None else np.asarray(times, dtype=float)
    start = _time.perf_counter()
    R_default, h_default = lfp_data_grid(case)
    R = R_default if R is None else float(R)
    h = h_default if spacing is None else float(spacing)
    n = int(round(R / h))
    axis = h * np.arange(-n, n + 1)
    d = case.dim
    pts = tensor_grid([axis] * d).reshape(-1, d)
    if pts.shape[0] > MAX_FLOW_POINTS:
        raise InputError("frequency.bounds", f"the LFP kernel flow would need {pts.shape[0]} "
                                             f"x points (spacing {h:.3g} on [-{R:g}, {R:g}]^"
                                             f"{d}), more than {MAX_FLOW_POINTS} for a dense "
                                             "eigendecomposition; narrow the frequency box")
    gram = case.rate_factor * h**d * lfp_ntk(pts, pts, params)
    u_t, _ = kernel_descent(gram, -case.target(pts), times)
    u_hat = riemann_transform(u_t.reshape((times.size,) + (axis.size,) * d), [axis] * d,
                              case.xi_axes())
    return u_hat, {"R": R, "spacing": h, "grid_points": int(pts.shape[0]),
                   "seconds": _time.perf_counter() - start}
