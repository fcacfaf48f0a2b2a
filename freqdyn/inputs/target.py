"""The regression target g(x) and its Fourier transform ĝ(ξ) (convention B).

A target is sympy text in ``x`` (d = 1) or ``x0, x1, x2``.  Its transform is found in
closed form when the target is a sum of Gaussian-windowed exponentials, which covers
every windowed multi-sine g = exp(−|x|²/(2ℓ²)) Σ_k A_k cos(2π ω_k·x) (+ sines) of the
theory (docs/theory.md §1), in any dimension:

    ∫ exp(−xᵀAx + bᵀx + c) e^{−2πi ξ·x} dx = π^{d/2} det(A)^{−1/2} exp(¼ βᵀA⁻¹β + c),
    β = b − 2πi ξ,   Re A positive definite.

Otherwise it is computed by a converged Riemann sum over the window of g
(spectrally accurate for smooth, decaying targets), checked by halving the spacing.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from freqdyn.errors import InputError
from freqdyn.inputs.fourier import riemann_transform, tensor_grid
from freqdyn.inputs.symbols import axis_symbols, parse_expression


def _gaussian_term_transform(term: sp.Expr, x, xi) -> sp.Expr | None:
    """Closed-form transform of C·exp(P(x)), P quadratic with Re(−Hess P/2) ≻ 0; else None."""
    term = sp.powsimp(sp.expand_power_exp(term), combine="exp")
    coeff, exps = sp.S.One, sp.S.Zero
    for factor in sp.Mul.make_args(term):
        if factor.is_constant() or not factor.free_symbols & set(x):
            coeff *= factor
        elif isinstance(factor, sp.exp):
            exps += factor.args[0]
        else:
            return None
    poly_expr = sp.expand(exps)
    try:
        poly = sp.Poly(poly_expr, *x)
    except sp.PolynomialError:
        return None
    if poly.total_degree() != 2:
        return None
    d = len(x)
    hess = sp.hessian(poly_expr, x)
    a_mat = -hess / 2
    b_vec = sp.Matrix([sp.diff(poly_expr, xi_) for xi_ in x]).subs({xi_: 0 for xi_ in x})
    c0 = poly_expr.subs({xi_: 0 for xi_ in x})
    a_num = np.array(a_mat.evalf(), dtype=complex)
    if not np.all(np.linalg.eigvalsh(0.5 * (a_num.real + a_num.real.T)) > 0):
        return None
    beta = b_vec - 2 * sp.pi * sp.I * sp.Matrix(xi)
    quad = (beta.T * a_mat.inv() * beta)[0, 0] / 4
    return coeff * sp.pi ** sp.Rational(d, 2) / sp.sqrt(a_mat.det()) * sp.exp(sp.expand(quad) + c0)


@functools.lru_cache(maxsize=64)
def closed_form_transform(expr: sp.Expr, dim: int) -> sp.Expr | None:
    """ĝ(ξ) in closed form for sums of Gaussian-windowed exponentials, else None.

    Cached by expression (sympy expressions are immutable): a study loads its case once
    per network, and the symbolic simplification is most of a case's load time."""
    x = axis_symbols("x", dim)
    xi = axis_symbols("xi", dim)
    expanded = sp.expand(expr.rewrite(sp.exp))
    parts = []
    for term in sp.Add.make_args(expanded):
        part = _gaussian_term_transform(term, x, xi)
        if part is None:
            return None
        parts.append(part)
    return sp.Add(*parts)


#: The range of max|g| (squares and fourth powers of it stay finite in double precision).
TARGET_RANGE = (1e-50, 1e50)


