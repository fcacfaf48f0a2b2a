"""Kernel-flow reference: the ground truth that needs neither the PDE nor training.

Infinite-width gradient flow on the loss (α/2)∫(f − g)² dx is, for the error u = f − g,

    ∂_t u(x, t) = −α ∫ Θ(x, x') u(x', t) dx'.

Discretise x on the uniform grid [−R, R]^d with spacing h (quadrature weight h^d),
so that u(t) = exp(−t α h^d Θ) u₀ with u₀ = −g (f₀ = 0), then take û(ξ, t) by the
Riemann-sum transform onto the case's ξ grid.  The exponential is evaluated exactly:

* ``eig``: eigendecomposition of the symmetric matrix α h^d Θ (dense, N ≤ ~8000);
* ``krylov``: ``scipy.sparse.linalg.expm_multiply`` with a matrix-free product in which
  the stationary factor k(x − x') is a Toeplitz convolution done by FFT,
  Θu = κ²[k ⋆ u + 4π²σ_a² Σ_i x_i (k ⋆ (x_i u))], O(N log N) per product.

Errors come from the truncation to [−R, R]^d (the part of u outside) and from the
spacing (aliasing of ρ_w and û at ξ ± 1/h).  Defaults pick R from the target's window
and h from the reach of ρ_w and the ξ domain; the error is estimated by a second,
coarser run (R and 1/h both reduced by 25 %): the relative L²(ξ) difference is
stored per time as ``truncation_error``.  It measures the coarser run's error, an
upper estimate of the finer one's for a converging sequence.  A ``[kernel_flow]``
table may set ``R``, ``spacing``, ``method`` and ``estimate_error``.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import linalg
from scipy.sparse.linalg import LinearOperator, expm_multiply

from .errors import CaseError
from .fourier import relative_l2, riemann_transform, tensor_grid
from .results import frequency_dataset

#: Largest grid (points in all) the dense eigendecomposition is used for by default.
DENSE_LIMIT = 4096


@dataclass(frozen=True)
class KernelFlowSettings:
    R: float  # half-width of the x box
    spacing: float  # grid spacing h
    method: str  # "eig" or "krylov"
    estimate_error: bool

    def axis(self) -> np.ndarray:
        n = int(round(self.R / self.spacing))
        return self.spacing * np.arange(-n, n + 1)


def default_settings(case) -> KernelFlowSettings:
    """R, h and method from the target window, ρ_w's reach and the ξ domain.

    * R: the max-norm radius outside which |g| < 1e-13 max|g| (the window), plus
      4/Ξ_ρ + 2 (several kernel widths 1/(2π Ξ_ρ)), and at least twice the window:
      the error's tails beyond the window decay only algebraically when ρ_w has
      jumps (uniform bands), so R is the main error source there.
    * h: 1/h ≥ Ξ_ξ + max(Ξ_ξ, Ξ_ρ), where Ξ_ξ bounds the ξ domain (which holds all
      but 1e-8 of the target's spectral energy) and Ξ_ρ is where ρ_w falls below
      1e-8 of its peak, so that neither û nor ρ_w alias onto the ξ domain.
    """
    table = case.section("kernel_flow")
    xi_reach = float(np.max(np.abs(case.bounds)))
    rho_reach = case.rho_w.extent(1e-8)
    spacing = table.get("spacing", 0.95 / (xi_reach + max(xi_reach, rho_reach)))
    window = case.target.radius
    R = table.get("R", max(2.0 * window, window + 4.0 / max(rho_reach, 1e-3) + 2.0))
    n_total = (2 * int(round(R / spacing)) + 1) ** case.dim
    method = table.get("method", "eig" if n_total <= DENSE_LIMIT else "krylov")
    for key, val in (("R", R), ("spacing", spacing)):
        if not isinstance(val, int | float) or isinstance(val, bool) or not val > 0:
            raise CaseError(f"kernel_flow.{key}", f"must be a number > 0, got {val!r}")
    if method not in ("eig", "krylov"):
        raise CaseError("kernel_flow.method", f"must be 'eig' or 'krylov', got {method!r}")
    estimate = table.get("estimate_error", True)
    return KernelFlowSettings(R=float(R), spacing=float(spacing), method=method,
                              estimate_error=bool(estimate))


def _gram(case, x_axis: np.ndarray) -> np.ndarray:
    """α h^d Θ on the tensor grid (dense)."""
    d = case.dim
    pts = tensor_grid([x_axis] * d).reshape(-1, d)
    h = x_axis[1] - x_axis[0]
    if d == 1:
        # Toeplitz: k on the 2n−1 lags only
        lags = h * np.arange(x_axis.size)
        k = linalg.toeplitz(case.rho_w.char(lags[:, None]))
    else:
        k = case.rho_w.char(pts[:, None, :] - pts[None, :, :])
    weight = 1.0 + 4 * np.pi**2 * case.sigma_a**2 * (pts @ pts.T)
    return case.rate_factor * h**d * weight * k


def _evolve_eig(case, x_axis, u0, times):
    lam, vec = linalg.eigh(_gram(case, x_axis))
    coeff = vec.T @ u0
    decay = np.exp(-np.outer(times, np.clip(lam, 0.0, None)))  # (T, N)
    return (decay * coeff) @ vec.T, {"eigenvalue_max": float(lam.max()),
                                     "eigenvalue_min": float(lam.min())}


def _convolution_operator(case, x_axis: np.ndarray):
    """Matrix-free α h^d Θ via FFT convolutions with the lag kernel k(j h)."""
    d = case.dim
    n = x_axis.size
    h = x_axis[1] - x_axis[0]
    lag_axis = h * np.arange(-(n - 1), n)
    lag_pts = tensor_grid([lag_axis] * d)
    kernel = case.rho_w.char(lag_pts)  # shape (2n−1,)*d
    shape = (2 * n - 1,) * d
    fshape = [sfft.next_fast_len(2 * n - 1 + n - 1, real=True)] * d
    k_hat = sfft.rfftn(kernel, fshape)
    coords = np.meshgrid(*([x_axis] * d), indexing="ij")
    scale = case.rate_factor * h**d
    c = 4 * np.pi**2 * case.sigma_a**2
    start = tuple(slice(n - 1, 2 * n - 1) for _ in range(d))
    del shape

    def conv(v):
        full = sfft.irfftn(sfft.rfftn(v, fshape) * k_hat, fshape)
        return full[start]

    def matvec(v):
        v = np.asarray(v).reshape((n,) * d)
        out = conv(v)
        if c:
            for xi_ in coords:
                out = out + c * xi_ * conv(xi_ * v)
        return scale * out.ravel()

    size = n**d
    return LinearOperator((size, size), matvec=matvec, rmatvec=matvec, dtype=float)


def _evolve_krylov(case, x_axis, u0, times):
    op = _convolution_operator(case, x_axis)
    out = np.empty((times.size, u0.size))
    current, t_prev = u0.copy(), 0.0
    for i, t in enumerate(times):
        dt = t - t_prev
        if dt > 0:
            current = expm_multiply(-dt * op, current, traceA=-dt * _trace(case, x_axis))
        out[i] = current
        t_prev = t
    return out, {}


def _trace(case, x_axis) -> float:
    """trace(α h^d Θ) = α κ² h^d Σ_i (1 + 4π²σ_a²|x_i|²) (k(0) = 1)."""
    pts = tensor_grid([x_axis] * case.dim).reshape(-1, case.dim)
    h = x_axis[1] - x_axis[0]
    return float(case.rate_factor * h**case.dim
                 * np.sum(1 + 4 * np.pi**2 * case.sigma_a**2 * np.sum(pts**2, -1)))


def evolve(case, settings: KernelFlowSettings, times=None):
    """û(ξ, t) on the case grid for the given settings; returns (u_hat, info)."""
    times = case.times if times is None else np.asarray(times, dtype=float)
    x_axis = settings.axis()
    d = case.dim
    u0 = -case.target(tensor_grid([x_axis] * d)).ravel()
    evolve_fn = _evolve_eig if settings.method == "eig" else _evolve_krylov
    u_t, info = evolve_fn(case, x_axis, u0, times)
    u_t = u_t.reshape((times.size,) + (x_axis.size,) * d)
    u_hat = riemann_transform(u_t, [x_axis] * d, case.xi_axes())
    info.update(grid_points=int(x_axis.size**d), R=settings.R, spacing=settings.spacing,
                method=settings.method)
    return u_hat, info


def kernel_flow(case, settings: KernelFlowSettings | None = None, times=None):
    """The kernel-flow prediction as a schema dataset (method ``kernel-flow``).

    ``times`` defaults to the case's reported times.
    """
    settings = default_settings(case) if settings is None else settings
    times = case.times if times is None else np.asarray(times, dtype=float)
    start = _time.perf_counter()
    u_hat, info = evolve(case, settings, times)
    variables = {}
    if settings.estimate_error:
        coarse = KernelFlowSettings(R=0.75 * settings.R, spacing=settings.spacing / 0.75,
                                    method=settings.method, estimate_error=False)
        u_coarse, _ = evolve(case, coarse, times)
        axes = tuple(range(1, u_hat.ndim))
        variables["truncation_error"] = (("time",), relative_l2(u_coarse, u_hat, axes=axes))
    info["seconds"] = _time.perf_counter() - start
    return frequency_dataset(case, u_hat, "kernel-flow", times=times, variables=variables,
                             attrs={"kernel_flow": info})
