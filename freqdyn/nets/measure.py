"""Measurements of a trained network in the theory's terms (docs/theory.md §8).

* :func:`error_transform` — the error u = f − g on a uniform grid of the training box
  [−R, R]^d and its transform

      û(ξ) = ∫_{[−R,R]^d} u(x) e^{−2πi ξ·x} dx ≈ h^d Σ_j u(x_j) e^{−2πi ξ·x_j}

  (convention B, :func:`freqdyn.inputs.fourier.riemann_transform`) on the case's ξ grid.  The
  network is evaluated in float64 whatever its training precision.  By Poisson
  summation the Riemann sum returns Σ_k û(ξ + k/h): it is exact up to aliasing when
  1/h exceeds Ξ_ξ + max(Ξ_ξ, Ξ_w), with Ξ_ξ the reach of the ξ grid and Ξ_w that of
  the network's frequencies (f is a finite sum of sinusoids at the w_j), which
  :func:`measurement_axis` ensures with a factor 2 to spare.  The integral is over the
  training box, exactly as in the kernel-flow reference: a finite network's f does
  not decay outside the data, so the box is part of the definition.
* :func:`parameter_drift` — ‖θ_t − θ₀‖/‖θ₀‖ over all parameters and over the
  first-layer frequencies w alone.
* :func:`ntk_comparison` — the empirical NTK of the network on a probe grid against
  the analytic infinite-width NTK (its O(m^{-1/2}) Monte-Carlo deviation).
* :func:`gram_lambda_max` — the largest eigenvalue of the loss-normalised empirical
  NTK Gram matrix (α/N) J Jᵀ on the training samples, the curvature that bounds the
  gradient-descent learning rate (η < 2/λ_max).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch.func import functional_call, jvp, vjp

from freqdyn.inputs.fourier import riemann_transform, tensor_grid
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.nets.gram import top_eigenvalue
from freqdyn.nets.lfp_net import LFP_MODELS
from freqdyn.nets.transforms import FourierTransforms, GridSamples, forward
from freqdyn.theory.lfp import lfp_data_grid, lfp_params
from freqdyn.theory.ntk import FourierFeatureKernel, empirical_ntk, lfp_ntk

#: Largest measurement grid per axis, by input dimension (memory and time bound).
MAX_MEASURE_POINTS = {1: 20001, 2: 801, 3: 161}


def frequency_reach(model) -> float:
    """max_j |w_j|_∞ over the network's first-layer frequencies (cycles per unit x)."""
    w = first_layer_frequencies(model)
    return float(w.abs().max()) if w.numel() else 0.0


def first_layer_frequencies(model) -> torch.Tensor:
    """All first-layer frequency vectors of a Fourier-feature network, shape (m', d)."""
    if hasattr(model, "cores"):
        return torch.cat([core.w.detach() for core in model.cores])
    return model.w.detach()


def measurement_axis(case, R: float, model=None, points: int | None = None) -> np.ndarray:
    """The uniform axis of the measurement grid on [−R, R], with an odd number of points.

    Default spacing h = ½ / (Ξ_ξ + max(Ξ_ξ, Ξ_w)) (twice finer than the no-aliasing
    limit), with Ξ_ξ the max-norm reach of the case's ξ domain and Ξ_w that of the
    network's frequencies (of ρ_w to 1e-8 of its peak when no model is given).  For a
    network that is not band limited (the LFP's ReLU/tanh networks) h is the LFP data
    spacing 1/(16 Ξ_ξ) of :func:`freqdyn.theory.lfp.lfp_data_grid`.
    """
    if points is None and model is not None and not getattr(model, "band_limited", True):

        # f has kinks (ReLU): no aliasing-free spacing exists; use the LFP data spacing,
        # that of the kernel-flow reference, whose Riemann sum this one then is
        points = min(2 * round(R / lfp_data_grid(case)[1]) + 1, MAX_MEASURE_POINTS[case.dim])
    if points is None:
        xi_reach = float(np.max(np.abs(case.bounds)))
        w_reach = frequency_reach(model) if model is not None else case.rho_w.extent(1e-8)
        h = 0.5 / (xi_reach + max(xi_reach, w_reach))
        points = min(2 * math.ceil(R / h) + 1, MAX_MEASURE_POINTS[case.dim])
    return np.linspace(-R, R, int(points))


