"""Gradient flow by a stabilized explicit integrator: second-order Runge–Kutta–Chebyshev.

The networks' theory is about the flow dθ/dτ = −V ∇L(θ) in PDE time τ (V the box volume:
one GD step of size η advances τ by η/V, :func:`freqdyn.nets.schedule.pde_time`).  Its
Jacobian −V ∇²L is close to −V (α/N) JᵀJ in the NTK regime: real and non-positive, with
spectral radius ρ = V λ_max (λ_max of the NTK Gram, :meth:`gram_lambda_max`).  GD follows
the flow only for η λ_max < 2, so reaching τ costs ρτ/2 gradients.  The s-stage damped
RKC2 method (Sommeijer, Shampine and Verwer 1997; Verwer, Hundsdorfer and Sommeijer 1990)
is stable for hρ ≤ β(s) ≈ 0.65 s², so a step h costs s ≈ √(hρ/0.65) gradients and τ costs
about τ√(ρ/(0.65 h)): the step is set by accuracy, not stability.

One call of :meth:`ChebyshevFlow.step` advances τ by exactly ``macro_step`` (the training
loop's step, so report times are hit exactly and checkpoints fall between calls) in
adaptive RKC2 steps.  Each step's local error is estimated by the scheme's embedded
formula est = (4/5)(y_n − y_{n+1}) + (2/5)h(F_n + F_{n+1}) and held to ``rtol`` times the
distance moved from the start, ‖y_{n+1} − θ₀‖ (the learned change); the next h is
0.8 h (1/err)^{1/3}, in [h/5, 5h].
With F_{n+1} reused as the next step's first stage, a step of s stages costs s gradients.

No kept library offers RKC for PyTorch tensors (torchdiffeq and torchode have explicit
RK and adaptive Dormand–Prince, which are stability-bound here); the scheme is short.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

#: Damping of the Chebyshev polynomials (the RKC code's ε = 2/13).
DAMPING = 2.0 / 13.0
#: Stages at most (β(250) ≈ 4·10⁴: beyond, smaller steps are cheaper than rounding).
MAX_STAGES = 250
#: Margin on the spectral radius: the Gram's λ_max is estimated at θ₀ and moves.
RADIUS_MARGIN = 1.25


@functools.cache
def rkc_coefficients(stages: int) -> dict:
    """μ_j, ν_j, μ̃_j, γ̃_j (j = 1 … s) of the damped RKC2 scheme and its real stability
    boundary β(s) = (1 + w₀) T_s''(w₀)/T_s'(w₀), w₀ = 1 + ε/s²."""
    s = int(stages)
    if s < 2:
        raise ValueError("RKC2 needs at least two stages")
    w0 = 1.0 + DAMPING / s**2
    t, dt, d2t = np.zeros(s + 1), np.zeros(s + 1), np.zeros(s + 1)
    t[0], t[1], dt[1] = 1.0, w0, 1.0
    for j in range(2, s + 1):
        t[j] = 2 * w0 * t[j - 1] - t[j - 2]
        dt[j] = 2 * t[j - 1] + 2 * w0 * dt[j - 1] - dt[j - 2]
        d2t[j] = 4 * dt[j - 1] + 2 * w0 * d2t[j - 1] - d2t[j - 2]
    w1 = dt[s] / d2t[s]
    b = np.zeros(s + 1)
    b[2:] = d2t[2:] / dt[2:] ** 2
    b[0] = b[1] = b[2]
    mu, nu, mu_t, gam_t = (np.zeros(s + 1) for _ in range(4))
    mu_t[1] = b[1] * w1
    for j in range(2, s + 1):
        mu[j] = 2 * b[j] * w0 / b[j - 1]
        nu[j] = -b[j] / b[j - 2]
        mu_t[j] = 2 * b[j] * w1 / b[j - 1]
        gam_t[j] = -(1.0 - b[j - 1] * t[j - 1]) * mu_t[j]
    return {"mu": mu, "nu": nu, "mu_t": mu_t, "gam_t": gam_t,
            "beta": float((1.0 + w0) * d2t[s] / dt[s])}


