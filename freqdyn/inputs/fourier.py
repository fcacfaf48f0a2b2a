"""Fourier convention and transforms of sampled functions.

freqdyn uses **convention B** throughout: first-layer features cos(2π w·x), sin(2π w·x)
and the transform

    û(ξ) = ∫_{ℝ^d} u(x) exp(−2πi ξ·x) dx,

with ξ in cycles per unit of x.  Every result file records :data:`CONVENTION`.
"""

from __future__ import annotations

import finufft
import numpy as np

from freqdyn.errors import InputError

CHUNK_ELEMENTS = 2**22
"""Largest number of complex entries of exp(−i k x) held at once by the direct sum (64 MiB)."""

FAST_THRESHOLD = 10**6
"""``method="auto"`` uses FINUFFT when (points × frequencies) reaches this size."""

METHODS = ("auto", "direct", "fast")

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


def exponential_sum(x: np.ndarray, values: np.ndarray, k: np.ndarray, *,
                    method: str = "auto", eps: float = 1e-12,
                    threads: int | None = None) -> np.ndarray:
    """S(k) = Σ_j v_j exp(−i k x_j) at 1D points x (n,), angular frequencies k (K,).

    ``values`` (n, m): m columns at once, result (K, m).  ``method``: ``"direct"`` (the
    O(nK) sum in chunks), ``"fast"`` (FINUFFT at relative tolerance ``eps``: type 1 on an
    even k grid, type 3 otherwise) or ``"auto"`` (fast from n·K ≥ :data:`FAST_THRESHOLD`).
    """
    if method not in METHODS:
        raise InputError("method", f"expected one of {METHODS}, got {method!r}")
    values = np.asarray(values, dtype=complex)
    use_fast = method == "fast" or (method == "auto" and x.size * k.size >= FAST_THRESHOLD)
    return _fast(x, values, k, eps, threads) if use_fast else _direct(x, values, k)


def _uniform_step(k: np.ndarray) -> float | None:
    """The spacing of k when it is an evenly spaced increasing grid (≥ 2 points), else None."""
    if k.size < 2:
        return None
    steps = np.diff(k)
    step = (k[-1] - k[0]) / (k.size - 1)
    if step <= 0 or not np.allclose(steps, step, rtol=1e-9, atol=0.0):
        return None
    return float(step)


def _direct(x: np.ndarray, vals: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Σ_j vals_j exp(−i k x_j) by chunks of frequencies; vals shape (n, m), result (K, m)."""
    chunk = max(1, CHUNK_ELEMENTS // x.size)
    out = np.empty((k.size, vals.shape[1]), dtype=complex)
    for start in range(0, k.size, chunk):
        kernel = np.exp(-1j * np.outer(k[start:start + chunk], x))
        out[start:start + chunk] = kernel @ vals
    return out


def _fast(x: np.ndarray, vals: np.ndarray, k: np.ndarray, eps: float,
          threads: int | None) -> np.ndarray:
    """Σ_j vals_j exp(−i k x_j) with FINUFFT; vals shape (n, m), result (K, m)."""
    options = {"nthreads": threads} if threads else {}
    coeffs = np.ascontiguousarray(vals.T)  # FINUFFT stacks transforms along the first axis
    if vals.shape[1] == 1:
        coeffs = coeffs[0]
    step = _uniform_step(k)
    if step is not None:
        # k_m = k_0 + (c + m)·Δ with c = ⌊K/2⌋ and m over FINUFFT's modes −⌊K/2⌋…: the phase
        # exp(−i (c+m) Δ x) is 2π-periodic in t = Δ·x, so t can be wrapped to [−π, π).
        centre = k.size // 2
        t = np.mod(step * x + np.pi, 2 * np.pi) - np.pi
        twist = np.exp(-1j * (k[0] * x + centre * t))
        result = finufft.nufft1d1(t, coeffs * twist, n_modes=k.size, eps=eps, isign=-1,
                                  **options)
    else:
        result = finufft.nufft1d3(x, coeffs, k, eps=eps, isign=-1, **options)
    return np.asarray(result).reshape(vals.shape[1], k.size).T


def nudft(values: np.ndarray, x: np.ndarray, weights, xi: np.ndarray,
          chunk: int = 4096) -> np.ndarray:
    """û(ξ_k) = Σ_i ω_i u(x_i) exp(−2πi ξ_k·x_i) for scattered x (N, d), ξ (K, d).

    In d = 1 the exponential sum of :func:`exponential_sum` (FINUFFT from N·K ≥
    :data:`FAST_THRESHOLD`); otherwise the direct sum, in chunks of ``chunk``
    frequencies.  ``weights`` is a scalar or (N,).
    """
    x = np.asarray(x, dtype=float).reshape(len(values), -1)
    xi = np.asarray(xi, dtype=float).reshape(-1, x.shape[1])
    wu = np.broadcast_to(np.asarray(weights, dtype=float), (x.shape[0],)) * np.asarray(values)
    if x.shape[1] == 1:
        return exponential_sum(np.ascontiguousarray(x[:, 0]), wu[:, None],
                               2 * np.pi * xi[:, 0])[:, 0]
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
