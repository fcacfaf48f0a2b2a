"""Gradient filters: callbacks that change ∇L after the backward pass, before the step.

* :class:`GrokfastEMA` (Lee et al. 2024, arXiv 2405.20233, "Grokfast-EMA"): per parameter
  h ← α h + (1 − α) g, then g ← g + λ h (h starts at the first gradient); the slow
  component of the gradient is amplified.  Their modular-addition setting is α = 0.98,
  λ = 2.
* :class:`OrthogonalGradient` (Prieto et al. 2025, arXiv 2501.04697, "⊥Grad"): per
  parameter tensor w, g ← g − (g·w / w·w) w, the gradient without its component along the
  weights, which is the direction that only scales the logits up (naive loss minimisation).

Both keep the gradient norm records of the loop as the raw gradient (they run after it).
"""

from __future__ import annotations

import torch

from freqdyn.nets.loop import Callback


class GrokfastEMA(Callback):
    """g ← g + λ·EMA_α(g), per parameter; the EMA survives checkpoints."""

    def __init__(self, alpha: float = 0.98, lamb: float = 2.0):
        self.alpha, self.lamb = float(alpha), float(lamb)
        self.averages: list[torch.Tensor] | None = None

    def after_backward(self, loop, step: int) -> None:
        grads = [p.grad for p in loop.params]
        if self.averages is None:
            self.averages = [torch.zeros_like(p) if g is None else g.detach().clone()
                             for p, g in zip(loop.params, grads, strict=True)]
        else:
            for h, g in zip(self.averages, grads, strict=True):
                if g is not None:
                    h.mul_(self.alpha).add_(g.detach(), alpha=1 - self.alpha)
        for h, g in zip(self.averages, grads, strict=True):
            if g is not None:
                g.add_(h, alpha=self.lamb)

    def state_dict(self):
        return {"averages": self.averages}

    def load_state_dict(self, state) -> None:
        self.averages = state["averages"]


class OrthogonalGradient(Callback):
    """g ← g − (g·w / w·w) w for every parameter tensor w with w ≠ 0."""

    def after_backward(self, loop, step: int) -> None:
        with torch.no_grad():
            for p in loop.params:
                if p.grad is None:
                    continue
                norm2 = float((p * p).sum())
                if norm2 > 0:
                    p.grad.sub_(p, alpha=float((p.grad * p).sum()) / norm2)
