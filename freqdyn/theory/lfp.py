"""Linear Frequency Principle (LFP) coefficients of 2-layer ReLU and tanh networks
(docs/theory.md §9).

Network: f(x) = m^{-1/2} Σ_j a_j σ(w_j·x + b_j), w ∼ 𝒩(0, s_w² I_d), a ∼ 𝒩(0, s_a²),
b ∼ 𝒩(0, σ_b²) with σ_b ≫ 1, all parameters trained by gradient flow on ½∫(f − g)² dx.
In the NTK regime the error obeys, for ξ ≠ 0 up to O(σ_b^{-2}),

    ∂_t û = ∇_ξ·(D(|ξ|) ∇_ξ û) − c(|ξ|) û,

with c and D derived here from the activation's transform (:func:`derive_lfp`) and
evaluated numerically by :class:`RadialCoefficients`; the ``[lfp]`` table of a case sets
σ_b, s_w, s_a and the excluded ball ε (:func:`lfp_params`).  The solvers are in
:mod:`freqdyn.predict.lfp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import integrate, interpolate

from freqdyn.config import Table
from freqdyn.errors import InputError

LFP_ACTIVATIONS = ("relu", "tanh")


def activation_transform_squared(activation: str, eta: sp.Symbol) -> sp.Expr:
    """|σ̂(η)|² for η ≠ 0 (convention B), from the transform of a derivative of σ.

    ReLU: σ'' = δ, so (2πiη)² σ̂ = 1 and |σ̂|² = 1/(16π⁴η⁴).
    tanh: σ' = sech², F[sech²](η) = 2π²η csch(π²η) (convention B; the argument is
    π²η, not πη), so |σ̂|² = |F[sech²]|²/(4π²η²) = π² csch²(π²η).
    """
    if activation == "relu":
        return 1 / (16 * sp.pi**4 * eta**4)
    if activation == "tanh":
        sech2_hat = 2 * sp.pi**2 * eta / sp.sinh(sp.pi**2 * eta)
        return sp.simplify(sech2_hat**2 / (4 * sp.pi**2 * eta**2))
    raise ValueError(f"activation must be one of {LFP_ACTIVATIONS}, got {activation!r}")


@dataclass(frozen=True)
class LFPCoefficients:
    """∂_t F[u] = ∇·(D ∇F[u_ρ]) − c F[u_ρ], valid for |ξ| > 0 up to O(σ_b^{-2})."""

    activation: str
    dim: int
    damping: sp.Expr  # in |ξ| symbol ``k`` (radial) — see ``radius``
    diffusion: sp.Expr
    radius: sp.Symbol
    damping_effective: sp.Expr  # the earlier effective LFP: damping only

    def to_json(self) -> dict:
        return {"activation": self.activation, "damping": str(self.damping),
                "diffusion": str(self.diffusion), "radius_symbol": str(self.radius)}

    def numeric(self, which: str):
        """Vectorised c or D as a function of |ξ| (array), integrals by adaptive quadrature."""
        expr = getattr(self, which)
        integrals = sorted(expr.atoms(sp.Integral), key=str)
        holders = sp.symbols(f"I0:{len(integrals)}")
        outer = sp.lambdify((self.radius, *holders),
                            expr.xreplace(dict(zip(integrals, holders, strict=True))), "numpy")
        inner = []
        for integral in integrals:
            (var, lo, hi), = integral.limits
            inner.append((sp.lambdify((var, self.radius), integral.function, "numpy"),
                          float(lo), float(hi)))

        def evaluate(radius):
            radius = np.asarray(radius, dtype=float)
            flat = radius.ravel()
            with np.errstate(over="ignore"):  # csch² underflows to 0 through sinh overflow
                parts = [np.array([integrate.quad(f, lo, hi, args=(k,), limit=200)[0]
                                   for k in flat]) for f, lo, hi in inner]
            return np.asarray(outer(flat, *parts), dtype=float).reshape(radius.shape)

        return evaluate


def derive_lfp(activation: str, dim: int, sigma_b: float, weight_scale: float = 1.0,
               outer_std: float = 1.0) -> LFPCoefficients:
    """LFP coefficients of f = m^{-1/2} Σ a_j σ(w_j·x + b_j), derived for this activation.

    Parameters at initialisation: w ∼ 𝒩(0, weight_scale² I_d), a ∼ 𝒩(0, outer_std²),
    b ∼ 𝒩(0, σ_b²) with σ_b ≫ 1, all trained; loss ½∫(f − g)² dx (Lebesgue data).

    Derivation (freqdyn's own; the review of Xu, Zhang and Cai, arXiv 2501.09987, differs by
    constants).
    The NTK is Θ = E[σσ'] + E[a²σ'σ'](1 + x·x').  For σ_b ≫ 1 the bias density is
    flat, 1/(√(2π)σ_b), where it matters, so E_b[h(w·x + b) h(w·x' + b)] becomes
    (√(2π)σ_b)^{-1} (h ⋆ h)(w·(x − x')).  Its transform over z = x − x' is
    r^{-1}|ĥ(ξ·n/r)|² δ(ξ_⊥) for w = r n; averaging n over the sphere gives
    (Γ(d/2)/π^{d/2}) |ξ|^{1−d} r^{-1}|ĥ(|ξ|/r)|².  With h = σ for the a-gradient,
    h = aσ' for the b-gradient, and a factor x·x' ↦ −(1/4π²)∇·(·∇) for the
    w-gradient:

        c(ξ) = C_d |ξ|^{1−d} E_r[ r^{-1}|σ̂(|ξ|/r)|² + E a² · r^{-1}|F[σ'](|ξ|/r)|² ]
        D(ξ) = C_d |ξ|^{1−d} E_r[ E a² · r^{-1}|F[σ'](|ξ|/r)|² ] / (4π²)
        C_d = Γ(d/2) / (√(2π) σ_b π^{d/2}).

    For ReLU this is C_d E[r³/(16π⁴|ξ|^{d+3}) + a² r/(4π²|ξ|^{d+1})] for c, as quoted in
    that review, with C_d twice the quoted prefactor (both antipodal directions ±ξ/|ξ|
    contribute), and D carries an extra 1/(4π²).  These constants are what freqdyn's
    LFP solver is checked against (kernel flow on the exact ReLU NTK).
    """
    if activation not in LFP_ACTIVATIONS:
        raise ValueError(f"activation must be one of {LFP_ACTIVATIONS}, got {activation!r}")
    k = sp.Symbol("k", positive=True)  # |ξ|
    r = sp.Symbol("r", positive=True)
    eta = sp.Symbol("eta", real=True)
    sigma_hat2 = activation_transform_squared(activation, eta)
    deriv_hat2 = sp.simplify(4 * sp.pi**2 * eta**2 * sigma_hat2)  # |F[σ'](η)|²
    s_w, s_a, s_b = (sp.nsimplify(v) for v in (weight_scale, outer_std, sigma_b))
    # radial density of |w| for w ∼ 𝒩(0, s_w² I_d)
    radial = (2 * r ** (dim - 1) * sp.exp(-r**2 / (2 * s_w**2))
              / ((2 * s_w**2) ** sp.Rational(dim, 2) * sp.gamma(sp.Rational(dim, 2))))
    prefactor = sp.gamma(sp.Rational(dim, 2)) / (sp.sqrt(2 * sp.pi) * s_b
                                                  * sp.pi ** sp.Rational(dim, 2))

    def radial_mean(expr):
        integrand = sp.simplify(expr.subs(eta, k / r) / r) * radial
        if activation == "relu":
            return sp.simplify(sp.integrate(integrand, (r, 0, sp.oo)))
        return sp.Integral(integrand, (r, 0, sp.oo))

    term_a = radial_mean(sigma_hat2)
    term_b = s_a**2 * radial_mean(deriv_hat2)
    scale = prefactor * k ** (1 - dim)
    damping = sp.simplify(scale * (term_a + term_b)) if activation == "relu" else \
        scale * (term_a + term_b)
    diffusion = scale * term_b / (4 * sp.pi**2)
    if activation == "relu":
        diffusion = sp.simplify(diffusion)
    return LFPCoefficients(activation=activation, dim=dim, damping=damping,
                           diffusion=diffusion, radius=k, damping_effective=damping)


LFP_KEYS = {"sigma_b", "weight_scale", "outer_std", "epsilon", "R", "spacing"}
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

    def attrs(self) -> dict:
        """The parameters as result-file attributes."""
        return {"activation": self.activation, "sigma_b": self.sigma_b,
                "weight_scale": self.weight_scale, "outer_std": self.outer_std,
                "epsilon": self.ball, "excluded_ball": self.ball}

    @property
    def ball(self) -> float:
        """ε: the radius of the excluded ball around ξ = 0."""
        return self.epsilon if self.epsilon is not None else min(0.1, 1.0 / self.sigma_b)


def lfp_params(case, activation: str) -> LFPParams:
    """Read the ``[lfp]`` table (sigma_b, weight_scale, outer_std, epsilon) of a case."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    t = Table(case.section("lfp"), "lfp", LFP_KEYS)
    vals = {key: t.number(key, default, low=0.0, low_open=True, allow_none=True)
            for key, default in (("sigma_b", DEFAULT_SIGMA_B), ("weight_scale", 1.0),
                                 ("outer_std", 1.0), ("epsilon", None))}
    lfp_data_grid(case)  # R and spacing: checked here, used by the networks and the flow
    if vals["sigma_b"] < 1:
        raise InputError("lfp.sigma_b", f"must be >= 1 (the LFP needs sigma_b >> 1), "
                                       f"got {vals['sigma_b']!r}")
    reach = float(np.min(np.max(np.abs(case.bounds), axis=1)))
    eps = vals["epsilon"]
    if eps is not None and eps >= reach:
        raise InputError("lfp.epsilon", f"must be smaller than the frequency box ({reach:g}), "
                                       f"got {eps!r}")
    return LFPParams(activation=activation, **vals)


def lfp_data_grid(case) -> tuple[float, float]:
    """(R, h): the data box [−R, R]^d and grid spacing of the LFP's networks and references.

    ``[lfp] R`` and ``spacing``; by default R = the target's window (|g| < 1e-13 max|g|
    beyond it) + 1 and h = 1/(16 Ξ), Ξ the largest |ξ| of the case's frequency box: the
    kernel's kinks (ReLU) make the quadrature error of the x grid the limiting one, and it
    falls with h.  In d = 2 a coarser h keeps the dense reference within reach.
    """
    t = Table(case.section("lfp"), "lfp", LFP_KEYS)
    R = t.number("R", case.target.radius + 1.0, low=0.0, low_open=True)
    h = t.number("spacing", 1.0 / (16.0 * float(np.max(np.abs(case.bounds)))), low=0.0,
                 low_open=True)
    if h >= R:
        raise InputError("lfp.spacing", f"must be smaller than lfp.R = {R:g}, got {h:g}")
    return R, h


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