def stages_for(h_rho: float) -> int:
    """The fewest stages s ≥ 2 with β(s) ≥ hρ (β(s) ≈ 0.65 s²)."""
    s = max(2, math.ceil(math.sqrt(max(h_rho, 0.0) / 0.65 + 1.0)))
    while rkc_coefficients(s)["beta"] < h_rho:
        s += 1
    while s > 2 and rkc_coefficients(s - 1)["beta"] >= h_rho:
        s -= 1
    return s


class ChebyshevFlow(torch.optim.Optimizer):
    """Advance dθ/dτ = −``scale``·∇L(θ) by ``macro_step`` per :meth:`step` (module text).

    ``radius``: the spectral radius of the flow's Jacobian (V λ_max); ``step(closure)``
    needs a closure that recomputes L at the current parameters and fills their ``.grad``.
    ``evaluations`` counts the closure's calls (the gradient evaluations).
    """

    needs_closure = True

    def __init__(self, params, *, macro_step: float, radius: float, rtol: float = 1e-5,
                 scale: float = 1.0):
        super().__init__(params, {})
        self.macro_step, self.rtol, self.scale = float(macro_step), float(rtol), float(scale)
        self.radius = RADIUS_MARGIN * float(radius)
        self.counters = {"h": None, "evaluations": 0, "accepted": 0, "rejected": 0,
                         "max_stages": 0}

    def _origin(self, y: torch.Tensor) -> torch.Tensor:
        """θ at the first step: errors are relative to the distance moved from it."""
        if "origin" not in self.counters:
            self.counters["origin"] = y.clone()
        return self.counters["origin"]

    @property
    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _flow(self, closure, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, F = −scale·∇L) at parameters y (a flat vector)."""
        params = self._params
        vector_to_parameters(y, params)
        with torch.enable_grad():
            loss = closure()
        self.counters["evaluations"] += 1
        grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in params])
        return loss.detach(), -self.scale * grad

    def _rkc_step(self, closure, y0, f0, h: float, stages: int) -> torch.Tensor:
        c = rkc_coefficients(stages)
        prev, cur = y0, y0 + c["mu_t"][1] * h * f0
        for j in range(2, stages + 1):
            _, f = self._flow(closure, cur)
            nxt = ((1 - c["mu"][j] - c["nu"][j]) * y0 + c["mu"][j] * cur + c["nu"][j] * prev
                   + c["mu_t"][j] * h * f + c["gam_t"][j] * h * f0)
            prev, cur = cur, nxt
        return cur

    @torch.no_grad()
    def step(self, closure):
        """Advance τ by ``macro_step``; returns L at the starting parameters."""
        y = parameters_to_vector(self._params).detach().clone()
        loss0, f = self._flow(closure, y)
        remaining = self.macro_step
        free = self.counters["h"] or self.macro_step  # the step the error allows
        while remaining > 1e-12 * self.macro_step:
            h = min(free, remaining)  # the last step of a macro step lands on its end
            stages = stages_for(h * self.radius)
            if stages > MAX_STAGES:
                stages = MAX_STAGES
                h = rkc_coefficients(MAX_STAGES)["beta"] / self.radius
            y_new = self._rkc_step(closure, y, f, h, stages)
            _, f_new = self._flow(closure, y_new)
            estimate = 0.8 * (y - y_new) + 0.4 * h * (f + f_new)
            moved = float(torch.linalg.vector_norm(y_new - self._origin(y)))
            err = float(torch.linalg.vector_norm(estimate)) / max(self.rtol * moved, 1e-300)
            if err <= 1.0:
                y, f, remaining = y_new, f_new, remaining - h
                self.counters["accepted"] += 1
                self.counters["max_stages"] = max(self.counters["max_stages"], stages)
            else:
                self.counters["rejected"] += 1
            grown = h * (min(5.0, max(0.2, 0.8 * err ** (-1.0 / 3.0))) if err > 0 else 5.0)
            free = max(grown, free) if (err <= 1.0 and h < free) else grown
            self.counters["h"] = free
        vector_to_parameters(y, self._params)
        return loss0

    def state_dict(self):
        out = super().state_dict()
        out["counters"] = dict(self.counters)
        return out

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        self.counters = dict(state.pop("counters"))
        super().load_state_dict(state)
