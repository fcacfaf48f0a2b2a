"""The neural tangent kernels of freqdyn's networks, each defined once (docs/theory.md §3).

**Fourier features** (convention B), infinite width:

    Θ(x, x') = κ² Σ_{i=0}^{d} c_i m_i(x) m_i(x') k(x − x'),   k(z) = E_{w∼ρ_w} cos(2π w·z),

with m_0 = 1, c_0 = 1 (the outer weights a, b) and m_i = x_i, c_i = 4π²σ_a² (the
frequencies w), i.e. Θ = κ²(1 + 4π²σ_a² x·x') k(x − x').  With frozen frequencies only
the i = 0 term remains.  :class:`FourierFeatureKernel` holds this structure: a stationary
factor times a sum of separable polynomial weights.  It gives dense Gram matrices and, on
a uniform grid, matrix-free products in O(N log N) (k ⋆ v by FFT, once per term), which is
what the kernel-flow reference (:mod:`freqdyn.predict.kernel_flow`) uses.  The symbolic
form of :func:`freqdyn.theory.derive.derive` is checked against it in the tests.

**ReLU and tanh** (the LFP's network f = m^{-1/2} Σ a σ(w·x + b), all trained;
:func:`lfp_ntk`): for ReLU the arc-cosine kernels of Cho & Saul on the augmented input
(x, 1) (:func:`relu_ntk`), for tanh, which has no closed form, a product trapezoid rule
over (w, b) whose error falls exponentially with the node spacing (:func:`tanh_ntk`).

**Empirical**: Θ̂(x, x') = ∇_θ f(x)·∇_θ f(x') of any finite torch network
(:func:`empirical_ntk`); its deviation from Θ is Monte-Carlo error, O(m^{-1/2}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import finufft
import numpy as np
import torch
from scipy import fft as sfft
from scipy import linalg
from torch.func import functional_call, jacrev, vmap

from freqdyn.inputs.fourier import tensor_grid


def as_points(x, dim: int) -> np.ndarray:
    """``x`` as an (n, dim) float array (a flat array is n points in d = 1)."""
    x = np.asarray(x, dtype=float)
    if dim == 1 and (x.ndim <= 1 or x.shape[-1] != 1):
        x = x.reshape(-1, 1)
    return x.reshape(-1, dim)


@dataclass(frozen=True)
class FourierFeatureKernel:
    """Θ(x, x') = scale · (c_0 + c_x x·x') k(x − x') of a Fourier-feature case.

    ``scale`` is κ² (times a quadrature or loss weight where a caller folds one in),
    ``c_x`` is 4π²σ_a² with trained frequencies and 0 with frozen ones.
    """

    dim: int
    density: object  # ρ_w (freqdyn.inputs.densities.Density): k = density.char
    scale: float
    c_x: float

    @classmethod
    def of_case(cls, case, train_w: bool = True) -> FourierFeatureKernel:
        c_x = 4 * math.pi**2 * case.sigma_a**2 if train_w else 0.0
        return cls(dim=case.dim, density=case.rho_w, scale=case.kappa**2, c_x=c_x)

    def char(self, z) -> np.ndarray:
        """k(z) = E_{w∼ρ_w} cos(2π w·z), points (..., d) → values (...)."""
        return self.density.char(z)

    def scaled(self, factor: float) -> FourierFeatureKernel:
        """The same kernel times ``factor`` (e.g. α h^d for a discretised flow)."""
        return FourierFeatureKernel(self.dim, self.density, self.scale * factor, self.c_x)

    def __call__(self, x, xp=None) -> np.ndarray:
        """The Gram matrix Θ(x_i, x'_j), points (n, d) and (n', d) → (n, n')."""
        x = as_points(x, self.dim)
        xp = x if xp is None else as_points(xp, self.dim)
        weight = 1.0 + self.c_x * (x @ xp.T)
        return self.scale * weight * self.char(x[:, None, :] - xp[None, :, :])

    def grid_gram(self, axis: np.ndarray) -> np.ndarray:
        """The dense Gram matrix on the tensor grid of ``axis`` (Toeplitz k in d = 1)."""
        if self.dim > 1:
            return self(tensor_grid([axis] * self.dim).reshape(-1, self.dim))

        k = linalg.toeplitz(self.char((axis - axis[0])[:, None]))
        return self.scale * (1.0 + self.c_x * np.outer(axis, axis)) * k

    def grid_matvec(self, axes):
        """v ↦ Θ v on a uniform tensor grid (N = Π n_k points), matrix-free.

        ``axes`` is one uniform axis per dimension (or one array for all).  Θv = scale
        [k ⋆ v + c_x Σ_i x_i (k ⋆ (x_i v))]; each k ⋆ is a linear convolution with the lag
        kernel k(j Δ), |j_k| < n_k, done by real FFTs of length ≥ 2n_k − 1 per axis (the
        circular wrap then never reaches the entries read back).
        """
        axes = [np.asarray(a) for a in axes] if isinstance(axes, list | tuple) \
            else [np.asarray(axes)] * self.dim
        sizes = tuple(a.size for a in axes)
        lags = [(a[1] - a[0]) * np.arange(-(n - 1), n) for a, n in zip(axes, sizes,
                                                                      strict=True)]
        shape = [sfft.next_fast_len(2 * n - 1, real=True) for n in sizes]
        k_hat = sfft.rfftn(self.char(tensor_grid(lags)), shape)
        coords = np.meshgrid(*axes, indexing="ij")
        # entry i of the linear convolution Σ_j k(x_i − x_j) v_j sits at index n−1+i
        window = tuple(slice(n - 1, 2 * n - 1) for n in sizes)

        def conv(v):
            return sfft.irfftn(sfft.rfftn(v, shape, workers=-1) * k_hat, shape,
                               workers=-1)[window]

        def matvec(v):
            v = np.reshape(v, sizes)
            out = conv(v)
            if self.c_x:
                for x_k in coords:
                    out = out + self.c_x * x_k * conv(x_k * v)
            return self.scale * out.ravel()

        return matvec

    def scattered_matvec(self, x_in: np.ndarray, x_out: np.ndarray, tol: float = 1e-13,
                         rule=None):
        """v ↦ Θ(x_out, x_in) v on scattered 1D points, matrix-free (a NUFFT product).

        With the density's cosine rule k(t) = Σ_q W_q cos(2π w_q t) (|t| up to the
        points' spread, :meth:`~freqdyn.inputs.densities.base.Density.cosine_rule`),

            Σ_j k(x_i − x_j) v_j = Re Σ_q W_q e^{2πi w_q x_i} Σ_j v_j e^{−2πi w_q x_j},

        two type-3 non-uniform FFTs (FINUFFT, relative accuracy ``tol``) per product, the
        v and x·v terms stacked: O((n + q) log) per product, no n×n matrix (the
        equispaced-Fourier idea of Greengard et al. 2023, with a Gauss–Legendre rule in w).
        ``rule`` is a cosine rule already built for these points' spread (products from
        one training set to several outputs share one).  None when the rule does not
        converge (then only the dense Gram applies).
        """
        if self.dim != 1:
            raise ValueError("scattered_matvec is the d = 1 product")
        x_in = np.ascontiguousarray(np.ravel(x_in), dtype=float)
        x_out = np.ascontiguousarray(np.ravel(x_out), dtype=float)
        if rule is None:
            spread = max(x_in.max(), x_out.max()) - min(x_in.min(), x_out.min())
            rule = self.density.cosine_rule(float(spread))
        if rule is None:
            return None
        freq = np.ascontiguousarray(2 * np.pi * rule[0])
        weights = rule[1]

        def matvec(v):
            v = np.asarray(v, dtype=float)
            stack = np.stack([v, x_in * v]) if self.c_x else v[None, :]
            c = finufft.nufft1d3(x_in, stack.astype(complex), freq, isign=-1, eps=tol)
            back = finufft.nufft1d3(freq, np.ascontiguousarray(c * weights), x_out,
                                    isign=1, eps=tol).real
            out = back[0] + (self.c_x * x_out * back[1] if self.c_x else 0.0)
            return self.scale * out

        return matvec


def fourier_feature_ntk(case, x, xp=None, train_w: bool = True) -> np.ndarray:
    """The infinite-width NTK of the case's 2-layer network at points x, x' → (n, n')."""
    return FourierFeatureKernel.of_case(case, train_w)(x, xp)


def relu_ntk(x: np.ndarray, xp: np.ndarray, params) -> np.ndarray:
    """Θ(x_i, x'_j) of f = m^{-1/2} Σ a relu(w·x + b) (all trained), points (n, d), (n', d).

    Θ = E[σ(ω·x̃)σ(ω·x̃')] + s_a² E[σ'(ω·x̃)σ'(ω·x̃')](x·x' + 1) with ω = (w, b), x̃ = (x, 1);
    with z = (s_w x, σ_b), z' likewise and θ = ∠(z, z'): E[relu relu] =
    |z||z'|(sin θ + (π − θ) cos θ)/(2π) and E[step step] = (π − θ)/(2π).  ``params`` has
    ``weight_scale`` s_w, ``sigma_b`` and ``outer_std`` s_a (an LFP parameter set).
    """
    def lift(p):
        return np.concatenate([params.weight_scale * p,
                               np.full((p.shape[0], 1), params.sigma_b)], axis=1)

    z, zp = lift(x), lift(xp)
    nz, nzp = np.linalg.norm(z, axis=1), np.linalg.norm(zp, axis=1)
    cos = np.clip((z @ zp.T) / np.outer(nz, nzp), -1.0, 1.0)
    theta = np.arccos(cos)
    k1 = np.outer(nz, nzp) * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    k0 = (np.pi - theta) / (2 * np.pi)
    return k1 + params.outer_std**2 * k0 * (x @ xp.T + 1.0)


def tanh_ntk(x: np.ndarray, xp: np.ndarray, params, digits: float = 25.0,
             chunk: int = 4096) -> np.ndarray:
    """Θ(x_i, x'_j) of f = m^{-1/2} Σ a tanh(w x + b) (all trained) in d = 1, by quadrature.

    Θ = E[tanh(wx + b) tanh(wx' + b)] + s_a² E[sech²(wx + b) sech²(wx' + b)](x x' + 1),
    w ∼ 𝒩(0, s_w²), b ∼ 𝒩(0, σ_b²).  Both integrands are analytic in b in the strip
    |Im b| < π/2 (the poles of tanh) and in w in |Im w| < π/(2X), X = max |x|, so the
    trapezoid rule with steps Δb = π²/L, Δw = π²/(X L) has relative error about e^{−L}
    (L = ``digits``); the Gaussian weights are cut at 9 standard deviations (e^{−40}).
    The integrands are even under (w, b) → (−w, −b), so only b ≥ 0 is summed.
    Cost: (n + n') × nodes features, nodes ≈ (18 s_w/Δw)(9 σ_b/Δb).
    """
    x, xp = np.asarray(x, dtype=float), np.asarray(xp, dtype=float)
    if x.ndim != 2 or x.shape[1] != 1 or xp.shape[1] != 1:
        raise ValueError("tanh_ntk is for d = 1 (points of shape (n, 1))")
    reach = max(float(np.abs(x).max(initial=0.0)), float(np.abs(xp).max(initial=0.0)), 1e-3)
    s_w, s_b, s_a = params.weight_scale, params.sigma_b, params.outer_std
    db, dw = math.pi**2 / digits, math.pi**2 / (reach * digits)
    b = db * np.arange(0, math.ceil(9 * s_b / db) + 1)
    wb = np.where(b == 0, 1.0, 2.0) * db * np.exp(-b**2 / (2 * s_b**2)) / (math.sqrt(2 * math.pi)
                                                                             * s_b)
    n_w = math.ceil(9 * s_w / dw)
    w = dw * np.arange(-n_w, n_w + 1)
    ww = dw * np.exp(-w**2 / (2 * s_w**2)) / (math.sqrt(2 * math.pi) * s_w)
    nodes_w, nodes_b = (arr.ravel() for arr in np.meshgrid(w, b, indexing="ij"))
    weights = np.outer(ww, wb).ravel()
    keep = weights > 1e-300
    nodes_w, nodes_b, weights = nodes_w[keep], nodes_b[keep], weights[keep]
    k_act = np.zeros((x.shape[0], xp.shape[0]))
    k_der = np.zeros_like(k_act)
    for s in range(0, weights.size, chunk):
        sl = slice(s, s + chunk)
        sq = np.sqrt(weights[sl])
        t, tp = np.tanh(x * nodes_w[sl] + nodes_b[sl]), np.tanh(xp * nodes_w[sl] + nodes_b[sl])
        k_act += (t * sq) @ (tp * sq).T
        k_der += ((1 - t * t) * sq) @ ((1 - tp * tp) * sq).T
    return k_act + s_a**2 * k_der * (x @ xp.T + 1.0)


def lfp_ntk(x: np.ndarray, xp: np.ndarray, params) -> np.ndarray:
    """The infinite-width NTK of the LFP network of ``params`` (relu or tanh)."""
    if params.activation == "relu":
        return relu_ntk(x, xp, params)
    if params.activation == "tanh":
        return tanh_ntk(x, xp, params)
    raise ValueError(f"no NTK for activation {params.activation!r}")


def empirical_ntk(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Θ̂(x_i, x_j) = Σ_θ ∂f(x_i)/∂θ ∂f(x_j)/∂θ for a scalar-output model; x of shape (n, d)."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def single(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(single), in_dims=(None, 0))(params, x)
    n = x.shape[0]
    flat = torch.cat([j.reshape(n, -1) for j in jac.values()], dim=1)
    return flat @ flat.T
