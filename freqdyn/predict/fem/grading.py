"""Mesh lines: nodes through the coefficients' breakpoints, graded by the solution (numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from freqdyn.inputs.fourier import tensor_grid
from freqdyn.predict.fem.problem import Problem


@dataclass(frozen=True)
class AxisGrading:
    """A mesh density along one axis, as its normalised cumulative integral G (0 → 1).

    Nodes are placed at equal increments of G, so the local cell size is ∝ 1/monitor.
    """

    x: np.ndarray
    mass: np.ndarray

    def __call__(self, t) -> np.ndarray:
        return np.interp(t, self.x, self.mass)

    def inverse(self, m) -> np.ndarray:
        return np.interp(m, self.mass, self.x)


def axis_nodes(lo: float, hi: float, n: int, breakpoints,
               grading: AxisGrading | None = None) -> np.ndarray:
    """n + 1 nodes on [lo, hi] that contain the breakpoints inside (lo, hi).

    The cells are shared out between the segments between breakpoints in proportion to
    their length, or their grading mass (at least one each), and are spaced uniformly,
    or at equal increments of the grading, inside a segment.
    """
    inner = [b for b in np.unique(np.asarray(breakpoints, dtype=float))
             if lo + 1e-9 * (hi - lo) < b < hi - 1e-9 * (hi - lo)]
    edges = np.array([lo, *inner, hi])
    weight = np.diff(edges if grading is None else grading(edges))
    if n < weight.size or not np.all(weight > 0):
        return np.linspace(lo, hi, n + 1)
    counts = np.maximum(1, np.floor(n * weight / weight.sum()).astype(int))
    while counts.sum() < n:  # hand out the remainder to the coarsest segments
        counts[np.argmax(weight / counts)] += 1
    while counts.sum() > n:
        counts[np.argmin(np.where(counts > 1, weight / counts, np.inf))] -= 1
    parts = []
    for a, b, m in zip(edges[:-1], edges[1:], counts, strict=True):
        if grading is None:
            seg = np.linspace(a, b, m + 1)
        else:
            seg = grading.inverse(np.linspace(grading(a), grading(b), m + 1))
            seg[0], seg[-1] = a, b
        parts.append(seg[:-1])
    return np.concatenate([*parts, [hi]])


def mesh_grading(problem: Problem, degree: int, t_end: float,
                 floor: float = 0.2) -> tuple[AxisGrading, ...]:
    """Per-axis mesh densities equidistributing the P_k interpolation error of the solution.

    The local P_k interpolation error is ~ h^{k+1}|∂^{k+1}u|, so along axis i the cell
    size should be ∝ m_i^{-1}, m_i(s) = max over the other axes of |∂_i^{k+1}u|^{1/(k+1)}
    for u = û₀ and û₀ e^{−c t_end} (the structure the damping imprints), measured by
    finite differences on a sample grid.  ``floor`` (relative to the largest m_i) bounds
    the ratio of the largest to the smallest cell by 1/floor, so regions where û₀ is
    negligible now stay resolved for what diffuses into them later.
    """
    d = problem.dim
    samples = {1: 8193, 2: 401, 3: 81}[d]
    axes = [np.linspace(lo, hi, samples) for lo, hi in problem.domain]
    hole = [-problem.hole, problem.hole] if problem.hole > 0 else []
    pts = tensor_grid(axes).reshape(-1, d)
    u0 = problem.initial(pts).reshape((samples,) * d)
    with np.errstate(over="ignore", invalid="ignore"):
        u1 = u0 * np.exp(-problem.damping(pts).reshape(u0.shape) * t_end)
    scale = max(float(np.max(np.abs(u0))), 1e-300)
    out = []
    for i in range(d):
        step = axes[i][1] - axes[i][0]
        profile = np.zeros(samples - degree - 1)
        for u in (u0, np.nan_to_num(u1)):
            deriv = np.abs(np.diff(u / scale, n=degree + 1, axis=i)) / step ** (degree + 1)
            other = tuple(a for a in range(d) if a != i)
            profile = np.maximum(profile, np.max(deriv, axis=other) if other else deriv)
        # stencils across a breakpoint see a jump of c, not smoothness: leave them out
        lo_x, hi_x = axes[i][:profile.size], axes[i][degree + 1:]
        for b in [*problem.breakpoints[i], *hole]:
            profile[(lo_x <= b + 1e-12) & (hi_x >= b - 1e-12)] = 0.0
        monitor = profile ** (1.0 / (degree + 1))
        monitor = np.maximum(monitor, floor * max(float(monitor.max()), 1e-300))
        centres = axes[i][(degree + 1) // 2: (degree + 1) // 2 + monitor.size] + \
            0.5 * ((degree + 1) % 2) * step
        x = np.concatenate([[axes[i][0]], centres, [axes[i][-1]]])
        m = np.concatenate([[monitor[0]], monitor, [monitor[-1]]])
        mass = np.concatenate([[0.0], np.cumsum(0.5 * (m[1:] + m[:-1]) * np.diff(x))])
        out.append(AxisGrading(x=x, mass=mass / mass[-1]))
    return tuple(out)