class Target:
    """g(x) with numeric evaluation and the transform ĝ(ξ) (convention B)."""

    def __init__(self, text: str, dim: int, field: str = "target.g"):
        self.text = text
        self.dim = dim
        self.field = field
        try:
            self.expr = parse_expression(text, "x", dim)
        except ValueError as exc:
            raise InputError(field, str(exc)) from None
        x = axis_symbols("x", dim)
        self._fn = sp.lambdify(x, self.expr, modules="numpy")
        self.radius = self._window_radius()
        self.hat_expr = closed_form_transform(self.expr, dim)
        if self.hat_expr is not None:
            self._hat_fn = sp.lambdify(axis_symbols("xi", dim), self.hat_expr, modules="numpy")
        self.method = "closed form" if self.hat_expr is not None else "quadrature"

    def __call__(self, x) -> np.ndarray:
        """g at points of shape (..., d) (or (...,) in d = 1)."""
        x = np.asarray(x, dtype=float)
        if self.dim == 1 and (x.ndim == 0 or x.shape[-1] != 1):
            x = x[..., None]
        with np.errstate(all="ignore"):
            vals = np.asarray(self._fn(*np.moveaxis(x, -1, 0)))
        if np.iscomplexobj(vals):
            imag = np.abs(vals.imag)
            if np.any(imag > 0):
                raise InputError(self.field, f"is complex (|Im g| up to {np.nanmax(imag):.3g}); "
                                             "the target must be real: drop the I")
            vals = vals.real
        return np.broadcast_to(np.asarray(vals, dtype=float), x.shape[:-1]).copy()

    def _window_radius(self, rtol: float = 1e-13) -> float:
        """Max-norm radius (at most 60) beyond which |g| < rtol · max|g|.

        Checks that g is finite and decays: |g| near |x| = 60 below 1e-6 · max|g|.
        """
        axis = np.linspace(-60.0, 60.0, {1: 24001, 2: 481, 3: 97}[self.dim])
        pts = tensor_grid([axis] * self.dim)
        vals = self(pts)
        bad = ~np.isfinite(vals)
        if bad.any():
            at = pts.reshape(-1, self.dim)[np.argmax(bad.ravel())]
            raise InputError(self.field, f"is NaN or infinite at x = {at.tolist()}")
        peak = np.abs(vals).max()
        if peak == 0:
            raise InputError(self.field, "is identically zero: nothing to learn")
        if not TARGET_RANGE[0] <= peak <= TARGET_RANGE[1]:
            raise InputError(self.field, f"reaches |g| = {peak:.3g}; losses and norms square "
                                         f"it, so freqdyn takes {TARGET_RANGE[0]:g} <= max|g| "
                                         f"<= {TARGET_RANGE[1]:g}: rescale the target")
        radius = np.max(np.abs(pts), axis=-1)
        edge = float(np.abs(vals[radius >= 59.0]).max())
        if edge > 1e-6 * peak:
            raise InputError(
                self.field,
                f"does not decay: |g| = {edge:.3g} near |x| = 60 (max {peak:.3g}); the error "
                "PDE needs g in L2(R^d): multiply by a window such as exp(-x**2/2)",
            )
        return float(radius[np.abs(vals) >= rtol * peak].max())

    def transform(self, xi) -> np.ndarray:
        """ĝ(ξ) at points of shape (..., d) (or (...,) in d = 1), complex."""
        xi = np.asarray(xi, dtype=float)
        if self.dim == 1 and (xi.ndim == 0 or xi.shape[-1] != 1):
            xi = xi[..., None]
        if self.hat_expr is not None:
            vals = self._hat_fn(*np.moveaxis(xi, -1, 0))
            return np.broadcast_to(np.asarray(vals, dtype=complex), xi.shape[:-1]).copy()
        return self._quadrature(xi)

    def transform_on_grid(self, xi_axes: list[np.ndarray]) -> np.ndarray:
        """ĝ on the tensor grid spanned by ``xi_axes``, shape (m0, ..., m_{d-1})."""
        if self.hat_expr is not None:
            return self.transform(tensor_grid(xi_axes))
        return self._quadrature_grid(xi_axes)

    def _quadrature(self, xi: np.ndarray) -> np.ndarray:
        flat = xi.reshape(-1, self.dim)
        out = np.empty(flat.shape[0], dtype=complex)
        for i, point in enumerate(flat):
            out[i] = self._quadrature_grid([np.array([c]) for c in point]).ravel()[0]
        return out.reshape(xi.shape[:-1])

    def _quadrature_grid(self, xi_axes: list[np.ndarray]) -> np.ndarray:
        """Riemann sum over [−R, R]^d, halving h until two levels agree to 1e-12."""
        r = self.radius * 1.05 + 1e-3
        xi_max = max(float(np.max(np.abs(a))) for a in xi_axes)
        n = int(np.ceil(2 * r * 4 * max(xi_max, 1.0))) + 1
        prev = None
        for _ in range(8):
            axis = np.linspace(-r, r, n)
            vals = self(tensor_grid([axis] * self.dim))
            cur = riemann_transform(vals, [axis] * self.dim, xi_axes)
            if prev is not None:
                scale = max(np.abs(cur).max(), 1e-300)
                if np.abs(cur - prev).max() <= 1e-12 * scale:
                    return cur
            prev, n = cur, 2 * n - 1
        return cur

    def l2_norm_squared(self) -> float:
        """∫|g|² dx by a Riemann sum over the window (= ∫|ĝ|² dξ by Parseval)."""
        r = self.radius * 1.05 + 1e-3
        n = {1: 20001, 2: 801, 3: 161}[self.dim]
        axis = np.linspace(-r, r, n)
        h = axis[1] - axis[0]
        return float(np.sum(self(tensor_grid([axis] * self.dim)) ** 2) * h**self.dim)


