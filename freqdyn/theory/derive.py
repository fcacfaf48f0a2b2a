"""Symbolic derivation (sympy) of the NTK and of the frequency-space error PDE.

Fourier-feature network (convention B), one unit of m, NTK parametrisation:

    f(x) = κ m^{-1/2} Σ_j [a_j cos(2π w_j·x) + b_j sin(2π w_j·x)],
    w_j ∼ ρ_w,  a_j, b_j ∼ 𝒩(0, σ_a²),  all of w, a, b trained.

Steps, each done by sympy on the expressions rather than typed in:

1. Θ(x, x') = κ² E[∇_θ φ(x) · ∇_θ φ(x')] for one unit φ; the a, b moments are taken
   from the polynomial in a, b (E a² = E b² = σ_a², E ab = E a = E b = 0) and the
   result is reduced to Σ_terms P(x) Q(x') cos(2π w·(x − x')).
2. E_w cos(2π w·z) = k(z), the even characteristic function of ρ_w.
3. Fourier transform of the operator u ↦ ∫Θ(x,x')u(x')dx' (convention B): the
   stationary factor k becomes multiplication by ρ_w^sym(ξ) (because F[k] = ρ_w^sym),
   and a factor x_i becomes (i/2π)∂/∂ξ_i.  Applied to a generic û(ξ) this gives

       ∂_t û = κ²α [∇_ξ·(D ∇_ξ û) − c û],

   and the damping c(ξ) and diffusion D(ξ) are read off the coefficients of û and
   of its second derivatives (the first-derivative coefficients are checked to be
   ∇D: the operator is in divergence form).  For the Fourier-feature network this
   yields c = ρ_w^sym and D = σ_a² ρ_w^sym.

The per-frequency learning rate is the damping coefficient κ²α ρ_w^sym(ξ): without
diffusion, frequency ξ decays as exp(−κ²α ρ_w^sym(ξ) t).

The LFP coefficients of 2-layer ReLU and tanh networks are derived in
:func:`derive_lfp` from the transform of the activation (see its docstring).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp
from scipy import integrate

from freqdyn.inputs.symbols import axis_symbols


@dataclass(frozen=True)
class Derivation:
    """Symbolic NTK and PDE coefficients of a case (all rates include κ²α)."""

    dim: int
    ntk: sp.Expr  # Θ(x, xp) in x/xp symbols
    damping: sp.Expr  # c(ξ), rate of û at ξ
    diffusion: sp.Expr  # D(ξ), coefficient of ∇·(D ∇û)
    rate: sp.Expr  # per-frequency learning rate (= damping)

    def to_json(self) -> str:
        return json.dumps({
            "dim": self.dim,
            "ntk": str(self.ntk),
            "damping": str(self.damping),
            "diffusion": str(self.diffusion),
            "rate": str(self.rate),
            "pde": "d/dt u_hat = div(diffusion * grad u_hat) - damping * u_hat",
        }, indent=2)

    def numeric(self, which: str):
        """Vectorised numeric function of ``which`` ∈ {damping, diffusion, rate}.

        Takes points of shape (..., d) (or (...,) in d = 1) and returns (...,).
        """
        expr = getattr(self, which)
        xi = axis_symbols("xi", self.dim)
        fn = sp.lambdify(xi, expr, modules="numpy")
        dim = self.dim

        def evaluate(points):
            pts = np.asarray(points, dtype=float)
            if dim == 1 and (pts.ndim == 0 or pts.shape[-1] != 1):
                pts = pts[..., None]
            vals = fn(*np.moveaxis(pts, -1, 0))
            return np.broadcast_to(np.asarray(vals, dtype=float), pts.shape[:-1]).copy()

        return evaluate


# ---------------------------------------------------------------------------------------
# Step 1: the NTK of one Fourier-feature unit
# ---------------------------------------------------------------------------------------


def _gaussian_moment_expectation(expr: sp.Expr, variables, variance) -> sp.Expr:
    """E over independent 𝒩(0, variance) variables of a polynomial in them."""
    poly = sp.Poly(sp.expand(expr), *variables)
    total = sp.S.Zero
    for powers, coeff in poly.terms():
        moment = sp.S.One
        for p in powers:
            # E g^p = variance^{p/2} (p − 1)!! for even p, 0 for odd p
            moment *= 0 if p % 2 else variance ** sp.Rational(p, 2) * sp.factorial2(p - 1)
        total += coeff * moment
    return total


@cache
def unit_ntk(dim: int) -> tuple[sp.Expr, sp.Symbol, sp.Symbol]:
    """Θ(x, x') of the Fourier-feature network as Σ P(x)Q(x') cos(2π w·(x−x')), per unit.

    Returns (expression, kappa symbol, sigma_a symbol); the expression still depends
    on the frequency symbols ``w``/``w0..`` (averaged over ρ_w in :func:`derive`).
    """
    x, xp, w = axis_symbols("x", dim), axis_symbols("xp", dim), axis_symbols("w", dim)
    a, b = sp.symbols("a b", real=True)
    kappa, sigma_a = sp.symbols("kappa sigma_a", positive=True)
    params = (a, b, *w)

    def unit(xx):
        phase = 2 * sp.pi * sum(wi * xi for wi, xi in zip(w, xx, strict=True))
        return kappa * (a * sp.cos(phase) + b * sp.sin(phase))

    fx, fxp = unit(x), unit(xp)
    inner = sum(sp.diff(fx, p) * sp.diff(fxp, p) for p in params)
    mean = _gaussian_moment_expectation(inner, (a, b), sigma_a**2)
    # cos A cos B + sin A sin B = cos(A − B): name the phases A, B so that the trig
    # simplification sees two symbols, collect on the x·x' monomials, simplify, and
    # put A − B = 2π w·(x − x') back.
    phase_a, phase_b = sp.symbols("A B", real=True)
    dot = lambda u: sp.expand(2 * sp.pi * sum(wi * ui for wi, ui in zip(w, u, strict=True)))  # noqa: E731
    mean = sp.expand(mean).subs({dot(x): phase_a, dot(xp): phase_b})
    if mean.has(*w):
        raise ValueError(f"phases not isolated in the NTK: {mean}")
    monomials = [xi * xpi for xi, xpi in zip(x, xp, strict=True)]
    rest = mean
    reduced = sp.S.Zero
    for mono in reversed(monomials):
        coeff = rest.coeff(mono)
        rest = sp.expand(rest - coeff * mono)
        reduced += mono * sp.trigsimp(sp.factor(coeff))
    reduced += sp.trigsimp(sp.factor(rest))
    reduced = reduced.subs({phase_a: dot(x), phase_b: dot(xp)})
    return reduced, kappa, sigma_a


# ---------------------------------------------------------------------------------------
# Step 3: the operator in Fourier space
# ---------------------------------------------------------------------------------------


def _split_stationary(expr: sp.Expr, dim: int):
    """Write Θ_w = Σ_i coeff_i · m_i(x) m_i(x') · cos(2π w·(x − x')), m_0 = 1, m_i = x_i."""
    x, xp, w = axis_symbols("x", dim), axis_symbols("xp", dim), axis_symbols("w", dim)
    carrier = sp.cos(2 * sp.pi * sum(wi * (xi - xpi) for wi, xi, xpi in zip(w, x, xp,
                                                                           strict=True)))
    ratio = sp.simplify(expr / carrier)
    ratio = sp.expand(ratio)
    if ratio.free_symbols & set(w):
        raise ValueError(f"NTK is not stationary in w: {expr}")
    pieces = []
    rest = ratio
    for i in range(dim):
        mono = x[i] * xp[i]
        coeff = rest.coeff(mono)
        rest = sp.expand(rest - coeff * mono)
        pieces.append((coeff, i))
    if rest.free_symbols & (set(x) | set(xp)):
        raise ValueError(f"unexpected x-dependence in the NTK: {rest}")
    return rest, pieces


def fourier_operator(dim: int, ntk_per_unit: sp.Expr):
    """The Fourier-space generator of kernel gradient flow for a generic ρ and û.

    Returns (rhs, U, R, xi): rhs is −F[∫Θ u] written with the sympy functions
    U(ξ) = û and R(ξ) = ρ_w^sym, using F[k * v] = R·v̂ and F[x_i v] = (i/2π) ∂_i v̂.
    """
    xi = axis_symbols("xi", dim)
    U = sp.Function("U")(*xi)
    R = sp.Function("R")(*xi)
    const, pieces = _split_stationary(ntk_per_unit, dim)

    def mult_x(i, expr):
        return sp.I / (2 * sp.pi) * sp.diff(expr, xi[i])

    rhs = -const * R * U
    for coeff, i in pieces:
        rhs += -coeff * mult_x(i, R * mult_x(i, U))
    return sp.expand(rhs), U, R, xi


def pde_coefficients(dim: int, ntk_per_unit: sp.Expr):
    """Damping c and diffusion D (in terms of R(ξ)) with rhs = ∇·(D∇U) − cU, checked."""
    rhs, U, R, xi = fourier_operator(dim, ntk_per_unit)
    second = [sp.diff(U, xi[i], 2) for i in range(dim)]
    first = [sp.diff(U, xi[i]) for i in range(dim)]
    diff_coeffs = [sp.simplify(rhs.coeff(s)) for s in second]
    if any(sp.simplify(c - diff_coeffs[0]) != 0 for c in diff_coeffs[1:]):
        raise ValueError("anisotropic diffusion is not supported")
    diffusion = diff_coeffs[0]
    for i in range(dim):
        drift = sp.simplify(rhs.coeff(first[i]))
        if sp.simplify(drift - sp.diff(diffusion, xi[i])) != 0:
            raise ValueError("the operator is not in divergence form")
    remainder = rhs
    for i in range(dim):
        remainder -= diffusion * second[i] + sp.diff(diffusion, xi[i]) * first[i]
    damping = sp.simplify(-sp.expand(remainder) / U)
    if damping.has(U):
        raise ValueError(f"could not isolate the damping term: {damping}")
    return damping, diffusion, R, xi


@cache
def generic_coefficients(dim: int):
    """Damping and diffusion of the Fourier-feature network in terms of R(ξ) = ρ_w^sym.

    Case-independent, so derived once per dimension.
    """
    per_unit, kappa, sigma_a = unit_ntk(dim)
    return (*pde_coefficients(dim, per_unit), kappa, sigma_a)


def derive(case) -> Derivation:
    """Derive Θ, damping, diffusion and rate for a case (numbers of the case substituted)."""
    dim = case.dim
    per_unit, _, _ = unit_ntk(dim)
    damping_r, diffusion_r, R, xi, kappa, sigma_a = generic_coefficients(dim)

    rho = case.rho_w.symbolic()
    w = axis_symbols("w", dim)
    rho_xi = rho.subs(dict(zip(w, xi, strict=True)), simultaneous=True)
    rho_minus = rho.subs({wi: -x for wi, x in zip(w, xi, strict=True)}, simultaneous=True)
    rho_sym = rho_xi if sp.simplify(rho_xi - rho_minus) == 0 else (rho_xi + rho_minus) / 2

    numbers = {kappa: sp.nsimplify(case.kappa), sigma_a: sp.nsimplify(case.sigma_a)}
    alpha = sp.nsimplify(case.loss_scale)
    damping = sp.simplify(alpha * damping_r.subs(numbers)).subs(R, rho_sym)
    diffusion = sp.simplify(alpha * diffusion_r.subs(numbers)).subs(R, rho_sym)

    # Θ(x, x'): replace cos(2π w·(x−x')) by k(x − x') = E_w cos(2π w·(x − x'))
    x, xp = axis_symbols("x", dim), axis_symbols("xp", dim)
    k_expr = case.rho_w.char_symbolic()
    z = axis_symbols("z", dim)
    if k_expr is None:
        k_expr = sp.Function("k")(*z)
    k_of_x = k_expr.subs({zi: xi_ - xpi for zi, xi_, xpi in zip(z, x, xp, strict=True)},
                         simultaneous=True)
    const, pieces = _split_stationary(per_unit, dim)
    weight = const + sum(c * x[i] * xp[i] for c, i in pieces)
    ntk = sp.factor(weight.subs(numbers)) * k_of_x
    return Derivation(dim=dim, ntk=ntk, damping=damping, diffusion=diffusion, rate=damping)


# ---------------------------------------------------------------------------------------
# LFP models of 2-layer ReLU / tanh networks
# ---------------------------------------------------------------------------------------

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

    Derivation (freqdyn's own; the review quoted in the spec differs by constants).
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
    the spec, with C_d twice the quoted prefactor (both antipodal directions ±ξ/|ξ|
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
