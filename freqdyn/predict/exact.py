"""Exact solutions of the frequency-space error PDE (docs/theory.md §6), used as references.

* :func:`pure_damping` — σ_a = 0 (or frozen frequencies): û(ξ, t) = û₀(ξ) e^{−κ²α ρ_w(ξ) t}.
* :func:`uniform_box_series` — ρ_w uniform on a box K = c + [−B, B]^d: inside K the PDE
  is the constant-coefficient damped heat equation with zero-flux walls,

      û(ξ, t) = Σ_n c_n exp[−κ²α (2B)^{−d} (1 + σ_a² π²|n|²/(2B)²) t]
                          · Π_i cos(n_i π (ξ_i + B)/(2B)),

  c_n = ⟨û₀, φ_n⟩/‖φ_n‖², and outside K û stays at û₀ (frequencies outside the
  support of ρ_w are never learned).
"""

from __future__ import annotations

import numpy as np

from freqdyn.inputs.densities import Uniform
from freqdyn.inputs.fourier import tensor_grid


def pure_damping(case, times=None, xi_axes=None) -> np.ndarray:
    """û(ξ, t) = û₀ exp(−κ²α ρ_w^sym(ξ) t) on the grid, shape (time, *xi)."""
    times = case.times if times is None else np.asarray(times, dtype=float)
    xi_axes = case.xi_axes() if xi_axes is None else xi_axes
    u0 = -case.target.transform_on_grid(xi_axes)
    rate = case.rate_factor * case.rho_w.even_density(tensor_grid(xi_axes))
    return u0[None] * np.exp(-np.multiply.outer(times, rate))


#: Gauss–Legendre nodes per axis of the series' projections, per dimension (1024³ would
#: not fit in memory; 128 nodes integrate the smooth û₀ of a 3D case to round-off).
QUADRATURE_NODES = {1: 1024, 2: 1024, 3: 128}


def uniform_box_series(case, times=None, xi_axes=None, modes: int | None = None,
                       quadrature_nodes: int | None = None) -> np.ndarray:
    """The exact Neumann cosine series for a uniform ρ_w (any σ_a), shape (time, *xi).

    ``modes`` cosine modes per axis (default: enough that the discarded coefficients
    are below 1e-14 of the largest); projections by Gauss–Legendre quadrature with
    ``quadrature_nodes`` per axis (default :data:`QUADRATURE_NODES`), exact to round-off
    for smooth û₀.
    """
    rho = case.rho_w
    if not isinstance(rho, Uniform):
        raise ValueError(f"uniform_box_series needs a uniform rho_w, got {rho.family}")
    if np.any(rho.center):
        raise ValueError("uniform_box_series needs a symmetric (centred) uniform rho_w")
    times = case.times if times is None else np.asarray(times, dtype=float)
    xi_axes = case.xi_axes() if xi_axes is None else xi_axes
    d, B = case.dim, rho.bound
    quadrature_nodes = quadrature_nodes or QUADRATURE_NODES[d]
    nodes, weights = np.polynomial.legendre.leggauss(quadrature_nodes)
    q_axis, q_w = B * nodes, B * weights
    u0_q = -case.target.transform_on_grid([q_axis] * d)  # û₀ at the quadrature nodes
    n_modes = modes or quadrature_nodes // 2
    n = np.arange(n_modes)
    basis_q = np.cos(np.outer(n, np.pi * (q_axis + B) / (2 * B)))  # (modes, nodes)
    norm = np.where(n == 0, 2 * B, B)
    proj = (basis_q * q_w) / norm[:, None]  # c = proj @ û₀ along one axis
    coeff = u0_q
    for axis in range(d):
        coeff = np.moveaxis(np.tensordot(proj, coeff, axes=([1], [axis])), 0, axis)
    if modes is None:
        mag = np.abs(coeff)
        for axis in range(d):
            profile = mag.max(axis=tuple(a for a in range(d) if a != axis))
            significant = np.nonzero(profile > 1e-14 * mag.max())[0]
            keep = significant.max() + 1 if significant.size else 1
            coeff = np.take(coeff, np.arange(keep), axis=axis)
    c = (2 * B) ** (-d)
    shapes = coeff.shape
    n2 = sum(np.meshgrid(*[np.arange(s) ** 2 for s in shapes], indexing="ij"))
    rates = case.rate_factor * c * (1 + case.sigma_a**2 * np.pi**2 * n2 / (2 * B) ** 2)
    out = np.empty((times.size, *(a.size for a in xi_axes)), dtype=complex)
    eval_basis = [np.cos(np.outer(np.arange(s), np.pi * (a + B) / (2 * B)))
                  for s, a in zip(shapes, xi_axes, strict=True)]
    inside = np.all(np.abs(tensor_grid(xi_axes)) <= B, axis=-1)
    u0_grid = -case.target.transform_on_grid(xi_axes)
    for i, t in enumerate(times):
        if t == 0:  # the initial condition itself (its cosine series converges like n^-2
            out[i] = u0_grid  # where û₀ has a slope at the box edge)
            continue
        field = coeff * np.exp(-rates * t)
        for axis in range(d):
            field = np.moveaxis(np.tensordot(eval_basis[axis], field, axes=([0], [axis])),
                                0, axis)
        out[i] = np.where(inside, field, u0_grid)
    return out
