"""Symbolic derivation (sympy) of the NTK and of the frequency-space error PDE
(docs/theory.md §3, §5).

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
:func:`freqdyn.theory.lfp.derive_lfp`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

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
