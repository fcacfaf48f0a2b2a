"""Kernel-flow reference: the ground truth that needs neither the PDE nor training.

Infinite-width gradient flow on the loss (α/2)∫(f − g)² dx is, for the error u = f − g,

    ∂_t u(x, t) = −α ∫ Θ(x, x') u(x', t) dx'.

Discretise x on the uniform grid [−R, R]^d with spacing h (quadrature weight h^d),
so that u(t) = exp(−t α h^d Θ) u₀ with u₀ = −g (f₀ = 0), then take û(ξ, t) by the
Riemann-sum transform onto the case's ξ grid.  The exponential is evaluated exactly:

* ``eig``: eigendecomposition of the symmetric matrix α h^d Θ (dense; the default
  up to N = 1500 grid points);
* ``lanczos``: a Lanczos basis of u₀ with a matrix-free product in which the
  stationary factor k(x − x') is a Toeplitz convolution done by FFT,
  Θu = κ²[k ⋆ u + 4π²σ_a² Σ_i x_i (k ⋆ (x_i u))], O(N log N) per product, iterated
  until the a-posteriori error bound is below 1e-12 at every reported time.

Errors come from the truncation to [−R, R]^d (the part of u outside) and from the
spacing (aliasing of ρ_w and û at ξ ± 1/h).  Defaults pick R from the target's window
(grown adaptively, see :func:`kernel_flow`) and h from the reach of ρ_w and the ξ
domain; the error is estimated by a second,
second run on a box reduced by 25 % (same h: the spacing rule keeps aliasing below
1e-8 by construction): the relative L²(ξ) difference is stored per time as
``truncation_error``.  It measures the coarser run's error, an
upper estimate of the finer one's for a converging sequence.  A ``[kernel_flow]``
table may set ``R``, ``spacing``, ``method`` and ``estimate_error``.
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import linalg

import freqdyn.memory as memory
from freqdyn.errors import AccuracyWarning, InputError
from freqdyn.inputs.fourier import relative_l2, riemann_transform, tensor_grid
from freqdyn.results import frequency_dataset
from freqdyn.theory.ntk import FourierFeatureKernel

#: Largest grid (points in all) the dense eigendecomposition is used for by default.
DENSE_LIMIT = 1500
#: Truncation error the default settings aim for (relative L²(ξ), every time).
TARGET_ERROR = 3e-5
#: Estimated truncation error beyond which a box the user gave (``[kernel_flow] R``) is
#: refused: every number it would print is wrong in the first or second digit.
REFUSE_ERROR = 0.05
#: Estimated truncation error beyond which the result carries an :class:`AccuracyWarning`.
WARN_ERROR = 1e-3
#: Largest grid the adaptive box growth may reach, per dimension.
MAX_POINTS = {1: 3000, 2: 60_000, 3: 1_000_000}
#: Largest default grid a run is started on (beyond: refused, naming the settings to set).
REFUSE_POINTS = {1: 200_000, 2: 2_000_000, 3: 1_000_000}
#: Most box enlargements the adaptive default makes.
MAX_ROUNDS = 3


def _points(R: float, spacing: float, dim: int) -> int:
    return (2 * int(round(R / spacing)) + 1) ** dim


#: Memory model (bytes) of one run: the dense Gram (eig), or for Lanczos the FFT arrays of
#: length 2n − 1 per axis (four live at a time) and :data:`LANCZOS_VECTORS` basis vectors.
LANCZOS_VECTORS = 200


def memory_needed(settings: KernelFlowSettings, dim: int) -> tuple[int, float]:
    """(grid points, bytes) of a kernel-flow run with ``settings``."""
    n = settings.axis().size
    points = n**dim
    if settings.method == "eig":
        return points, 3 * 8.0 * points**2
    return points, 8.0 * (4 * (2 * n) ** dim + LANCZOS_VECTORS * points)


def _method_for(points: int) -> str:
    """Dense eigendecomposition for small grids, Lanczos with FFT products beyond."""
    return "eig" if points <= DENSE_LIMIT else "lanczos"


@dataclass(frozen=True)
class KernelFlowSettings:
    R: float  # half-width of the x box
    spacing: float  # grid spacing h
    method: str  # "eig" or "lanczos"
    estimate_error: bool

    def axis(self) -> np.ndarray:
        n = int(round(self.R / self.spacing))
        return self.spacing * np.arange(-n, n + 1)


def default_settings(case) -> KernelFlowSettings:
    """R, h and method from the target window, ρ_w's reach and the ξ domain.

    * R: the max-norm radius outside which |g| < 1e-13 max|g| (the window), plus
      4/Ξ_ρ + 2 (several kernel widths 1/(2π Ξ_ρ)); at least twice the window when
      ρ_w has compact support, since its jumps give the error algebraic tails in x
      and R is then the main error source.
    * h: 1/h ≥ Ξ_ξ + max(Ξ_ξ, Ξ_ρ), where Ξ_ξ bounds the ξ domain (which holds all
      but 1e-8 of the target's spectral energy) and Ξ_ρ is where ρ_w falls below
      1e-8 of its peak, so that neither û nor ρ_w alias onto the ξ domain.
    """
    table = case.section("kernel_flow")
    xi_reach = float(np.max(np.abs(case.bounds)))
    rho_reach = case.rho_w.extent(1e-8)
    spacing = table.get("spacing", 0.95 / (xi_reach + max(xi_reach, rho_reach)))
    window = case.target.radius
    R = window + 4.0 / max(rho_reach, 1e-3) + 2.0
    if case.rho_w.support is not None:
        R = max(R, 2.0 * window)  # jumps in ρ_w: algebraic tails of the error in x
    R = table.get("R", R)
    n_total = _points(R, spacing, case.dim)
    method = table.get("method", _method_for(n_total))
    for key, val in (("R", R), ("spacing", spacing)):
        if not isinstance(val, int | float) or isinstance(val, bool) or not val > 0:
            raise InputError(f"kernel_flow.{key}", f"must be a number > 0, got {val!r}")
    if method not in ("eig", "lanczos"):
        raise InputError("kernel_flow.method", f"must be 'eig' or 'lanczos', got {method!r}")
    estimate = table.get("estimate_error", True)
    return KernelFlowSettings(R=float(R), spacing=float(spacing), method=method,
                              estimate_error=bool(estimate))


def decay_factors(lam, times, step: float | None = None) -> torch.Tensor:
    """Per-mode factors of linear kernel dynamics, shape (..., T, N) for λ (..., N).

    Flow: e^{−λt}.  Gradient descent with step s (t counts steps): (1 − sλ)^t, computed as
    exp(t log1p(−sλ)) where sλ < ½ so that small rates keep their digits.  Negative λ
    (round-off of a PSD matrix) are clipped to 0.  ``step`` may carry the batch shape.
    """
    lam = torch.as_tensor(lam).clamp_min(0.0)
    t = torch.as_tensor(np.array(times, dtype=float), dtype=lam.dtype, device=lam.device)
    t = t.reshape(-1, 1)
    lam_t = lam.unsqueeze(-2)
    if step is None:
        return torch.exp(-t * lam_t)
    s = torch.as_tensor(step, dtype=lam.dtype, device=lam.device)
    s_lam = s.reshape(s.shape + (1, 1)) * lam_t
    small = s_lam < 0.5
    return torch.where(small, torch.exp(t * torch.log1p(-s_lam.clamp_max(0.5))),
                       torch.pow(1 - s_lam, t))


def kernel_descent(gram, u0, times, *, step=None, cross=None):
    """Exact linear dynamics of an error u on the points of a kernel matrix K: the one
    kernel-flow engine (docs/theory.md §4), for any kernel.

    Flow ∂_t u = −K u: u(t) = e^{−tK} u₀.  Gradient descent u_{k+1} = (1 − sK) u_k with
    ``step`` s: u_k = (1 − sK)^k u₀ (``times`` count steps).  Both from the eigenpairs
    K = V Λ Vᵀ of the symmetric PSD K.  With ``cross`` = K(X*, X) it also returns the
    change of the function at other points, Δf*(t) = −K* V [(1 − D(t))/Λ] Vᵀ u₀ with D the
    decay factors ((1 − D)/λ → t, or s·t, as λ → 0).  Batched over leading dimensions;
    numpy in, numpy out.  Returns (u (..., T, N), [Δf* (..., T, N*),] λ (..., N)).
    """
    as_numpy = isinstance(gram, np.ndarray)
    K = torch.as_tensor(gram)
    lam, vec = torch.linalg.eigh(0.5 * (K + K.transpose(-1, -2)))
    u0 = torch.as_tensor(u0, dtype=K.dtype, device=K.device)
    proj = (vec.transpose(-1, -2) @ u0.unsqueeze(-1)).squeeze(-1)          # (..., N)
    decay = decay_factors(lam, times, step)                               # (..., T, N)
    out = [(decay * proj.unsqueeze(-2)) @ vec.transpose(-1, -2)]
    if cross is not None:
        lam_c = lam.clamp_min(0.0).unsqueeze(-2)
        tiny = lam_c <= 1e-300
        t = torch.as_tensor(np.asarray(times, dtype=float), dtype=K.dtype,
                            device=K.device).reshape(-1, 1)
        if step is not None:
            s = torch.as_tensor(step, dtype=K.dtype, device=K.device)
            t = s.reshape(s.shape + (1, 1)) * t
        integral = torch.where(tiny, t.expand_as(decay),
                               (1 - decay) / torch.where(tiny, torch.ones_like(lam_c), lam_c))
        cross_v = torch.as_tensor(cross, dtype=K.dtype, device=K.device) @ vec
        out.append(-(integral * proj.unsqueeze(-2)) @ cross_v.transpose(-1, -2))
    out.append(lam)
    return tuple(o.numpy() for o in out) if as_numpy else tuple(out)


def lanczos_exponential(matvec, u0, times, rtol: float = 1e-12, max_iter: int = 3000,
                        integral: bool = False):
    """exp(−tA)u₀ at every t for a symmetric PSD operator A given by ``matvec``; (T, N), info.

    One Lanczos basis of u₀ (full reorthogonalisation); the Krylov approximation
    ‖u₀‖ V_m exp(−t T_m) e₁ converges after O(√(t λ_max)) products.  The a-posteriori
    bound β_m ‖u₀‖ |e_mᵀ exp(−t T_m) e₁| is driven below ``rtol``·‖u(t)‖ at every t.
    With ``integral`` info also holds ∫₀ᵗ exp(−sA)u₀ ds = ‖u₀‖ V_m T_m⁻¹(1 − e^{−tT_m})e₁
    (t where an eigenvalue of T_m is 0), shape (T, N): what moves the function between
    the points (as ``cross`` in :func:`kernel_descent`).
    """
    beta0 = float(np.linalg.norm(u0))
    most = min(max_iter, u0.size)
    basis = np.empty((min(most, 32) + 1, u0.size))  # grown by doubling, as needed
    basis[0] = u0 / beta0
    alphas, betas = [], []
    for j in range(most):
        if j + 1 >= basis.shape[0]:
            grow = min(basis.shape[0], most + 1 - basis.shape[0])
            basis = np.concatenate([basis, np.empty((grow, u0.size))])
        w = matvec(basis[j])
        alphas.append(float(basis[j] @ w))
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(np.linalg.norm(w))
        if (j + 1) % 10 == 0 or beta < 1e-14 * beta0 or j + 1 == most:
            theta, q = linalg.eigh_tridiagonal(np.array(alphas), np.array(betas))
            decay = decay_factors(theta, times).numpy()  # (T, m)
            coeffs = beta0 * (decay * q[0]) @ q.T  # ‖u₀‖ exp(−tT)e₁, (T, m)
            bound = beta * np.abs(coeffs[:, -1])
            size = np.linalg.norm(coeffs, axis=1)
            if beta < 1e-14 * beta0 or np.all(bound <= rtol * np.maximum(size, 1e-300)):
                info = {"lanczos_iterations": j + 1, "eigenvalue_max": float(theta.max())}
                if integral:
                    t = np.asarray(times, dtype=float)[:, None]
                    lam = np.maximum(theta, 0.0)[None, :]
                    tiny = lam <= 1e-300
                    factor = np.where(tiny, t, (1 - decay) / np.where(tiny, 1.0, lam))
                    info["integral"] = (beta0 * (factor * q[0]) @ q.T) @ basis[: j + 1]
                return coeffs @ basis[: j + 1], info
        betas.append(beta)
        basis[j + 1] = w / beta
    raise RuntimeError(f"kernel flow: Lanczos did not converge in {max_iter} iterations; "
                       "reduce kernel_flow.R or the final time")


def _discrete_kernel(case, x_axis) -> FourierFeatureKernel:
    """α h^d Θ: the case's NTK as the operator of the flow on the grid (quadrature h^d)."""
    return FourierFeatureKernel.of_case(case).scaled(case.loss_scale
                                                     * (x_axis[1] - x_axis[0]) ** case.dim)


def _evolve_eig(case, x_axis, u0, times):
    u_t, lam = kernel_descent(_discrete_kernel(case, x_axis).grid_gram(x_axis), u0, times)
    return u_t, {"eigenvalue_max": float(lam.max()), "eigenvalue_min": float(lam.min())}


def _evolve_lanczos(case, x_axis, u0, times):
    return lanczos_exponential(_discrete_kernel(case, x_axis).grid_matvec(x_axis), u0, times)


def evolve(case, settings: KernelFlowSettings, times=None):
    """û(ξ, t) on the case grid for the given settings; returns (u_hat, info)."""
    times = case.times if times is None else np.asarray(times, dtype=float)
    x_axis = settings.axis()
    d = case.dim
    u0 = -case.target(tensor_grid([x_axis] * d)).ravel()
    evolve_fn = _evolve_eig if settings.method == "eig" else _evolve_lanczos
    u_t, info = evolve_fn(case, x_axis, u0, times)
    u_t = u_t.reshape((times.size,) + (x_axis.size,) * d)
    u_hat = riemann_transform(u_t, [x_axis] * d, case.xi_axes())
    info.update(grid_points=int(x_axis.size**d), R=settings.R, spacing=settings.spacing,
                method=settings.method)
    return u_hat, info


def kernel_flow(case, settings: KernelFlowSettings | None = None, times=None):
    """The kernel-flow prediction as a schema dataset (method ``kernel-flow``).

    ``times`` defaults to the case's reported times.  With default settings (no ``R``
    in the case's ``[kernel_flow]`` table) the box grows by 4/3 per round while the
    estimated truncation error exceeds :data:`TARGET_ERROR`, for at most
    :data:`MAX_ROUNDS` rounds and :data:`MAX_POINTS` grid points; each round's
    estimate compares it with the previous round.
    """
    adaptive = settings is None and "R" not in case.section("kernel_flow")
    settings = default_settings(case) if settings is None else settings
    times = case.times if times is None else np.asarray(times, dtype=float)
    start = _time.perf_counter()
    points, need = memory_needed(settings, case.dim)
    if adaptive and points > REFUSE_POINTS[case.dim]:
        raise InputError("kernel_flow.R", f"the default grid of {case.name} has {points:.3g} "
                                          f"points (R = {settings.R:.3g}, spacing "
                                          f"{settings.spacing:.3g}), beyond the "
                                          f"{REFUSE_POINTS[case.dim]:.3g} a run finishes in "
                                          "minutes; set [kernel_flow] R and spacing, or use "
                                          "the fem method")
    memory.require("kernel_flow.R", need, f"kernel flow on {points:.3g} grid points (R = "
                   f"{settings.R:.3g}, spacing {settings.spacing:.3g})",
                   "set [kernel_flow] R and spacing for a smaller grid, or use the fem method")
    coarse = None
    if settings.estimate_error:
        coarse, _ = evolve(case, replace(settings, R=0.75 * settings.R), times)
    u_hat, info = evolve(case, settings, times)
    axes = tuple(range(1, u_hat.ndim))
    error = relative_l2(coarse, u_hat, axes=axes) if coarse is not None else None
    for _ in range(MAX_ROUNDS if adaptive and error is not None else 0):
        grown = _points(4 * settings.R / 3, settings.spacing, case.dim)
        bigger = replace(settings, R=4 * settings.R / 3, method=_method_for(grown))
        if (error.max() <= TARGET_ERROR or grown > MAX_POINTS[case.dim]
                or memory_needed(bigger, case.dim)[1] > memory.budget_bytes()):
            break
        settings = bigger
        coarse = u_hat
        u_hat, info = evolve(case, settings, times)
        error = relative_l2(coarse, u_hat, axes=axes)
    variables = {} if error is None else {"truncation_error": (("time",), error, {
        "long_name": "estimated truncation error: |u_hat(R) - u_hat(0.75 R)| / |u_hat(R)|",
        "units": "1"})}
    worst = None if error is None else int(np.argmax(error))
    if worst is not None and not adaptive and error[worst] > REFUSE_ERROR:
        raise InputError("kernel_flow.R", f"R = {settings.R:g} gives an estimated truncation "
                                          f"error of {error[worst]:.2g} at t = "
                                          f"{times[worst]:g} (the box cuts off the error "
                                          "function); use a larger R, or leave R out for the "
                                          "adaptive box")
    if worst is not None and error[worst] > WARN_ERROR:
        why = ("the error's tails in x outgrow the box, as for ρ_w with jumps at late times); "
               "use the fem or modal method, or set [kernel_flow] R" if adaptive else
               f"the box R = {settings.R:g} cuts off part of the error function); use a "
               "larger [kernel_flow] R, or leave R out for the adaptive box")
        warnings.warn(f"kernel-flow of {case.name}: estimated truncation error {error[worst]:.1e} "
                      f"at t = {times[worst]:g} exceeds {WARN_ERROR:g} ({why}", AccuracyWarning,
                      stacklevel=2)
    info["seconds"] = _time.perf_counter() - start
    return frequency_dataset(case, u_hat, "kernel-flow", times=times, variables=variables,
                             attrs={"kernel_flow": info})
