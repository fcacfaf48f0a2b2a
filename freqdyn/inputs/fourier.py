"""Fourier convention and transforms of sampled functions.

freqdyn uses **convention B** throughout: first-layer features cos(2π w·x), sin(2π w·x)
and the transform

    û(ξ) = ∫_{ℝ^d} u(x) exp(−2πi ξ·x) dx,

with ξ in cycles per unit of x.  Every result file records :data:`CONVENTION`.
"""

from __future__ import annotations

import numpy as np

CONVENTION = (
    "B: features cos(2*pi*w.x), sin(2*pi*w.x); "
    "u_hat(xi) = integral of u(x) exp(-2*pi*i*xi.x) dx over R^d; xi in cycles per unit x"
)


def tensor_grid(axes: list[np.ndarray]) -> np.ndarray:
    """Points of the tensor grid spanned by ``axes``, shape (n0, ..., n_{d-1}, d)."""
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack(grids, axis=-1)


def riemann_transform(values: np.ndarray, x_axes: list[np.ndarray],
                      xi_axes: list[np.ndarray]) -> np.ndarray:
    """Riemann-sum Fourier transform of samples on a uniform tensor grid.

    ``values`` has shape (..., n0, ..., n_{d-1}) on the grid ``x_axes`` (uniform
    spacings h_k); the result has shape (..., m0, ..., m_{d-1}) on ``xi_axes``:

        û(ξ) ≈ Π_k h_k · Σ_j u(x_j) exp(−2πi ξ·x_j).

    The sum factorises over axes, so the cost is O(n·m·(n + m)) in 2D instead of
    O(n²m²).  By Poisson summation the error is Σ_{k≠0} û(ξ + k/h) plus the mass of
    u outside the grid: exact to round-off for band-limited, well-contained u.
    """
    d = len(x_axes)
    out = np.asarray(values, dtype=complex)
    for k in range(d):
        x, xi = np.asarray(x_axes[k]), np.asarray(xi_axes[k])
        h = (x[-1] - x[0]) / (x.size - 1) if x.size > 1 else 1.0
        kernel = h * np.exp(-2j * np.pi * np.outer(x, xi))  # (n_k, m_k)
        axis = out.ndim - d + k
        out = np.moveaxis(np.tensordot(out, kernel, axes=([axis], [0])), -1, axis)
    return out


def nudft(values: np.ndarray, x: np.ndarray, weights, xi: np.ndarray,
          chunk: int = 4096) -> np.ndarray:
    """Direct sum û(ξ_k) = Σ_i ω_i u(x_i) exp(−2πi ξ_k·x_i) for scattered x (N, d), ξ (K, d).

    Cost N·K, done in chunks of ``chunk`` frequencies.  ``weights`` is a scalar or (N,).
    """
    x = np.asarray(x, dtype=float).reshape(len(values), -1)
    xi = np.asarray(xi, dtype=float).reshape(-1, x.shape[1])
    wu = np.broadcast_to(np.asarray(weights, dtype=float), (x.shape[0],)) * np.asarray(values)
    out = np.empty(xi.shape[0], dtype=complex)
    for start in range(0, xi.shape[0], chunk):
        phase = -2j * np.pi * (xi[start:start + chunk] @ x.T)
        out[start:start + chunk] = np.exp(phase) @ wu
    return out


def relative_l2(a: np.ndarray, b: np.ndarray, axes=None) -> np.ndarray:
    """‖a − b‖ / ‖b‖ over ``axes`` (default: all axes), for real or complex arrays."""
    num = np.sqrt(np.sum(np.abs(a - b) ** 2, axis=axes))
    den = np.sqrt(np.sum(np.abs(b) ** 2, axis=axes))
    return num / np.where(den > 0, den, 1.0)
