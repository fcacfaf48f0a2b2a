"""1D conservative finite differences, exact in time (method ``fd``; docs/theory.md §7).

On uniform nodes ξ_0 < … < ξ_n (spacing h) of an interval with zero-flux ends,

    ∂_t û = (D û′)′ − c û   →   M û′(t) = −A û,
    (A û)_i = [D_{i−½}(û_i − û_{i−1}) − D_{i+½}(û_{i+1} − û_i)]/h + m_i c_i û_i,

with face values D_{i±½} = (D_i + D_{i±1})/2 and the lumped mass m_i = h (h/2 at the ends).
M^{−½} A M^{−½} is symmetric tridiagonal; its eigenpairs (LAPACK stev) give
û(t) = M^{−½} V e^{−Λt} Vᵀ M^{½} û₀, exact in time and second order in h.  The
predictor runs on n and n/2 cells and stores their difference as
``discretisation_error`` per time (an estimate of the coarse run's error, so an upper
estimate of the fine one's).  Cheap enough to sit inside an optimiser: the design of ρ_w
(:mod:`freqdyn.analysis.design`) evaluates it hundreds of times.
"""

from __future__ import annotations

import math
import time as _time

import numpy as np
from scipy import linalg, optimize

from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.fem.problem import fourier_feature_problem
from freqdyn.results import frequency_dataset

#: Default number of cells on the solved interval.
DEFAULT_CELLS = 2000


def symmetric_operator(nodes: np.ndarray, damping: np.ndarray, diffusion: np.ndarray):
    """(diagonal, off-diagonal, M^{−½}) of the symmetric tridiagonal M^{−½} A M^{−½} of the
    conservative scheme on uniform ``nodes`` (module text)."""
    nodes = np.asarray(nodes, dtype=float)
    h = nodes[1] - nodes[0]
    mass = np.full(nodes.size, h)
    mass[[0, -1]] = h / 2
    face = 0.5 * (diffusion[1:] + diffusion[:-1]) / h
    diag = mass * damping
    diag[:-1] += face
    diag[1:] += face
    scale = 1 / np.sqrt(mass)
    return diag * scale**2, -face * scale[1:] * scale[:-1], scale


class FDModes:
    """The eigen-decomposition of the conservative operator on ``nodes`` (see module text)."""

    def __init__(self, nodes: np.ndarray, damping: np.ndarray, diffusion: np.ndarray):
        diag, off, self.scale = symmetric_operator(nodes, damping, diffusion)
        self.lam, self.vec = linalg.eigh_tridiagonal(diag, off)
        self.nodes = np.asarray(nodes, dtype=float)

    def coefficients(self, u0: np.ndarray) -> np.ndarray:
        """Modal coefficients Vᵀ M^{½} û₀ (û₀ may be complex)."""
        return self.vec.T @ (u0 / self.scale)

    def evolve(self, u0: np.ndarray, times) -> np.ndarray:
        """û at the nodes at each time, shape (T, n + 1)."""
        coef = self.coefficients(u0)
        decay = np.exp(-np.outer(np.asarray(times, dtype=float), np.maximum(self.lam, 0.0)))
        return (decay * coef) @ (self.vec.T * self.scale)

    def node_history(self, u0: np.ndarray, index: int):
        """t ↦ û(ξ_index, t) as a function (one modal sum per call)."""
        amp = self.scale[index] * self.vec[index] * self.coefficients(u0)
        lam = np.maximum(self.lam, 0.0)
        return lambda t: np.sum(amp * np.exp(-lam * t))


def _solve(case, cells: int, times):
    """û on the case grid from ``cells`` cells on the FEM's interval (outside: frozen û₀)."""

    problem = fourier_feature_problem(case)
    lo, hi = problem.domain[0]
    nodes = np.linspace(lo, hi, cells + 1)
    modes = FDModes(nodes, problem.damping(nodes[:, None]), problem.diffusion(nodes[:, None]))
    u_nodes = modes.evolve(problem.initial(nodes[:, None]), times)
    xi = case.xi_axes()[0]
    inside = (xi >= lo) & (xi <= hi)
    out = np.empty((len(times), xi.size), dtype=complex)
    u0_grid = case.initial_error()
    for j in range(len(times)):
        out[j] = u0_grid
        out[j, inside] = (np.interp(xi[inside], nodes, u_nodes[j].real)
                          + 1j * np.interp(xi[inside], nodes, u_nodes[j].imag))
    return out, problem


def fd_prediction(case, times=None, cells: int = DEFAULT_CELLS):
    """The ``fd`` predictor as a schema dataset, with its ``discretisation_error`` estimate.

    Nodes are placed on the interval the finite elements mesh (the support of ρ_w, or
    the ξ box widened to where ρ_w is negligible), and û is interpolated linearly onto the
    case grid (second order, like the scheme).
    """

    times = case.times if times is None else np.asarray(times, dtype=float)
    start = _time.perf_counter()
    fine, problem = _solve(case, cells, times)
    coarse, _ = _solve(case, cells // 2, times)
    error = relative_l2(coarse, fine, axes=1)
    attrs = {"cells": cells, "domain": problem.domain.tolist(),
             "scheme": "conservative finite differences, exact in time (eigenmodes)",
             "seconds": _time.perf_counter() - start,
             "error_estimate": "relative L2 difference to the run on cells/2"}
    return frequency_dataset(case, fine, "fd", times=times, attrs=attrs,
                             variables={"discretisation_error": (("time",), error, {
                                 "long_name": "estimated discretisation error relative to "
                                              "|u_hat(t)| (h against 2h)", "units": "1"})})


def learning_time(history, start: float, rate_max: float) -> float:
    """First t with |û(ξ, t)| = e^{−1}|û(ξ, 0)| for a node history (inf if never).

    Bracketed on a log grid of t from 10^{-4} to 10^{4} over the largest rate, then found
    by Brent's method.
    """

    def excess(t):
        return abs(history(t)) / start - math.exp(-1)

    grid = np.geomspace(1e-4, 1e4, 161) / max(rate_max, 1e-300)
    values = np.array([excess(t) for t in grid])
    below = np.flatnonzero(values <= 0)
    if below.size == 0:
        return np.inf
    k = int(below[0])
    lo = grid[k - 1] if k else 0.0
    return optimize.brentq(excess, lo, grid[k], xtol=1e-12, rtol=1e-10)
