"""Analytic infinite-width NTK and empirical NTK of finite networks.

Analytic (convention B, spec §4):

    Θ(x, x') = κ² (1 + 4π² σ_a² x·x') k(x − x'),   k(z) = E_{w∼ρ_w} cos(2π w·z).

Empirical: Θ̂(x, x') = ∇_θ f(x)·∇_θ f(x') of a finite network, by torch.func
(vectorised reverse-mode Jacobians, contracted over all parameters).  Its deviation
from Θ is Monte-Carlo error, O(m^{-1/2}) in the width m.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap


def _points(x, dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if dim == 1 and (x.ndim == 1 or x.shape[-1] != 1):
        x = x.reshape(-1, 1)
    return x.reshape(-1, dim)


def analytic_ntk(case, x, xp=None) -> np.ndarray:
    """Θ(x_i, x'_j) for points x (n, d) and x' (n', d); returns (n, n')."""
    x = _points(x, case.dim)
    xp = x if xp is None else _points(xp, case.dim)
    diff = x[:, None, :] - xp[None, :, :]
    weight = 1.0 + 4 * np.pi**2 * case.sigma_a**2 * (x @ xp.T)
    return case.kappa**2 * weight * case.rho_w.char(diff)


def empirical_ntk(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Θ̂(x_i, x_j) = Σ_θ ∂f(x_i)/∂θ ∂f(x_j)/∂θ for a scalar-output model; x of shape (n, d)."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def single(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(single), in_dims=(None, 0))(params, x)
    n = x.shape[0]
    flat = torch.cat([j.reshape(n, -1) for j in jac.values()], dim=1)
    return flat @ flat.T
