"""What a training run will cost, said before it starts (and held to ``--max-minutes``).

The count of gradient evaluations follows from the schedule:

* gradient descent (and SGD, Adam): one per step, ``total`` steps, plus one per step of
  the linearised twin when it runs (its J₀ᵀ(J₀δ − r) costs about a gradient);
* RKC (:mod:`freqdyn.nets.rkc`): each macro step h needs at least s(hρ) + 1 gradients,
  s(hρ) the fewest stages stable at hρ (ρ = 1.25 V λ_max).  Accuracy can force several
  RKC steps per macro step, so this is a lower bound; gradient descent's count
  λ_max-bound steps is the other end printed beside it.

The wall time is the count times one timed gradient (and one timed twin gradient), plus
one timed measurement per report.  The first calls include warm-up (plans, caches), so
the estimate errs long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from freqdyn import time_budget
from freqdyn.nets.rkc import RADIUS_MARGIN, stages_for
from freqdyn.nets.schedule import stability_bound


@dataclass(frozen=True)
class TrainingCost:
    """The estimate: gradient evaluations (``gradients``, with ``gradients_high`` the
    other end of a range or None) and seconds (same), from timed single calls."""

    lambda_max: float
    gradients: int
    gradients_high: int | None
    seconds_per_gradient: float
    seconds: float
    seconds_high: float | None

    def line(self) -> str:
        """One line for the log: λ_max, the gradient count and the wall time."""
        if self.gradients_high is None:
            count, wall = f"{self.gradients}", time_budget.duration(self.seconds)
        else:
            count = (f"{self.gradients} (rkc's stability bound) to {self.gradients_high} "
                     "(gd's at 0.9 of its bound)")
            low, high = (time_budget.duration(s) for s in (self.seconds, self.seconds_high))
            wall = f"{low} to {high}"
        return (f"cost: λ_max = {self.lambda_max:.4g}, {count} gradient evaluations at "
                f"{self.seconds_per_gradient * 1e3:.3g} ms, about {wall}")


def timed(function) -> float:
    """Seconds of one call of ``function()``."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def rkc_gradient_bounds(report_steps, macro_step: float, radius: float, lam: float,
                        volume: float) -> tuple[int, int]:
    """(RKC's lower bound, GD's count at 0.9 of its bound) to the last reported step:
    Σ (s(hρ) + 1) over the macro steps, and λ_max V τ/(0.9·2) steps (module text)."""
    h_rho = macro_step * RADIUS_MARGIN * radius
    macro = int(report_steps[-1])
    low = macro * (stages_for(h_rho) + 1) if macro else 0
    tau = macro * macro_step
    high = int(np.ceil(volume * tau / (0.9 * stability_bound(lam, 0.0)))) if lam > 0 else 0
    return low, max(high, low)


def training_cost(settings, constants: dict, volume: float, gradient_seconds: float,
                  twin_seconds: float, measure_seconds: float) -> TrainingCost:
    """The estimate of a run of ``settings`` with the set-up ``constants`` (module text)."""
    lam = float(constants["stability"]["gram_lambda_max"])
    steps, reports = constants["report_steps"], len(constants["report_steps"])
    fixed = reports * measure_seconds
    if settings.integrator == "rkc":
        macro_step = constants["lr"] / volume
        low, high = rkc_gradient_bounds(steps, macro_step, volume * lam, lam, volume)
        return TrainingCost(lam, low, high, gradient_seconds, fixed + low * gradient_seconds,
                            fixed + high * gradient_seconds)
    total = int(steps[-1])
    return TrainingCost(lam, total, None, gradient_seconds,
                        fixed + total * (gradient_seconds + twin_seconds), None)
