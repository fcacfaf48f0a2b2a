"""The LFP's own network: a 2-layer ReLU or tanh network, all parameters trained
(docs/theory.md §9).

    f(x) = κ m^{-1/2} Σ_j a_j σ(w_j·x + b_j),   w_j ∼ 𝒩(0, s_w² I_d), b_j ∼ 𝒩(0, σ_b²),
                                                 a_j ∼ 𝒩(0, s_a²),

with σ = relu or tanh and s_w, σ_b, s_a the ``[lfp]`` keys the LFP solver reads
(:func:`freqdyn.theory.lfp.lfp_params`); κ is the case's output scale.  ``f0 = "zero"``
doubles the network (m/2 draws, each repeated with −a), as for Fourier features.

**Time map.**  The trainer's loss L = (α/2N) Σ_i (f(x_i) − y_i)² over N samples filling
the box [−R, R]^d of volume V is (α/2V)∫(f − g)² dx; GD with step η moves the
linearised error by −(ηα/V)∫Θ u dx' per step, with Θ = ∇_θf·∇_θf' the NTK.  The LFP
PDE is written in the time t of ∂_t u = −κ²α ∫Θ₁ u dx' (Θ₁ the NTK at κ = 1, loss
½∫(f − g)² at α = 1), so one step advances t by η/V: the same map as for Fourier
features (:func:`freqdyn.nets.schedule.pde_time`).

**Passes.**  With c = κ m^{-1/2}, Z_ij = w_j·x_i + b_j, S = σ(Z) and S' = σ'(Z) (n × m),

    f = c S a,   J u = c [S u_a + S'(a ⊙ u_b) + Σ_k x_k ⊙ S'(a ⊙ u_{w,k})],
    Jᵀ v = c [Sᵀ v,  a ⊙ S'ᵀ v,  a ⊙ S'ᵀ(v ⊙ x_k)],      ∇L = Jᵀ e,  e = (α/N)(f − y).

``dense`` evaluates S and S' over row blocks (any σ, any d: O(n m) per product).  For
ReLU, σ(z) = z·1[z > 0], so every product is one with the step matrix H = 1[Z > 0]:
S u = H(u ⊙ b) + Σ_k x_k ⊙ H(u ⊙ w_k), S' = H.  In d = 1 the row i of H is the set of
units whose breakpoint β_j = −b_j/w_j lies on the active side of x_i, so H u and Hᵀ v
are prefix sums over the sorted breakpoints and samples: ``sorted``, O((n + m) log m)
per product (:class:`SortedSteps`), exact up to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from freqdyn.nets.fourier import default_block_rows
from freqdyn.nets.gram import top_eigenvalue

LFP_MODELS = {"lfp-relu": "relu", "lfp-tanh": "tanh"}


def _sech2(z: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(z)
    return 1.0 - t * t


ACT = {"relu": (torch.relu, lambda z: (z > 0).to(z.dtype)), "tanh": (torch.tanh, _sech2)}


class LFPNetwork(nn.Module):
    """f(x) = κ m^{-1/2} Σ_j a_j σ(w_j·x + b_j) (module text); x of shape (n, d)."""

    band_limited = False  # f has kinks (ReLU): the measurement grid is the LFP data grid

    def __init__(self, w: torch.Tensor, b: torch.Tensor, a: torch.Tensor, activation: str,
                 kappa: float = 1.0, backend: str = "dense"):
        super().__init__()
        if activation not in ACT:
            raise ValueError(f"activation must be one of {sorted(ACT)}, got {activation!r}")
        if backend == "sorted" and (activation != "relu" or w.shape[1] != 1):
            raise ValueError("the sorted pass is for ReLU in d = 1")
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(b.clone())
        self.a = nn.Parameter(a.clone())
        self.activation, self.kappa, self.backend = activation, float(kappa), backend
        self._samples_cache: tuple | None = None

    @property
    def width(self) -> int:
        return self.w.shape[0]

    @property
    def scale(self) -> float:
        return self.kappa / math.sqrt(self.width)

    @classmethod
    def from_case(cls, case, params, width: int, generator: torch.Generator,
                  f0: str = "random", dtype: torch.dtype = torch.float64,
                  backend: str = "dense") -> LFPNetwork:
        """Draw the network of the ``[lfp]`` parameters (``params``: an LFPParams)."""
        if f0 not in ("random", "zero"):
            raise ValueError(f"f0 must be 'random' or 'zero', got {f0!r}")
        draws = width // 2 if f0 == "zero" else width
        w = params.weight_scale * torch.randn(draws, case.dim, generator=generator,
                                              dtype=torch.float64)
        b = params.sigma_b * torch.randn(draws, generator=generator, dtype=torch.float64)
        a = params.outer_std * torch.randn(draws, generator=generator, dtype=torch.float64)
        if f0 == "zero":
            w, b, a = torch.cat([w, w]), torch.cat([b, b]), torch.cat([a, -a])
        return cls(w.to(dtype), b.to(dtype), a.to(dtype), params.activation, case.kappa,
                   backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sigma = ACT[self.activation][0]
        return self.scale * (sigma(x @ self.w.T + self.b) @ self.a)

    # -- the passes --------------------------------------------------------------------

    def products(self, x: torch.Tensor) -> _Products:
        """The S, S' products on the samples x (cached for the last x seen)."""
        w, b = self.w.detach(), self.b.detach()
        version = (self.w._version, self.b._version, w.data_ptr(), b.data_ptr())
        cache = self._samples_cache
        if cache is not None and cache[0] is x:  # the cache holds x: its storage stays x's
            if cache[2] != version:
                cache[1].set_units(w, b)
                self._samples_cache = (x, cache[1], version)
            return cache[1]
        prod = (SortedSteps(x, w, b) if self.backend == "sorted"
                else DenseProducts(x, w, b, self.activation))
        self._samples_cache = (x, prod, version)
        return prod

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, block_rows: int | None = None) -> torch.Tensor:
        """f(x) without autograd."""
        return self.scale * self.products(x).act(self.a.detach())

    @torch.no_grad()
    def jvp(self, x: torch.Tensor, u_w, u_b, u_a) -> torch.Tensor:
        """J u at the samples x: the change of f along (u_w (m, d), u_b (m,), u_a (m,))."""
        p, a = self.products(x), self.a.detach()
        out = p.act(u_a) + p.der(a * u_b)
        for k in range(x.shape[1]):
            out = out + x[:, k] * p.der(a * u_w[:, k])
        return self.scale * out

    @torch.no_grad()
    def vjp(self, x: torch.Tensor, v: torch.Tensor):
        """Jᵀ v: (∂/∂w (m, d), ∂/∂b (m,), ∂/∂a (m,)) of Σ_i v_i f(x_i)."""
        p, a = self.products(x), self.a.detach()
        cols = torch.stack([v] + [v * x[:, k] for k in range(x.shape[1])], dim=1)
        der = p.der_t(cols)  # (m, 1 + d)
        return (self.scale * a[:, None] * der[:, 1:], self.scale * a * der[:, 0],
                self.scale * p.act_t(v))

    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor, loss_scale: float = 1.0,
                      block_rows: int | None = None) -> torch.Tensor:
        """L = (α/2N) Σ (f − y)² and ∇L = Jᵀe (in ``.grad``), e = (α/N)(f − y).

        ``dense``: one pass over row blocks (σ and σ' of each block once: e of a row needs
        only its own f); ``sorted``: f, then Jᵀe by prefix sums.
        """
        n = x.shape[0]
        if self.backend == "dense":
            return self._dense_loss_and_grad(x, y, loss_scale, block_rows)
        resid = self.evaluate(x) - y
        gw, gb, ga = self.vjp(x, (loss_scale / n) * resid)
        self.w.grad, self.b.grad, self.a.grad = gw, gb, ga
        return 0.5 * loss_scale / n * resid.dot(resid)

    @torch.no_grad()
    def _dense_loss_and_grad(self, x, y, loss_scale, block_rows):
        sigma, deriv = ACT[self.activation]
        w, b, a = self.w.detach(), self.b.detach(), self.a.detach()
        n, c = x.shape[0], self.scale
        rows = block_rows or default_block_rows(self.width, x.device)
        g_act = torch.zeros_like(a)
        g_der = torch.zeros((self.width, 1 + x.shape[1]), dtype=a.dtype, device=a.device)
        loss = torch.zeros((), dtype=a.dtype, device=a.device)
        for s in range(0, n, rows):
            xb = x[s:s + rows]
            z = xb @ w.T + b
            act = sigma(z)
            der = (1.0 - act * act) if self.activation == "tanh" else deriv(z)
            resid = c * (act @ a) - y[s:s + rows]
            loss += resid.dot(resid)
            e = (loss_scale / n) * resid
            g_act += act.T @ e
            g_der += der.T @ torch.cat([e[:, None], e[:, None] * xb], dim=1)
        self.a.grad = c * g_act
        self.b.grad = c * a * g_der[:, 0]
        self.w.grad = c * a[:, None] * g_der[:, 1:]
        return 0.5 * loss_scale / n * loss

    def gram_lambda_max(self, x: torch.Tensor, loss_scale: float = 1.0,
                        tol: float = 1e-3) -> float:
        """λ_max of (α/N) J Jᵀ on the samples, by Lanczos with the closed-form products."""
        n = x.shape[0]

        def product(v):
            vt = torch.as_tensor(np.ravel(v), dtype=x.dtype, device=x.device)
            return (loss_scale / n) * self.jvp(x, *self.vjp(x, vt)).double().cpu().numpy()

        return top_eigenvalue(product, n, tol)

    @torch.no_grad()
    def empirical_ntk(self, probe: np.ndarray) -> np.ndarray:
        """Θ̂(x, x') = c² Σ_j [σ_j σ'_j + a_j² σ'_j(x) σ'_j(x')(1 + x·x')] at probe points."""
        x = torch.as_tensor(probe, dtype=torch.float64, device=self.w.device)
        sigma, deriv = ACT[self.activation]
        w, b, a = (p.detach().double() for p in (self.w, self.b, self.a))
        z = x @ w.T + b
        s, ds = sigma(z), deriv(z) * a
        kernel = s @ s.T + (ds @ ds.T) * (1.0 + x @ x.T)
        return (self.scale**2 * kernel).cpu().numpy()


