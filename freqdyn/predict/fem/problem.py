"""The PDE a finite-element solve takes: coefficients, initial datum, box (pure numpy).

:class:`Problem` is ∂_t û = ∇·(D∇û) − c û with zero flux on a box (docs/theory.md §5);
:func:`fourier_feature_problem` builds it for a case from :func:`freqdyn.theory.derive`,
and the LFP models build theirs in :mod:`freqdyn.predict.lfp`.  Nothing here imports
DOLFINx, so the problems can be built and inspected without the FEM stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from freqdyn.errors import InputError
from freqdyn.inputs.densities import Density, Expression, Laplace, Mixture, Uniform
from freqdyn.theory.derive import derive

#: Relative density level at which the zero-flux wall may sit (non-compact ρ_w); moving
#: it further out changed laplace-1d and a Student-t case by < 2e-6 (the flux D∇û at the
#: wall is negligible where û₀ is).
WALL_LEVEL = 1e-2


@dataclass(frozen=True)
class Problem:
    """A PDE ∂_t û = ∇·(D∇û) − c û with zero flux on the box ``domain``.

    ``damping``/``diffusion`` map points (..., d) to values (...); ``initial`` maps
    points (n, d) to the complex û₀ there.
    ``breakpoints`` are mesh lines per axis (jumps or kinks of the coefficients);
    ``hole`` > 0 removes the cells inside the ball |ξ| < hole (LFP: singular at 0).
    ``outside`` says what the solution is at grid points off the mesh: "initial"
    (frozen at û₀, exact outside supp ρ_w) or "nan" (not modelled).
    """

    dim: int
    domain: np.ndarray
    damping: Callable[[np.ndarray], np.ndarray]
    diffusion: Callable[[np.ndarray], np.ndarray]
    initial: Callable[[np.ndarray], np.ndarray]
    breakpoints: tuple[np.ndarray, ...]
    hole: float = 0.0
    outside: str = "initial"
    notes: dict = field(default_factory=dict)


def density_breakpoints(rho: Density) -> list[np.ndarray]:
    """Per-axis ξ values where ρ_w^sym jumps or has a kink (mesh lines go there)."""
    points: list[list[float]] = [[] for _ in range(rho.dim)]

    def collect(dens: Density):
        if isinstance(dens, Mixture):
            for comp in dens.components:
                collect(comp)
            return
        box = dens.support if isinstance(dens, Uniform | Expression) else None
        for i in range(rho.dim):
            if box is not None:
                points[i] += [box[0][i], box[1][i]]
            if isinstance(dens, Laplace):
                points[i].append(dens.center[i])
            points[i].append(0.0)  # the origin: where expression densities usually kink

    collect(rho)
    # ρ_w^sym(ξ) = ½(ρ_w(ξ) + ρ_w(−ξ)): mirror every breakpoint
    return [np.unique(np.concatenate([np.asarray(p), -np.asarray(p)])) for p in points]


def fourier_feature_domain(case) -> tuple[np.ndarray, str]:
    """The meshed box Ω for a case and a sentence saying how it was chosen."""
    rho = case.rho_w
    bounds = np.array(case.bounds, dtype=float)
    width = bounds[:, 1] - bounds[:, 0]
    support = rho.support
    if support is not None:
        # ρ_w^sym lives on the support box and its mirror image; mesh their hull, cut
        # at half a width beyond the frequency box
        lo = np.maximum(np.minimum(support[0], -support[1]), bounds[:, 0] - 0.5 * width)
        hi = np.minimum(np.maximum(support[1], -support[0]), bounds[:, 1] + 0.5 * width)
        if np.any(lo >= hi):
            raise InputError("network.rho_w", "its support does not meet the frequency box")
        return np.stack([lo, hi], axis=1), (
            "support box of rho_w: outside it u_hat stays at its initial value "
            "(frequencies outside supp rho_w are never learned)")
    reach = rho.extent(WALL_LEVEL)
    lo = np.minimum(bounds[:, 0], np.maximum(-reach, bounds[:, 0] - 0.5 * width))
    hi = np.maximum(bounds[:, 1], np.minimum(reach, bounds[:, 1] + 0.5 * width))
    return np.stack([lo, hi], axis=1), (
        f"frequency box widened to where rho_w^sym < {WALL_LEVEL:g} of its peak "
        "(at most half a width per side); zero-flux walls")


def fourier_feature_problem(case) -> Problem:
    """The error PDE of a Fourier-feature case, coefficients from :func:`derive`."""

    der = derive(case)
    domain, note = fourier_feature_domain(case)
    return Problem(
        dim=case.dim, domain=domain, damping=der.numeric("damping"),
        diffusion=der.numeric("diffusion"),
        initial=target_initial(case.target),
        breakpoints=tuple(density_breakpoints(case.rho_w)),
        outside="initial", notes={"domain_choice": note, "damping": str(der.damping),
                                  "diffusion": str(der.diffusion)})


def _grid_values(points: np.ndarray, grid_fn, dim: int) -> np.ndarray:
    """grid_fn (on tensor-grid axes) at scattered points, via their per-axis unique values.

    The Lagrange nodes of the structured meshes lie on a tensor grid, so one grid
    evaluation covers them all; other point sets fall back to one point at a time.
    """
    if points.shape[0] == 0:
        return np.zeros(0, dtype=complex)
    uniq, index = zip(*(np.unique(points[:, i], return_inverse=True) for i in range(dim)),
                      strict=True)
    if math.prod(u.size for u in uniq) <= 8 * points.shape[0] + 4096:
        return np.asarray(grid_fn(list(uniq)))[tuple(index)]
    return np.array([np.asarray(grid_fn([np.array([c]) for c in p])).ravel()[0]
                     for p in points])


def target_initial(target) -> Callable[[np.ndarray], np.ndarray]:
    """û₀ = −ĝ at points (n, d): the closed form when there is one, else the target's
    quadrature on the tensor grid of the points' coordinates."""
    def initial(points):
        if target.hat_expr is not None:
            return -target.transform(points) if points.shape[0] else np.zeros(0, complex)
        return -_grid_values(points, target.transform_on_grid, target.dim)

    return initial
