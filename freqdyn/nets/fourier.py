"""Fourier-feature networks: the 2-layer model of the theory and its multi-layer extension.

**2-layer model** (docs/theory.md §1, NTK parametrisation, convention B):

    f(x) = κ m^{-1/2} Σ_j [a_j cos(2π w_j·x) + b_j sin(2π w_j·x)],

with w_j ∼ ρ_w (the case's density, cycles per unit x), a_j, b_j ∼ 𝒩(0, σ_a²); all of
w, a, b are parameters unless ``train_w=False`` freezes the frequencies (random
Fourier features: only the damping term of the PDE remains).  ``f0="zero"`` builds
the network by antisymmetric doubling: m/2 units are drawn and each is repeated with
the same w and negated (a, b), so f ≡ 0 at initialisation while the NTK keeps its
distribution.

:meth:`FourierFeatureNetwork.loss_and_grad` evaluates the loss and its gradient in
closed form, one pass over row blocks of the samples, so that each step computes
cos and sin of the n×m phases once and every other operation is a matrix–vector
product (see its docstring for the formulas).

The multi-layer extension is :class:`freqdyn.nets.mlp.FourierFeatureMLP`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Elements (rows × units) per block of the closed-form pass, by device type.  On the
#: CPU a block's phase, cos and sin buffers stay in the last-level cache; on a GPU a
#: block is a large, launch-efficient slab.
BLOCK_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 26}


def default_block_rows(width: int, device: torch.device | str) -> int:
    """Rows per block so that rows × width ≈ :data:`BLOCK_ELEMENTS` for the device."""
    kind = torch.device(device).type
    return max(1, BLOCK_ELEMENTS.get(kind, BLOCK_ELEMENTS["cpu"]) // max(width, 1))


class FourierFeatureNetwork(nn.Module):
    """f(x) = κ m^{-1/2} Σ_j [a_j cos(2π w_j·x) + b_j sin(2π w_j·x)]; x of shape (n, d).

    ``train_w=False`` stores w as a buffer (not a parameter): the frequencies stay at
    their initial values and the NTK loses its x·x' (diffusion) term.
    """

    def __init__(self, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor, kappa: float = 1.0,
                 train_w: bool = True):
        super().__init__()
        if w.ndim != 2 or a.shape != (w.shape[0],) or b.shape != (w.shape[0],):
            raise ValueError(f"need w (m, d), a (m,), b (m,); got {tuple(w.shape)}, "
                             f"{tuple(a.shape)}, {tuple(b.shape)}")
        if train_w:
            self.w = nn.Parameter(w.clone())
        else:
            self.register_buffer("w", w.clone())
        self.a = nn.Parameter(a.clone())
        self.b = nn.Parameter(b.clone())
        self.kappa = float(kappa)
        self.train_w = bool(train_w)
        self._workspace: dict = {}

    @property
    def width(self) -> int:
        return self.w.shape[0]

    @classmethod
    def from_case(cls, case, width: int, generator: torch.Generator, f0: str = "random",
                  dtype: torch.dtype = torch.float64,
                  train_w: bool = True) -> FourierFeatureNetwork:
        """Sample a network of ``width`` units for ``case`` (ρ_w, σ_a, κ)."""
        w, a, b = _sample_units(case, width, generator, f0)
        return cls(w.to(dtype), a.to(dtype), b.to(dtype), kappa=case.kappa, train_w=train_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = 2 * math.pi * (x @ self.w.T)  # (n, m)
        out = torch.cos(phase) @ self.a + torch.sin(phase) @ self.b
        return self.kappa / math.sqrt(self.width) * out

    # -- closed-form full-batch pass --------------------------------------------------
    def _buffers_for(self, rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reusable (rows, m) buffers for the phase, cos and sin of one block."""
        key = (rows, self.a.device, self.a.dtype)
        if key not in self._workspace:
            self._workspace.clear()
            shape = (rows, self.width)
            self._workspace[key] = tuple(torch.empty(shape, dtype=self.a.dtype,
                                                     device=self.a.device) for _ in range(3))
        return self._workspace[key]

    def _phase(self, xb: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """2π x w^T into ``out``; for d = 1 a broadcast product (no K = 1 matrix product)."""
        w = self.w.detach()
        if w.shape[1] == 1:
            return torch.mul(xb, (2 * math.pi) * w[:, 0], out=out)
        return torch.mm(xb, (2 * math.pi) * w.T, out=out)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, block_rows: int | None = None) -> torch.Tensor:
        """f(x) without autograd, in row blocks (bounded memory); x of shape (n, d)."""
        rows_per = block_rows or default_block_rows(self.width, x.device)
        c = self.kappa / math.sqrt(self.width)
        out = torch.empty(x.shape[0], dtype=self.a.dtype, device=x.device)
        for start in range(0, x.shape[0], rows_per):
            xb = x[start:start + rows_per]
            p, cos, sin = (buf[:xb.shape[0]] for buf in self._buffers_for(rows_per))
            self._phase(xb, p)
            torch.cos(p, out=cos)
            torch.sin(p, out=sin)
            fb = torch.mv(cos, self.a)
            fb.addmv_(sin, self.b)
            out[start:start + xb.shape[0]] = c * fb
        return out

    @torch.no_grad()
    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor, loss_scale: float = 1.0,
                      block_rows: int | None = None, compiled: bool = False) -> torch.Tensor:
        """L = (α/2N) Σ_i (f(x_i) − y_i)² and its gradient, stored in each ``.grad``.

        With c = κ m^{-1/2}, P_ij = 2π w_j·x_i, C = cos P, S = sin P and the scaled
        residual e_i = (α/N) c (f(x_i) − y_i):

            ∂L/∂a_j = Σ_i e_i C_ij,        ∂L/∂b_j = Σ_i e_i S_ij,
            ∂L/∂w_j = 2π [ b_j Σ_i e_i x_i C_ij − a_j Σ_i e_i x_i S_ij ]   (a d-vector).

        e_i depends only on row i, so one pass over row blocks computes C and S once
        (the only transcendental work), f by two matrix–vector products, and the
        gradients by 2(1 + d) more (d of them only when w is trained).  Returns the
        loss as a 0-dim tensor on the model's device (no host synchronisation).

        ``compiled=True`` runs each block through :func:`torch.compile` of
        :func:`block_terms` instead: the compiler fuses cos and sin into the two
        reductions, so the n×m matrices are never stored (faster on GPUs at large
        n·m; the first call of each block shape pays the compilation).
        """
        if compiled:
            return self._compiled_loss_and_grad(x, y, loss_scale, block_rows)
        n = x.shape[0]
        rows_per = block_rows or default_block_rows(self.width, x.device)
        c = self.kappa / math.sqrt(self.width)
        scale = loss_scale / n
        a, b = self.a.detach(), self.b.detach()
        grad_a = torch.zeros_like(a)
        grad_b = torch.zeros_like(b)
        d = self.w.shape[1]
        moment_c = torch.zeros((d, self.width), dtype=a.dtype, device=a.device)
        moment_s = torch.zeros_like(moment_c)
        total = torch.zeros((), dtype=a.dtype, device=a.device)
        for start in range(0, n, rows_per):
            xb = x[start:start + rows_per]
            p, cos, sin = (buf[:xb.shape[0]] for buf in self._buffers_for(rows_per))
            self._phase(xb, p)
            torch.cos(p, out=cos)
            torch.sin(p, out=sin)
            resid = torch.mv(cos, a)
            resid.addmv_(sin, b)
            resid.mul_(c).sub_(y[start:start + xb.shape[0]])
            total += resid.dot(resid)
            e = resid.mul_(scale * c)
            grad_a.addmv_(cos.T, e)
            grad_b.addmv_(sin.T, e)
            if self.train_w:
                for k in range(d):
                    ex = e * xb[:, k]
                    moment_c[k].addmv_(cos.T, ex)
                    moment_s[k].addmv_(sin.T, ex)
        self.a.grad = grad_a
        self.b.grad = grad_b
        if self.train_w:
            self.w.grad = (2 * math.pi) * (b * moment_c - a * moment_s).T
        return total * (0.5 * scale)


    def _compiled_loss_and_grad(self, x, y, loss_scale, block_rows):
        n = x.shape[0]
        rows_per = block_rows or default_block_rows(self.width, x.device)
        c = self.kappa / math.sqrt(self.width)
        w, a, b = self.w.detach(), self.a.detach(), self.b.detach()
        fn = _compiled_block_terms()
        parts = [fn(x[s:s + rows_per], y[s:s + rows_per], w, a, b, c, loss_scale / n,
                    self.train_w) for s in range(0, n, rows_per)]
        total, grad_a, grad_b, *moments = (sum(p[i] for p in parts)
                                           for i in range(len(parts[0])))
        self.a.grad, self.b.grad = grad_a, grad_b
        if self.train_w:
            self.w.grad = (2 * math.pi) * (b * moments[0] - a * moments[1]).T
        return total * (0.5 * loss_scale / n)


