"""Linear Frequency Principle (LFP) dynamics of 2-layer ReLU and tanh networks.

Network and training (freqdyn's normalisation, see :func:`freqdyn.theory.derive.derive_lfp`):
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
Units: ξ in cycles per unit x; t in gradient-flow time of the loss above.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import integrate, interpolate, linalg

from freqdyn.errors import InputError
from freqdyn.inputs.fourier import riemann_transform, tensor_grid
from freqdyn.predict.fem.problem import Problem, target_initial
from freqdyn.theory.derive import derive_lfp

LFP_KEYS = {"sigma_b", "weight_scale", "outer_std", "epsilon"}
ACTIVATIONS = ("relu", "tanh")
DEFAULT_SIGMA_B = 10.0


@dataclass(frozen=True)
class LFPParams:
    """The LFP network: activation, bias std σ_b, weight std s_w, outer std s_a, ball ε."""

    activation: str
    sigma_b: float
    weight_scale: float = 1.0
    outer_std: float = 1.0
    epsilon: float | None = None

    @property
    def ball(self) -> float:
        """ε: the radius of the excluded ball around ξ = 0."""
        return self.epsilon if self.epsilon is not None else min(0.1, 1.0 / self.sigma_b)


def lfp_params(case, activation: str) -> LFPParams:
    """Read the ``[lfp]`` table (sigma_b, weight_scale, outer_std, epsilon) of a case."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    table = case.section("lfp")
    unknown = set(table) - LFP_KEYS
    if unknown:
        raise InputError("lfp", f"unknown key(s) {sorted(unknown)}; known: {sorted(LFP_KEYS)}")
    vals = {}
    for key, default in (("sigma_b", DEFAULT_SIGMA_B), ("weight_scale", 1.0),
                         ("outer_std", 1.0), ("epsilon", None)):
        val = table.get(key, default)
        if val is None:
            vals[key] = None
            continue
        if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val) \
                or val <= 0:
            raise InputError(f"lfp.{key}", f"must be a finite number > 0, got {val!r}")
        vals[key] = float(val)
    if vals["sigma_b"] < 1:
        raise InputError("lfp.sigma_b", f"must be >= 1 (the LFP needs sigma_b >> 1), "
                                       f"got {vals['sigma_b']!r}")
    reach = float(np.min(np.max(np.abs(case.bounds), axis=1)))
    eps = vals["epsilon"]
    if eps is not None and eps >= reach:
        raise InputError("lfp.epsilon", f"must be smaller than the frequency box ({reach:g}), "
                                       f"got {eps!r}")
    return LFPParams(activation=activation, **vals)


class RadialCoefficients:
    """c(k) and D(k) of the LFP PDE as vectorised functions of points (..., d)."""

    def __init__(self, params: LFPParams, dim: int, k_max: float):
        self.params, self.dim = params, dim
        coeffs = derive_lfp(params.activation, dim, params.sigma_b, params.weight_scale,
                            params.outer_std)
        self.symbolic = coeffs
        k = coeffs.radius
        self._fns = {}
        for name, expr in (("damping", coeffs.damping), ("diffusion", coeffs.diffusion)):
            if expr.has(sp.Integral):
                self._fns[name] = _tabulated(expr, k, 0.5 * params.ball, 1.05 * k_max)
            else:
                fn = sp.lambdify(k, expr, modules="numpy")
                self._fns[name] = fn

    def radial(self, name: str, k) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.broadcast_to(np.asarray(self._fns[name](k), dtype=float), k.shape).copy()

    def at(self, name: str):
        dim = self.dim

        def evaluate(points):
            pts = np.asarray(points, dtype=float)
            if dim == 1 and (pts.ndim == 0 or pts.shape[-1] != 1):
                pts = pts[..., None]
            return self.radial(name, np.linalg.norm(pts, axis=-1))

        return evaluate


def _tabulated(expr: sp.Expr, k: sp.Symbol, k_lo: float, k_hi: float, n: int = 240):
    """A function of k for an expression holding ∫_0^∞ … dr integrals (quadrature table).

    Each integral is evaluated by adaptive quadrature at n log-spaced k, split at the
    integrand's peak; the expression is then interpolated in log–log (cubic spline).
    """
    integrals = sorted(expr.atoms(sp.Integral), key=str)
    slots = sp.symbols(f"I0:{len(integrals)}")
    outer = sp.lambdify((k, *slots), expr.subs(dict(zip(integrals, slots, strict=True))),
                        modules="numpy")
    ks = np.geomspace(k_lo, k_hi, n)
    values = []
    for integral in integrals:
        (r, lo, hi), = integral.limits
        if lo != 0 or hi != sp.oo:
            raise ValueError(f"unexpected integral limits {integral.limits}")
        fn = sp.lambdify((r, k), integral.function, modules="numpy")

        def integrand(rr, kk, fn=fn):
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                val = fn(rr, kk)
            return float(val) if np.isfinite(val) else 0.0

        col = []
        for kk in ks:
            grid = np.geomspace(1e-3, 40.0, 400)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                scan = np.nan_to_num(np.broadcast_to(fn(grid, kk), grid.shape), nan=0.0)
            peak = float(grid[np.argmax(scan)])
            parts = [integrate.quad(integrand, a, b, args=(kk,), epsabs=0, epsrel=1e-11,
                                    limit=200)[0]
                     for a, b in ((0.0, peak), (peak, np.inf))]
            col.append(sum(parts))
        values.append(np.array(col))
    table = outer(ks, *values)
    if np.any(table <= 0) or not np.all(np.isfinite(table)):
        raise ValueError("LFP coefficient table is not positive and finite")
    spline = interpolate.CubicSpline(np.log(ks), np.log(table))

    def evaluate(kk):
        kk = np.asarray(kk, dtype=float)
        out = np.full(kk.shape, np.nan)
        ok = (kk >= k_lo) & (kk <= k_hi)
        out[ok] = np.exp(spline(np.log(kk[ok])))
        return out

    return evaluate