def spectral_peaks(target: Target, bounds: np.ndarray, rtol: float = 0.05,
                   max_peaks: int = 8) -> np.ndarray:
    """Local maxima of |ĝ| in the half-space ξ_0 ≥ 0 inside ``bounds``, shape (k, d).

    Peaks lower than ``rtol`` times the highest one are dropped; the rest are
    refined by parabolic interpolation on a fine grid and sorted by |ξ|.
    """
    n = {1: 8001, 2: 241, 3: 61}[target.dim]
    axes = [np.linspace(lo, hi, n) for lo, hi in bounds]
    return magnitude_peaks(np.abs(target.transform_on_grid(axes)), axes, rtol, max_peaks)


def magnitude_peaks(mag: np.ndarray, axes: list[np.ndarray], rtol: float = 0.05,
                    max_peaks: int = 8, strongest: bool = False) -> np.ndarray:
    """Local maxima of a spectrum ``mag`` on the grid ``axes`` with ξ_0 ≥ 0, shape (k, d).

    Peaks below ``rtol`` times the highest are dropped; in d = 1 the rest are refined by
    parabolic interpolation; they are sorted by |ξ| and the first ``max_peaks`` kept (with
    ``strongest``, the ``max_peaks`` highest, then sorted by |ξ|: for noisy data spectra).
    """
    d = len(axes)
    n = mag.shape[0]
    padded = np.pad(mag, 1, constant_values=-np.inf)
    is_max = np.ones(mag.shape, dtype=bool)
    for offset in np.ndindex(*([3] * d)):
        if all(o == 1 for o in offset):
            continue
        sl = tuple(slice(o, o + s) for o, s in zip(offset, mag.shape, strict=True))
        is_max &= mag >= padded[sl]
    is_max &= mag >= rtol * mag.max()
    idx = np.argwhere(is_max)
    pts = np.array([[axes[k][i[k]] for k in range(d)] for i in idx])
    if d == 1:
        # parabolic refinement of the 1-D maxima
        h = axes[0][1] - axes[0][0]
        refined = []
        for (i,), p in zip(idx, pts, strict=True):
            if 0 < i < n - 1:
                ym, y0, yp = mag[i - 1], mag[i], mag[i + 1]
                denom = ym - 2 * y0 + yp
                shift = 0.5 * (ym - yp) / denom if denom != 0 else 0.0
                refined.append([p[0] + shift * h])
            else:
                refined.append(list(p))
        pts = np.array(refined)
    keep = pts[:, 0] >= -1e-12
    pts, heights = pts[keep], mag[is_max][keep]
    if strongest:
        pts = pts[np.argsort(-heights, kind="stable")[:max_peaks]]
    order = np.argsort(np.linalg.norm(pts, axis=-1))
    return pts[order][:max_peaks]