class _Products:
    """S u = σ(Z)u, S'u, Sᵀv, S'ᵀv for Z = x wᵀ + b (u: (m,), v: (n,) or (n, k))."""

    def set_units(self, w, b):
        raise NotImplementedError

    def act(self, u): ...

    def der(self, u): ...

    def act_t(self, v): ...

    def der_t(self, v): ...


class DenseProducts(_Products):
    """The products over row blocks of Z (memory: one block of rows × m)."""

    def __init__(self, x, w, b, activation: str):
        self.x, self.activation = x, activation
        self.rows = default_block_rows(w.shape[0], x.device)
        self.set_units(w, b)

    def set_units(self, w, b):
        self.w, self.b = w, b

    def _blocks(self, which: int):
        fn = ACT[self.activation][which]
        for s in range(0, self.x.shape[0], self.rows):
            yield s, fn(self.x[s:s + self.rows] @ self.w.T + self.b)

    def _mv(self, which, u):
        out = torch.empty(self.x.shape[0], dtype=self.x.dtype, device=self.x.device)
        for s, block in self._blocks(which):
            out[s:s + block.shape[0]] = block @ u
        return out

    def _rmv(self, which, v):
        out = None
        for s, block in self._blocks(which):
            part = block.T @ v[s:s + block.shape[0]]
            out = part if out is None else out + part
        return out

    def act(self, u):
        return self._mv(0, u)

    def der(self, u):
        return self._mv(1, u)

    def act_t(self, v):
        return self._rmv(0, v)

    def der_t(self, v):
        return self._rmv(1, v)