def block_terms(xb, yb, w, a, b, c: float, scale: float, with_w: bool):
    """One row block of the closed-form pass as a pure function (see ``loss_and_grad``).

    Returns Σ_i r_i², Σ_i e_i C_ij, Σ_i e_i S_ij and, with ``with_w``, the (d, m)
    moments Σ_i e_i x_i C_ij and Σ_i e_i x_i S_ij, where r = c(Ca + Sb) − y and
    e = scale·c·r.
    """
    # Written as broadcasts and sums (no matrix products) so that the compiler fuses
    # cos and sin into one row reduction (r) and one column reduction (the rest).
    d = xb.shape[1]
    phase = (2 * math.pi) * sum(xb[:, k, None] * w[None, :, k] for k in range(d))
    cos, sin = torch.cos(phase), torch.sin(phase)
    resid = c * (cos * a + sin * b).sum(1) - yb
    e = (scale * c) * resid
    out = [resid.dot(resid), (e[:, None] * cos).sum(0), (e[:, None] * sin).sum(0)]
    if with_w:
        ex = e[:, None] * xb
        out += [torch.stack([(ex[:, k, None] * cos).sum(0) for k in range(d)]),
                torch.stack([(ex[:, k, None] * sin).sum(0) for k in range(d)])]
    return out


_COMPILED: dict = {}


def _compiled_block_terms():
    """:func:`block_terms` under :func:`torch.compile`, compiled once per process."""
    if "fn" not in _COMPILED:
        _COMPILED["fn"] = torch.compile(block_terms, dynamic=False)
    return _COMPILED["fn"]


def _sample_units(case, width: int, generator: torch.Generator, f0: str):
    """(w, a, b) in float64 for ``width`` units; ``f0="zero"`` draws width/2 and doubles."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if f0 not in ("random", "zero"):
        raise ValueError(f"f0 must be 'random' or 'zero', got {f0!r}")
    if f0 == "zero" and width % 2:
        raise ValueError(f"f0 = 'zero' needs an even width, got {width}")
    half = width // 2 if f0 == "zero" else width
    w = case.rho_w.sample(half, generator)
    a = case.sigma_a * torch.randn(half, generator=generator, dtype=torch.float64)
    b = case.sigma_a * torch.randn(half, generator=generator, dtype=torch.float64)
    if f0 == "zero":
        w, a, b = torch.cat([w, w]), torch.cat([a, -a]), torch.cat([b, -b])
    return w, a, b