def lfp_problem(case, params: LFPParams) -> tuple[Problem, RadialCoefficients]:
    """The LFP PDE on the case's ξ box minus the ball |ξ| < ε (values there: NaN)."""
    k_max = float(np.linalg.norm(np.max(np.abs(case.bounds), axis=1)))
    coef = RadialCoefficients(params, case.dim, k_max)
    problem = Problem(
        dim=case.dim, domain=np.array(case.bounds, dtype=float),
        damping=coef.at("damping"), diffusion=coef.at("diffusion"),
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
    rate = np.where(radius >= params.ball, coef.radial("damping", np.maximum(radius,
                                                                             params.ball)), np.nan)
    u0 = -case.target.transform_on_grid(xi_axes)
    return u0[None] * np.exp(-np.multiply.outer(times, rate))


# ---------------------------------------------------------------------------------------
# Kernel-flow reference with the exact ReLU NTK
# ---------------------------------------------------------------------------------------


def relu_ntk(x: np.ndarray, xp: np.ndarray, params: LFPParams) -> np.ndarray:
    """Θ(x_i, x'_j) of f = m^{-1/2} Σ a relu(w·x + b) (all trained), points (n, d), (n', d)."""
    def lift(p):
        return np.concatenate([params.weight_scale * p,
                               np.full((p.shape[0], 1), params.sigma_b)], axis=1)

    z, zp = lift(x), lift(xp)
    nz, nzp = np.linalg.norm(z, axis=1), np.linalg.norm(zp, axis=1)
    cos = np.clip((z @ zp.T) / np.outer(nz, nzp), -1.0, 1.0)
    theta = np.arccos(cos)
    k1 = np.outer(nz, nzp) * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    k0 = (np.pi - theta) / (2 * np.pi)
    return k1 + params.outer_std**2 * k0 * (x @ xp.T + 1.0)


def relu_kernel_flow(case, params: LFPParams, times=None, R: float | None = None,
                     spacing: float | None = None) -> tuple[np.ndarray, dict]:
    """û(ξ, t) on the case grid from exact kernel flow with the ReLU NTK; (time, *xi).

    x on [−R, R]^d with spacing h (quadrature weight h^d), u(t) = exp(−t h^d Θ) u₀ by a
    dense eigendecomposition, û by the Riemann-sum transform.  Defaults: R = the target's
    window + 1, h = 1/(16 Ξ) with Ξ the largest |ξ| of the grid (the kernel's kinks make
    the quadrature error the limiting one; it falls with h).
    """
    if params.activation != "relu":
        raise ValueError("the closed-form NTK reference exists for relu only")
    times = case.times if times is None else np.asarray(times, dtype=float)
    start = _time.perf_counter()
    R = case.target.radius + 1.0 if R is None else float(R)
    h = 1.0 / (16.0 * float(np.max(np.abs(case.bounds)))) if spacing is None else float(spacing)
    n = int(round(R / h))
    axis = h * np.arange(-n, n + 1)
    d = case.dim
    pts = tensor_grid([axis] * d).reshape(-1, d)
    if pts.shape[0] > 12_000:
        raise ValueError(f"relu kernel flow with {pts.shape[0]} points is too large for a "
                         "dense eigendecomposition; raise the spacing or lower R")
    lam, vec = linalg.eigh(h**d * relu_ntk(pts, pts, params))
    u0 = -case.target(pts)
    coeff = vec.T @ u0
    u_t = (np.exp(-np.outer(times, np.clip(lam, 0.0, None))) * coeff) @ vec.T
    u_hat = riemann_transform(u_t.reshape((times.size,) + (axis.size,) * d), [axis] * d,
                              case.xi_axes())
    return u_hat, {"R": R, "spacing": h, "grid_points": int(pts.shape[0]),
                   "seconds": _time.perf_counter() - start}


def compare_with_kernel_flow(case, params: LFPParams, times=None, settings_table=None,
                             R: float | None = None, spacing: float | None = None) -> dict:
    """LFP PDE (finite elements) and effective LFP against exact ReLU kernel flow.

    Returns the relative L²(ξ) errors over |ξ| ≥ ε at each time for ``pde`` and ``ode``,
    the three solutions (time, *xi) and the reference's settings.
    """
    from freqdyn.inputs.fourier import relative_l2
    from freqdyn.predict.fem.settings import fem_settings
    from freqdyn.predict.fem.solver import solve_problem

    times = case.times if times is None else np.asarray(times, dtype=float)
    reference, info = relu_kernel_flow(case, params, times, R=R, spacing=spacing)
    problem, _ = lfp_problem(case, params)
    settings = fem_settings(problem, settings_table if settings_table is not None
                            else case.section("fem"), times)
    pde = solve_problem(problem, times, case.xi_axes(), settings, progress=False).u_hat
    ode = lfp_ode(case, params, times)
    mask = np.linalg.norm(case.xi_grid(), axis=-1) >= params.ball
    axes = 1
    return {"pde": relative_l2(pde[:, mask], reference[:, mask], axes=axes),
            "ode": relative_l2(ode[:, mask], reference[:, mask], axes=axes),
            "solutions": {"pde": pde, "ode": ode, "kernel_flow": reference},
            "reference": info, "times": times}
