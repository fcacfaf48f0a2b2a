"""The density interface: :class:`Density` (symbolic, numeric, characteristic function,
sampling, support) and the geometry helpers shared by the families."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import sympy as sp
import torch

from freqdyn.inputs.symbols import axis_symbols

#: Most nodes a cosine rule may have (8 MiB of nodes and weights).
MAX_RULE_NODES = 2**19


def as_points(w: np.ndarray, dim: int) -> np.ndarray:
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
        w = as_points(w, self.dim)
        return self._density_centered(w - self.center)

    @abstractmethod
    def _density_centered(self, w: np.ndarray) -> np.ndarray: ...

    def even_density(self, w) -> np.ndarray:
        """ρ_w^sym(w) = ½(ρ_w(w) + ρ_w(−w)): the part of ρ_w that the NTK sees."""
        w = as_points(w, self.dim)
        return 0.5 * (self.density(w) + self.density(-w))

    def char(self, z) -> np.ndarray:
        """k(z) = E_{w∼ρ_w} cos(2π w·z) at points ``z`` of shape (..., d)."""
        z = as_points(z, self.dim)
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
        shell = shell_directions(self.dim)
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

    # -- quadrature -------------------------------------------------------------------
    def _rule_breaks(self) -> list[float]:
        """Break points on w ≥ 0 of the even 1D density's cosine rule: 0, the kinks
        (support edges, centre) and the outer radius last (d = 1)."""
        outer = self.extent(rtol=1e-16)
        edges = {0.0, outer, abs(float(self.center[0]))}
        if self.support is not None:
            edges |= {abs(float(self.support[0][0])), abs(float(self.support[1][0]))}
        return sorted(e for e in edges if e <= outer)

    def cosine_rule(self, lag_max: float, tol: float = 1e-12):
        """(w_q, W_q) with k(t) = Σ_q W_q cos(2π w_q t) to ``tol`` for all |t| ≤ lag_max.

        d = 1.  k(t) = 2∫_0^r ρ_sym(w) cos(2πtw) dw (r the radius beyond which ρ_sym <
        1e-16 of its peak) by composite 16-point Gauss–Legendre, panels broken at the
        density's kinks (:meth:`_rule_breaks`), starting at one panel per two oscillations
        of the largest lag and doubling the panels until the rule agrees with the doubled
        one to ``tol`` (k(0) = 1) on the largest lags and a spread of others.  None when
        no rule of at most :data:`MAX_RULE_NODES` nodes converges (a density too sharp
        for panels, a heavy tail, a long lag range).
        """
        edges = self._rule_breaks()
        x16, w16 = np.polynomial.legendre.leggauss(16)
        probe = np.unique(np.concatenate([np.linspace(0.0, lag_max, 49),
                                          lag_max * (1.0 - np.geomspace(1e-3, 0.1, 8))]))

        def rule(per_unit: float):
            nodes, weights = [], []
            for a, b in zip(edges[:-1], edges[1:], strict=True):
                cuts = np.linspace(a, b, max(1, int(np.ceil((b - a) * per_unit))) + 1)
                half = 0.5 * np.diff(cuts)[:, None]
                nodes.append((0.5 * (cuts[:-1] + cuts[1:])[:, None] + half * x16).ravel())
                weights.append((half * w16).ravel())
            nodes, weights = np.concatenate(nodes), np.concatenate(weights)
            return nodes, 2.0 * weights * self.even_density(nodes[:, None])

        def size(per_unit: float) -> int:
            return 16 * sum(max(1, int(np.ceil((b - a) * per_unit)))
                            for a, b in zip(edges[:-1], edges[1:], strict=True))

        per_unit = 0.5 * lag_max + 4.0
        if size(per_unit) > MAX_RULE_NODES:
            return None
        coarse = rule(per_unit)
        while True:
            per_unit *= 2.0
            if size(per_unit) > MAX_RULE_NODES:
                return None
            fine = rule(per_unit)
            if np.max(np.abs(cosine_sum(*fine, probe) - cosine_sum(*coarse, probe))) <= tol:
                return coarse
            coarse = fine


def cosine_sum(nodes: np.ndarray, weights: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Σ_q W_q cos(2π w_q t) at every lag t (blocks of 2048 lags)."""
    out = np.empty(lags.size)
    for s in range(0, lags.size, 2048):
        out[s:s + 2048] = np.cos(2 * np.pi * np.outer(lags[s:s + 2048], nodes)) @ weights
    return out


def shell_directions(dim: int, per_axis: int = 9) -> np.ndarray:
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
