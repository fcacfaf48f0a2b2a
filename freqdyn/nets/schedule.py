"""Steps and PDE time: the time map, the report schedule and the stability bound.

Gradient descent on L = (α/2N) Σ_i (f(x_i) − y_i)² over samples filling [−R, R]^d advances
the PDE time of docs/theory.md §8 by η/(1 − μ)(2R)^d per step (:func:`pde_time`).  The
report schedule picks the largest η ≤ the requested bound that hits every reported time
in a whole number of steps (:func:`report_schedule`); the bound itself is a fraction of
the GD stability limit 2(1 + μ)/λ_max of the NTK Gram (:func:`check_learning_rate`).
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from freqdyn.errors import InputError

#: A learning rate beyond this multiple of the stability bound is refused.
REFUSE_FACTOR = 4.0
#: Most steps a run may need to hit the reported times exactly.
MAX_STEPS = 50_000_000


class StabilityWarning(UserWarning):
    """The learning rate exceeds the gradient-descent stability bound."""


def pde_time(steps, lr: float, box_volume: float, momentum: float = 0.0):
    """PDE time τ reached after ``steps`` optimizer steps of size ``lr``.

        τ = η k / ((1 − μ) (2R)^d)

    Derivation.  Training minimises L = (α/2N) Σ_i (f(x_i) − y_i)² over N samples
    that fill the box of volume V = (2R)^d uniformly, so (1/N)Σ_i ≈ V^{-1}∫ dx (exact
    for the cell-centred grid, N h^d = V; unbiased for uniform random samples).
    Linearised in the parameters (NTK regime), one GD step changes the error by

        u_{k+1}(x) − u_k(x) = −η ∇_θf(x)·∇_θL = −(ηα/N) Σ_i Θ(x, x_i) u_k(x_i)
                            ≈ −(η/V) α ∫ Θ(x, x') u_k(x') dx',

    with Θ the NTK of the network as built (it already carries κ²).  freqdyn's PDE
    time t is defined by ∂_t u = −α ∫ Θ u dx' (the kernel-flow reference and the PDE
    ∂_t û = κ²α[σ_a²∇·(ρ_w∇û) − ρ_w û]), so one step advances t by η/V: τ = ηk/V.
    A mean-of-squares loss without the ½ (PyTorch's MSE) would double τ; a sum
    instead of a mean would multiply it by N.  Heavy-ball momentum μ makes the step
    η/(1 − μ) once the velocity has settled (after ~1/(1 − μ) steps), so τ is then
    asymptotic.  Minibatch SGD has the same mean step.  Adaptive optimisers (Adam)
    rescale each coordinate, so for them τ is only a nominal clock.
    """
    return np.asarray(steps, dtype=float) * lr / ((1.0 - momentum) * box_volume)


def time_quantum(times) -> Fraction:
    """The largest g with every time an integer multiple of g (times as exact decimals)."""
    fracs = []
    for t in np.asarray(times, dtype=float):
        frac = Fraction(repr(float(t)))
        if frac.denominator > 10**9:
            raise InputError("frequency.times", f"time {t!r} has too many digits to be hit "
                                               "exactly by whole steps")
        fracs.append(frac)
    positive = [f for f in fracs if f > 0]
    if not positive:
        return Fraction(1)
    num = 0
    den = 1
    for f in positive:
        den = den * f.denominator // math.gcd(den, f.denominator)
    for f in positive:
        num = math.gcd(num, f.numerator * (den // f.denominator))
    return Fraction(num, den)


def report_schedule(times, lr_max: float, box_volume: float, momentum: float = 0.0):
    """(η, steps at each time) with η ≤ ``lr_max`` and τ(steps_i) = times_i exactly.

    The PDE step Δτ = η/((1 − μ)V) is the largest g/q ≤ Δτ_max, q a positive integer
    and g the time quantum, so that every t_i = (t_i/g)·q·Δτ is a whole number of steps.
    """
    g = time_quantum(times)
    dtau_max = lr_max / ((1.0 - momentum) * box_volume)
    q = max(1, math.ceil(float(g) / dtau_max))
    steps = [int(Fraction(repr(float(t))) / g * q) for t in np.asarray(times, dtype=float)]
    if steps[-1] > MAX_STEPS:
        raise InputError("train.lr", f"reaching t = {times[-1]:g} needs {steps[-1]} steps at "
                                    f"η = {lr_max:.3g} (limit {MAX_STEPS}); raise lr or "
                                    "shorten the times")
    dtau = float(g) / q
    return dtau * (1.0 - momentum) * box_volume, steps


def stability_bound(lam_max: float, momentum: float = 0.0) -> float:
    """Largest stable GD learning rate, 2(1 + μ)/λ_max (heavy ball; 2/λ_max for μ = 0)."""
    return 2.0 * (1.0 + momentum) / lam_max


def check_learning_rate(lr: float, lam_max: float, momentum: float = 0.0) -> dict:
    """Compare η with the stability bound; warn beyond it, refuse beyond 4× it.

    Returns the numbers recorded with the result: the bound, λ_max and, for the top
    Gram mode, the per-step GD factor 1 − ηλ against the gradient-flow factor e^{−ηλ}.
    """
    bound = stability_bound(lam_max, momentum)
    info = {"lr": lr, "gram_lambda_max": lam_max, "lr_stability_bound": bound,
            "top_mode_gd_factor": 1.0 - lr * lam_max,
            "top_mode_flow_factor": math.exp(-lr * lam_max)}
    if lr > REFUSE_FACTOR * bound:
        raise InputError("train.lr", f"η = {lr:.4g} is {lr / bound:.1f}× the stability bound "
                                    f"2(1+μ)/λ_max = {bound:.4g} (λ_max = {lam_max:.4g} of the "
                                    f"NTK Gram (α/N)JJᵀ on the training samples); refused "
                                    f"beyond {REFUSE_FACTOR:g}×")
    if lr > bound:
        warnings.warn(f"learning rate η = {lr:.4g} exceeds the stability bound "
                      f"2(1+μ)/λ_max = {bound:.4g} (λ_max = {lam_max:.4g}): the top NTK mode "
                      f"grows by |1 − ηλ| = {abs(1 - lr * lam_max):.3g} per step; expect "
                      "divergence", StabilityWarning, stacklevel=2)
    return info


#: Macro steps of the RKC integrator to the last reported time (without min_steps).
RKC_MACRO_STEPS = 8


def schedule(case, settings, lam: float, volume: float):
    """(η, report steps) from the ``[train]`` settings and the Gram's λ_max."""
    if settings.integrator == "rkc":  # macro steps: the flow's own steps are adaptive
        macro = settings.min_steps or RKC_MACRO_STEPS
        return report_schedule(case.times, volume * float(case.times[-1]) / macro, volume)
    if settings.lr is not None:
        lr_max = settings.lr
    elif settings.optimizer in ("gd", "sgd"):
        lr_max = settings.lr_fraction * stability_bound(lam, settings.momentum)
    else:
        lr_max = 1e-3
    if settings.min_steps is not None and settings.steps is None and case.times[-1] > 0:
        lr_max = min(lr_max, (1.0 - settings.momentum) * volume * float(case.times[-1])
                     / settings.min_steps)
    if settings.steps is not None:
        steps = np.unique(np.round(np.linspace(0, settings.steps, settings.reports)).astype(int))
        return lr_max, [int(s) for s in steps]
    return report_schedule(case.times, lr_max, volume, settings.momentum)


def time_mapping_text(settings) -> str:
    """How steps map to PDE time for these settings (stored with every measured result)."""
    base = "tau = lr * step / ((1 - momentum) * (2R)^d) for loss (alpha/2N) sum (f - g)^2"
    if settings.optimizer in ("adam", "adamw"):
        return base + "; nominal only: adaptive optimiser, no PDE-time mapping"
    if settings.integrator == "rkc":
        return base + ("; each step one macro step of the gradient flow d theta/d tau = "
                       f"-(2R)^d grad L, integrated by adaptive RKC2 to rtol {settings.rtol:g}")
    if settings.momentum:
        return base + "; asymptotic for heavy-ball momentum"
    return base + "; exact for gradient descent in the NTK limit"