def as_float64(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of ``model`` (same device), for measurements."""
    workspace = getattr(model, "_workspace", None)
    if workspace is not None:
        workspace.clear()  # do not copy the training buffers
    return copy.deepcopy(model).to(torch.float64)


def evaluate_on_grid(model, axis: np.ndarray, dim: int) -> np.ndarray:
    """f at the tensor grid of ``axis`` (float64), shape (n,)*d.

    The 2-layer Fourier-feature network is evaluated by one type-1 transform
    (:mod:`freqdyn.nets.transforms`, tolerance 1e-13), other models densely.
    """

    if isinstance(model, FourierFeatureNetwork):

        transforms = FourierTransforms(GridSamples.of_axis(np.asarray(axis), dim),
                                       torch.float64, tol=1e-13)
        return forward(as_float64(model), transforms).cpu().numpy().reshape((axis.size,) * dim)
    model64 = as_float64(model)
    device = next(model64.parameters()).device
    pts = torch.from_numpy(tensor_grid([axis] * dim).reshape(-1, dim)).to(device)
    return model64.evaluate(pts).cpu().numpy().reshape((axis.size,) * dim)


def error_transform_of_values(f_values: np.ndarray, case, axis: np.ndarray) -> np.ndarray:
    """û of u = f − g from f on the grid ``axis``^d (leading batch dimensions allowed)."""
    g = case.target(tensor_grid([axis] * case.dim))
    return riemann_transform(f_values - g, [axis] * case.dim, case.xi_axes())


def error_transform(model, case, axis: np.ndarray, target_values: np.ndarray | None = None,
                    xi_axes=None) -> np.ndarray:
    """û(ξ) of u = f − g over the grid ``axis``^d on the case's ξ grid (complex).

    ``target_values`` (g on the same grid) may be passed to avoid re-evaluating g.
    """
    g = case.target(tensor_grid([axis] * case.dim)) if target_values is None else target_values
    u = evaluate_on_grid(model, axis, case.dim) - g
    return riemann_transform(u, [axis] * case.dim, case.xi_axes() if xi_axes is None else xi_axes)


def flat_parameters(model) -> torch.Tensor:
    """All trainable parameters as one float64 CPU vector (named_parameters order)."""
    return torch.cat([p.detach().reshape(-1).to("cpu", torch.float64)
                      for p in model.parameters()])


def parameter_drift(model, initial: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(‖θ − θ₀‖/‖θ₀‖ over all trainable parameters, the same for the frequencies w).

    ``initial`` maps parameter names to their initial values.  The second number is
    0 when the frequencies are frozen.
    """
    num = den = num_w = den_w = 0.0
    for name, p in model.named_parameters():
        p0 = initial[name].to(p.device, torch.float64)
        diff = float(torch.sum((p.detach().to(torch.float64) - p0) ** 2))
        base = float(torch.sum(p0**2))
        num, den = num + diff, den + base
        if name == "w" or name.endswith(".w"):
            num_w, den_w = num_w + diff, den_w + base
    drift = math.sqrt(num / den) if den > 0 else 0.0
    drift_w = math.sqrt(num_w / den_w) if den_w > 0 else 0.0
    return drift, drift_w


def probe_points(case, radius: float, per_axis: int) -> np.ndarray:
    """A tensor grid of ``per_axis``^d points on [−radius, radius]^d, shape (n, d)."""
    axis = np.linspace(-radius, radius, per_axis)
    return tensor_grid([axis] * case.dim).reshape(-1, case.dim)


def analytic_kernel(case, x: np.ndarray, train_w: bool) -> np.ndarray:
    """The infinite-width NTK of the 2-layer model at x (without the x·x' term when w is
    frozen): :class:`freqdyn.theory.ntk.FourierFeatureKernel`."""
    return FourierFeatureKernel.of_case(case, train_w)(x)


def lfp_kernel(case, settings, x: np.ndarray) -> np.ndarray:
    """The infinite-width NTK of the LFP network of ``settings.model`` (κ² included)."""

    params = lfp_params(case, LFP_MODELS[settings.model])
    return case.kappa**2 * lfp_ntk(x, x, params)


def empirical_kernel(model, x: np.ndarray) -> np.ndarray:
    """The empirical NTK of ``model`` (evaluated in float64) at points x (n, d)."""
    model64 = as_float64(model)
    device = next(model64.parameters()).device
    return empirical_ntk(model64, torch.from_numpy(x).to(device)).cpu().numpy()


def ntk_comparison(empirical: np.ndarray, analytic: np.ndarray, independent: int) -> dict:
    """Deviation of an empirical NTK from the analytic one, and the 4·max|Θ|/√m bound.

    ``independent`` is the number m of independent frequency draws: the width, or
    half of it for a network doubled to f₀ = 0 (each pair repeats one draw).  The
    empirical NTK is a mean of m i.i.d. per-unit kernels, so its deviation is
    Monte-Carlo error; at the largest entry, Θ(x, x) ≈ 4π²σ_a²|x|² with per-unit
    term 4π²|x|²(a sin − b cos)², (a sin − b cos) ∼ 𝒩(0, σ_a²), whose standard
    deviation is √2·max|Θ|, so the bound is about 2.8 standard deviations there.
    """
    scale = float(np.abs(analytic).max())
    dev = float(np.abs(empirical - analytic).max())
    return {"max_abs_deviation": dev, "max_abs_analytic": scale, "independent_units": independent,
            "bound_4max_over_sqrt_m": 4 * scale / math.sqrt(independent),
            "relative_frobenius": float(np.linalg.norm(empirical - analytic)
                                        / np.linalg.norm(analytic))}


def gram_lambda_max(model, x: torch.Tensor, loss_scale: float = 1.0,
                    block_rows: int = 1024, tol: float = 1e-3) -> float:
    """λ_max of (α/N) J Jᵀ, J_iθ = ∂f(x_i)/∂θ, by Lanczos with matrix-free products.

    This is the Hessian's Gauss–Newton part for L = (α/2N)Σ(f − y)², i.e. the
    curvature gradient descent sees: GD is stable iff η < 2/λ_max.  Each product
    v ↦ J(Jᵀv) is one reverse and one forward-mode pass over row blocks.
    """
    params = {name: p.detach() for name, p in model.named_parameters()}
    n = x.shape[0]
    dtype = next(iter(params.values())).dtype

    def fn(p, xb):
        return functional_call(model, p, (xb,))

    def product(v: np.ndarray) -> np.ndarray:
        vt = torch.as_tensor(np.ravel(v), dtype=dtype, device=x.device)
        grads = {k: torch.zeros_like(p) for k, p in params.items()}
        for s in range(0, n, block_rows):
            xb = x[s:s + block_rows]
            _, pull = vjp(lambda p, xb=xb: fn(p, xb), params)
            for k, g in pull(vt[s:s + block_rows])[0].items():
                grads[k] += g
        out = torch.cat([jvp(lambda p, xb=x[s:s + block_rows]: fn(p, xb), (params,),
                             (grads,))[1] for s in range(0, n, block_rows)])
        return (loss_scale / n) * out.double().cpu().numpy()

    return top_eigenvalue(product, n, tol)