class SortedSteps(_Products):
    """ReLU in d = 1: products with H = 1[w_j x_i + b_j > 0] by prefix sums.

    A unit with w_j > 0 is active at x_i iff x_i > β_j = −b_j/w_j, one with w_j < 0 iff
    x_i < β_j, one with w_j = 0 everywhere iff b_j > 0.  With the samples sorted once and
    the breakpoints sorted per step, H u (per sample) and Hᵀ v (per unit) are cumulative
    sums read at ``searchsorted`` positions: O((n + m) log m), no n × m array.
    """

    def __init__(self, x, w, b):
        xs = x[:, 0]
        self.order = torch.argsort(xs)
        self.xs = xs[self.order]
        self.x = xs
        self.set_units(w, b)

    def set_units(self, w, b):
        w1 = w[:, 0]
        self.pos, self.neg = w1 > 0, w1 < 0
        self.flat_on = (w1 == 0) & (b > 0)
        self.w, self.b = w1, b
        beta = -b / torch.where(w1 == 0, torch.ones_like(w1), w1)
        self.groups = []
        for mask in (self.pos, self.neg):
            idx = torch.nonzero(mask).squeeze(1)
            bb, perm = torch.sort(beta[idx])
            self.groups.append((idx[perm], bb))
        # for H u: how many breakpoints of each group lie below each sample
        (_, bp), (_, bn) = self.groups
        self.count_pos = torch.searchsorted(bp, self.x, right=False)  # β < x
        self.count_neg = torch.searchsorted(bn, self.x, right=True)  # β ≤ x
        # for Hᵀ v: how many sorted samples lie below each breakpoint
        self.below_pos = torch.searchsorted(self.xs, bp, right=True)  # x ≤ β
        self.below_neg = torch.searchsorted(self.xs, bn, right=False)  # x < β

    @staticmethod
    def _prefix(values):
        zero = torch.zeros((1,) + values.shape[1:], dtype=values.dtype, device=values.device)
        return torch.cat([zero, torch.cumsum(values, dim=0)])

    def step(self, u):
        """H u, u of shape (m,)."""
        (ip, _), (ineg, _) = self.groups
        cp, cn = self._prefix(u[ip]), self._prefix(u[ineg])
        out = cp[self.count_pos] + (cn[-1] - cn[self.count_neg])
        return out + u[self.flat_on].sum()

    def step_t(self, v):
        """Hᵀ v, v of shape (n,) or (n, k)."""
        vs = v[self.order]
        cv = self._prefix(vs)
        total = cv[-1]
        (ip, _), (ineg, _) = self.groups
        out = torch.zeros((self.w.shape[0],) + v.shape[1:], dtype=v.dtype, device=v.device)
        out[ip] = total - cv[self.below_pos]
        out[ineg] = cv[self.below_neg]
        out[self.flat_on] = total
        return out

    def act(self, u):
        return self.step(u * self.b) + self.x * self.step(u * self.w)

    def der(self, u):
        return self.step(u)

    def act_t(self, v):
        xv = v * self.x if v.ndim == 1 else v * self.x[:, None]
        both = self.step_t(torch.stack([v, xv], dim=-1))
        if v.ndim == 1:
            return self.b * both[:, 0] + self.w * both[:, 1]
        return self.b[:, None] * both[..., 0] + self.w[:, None] * both[..., 1]

    def der_t(self, v):
        return self.step_t(v)
