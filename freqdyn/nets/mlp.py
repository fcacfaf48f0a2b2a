"""The multi-layer extension (docs/theory.md §10): a Fourier first layer followed by an MLP.

Its gradients come from autograd (:func:`autograd_loss_and_grad`, accumulated over row
blocks); the sampled first layer is the 2-layer model's.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from freqdyn.nets.fourier import default_block_rows

ACTIVATIONS = {
    "tanh": (torch.tanh, 5.0 / 3.0),
    "relu": (torch.relu, math.sqrt(2.0)),
    "gelu": (nn.functional.gelu, math.sqrt(2.0)),
    "sin": (torch.sin, 1.0),
    "softplus": (nn.functional.softplus, 1.0),
}
PARAMETRIZATIONS = ("ntk", "standard")


class _FourierMLPCore(nn.Module):
    """One Fourier-feature MLP (see :class:`FourierFeatureMLP` for the formulas)."""

    def __init__(self, w, a, b, hidden: int, depth: int, activation: str,
                 parametrization: str, sigma_a: float, kappa: float, train_w: bool,
                 generator: torch.Generator, dtype: torch.dtype):
        super().__init__()
        self.act, gain = ACTIVATIONS[activation]
        self.ntk = parametrization == "ntk"
        self.kappa = float(kappa)
        m = w.shape[0]
        if train_w:
            self.w = nn.Parameter(w.to(dtype))
        else:
            self.register_buffer("w", w.to(dtype))
        # Fourier layer → first hidden layer: A, B (hidden, m) with entries 𝒩(0, σ_a²),
        # scaled by m^{-1/2} as a, b are in the 2-layer model.
        self.first = nn.ParameterList([nn.Parameter((sigma_a * a).to(dtype)),
                                       nn.Parameter((sigma_a * b).to(dtype))])
        self.first_scale = 1.0 / math.sqrt(m)
        self.first_bias = nn.Parameter(torch.zeros(hidden, dtype=dtype))
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.scales: list[float] = []
        fans = [hidden] * depth
        outs = [hidden] * (depth - 1) + [1]
        for layer, (fan_in, fan_out) in enumerate(zip(fans, outs, strict=True)):
            g = 1.0 if layer == depth - 1 else gain
            std = g / math.sqrt(fan_in)
            raw = torch.randn(fan_out, fan_in, generator=generator, dtype=torch.float64)
            self.weights.append(nn.Parameter((raw if self.ntk else std * raw).to(dtype)))
            self.biases.append(nn.Parameter(torch.zeros(fan_out, dtype=dtype)))
            self.scales.append(std if self.ntk else 1.0)
        if not self.ntk:
            self.first[0].data.mul_(self.first_scale)
            self.first[1].data.mul_(self.first_scale)
            self.first_scale = 1.0

    def forward(self, x):
        phase = 2 * math.pi * (x @ self.w.T)
        z = self.first_scale * (torch.cos(phase) @ self.first[0].T
                                + torch.sin(phase) @ self.first[1].T) + self.first_bias
        for w, b, s in zip(self.weights, self.biases, self.scales, strict=True):
            z = s * (self.act(z) @ w.T) + b
        return self.kappa * z[:, 0]


class FourierFeatureMLP(nn.Module):
    """A Fourier first layer followed by an MLP of ``depth`` hidden layers (docs/theory.md §10).

    With m frequencies w_j ∼ ρ_w (trained unless ``train_w=False``), hidden width h,
    activation φ and gains γ (tanh 5/3, relu and gelu √2, sin and softplus 1):

        z_1 = m^{-1/2} (A cos(2π W x) + B sin(2π W x)) + β_1,   A, B ∈ ℝ^{h×m}, entries 𝒩(0, σ_a²)
        z_{l+1} = γ h^{-1/2} V_l φ(z_l) + β_{l+1},              V_l entries 𝒩(0, 1)
        f(x) = κ (h^{-1/2} v·φ(z_L) + β_out),                    v entries 𝒩(0, 1)

    in the NTK parametrisation (scales in the forward pass, biases start at 0).  The
    ``standard`` parametrisation folds the same scales into the initial weights and
    leaves the forward pass unscaled: identical f at initialisation, but the
    gradients (and so the NTK) of the weights change by the square of the scales.
    With depth = 1 there is one hidden layer between the features and the output.

    ``f0="zero"``: two copies of the network, the second with negated output weights,
    f = (f₁ + f₂)/√2 ≡ 0 at initialisation; each copy keeps its own trainable
    parameters, so the NTK is the mean of two identical kernels, i.e. unchanged.
    """

    def __init__(self, cores: list[_FourierMLPCore]):
        super().__init__()
        self.cores = nn.ModuleList(cores)

    @property
    def width(self) -> int:
        return self.cores[0].w.shape[0]

    @classmethod
    def from_case(cls, case, width: int, generator: torch.Generator, *, depth: int = 2,
                  hidden: int = 256, activation: str = "tanh", parametrization: str = "ntk",
                  f0: str = "random", dtype: torch.dtype = torch.float64,
                  train_w: bool = True) -> FourierFeatureMLP:
        """Sample the network for ``case`` (ρ_w, σ_a, κ); ``width`` = m frequencies."""
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, "
                             f"got {parametrization!r}")
        if depth < 1 or hidden < 1 or width < 1:
            raise ValueError(f"need depth, hidden, width >= 1; got {depth}, {hidden}, {width}")
        if f0 not in ("random", "zero"):
            raise ValueError(f"f0 must be 'random' or 'zero', got {f0!r}")
        w = case.rho_w.sample(width, generator)
        a = torch.randn(hidden, width, generator=generator, dtype=torch.float64)
        b = torch.randn(hidden, width, generator=generator, dtype=torch.float64)
        core = _FourierMLPCore(w, a, b, hidden, depth, activation, parametrization,
                               case.sigma_a, case.kappa, train_w, generator, dtype)
        cores = [core]
        if f0 == "zero":
            twin = copy.deepcopy(core)
            twin.weights[-1].data.neg_()
            cores.append(twin)
        return cls(cores)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cores[0](x)
        for core in self.cores[1:]:
            out = out + core(x)
        return out / math.sqrt(len(self.cores))

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, block_rows: int | None = None) -> torch.Tensor:
        """f(x) without autograd, in row blocks."""
        rows_per = block_rows or default_block_rows(self.width * 4, x.device)
        return torch.cat([self(x[s:s + rows_per]) for s in range(0, x.shape[0], rows_per)])

    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor, loss_scale: float = 1.0,
                      block_rows: int | None = None) -> torch.Tensor:
        """L = (α/2N) Σ_i (f(x_i) − y_i)² and its gradient (autograd, accumulated per block)."""
        return autograd_loss_and_grad(self, x, y, loss_scale,
                                      block_rows or default_block_rows(self.width * 4,
                                                                       x.device))


def autograd_loss_and_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           loss_scale: float, block_rows: int) -> torch.Tensor:
    """(α/2N) Σ (f − y)² by autograd, backward per row block; sets ``.grad``, returns L."""
    for p in model.parameters():
        p.grad = None
    n = x.shape[0]
    scale = 0.5 * loss_scale / n
    total = torch.zeros((), dtype=y.dtype, device=y.device)
    for start in range(0, n, block_rows):
        resid = model(x[start:start + block_rows]) - y[start:start + block_rows]
        part = scale * resid.dot(resid)
        part.backward()
        total += part.detach()
    return total
