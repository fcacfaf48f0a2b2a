"""Initialization densities ρ_w of the first-layer frequencies w ∈ ℝ^d.

One object per density serves theory, finite elements and the trainer alike:

* ``symbolic()`` — the density as a sympy expression in ``w`` (d = 1) or ``w0, w1, w2``;
* ``density(w)`` — vectorised numeric density, ``w`` of shape ``(..., d)``;
* ``even_density(w)`` — ρ_w^sym(w) = ½(ρ_w(w) + ρ_w(−w)), the only part the NTK sees;
* ``char(z)`` — the even characteristic function k(z) = E[cos 2π w·z] (convention B),
  in closed form where one exists and by accurate quadrature otherwise;
* ``sample(n, generator)`` — n i.i.d. draws as a float64 torch tensor of shape (n, d),
  reproducible from the torch generator alone.

Units: w and ξ are frequencies in cycles per unit of x (convention B, features
cos 2π w·x), so the density has units of (unit of x)^d.

Families (case key ``network.rho_w.family``):

========== ================================ ==========================================
family     parameters                       k(z) = E cos(2π w·z)
========== ================================ ==========================================
gaussian   scale s                          exp(−2π² s² |z|²)
uniform    bound B (box [−B, B]^d)          Π_i sin(2πB z_i)/(2πB z_i)
laplace    scale b (independent axes)       Π_i 1/(1 + (2πb z_i)²)
student_t  scale s, dof ν (isotropic)       K_{ν/2}(y) y^{ν/2} / (Γ(ν/2) 2^{ν/2−1}),
                                            y = 2π s √ν |z|
mixture    components (each with weight)    Σ_k weight_k k_k(z)
expression density (sympy text), support    quadrature
========== ================================ ==========================================

Every base family also takes an optional ``center`` (scalar or list of d numbers):
the density is shifted to c and k(z) gains the factor cos(2π c·z).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod

import numpy as np
import sympy as sp
import torch
from scipy import integrate, special

from freqdyn.errors import CaseError
from freqdyn.inputs.symbols import axis_symbols, parse_expression

FAMILIES = ("gaussian", "uniform", "laplace", "student_t", "mixture", "expression")


def _as_points(w: np.ndarray, dim: int) -> np.ndarray:
    """Return ``w`` as an array of shape (..., dim); a 1-D array is taken as points in d = 1."""
    w = np.asarray(w, dtype=float)
    if dim == 1 and (w.ndim == 0 or w.shape[-1] != 1):
        w = w[..., None]
    if w.shape[-1] != dim:
        raise ValueError(f"expected points with last axis of length {dim}, got shape {w.shape}")
    return w


class Density(ABC):
    """A probability density ρ_w on ℝ^d (d = 1, 2, 3) of the first-layer frequencies."""

    family: str

    def __init__(self, dim: int, center=None):
        self.dim = dim
        self.center = np.zeros(dim) if center is None else np.broadcast_to(
            np.asarray(center, dtype=float), (dim,)
        ).copy()

    # -- symbolic ---------------------------------------------------------------------
    @abstractmethod
    def _symbolic_centered(self, w: tuple[sp.Symbol, ...]) -> sp.Expr:
        """The density centred at the origin, in the symbols ``w``."""

    def symbolic(self) -> sp.Expr:
        """ρ_w as a sympy expression in ``w`` (d = 1) or ``w0, w1, w2``."""
        w = axis_symbols("w", self.dim)
        shifted = tuple(wi - sp.nsimplify(ci) for wi, ci in zip(w, self.center, strict=True))
        return self._symbolic_centered(w).subs(dict(zip(w, shifted, strict=True)),
                                               simultaneous=True)

    def char_symbolic(self) -> sp.Expr | None:
        """k(z) = E cos(2π w·z) as a sympy expression in ``z``/``z0..``, or None."""
        z = axis_symbols("z", self.dim)
        base = self._char_symbolic_centered(z)
        if base is None:
            return None
        cz = sum(sp.nsimplify(c) * zi for c, zi in zip(self.center, z, strict=True))
        return sp.cos(2 * sp.pi * cz) * base if cz != 0 else base

    def _char_symbolic_centered(self, z):  # noqa: ARG002 - overridden where closed form exists
        return None

    # -- numeric ----------------------------------------------------------------------
    def density(self, w) -> np.ndarray:
        """ρ_w at points ``w`` of shape (..., d) (or (...,) when d = 1)."""
        w = _as_points(w, self.dim)
        return self._density_centered(w - self.center)

    @abstractmethod
    def _density_centered(self, w: np.ndarray) -> np.ndarray: ...

    def even_density(self, w) -> np.ndarray:
        """ρ_w^sym(w) = ½(ρ_w(w) + ρ_w(−w)): the part of ρ_w that the NTK sees."""
        w = _as_points(w, self.dim)
        return 0.5 * (self.density(w) + self.density(-w))

    def char(self, z) -> np.ndarray:
        """k(z) = E_{w∼ρ_w} cos(2π w·z) at points ``z`` of shape (..., d)."""
        z = _as_points(z, self.dim)
        phase = np.cos(2 * np.pi * (z @ self.center)) if np.any(self.center) else 1.0
        return phase * self._char_centered(z)

    @abstractmethod
    def _char_centered(self, z: np.ndarray) -> np.ndarray: ...

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n i.i.d. frequencies, float64 tensor of shape (n, d), drawn with ``generator``."""
        if n < 0:
            raise ValueError(f"sample size must be >= 0, got {n}")
        return self._sample_centered(n, generator) + torch.as_tensor(self.center)

    @abstractmethod
    def _sample_centered(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    # -- geometry ---------------------------------------------------------------------
    @property
    def support(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The box (lower, upper) containing supp ρ_w when it is compact, else None."""
        return None

    def extent(self, rtol: float = 1e-12) -> float:
        """A radius R (max-norm) beyond which ρ_w^sym < rtol · max ρ_w^sym.

        For a compact support this is the support's max-norm radius.  Used to size
        frequency grids and quadratures.
        """
        if self.support is not None:
            lo, hi = self.support
            return float(max(np.max(np.abs(lo)), np.max(np.abs(hi))))
        return self._tail_radius(rtol)

    def _tail_radius(self, rtol: float) -> float:
        """Scan max-norm shells outward until the density on the shell drops below rtol·peak."""
        radii = np.geomspace(1e-3, 1e7, 401)
        shell = _shell_directions(self.dim)
        values = np.array([self.even_density(r * shell).max() for r in radii])
        peak = max(values.max(), float(self.even_density(np.zeros(self.dim))))
        above = np.nonzero(values >= rtol * peak)[0]
        if above.size == 0:
            return float(radii[0])
        if above[-1] == radii.size - 1:
            return float(radii[-1])
        return float(radii[above[-1] + 1])

    def describe(self) -> str:
        return f"{self.family} density in d = {self.dim}"


def _shell_directions(dim: int, per_axis: int = 9) -> np.ndarray:
    """Points on the boundary of the max-norm unit ball [−1, 1]^d (faces sampled on a grid)."""
    if dim == 1:
        return np.array([[-1.0], [1.0]])
    t = np.linspace(-1, 1, per_axis)
    faces = []
    for axis in range(dim):
        grids = np.meshgrid(*([t] * (dim - 1)), indexing="ij")
        rest = np.stack([g.ravel() for g in grids], axis=-1)
        for sign in (-1.0, 1.0):
            pts = np.insert(rest, axis, sign, axis=1)
            faces.append(pts)
    return np.concatenate(faces)


# ---------------------------------------------------------------------------------------
# Closed-form families
# ---------------------------------------------------------------------------------------


class Gaussian(Density):
    """ρ_w = 𝒩(c, s² I): (2π s²)^{−d/2} exp(−|w − c|²/(2 s²))."""

    family = "gaussian"

    def __init__(self, dim: int, scale: float, center=None):
        super().__init__(dim, center)
        self.scale = float(scale)

    def _symbolic_centered(self, w):
        s = sp.nsimplify(self.scale)
        r2 = sum(wi**2 for wi in w)
        return (2 * sp.pi * s**2) ** sp.Rational(-self.dim, 2) * sp.exp(-r2 / (2 * s**2))

    def _char_symbolic_centered(self, z):
        s = sp.nsimplify(self.scale)
        return sp.exp(-2 * sp.pi**2 * s**2 * sum(zi**2 for zi in z))

    def _density_centered(self, w):
        s = self.scale
        return (2 * np.pi * s * s) ** (-self.dim / 2) * np.exp(-np.sum(w * w, -1) / (2 * s * s))

    def _char_centered(self, z):
        return np.exp(-2 * np.pi**2 * self.scale**2 * np.sum(z * z, -1))

    def _sample_centered(self, n, generator):
        return self.scale * torch.randn(n, self.dim, generator=generator, dtype=torch.float64)

    def extent(self, rtol: float = 1e-12) -> float:
        return float(np.max(np.abs(self.center)) + self.scale * math.sqrt(2 * math.log(1 / rtol)))


class Uniform(Density):
    """ρ_w uniform on the box c + [−B, B]^d, value (2B)^{−d}."""

    family = "uniform"

    def __init__(self, dim: int, bound: float, center=None):
        super().__init__(dim, center)
        self.bound = float(bound)

    def _symbolic_centered(self, w):
        b = sp.nsimplify(self.bound)
        inside = sp.And(*[sp.Abs(wi) <= b for wi in w])
        return sp.Piecewise(((2 * b) ** (-self.dim), inside), (0, True))

    def _char_symbolic_centered(self, z):
        b = sp.nsimplify(self.bound)
        return sp.Mul(*[sp.sinc(2 * sp.pi * b * zi) for zi in z])

    def _density_centered(self, w):
        inside = np.all(np.abs(w) <= self.bound, axis=-1)
        return np.where(inside, (2 * self.bound) ** (-self.dim), 0.0)

    def _char_centered(self, z):
        return np.prod(np.sinc(2 * self.bound * z), axis=-1)

    def _sample_centered(self, n, generator):
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        return self.bound * (2 * u - 1)

    @property
    def support(self):
        return self.center - self.bound, self.center + self.bound


class Laplace(Density):
    """ρ_w = Π_i exp(−|w_i − c_i|/b)/(2b): independent Laplace axes."""

    family = "laplace"

    def __init__(self, dim: int, scale: float, center=None):
        super().__init__(dim, center)
        self.scale = float(scale)

    def _symbolic_centered(self, w):
        b = sp.nsimplify(self.scale)
        return sp.Mul(*[sp.exp(-sp.Abs(wi) / b) / (2 * b) for wi in w])

    def _char_symbolic_centered(self, z):
        b = sp.nsimplify(self.scale)
        return sp.Mul(*[1 / (1 + (2 * sp.pi * b * zi) ** 2) for zi in z])

    def _density_centered(self, w):
        b = self.scale
        return np.prod(np.exp(-np.abs(w) / b) / (2 * b), axis=-1)

    def _char_centered(self, z):
        return np.prod(1.0 / (1.0 + (2 * np.pi * self.scale * z) ** 2), axis=-1)

    def _sample_centered(self, n, generator):
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64) - 0.5
        return -self.scale * torch.sign(u) * torch.log1p(-2 * u.abs())

    def extent(self, rtol: float = 1e-12) -> float:
        return float(np.max(np.abs(self.center)) + self.scale * math.log(1 / rtol))


class StudentT(Density):
    """Isotropic multivariate Student t with scale s and ν degrees of freedom:

    ρ_w = Γ((ν+d)/2) / (Γ(ν/2) (νπ)^{d/2} s^d) · (1 + |w − c|²/(ν s²))^{−(ν+d)/2}.
    """

    family = "student_t"

    def __init__(self, dim: int, scale: float, dof: float, center=None):
        super().__init__(dim, center)
        self.scale = float(scale)
        self.dof = float(dof)

    def _norm(self):
        nu, d, s = self.dof, self.dim, self.scale
        return math.exp(
            math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - (d / 2) * math.log(nu * math.pi)
        ) / s**d

    def _symbolic_centered(self, w):
        nu, s, d = sp.nsimplify(self.dof), sp.nsimplify(self.scale), self.dim
        r2 = sum(wi**2 for wi in w)
        norm = sp.gamma((nu + d) / 2) / (sp.gamma(nu / 2) * (nu * sp.pi) ** sp.Rational(d, 2)
                                          * s**d)
        return norm * (1 + r2 / (nu * s**2)) ** (-(nu + d) / 2)

    def _char_symbolic_centered(self, z):
        nu, s = sp.nsimplify(self.dof), sp.nsimplify(self.scale)
        y = 2 * sp.pi * s * sp.sqrt(nu) * sp.sqrt(sum(zi**2 for zi in z))
        return sp.besselk(nu / 2, y) * y ** (nu / 2) / (sp.gamma(nu / 2) * 2 ** (nu / 2 - 1))

    def _density_centered(self, w):
        nu, d, s = self.dof, self.dim, self.scale
        return self._norm() * (1 + np.sum(w * w, -1) / (nu * s * s)) ** (-(nu + d) / 2)

    def _char_centered(self, z):
        nu = self.dof
        y = 2 * np.pi * self.scale * math.sqrt(nu) * np.sqrt(np.sum(z * z, -1))
        out = np.ones_like(y)
        pos = y > 0
        yp = y[pos]
        # K_{ν/2}(y) y^{ν/2} / (Γ(ν/2) 2^{ν/2-1}), with kve for stability at large y.
        log_val = (np.log(special.kve(nu / 2, yp)) - yp + (nu / 2) * np.log(yp)
                   - math.lgamma(nu / 2) - (nu / 2 - 1) * math.log(2))
        out[pos] = np.exp(log_val)
        return out

    def _sample_centered(self, n, generator):
        normal = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
        # chi2_ν / ν by its inverse survival function: exact, and driven by the generator.
        chi2 = special.chdtri(self.dof, np.clip(u, 1e-300, 1.0)) / self.dof
        return self.scale * normal / torch.from_numpy(np.sqrt(chi2))[:, None]


class Mixture(Density):
    """ρ_w = Σ_k p_k ρ_k with weights p_k > 0 normalised to sum 1."""

    family = "mixture"

    def __init__(self, dim: int, components: list[Density], weights):
        super().__init__(dim, None)
        self.components = components
        weights = np.asarray(weights, dtype=float)
        self.weights = weights / weights.sum()

    def _symbolic_centered(self, w):
        ws = axis_symbols("w", self.dim)
        return sp.Add(*[
            sp.nsimplify(p) * c.symbolic().subs(dict(zip(ws, w, strict=True)))
            for p, c in zip(self.weights, self.components, strict=True)
        ])

    def char_symbolic(self):
        parts = [c.char_symbolic() for c in self.components]
        if any(p is None for p in parts):
            return None
        return sp.Add(*[sp.nsimplify(p) * e for p, e in zip(self.weights, parts, strict=True)])

    def _density_centered(self, w):
        return sum(p * c.density(w) for p, c in zip(self.weights, self.components, strict=True))

    def _char_centered(self, z):
        return sum(p * c.char(z) for p, c in zip(self.weights, self.components, strict=True))

    def _sample_centered(self, n, generator):
        probs = torch.as_tensor(self.weights)
        which = torch.multinomial(probs, n, replacement=True, generator=generator) if n else \
            torch.zeros(0, dtype=torch.long)
        out = torch.empty(n, self.dim, dtype=torch.float64)
        for k, comp in enumerate(self.components):
            idx = torch.nonzero(which == k).flatten()
            if idx.numel():
                out[idx] = comp.sample(idx.numel(), generator)
        return out

    @property
    def support(self):
        boxes = [c.support for c in self.components]
        if any(b is None for b in boxes):
            return None
        return (np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0))

    def extent(self, rtol: float = 1e-12) -> float:
        return max(c.extent(rtol) for c in self.components)


# ---------------------------------------------------------------------------------------
# Expression densities
# ---------------------------------------------------------------------------------------


class Expression(Density):
    """A density given as sympy text, normalised automatically.

    ``support`` (optional box ``[lo, hi]``, the same for every axis, or per-axis
    ``[[lo0, hi0], ...]``) restricts the density to a box; without it the density
    lives on ℝ^d and must decay.  In d = 1 normalisation and k(z) use adaptive
    quadrature on the (possibly infinite) line (QUADPACK QAWF for the cosine
    transform), and sampling uses the numeric inverse CDF on a fine sinh-mapped grid.
    In d = 2, 3 they use a tensor grid over the effective box and exact rejection
    sampling from a piecewise-constant envelope.
    """

    family = "expression"

    def __init__(self, dim: int, text: str, support=None, field: str = "network.rho_w"):
        super().__init__(dim, None)
        self.text = text
        self.field = field
        try:
            self.raw = parse_expression(text, "w", dim)
        except ValueError as exc:
            raise CaseError(f"{field}.density", str(exc)) from None
        self._box = None if support is None else _parse_box(support, dim, f"{field}.support")
        w = axis_symbols("w", dim)
        raw_fn = sp.lambdify(w, self.raw, modules="numpy")

        def raw_numeric(pts):
            with np.errstate(all="ignore"):
                vals = np.asarray(raw_fn(*np.moveaxis(pts, -1, 0)), dtype=float)
            vals = np.broadcast_to(vals, pts.shape[:-1]).copy()
            if self._box is not None:
                lo, hi = self._box
                vals[~np.all((pts >= lo) & (pts <= hi), axis=-1)] = 0.0
            return vals

        self._raw_numeric = raw_numeric
        self._box_eff = self._effective_box()
        self._check_values()
        self.mass = self._total_mass()
        if not np.isfinite(self.mass) or self.mass <= 0:
            raise CaseError(f"{field}.density", f"is not normalisable (integral = {self.mass})")
        self._build_sampler()

    # -- set-up ---------------------------------------------------------------------
    def _effective_box(self):
        """The box holding all but a negligible part of the density."""
        if self._box is not None:
            return self._box
        shell = _shell_directions(self.dim)
        peak = np.max(self._raw_numeric(np.linspace(-1, 1, 41)[:, None] * np.ones(self.dim)))
        radii = np.geomspace(0.5, 1e6, 200)
        for r in radii:
            vals = self._raw_numeric(r * shell)
            if not np.all(np.isfinite(vals)):
                continue  # reported by _check_values
            if np.max(np.abs(vals)) < 1e-13 * max(peak, 1e-300):
                return -r * np.ones(self.dim), r * np.ones(self.dim)
        if self.dim == 1:
            return None  # heavy tails: 1-D quadrature works on the infinite line
        raise CaseError(
            f"{self.field}.density",
            "is not normalisable or has too heavy tails for d > 1: it is still "
            f"{np.max(self._raw_numeric(radii[-1] * shell)):.3g} at |w| = {radii[-1]:.0e}; "
            f"give {self.field}.support = [lo, hi] to restrict it to a box",
        )

    def _check_grid(self, per_axis: int):
        box = self._box_eff if self._box_eff is not None else (-50 * np.ones(1), 50 * np.ones(1))
        axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(*box, strict=True)]
        grids = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=-1)

    def _check_values(self):
        pts = self._check_grid({1: 4001, 2: 201, 3: 61}[self.dim])
        vals = self._raw_numeric(pts)
        bad = ~np.isfinite(vals)
        if bad.any():
            at = pts[np.argmax(bad)]
            raise CaseError(f"{self.field}.density", f"is NaN or infinite at w = {at.tolist()}")
        if vals.min() < 0:
            at = pts[np.argmin(vals)]
            raise CaseError(
                f"{self.field}.density",
                f"takes negative values (min {vals.min():.3g} at w = {at.tolist()})",
            )
        if vals.max() <= 0:
            raise CaseError(f"{self.field}.density", "is zero everywhere on its domain")

    def _grid(self, per_axis: int):
        """Midpoint grid over the effective box: (points, cell volume, axes)."""
        lo, hi = self._box_eff
        axes = [lo[i] + (np.arange(per_axis) + 0.5) * (hi[i] - lo[i]) / per_axis
                for i in range(self.dim)]
        grids = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([g.ravel() for g in grids], axis=-1)
        vol = float(np.prod((hi - lo) / per_axis))
        return pts, vol, axes

    def _total_mass(self) -> float:
        if self.dim == 1:
            f = lambda t: float(self._raw_numeric(np.array([[t]]))[0])  # noqa: E731
            if self._box_eff is None:
                return self._mass_on_line(f)
            lo, hi = self._box_eff[0][0], self._box_eff[1][0]
            val, _ = integrate.quad(f, lo, hi, limit=500, points=[0.0] if lo < 0 < hi else None)
            return val
        pts, vol, _ = self._grid({2: 400, 3: 120}[self.dim])
        return float(self._raw_numeric(pts).sum() * vol)

    def _mass_on_line(self, f) -> float:
        """∫_ℝ f with a divergence check: the mass on [−R, R] must converge as R grows."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            masses, radii = [], np.geomspace(1.0, 1e8, 17)
            prev = 0.0
            for r_lo, r_hi in zip(np.concatenate([[0.0], radii[:-1]]), radii, strict=True):
                seg = integrate.quad(f, r_lo, r_hi, limit=500)[0] + \
                    integrate.quad(f, -r_hi, -r_lo, limit=500)[0]
                prev += seg
                masses.append(prev)
            increments = np.diff(masses)
            if increments[-1] > 1e-6 * masses[-1]:
                raise CaseError(
                    f"{self.field}.density",
                    f"is not normalisable: its integral over [-R, R] keeps growing "
                    f"({masses[-5]:.4g} at R = {radii[-5]:.0e}, {masses[-1]:.4g} at "
                    f"R = {radii[-1]:.0e})",
                )
            tail = (integrate.quad(f, radii[-1], np.inf)[0]
                    + integrate.quad(f, -np.inf, -radii[-1])[0])
        return masses[-1] + tail

    def _build_sampler(self):
        if self.dim == 1:
            if self._box_eff is None:
                # sinh-mapped grid: fine near the bulk, reaching |w| ~ 1e8 in the tails.
                u = np.linspace(-20.0, 20.0, 200_001)
                grid = np.sinh(u) * 1e-1
            else:
                grid = np.linspace(self._box_eff[0][0], self._box_eff[1][0], 200_001)
            dens = self._raw_numeric(grid[:, None]) / self.mass
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
            cdf /= cdf[-1]
            keep = np.concatenate([[True], np.diff(cdf) > 0])
            self._cdf, self._cdf_grid = cdf[keep], grid[keep]
        else:
            per_axis = {2: 128, 3: 40}[self.dim]
            pts, vol, axes = self._grid(per_axis)
            self._cell = np.array([(a[1] - a[0]) for a in axes])
            sub = np.stack(np.meshgrid(*([np.array([-0.5, 0.0, 0.5])] * self.dim),
                                       indexing="ij"), -1).reshape(-1, self.dim)
            corner_vals = np.stack([self._raw_numeric(pts + s * self._cell) for s in sub], -1)
            self._cell_centers = pts
            self._envelope = 1.5 * corner_vals.max(-1) + 1e-14 * corner_vals.max()

    # -- interface ------------------------------------------------------------------
    def _symbolic_centered(self, w):
        expr = self.raw / sp.Float(self.mass, 17)
        if self._box is not None:
            lo, hi = self._box
            inside = sp.And(*[(wi >= sp.Float(a)) & (wi <= sp.Float(b))
                              for wi, a, b in zip(w, lo, hi, strict=True)])
            expr = sp.Piecewise((expr, inside), (0, True))
        return expr

    def _density_centered(self, w):
        return self._raw_numeric(w) / self.mass

    def _char_centered(self, z):
        z = np.asarray(z, dtype=float)
        flat = z.reshape(-1, self.dim)
        if self.dim == 1:
            key = np.abs(flat[:, 0])
            uniq, inverse = np.unique(key, return_inverse=True)
            vals = np.array([self._char_1d(float(t)) for t in uniq])
            return vals[inverse].reshape(z.shape[:-1])
        pts, vol, _ = self._grid({2: 400, 3: 100}[self.dim])
        dens = self.even_density(pts) * vol
        out = np.empty(flat.shape[0])
        for start in range(0, flat.shape[0], 512):
            block = flat[start:start + 512]
            out[start:start + 512] = np.cos(2 * np.pi * block @ pts.T) @ dens
        return out.reshape(z.shape[:-1])

    def _char_1d(self, t: float) -> float:
        """E cos(2π w t) = ∫ ρ_sym(w) cos(2π t w) dw by QUADPACK (QAWO/QAWF)."""
        f = lambda w: float(self.even_density(np.array([[w]]))[0])  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            if self._box_eff is None:
                if t == 0:
                    return 1.0
                val = integrate.quad(f, 0, np.inf, weight="cos", wvar=2 * np.pi * t, limlst=200)[0]
                return 2.0 * val
            r = float(max(abs(self._box_eff[0][0]), abs(self._box_eff[1][0])))
            if t == 0:
                return 2.0 * integrate.quad(f, 0, r, limit=500)[0]
            return 2.0 * integrate.quad(f, 0, r, weight="cos", wvar=2 * np.pi * t, limit=1000)[0]

    def _sample_centered(self, n, generator):
        if self.dim == 1:
            u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
            return torch.from_numpy(np.interp(u, self._cdf, self._cdf_grid))[:, None]
        out = []
        probs = torch.as_tensor(self._envelope / self._envelope.sum())
        need = n
        while need > 0:
            batch = max(2 * need, 64)
            cells = torch.multinomial(probs, batch, replacement=True, generator=generator).numpy()
            jitter = torch.rand(batch, self.dim, generator=generator, dtype=torch.float64).numpy()
            accept_u = torch.rand(batch, generator=generator, dtype=torch.float64).numpy()
            w = self._cell_centers[cells] + (jitter - 0.5) * self._cell
            env = self._envelope[cells]
            dens = self._raw_numeric(w)
            if np.any(dens > env):
                raise RuntimeError("rejection envelope below the density; refine the grid")
            keep = w[accept_u * env < dens][:need]
            out.append(keep)
            need -= keep.shape[0]
        return torch.from_numpy(np.concatenate(out))

    @property
    def support(self):
        return self._box

    def extent(self, rtol: float = 1e-12) -> float:
        if self._box is not None:
            return float(np.max(np.abs(np.concatenate(self._box))))
        return self._tail_radius(rtol)


def _parse_box(value, dim: int, field: str):
    arr = np.asarray(value, dtype=float)
    if arr.shape == (2,):
        arr = np.tile(arr, (dim, 1))
    if arr.shape != (dim, 2):
        raise CaseError(field, f"must be [lo, hi] or {dim} pairs [[lo, hi], ...], got {value!r}")
    if not np.all(arr[:, 0] < arr[:, 1]):
        raise CaseError(field, f"needs lo < hi on every axis, got {value!r}")
    return arr[:, 0].copy(), arr[:, 1].copy()


# ---------------------------------------------------------------------------------------
# Construction from a case file
# ---------------------------------------------------------------------------------------


def _positive(cfg: dict, key: str, field: str) -> float:
    if key not in cfg:
        raise CaseError(f"{field}.{key}", "is required for this family")
    val = cfg[key]
    if isinstance(val, bool) or not isinstance(val, int | float):
        raise CaseError(f"{field}.{key}", f"must be a number, got {val!r}")
    if not math.isfinite(val) or val <= 0:
        raise CaseError(f"{field}.{key}", f"must be a finite number > 0, got {val!r}")
    return float(val)


def _center(cfg: dict, dim: int, field: str):
    if "center" not in cfg:
        return None
    try:
        c = np.broadcast_to(np.asarray(cfg["center"], dtype=float), (dim,))
    except (ValueError, TypeError):
        raise CaseError(f"{field}.center", f"must be a number or {dim} numbers, "
                                           f"got {cfg['center']!r}") from None
    if not np.all(np.isfinite(c)):
        raise CaseError(f"{field}.center", "must be finite")
    return c


_ALLOWED_KEYS = {
    "gaussian": {"scale", "center"},
    "uniform": {"bound", "center"},
    "laplace": {"scale", "center"},
    "student_t": {"scale", "dof", "center"},
    "mixture": {"components"},
    "expression": {"density", "support"},
}


def density_from_config(cfg: dict, dim: int, field: str = "network.rho_w") -> Density:
    """Build the density described by a case-file table (``[network.rho_w]``)."""
    if not isinstance(cfg, dict):
        raise CaseError(field, f"must be a table, got {cfg!r}")
    if dim not in (1, 2, 3):
        raise CaseError("network.dim", f"must be 1, 2 or 3, got {dim!r}")
    family = cfg.get("family")
    if family not in FAMILIES:
        raise CaseError(f"{field}.family", f"must be one of {', '.join(FAMILIES)}; got {family!r}")
    extra = set(cfg) - _ALLOWED_KEYS[family] - {"family", "weight"}
    if extra:
        raise CaseError(field, f"unknown key(s) {sorted(extra)} for family {family!r}; "
                               f"allowed: {sorted(_ALLOWED_KEYS[family])}")
    center = _center(cfg, dim, field)
    if family == "gaussian":
        return Gaussian(dim, _positive(cfg, "scale", field), center)
    if family == "uniform":
        return Uniform(dim, _positive(cfg, "bound", field), center)
    if family == "laplace":
        return Laplace(dim, _positive(cfg, "scale", field), center)
    if family == "student_t":
        return StudentT(dim, _positive(cfg, "scale", field), _positive(cfg, "dof", field), center)
    if family == "mixture":
        comps = cfg.get("components")
        if not isinstance(comps, list) or not comps:
            raise CaseError(f"{field}.components", "must be a non-empty list of tables")
        parts, weights = [], []
        for i, comp in enumerate(comps):
            sub = f"{field}.components[{i}]"
            if not isinstance(comp, dict):
                raise CaseError(sub, f"must be a table, got {comp!r}")
            if comp.get("family") == "mixture":
                raise CaseError(f"{sub}.family", "a mixture component cannot itself be a mixture")
            weights.append(_positive(comp, "weight", sub))
            parts.append(density_from_config(comp, dim, sub))
        return Mixture(dim, parts, weights)
    text = cfg.get("density")
    if not isinstance(text, str):
        raise CaseError(f"{field}.density", "must be sympy text in "
                                            f"{', '.join(map(str, axis_symbols('w', dim)))}")
    return Expression(dim, text, cfg.get("support"), field)
