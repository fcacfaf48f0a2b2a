"""The 2-layer Fourier-feature network of the theory, in NTK parametrisation.

    f(x) = κ m^{-1/2} Σ_j [a_j cos(2π w_j·x) + b_j sin(2π w_j·x)],

with w_j ∼ ρ_w (the case's density), a_j, b_j ∼ 𝒩(0, σ_a²); all of w, a, b are
parameters.  ``f0="zero"`` builds the network by antisymmetric doubling: m/2 units
are drawn and each is repeated with the same w and negated (a, b), so f ≡ 0 at
initialisation while the NTK keeps its distribution.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatureNetwork(nn.Module):
    """f(x) = κ m^{-1/2} Σ_j [a_j cos(2π w_j·x) + b_j sin(2π w_j·x)]; x of shape (n, d)."""

    def __init__(self, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor, kappa: float = 1.0):
        super().__init__()
        if w.ndim != 2 or a.shape != (w.shape[0],) or b.shape != (w.shape[0],):
            raise ValueError(f"need w (m, d), a (m,), b (m,); got {tuple(w.shape)}, "
                             f"{tuple(a.shape)}, {tuple(b.shape)}")
        self.w = nn.Parameter(w.clone())
        self.a = nn.Parameter(a.clone())
        self.b = nn.Parameter(b.clone())
        self.kappa = float(kappa)

    @property
    def width(self) -> int:
        return self.w.shape[0]

    @classmethod
    def from_case(cls, case, width: int, generator: torch.Generator, f0: str = "random",
                  dtype: torch.dtype = torch.float64) -> FourierFeatureNetwork:
        """Sample a network of ``width`` units for ``case`` (ρ_w, σ_a, κ)."""
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        if f0 not in ("random", "zero"):
            raise ValueError(f"f0 must be 'random' or 'zero', got {f0!r}")
        half = width // 2 if f0 == "zero" else width
        if f0 == "zero" and width % 2:
            raise ValueError(f"f0 = 'zero' needs an even width, got {width}")
        w = case.rho_w.sample(half, generator)
        a = case.sigma_a * torch.randn(half, generator=generator, dtype=torch.float64)
        b = case.sigma_a * torch.randn(half, generator=generator, dtype=torch.float64)
        if f0 == "zero":
            w, a, b = torch.cat([w, w]), torch.cat([a, -a]), torch.cat([b, -b])
        return cls(w.to(dtype), a.to(dtype), b.to(dtype), kappa=case.kappa)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = 2 * math.pi * (x @ self.w.T)  # (n, m)
        out = torch.cos(phase) @ self.a + torch.sin(phase) @ self.b
        return self.kappa / math.sqrt(self.width) * out
