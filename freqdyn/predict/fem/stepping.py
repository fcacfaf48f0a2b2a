"""Time-step plans on the reported times and their a-priori error bound (numpy only)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from freqdyn.progress import Progress


@dataclass(frozen=True)
class StepPlan:
    """Steps between reported times: per interval (step size, number of steps)."""

    times: np.ndarray
    intervals: tuple[tuple[float, int], ...]
    scheme: str
    startup: int  # CN steps replaced by two backward-Euler half steps each

    @property
    def steps(self) -> int:
        return sum(n for _, n in self.intervals)

    def amplification(self, lam: np.ndarray) -> np.ndarray:
        """R(λ) of the whole sequence up to each reported time, shape (time, λ)."""
        out = np.empty((self.times.size, lam.size))
        total = np.ones_like(lam)
        first = True
        for j, (dt, n) in enumerate(self.intervals):
            z = lam * dt
            if self.scheme == "be":
                total = total / (1 + z) ** n
            else:
                m = min(self.startup, n) if first else 0
                cn = (1 - z / 2) / (1 + z / 2)
                total = total * (1 + z / 2) ** (-2.0 * m) * cn ** (n - m)
            if n:
                first = False
            out[j] = total
        return out

    def error_bound(self) -> np.ndarray:
        """sup_λ≥0 |e^{−λt} − R(λ)| at each reported time: the time error / ‖û₀‖_M."""
        dts = [dt for dt, n in self.intervals if n]
        if not dts:
            return np.zeros(self.times.size)
        lam = np.concatenate([[0.0], np.geomspace(1e-3 / max(self.times[-1], 1e-300),
                                                  1e4 / min(dts), 4000)])
        exact = np.exp(-np.outer(self.times, lam))
        return np.max(np.abs(exact - self.amplification(lam)), axis=1)


def step_plan(times: np.ndarray, dt, scheme: str, startup: int) -> StepPlan:
    """Equal steps ≤ dt on each interval between 0 and the reported times.

    ``dt`` is one step size, or one per interval (the interval ending at times[j]).
    """
    times = np.asarray(times, dtype=float)
    starts = np.concatenate([[0.0], times[:-1]])
    limits = np.broadcast_to(np.asarray(dt, dtype=float), times.shape)
    intervals = []
    for a, b, h in zip(starts, times, limits, strict=True):
        length = b - a
        n = int(math.ceil(length / h - 1e-9)) if length > 0 else 0
        intervals.append((length / n if n else 0.0, n))
    return StepPlan(times=times, intervals=tuple(intervals), scheme=scheme, startup=startup)


def default_dt_ratio(times: np.ndarray, scheme: str, startup: int, tol: float) -> float:
    """The largest r such that steps Δt_j = r·t_j (graded with the reported times t_j)
    keep the a-priori time-error bound ≤ tol at every reported time."""
    times = np.asarray(times, dtype=float)

    def ok(ratio):
        return step_plan(times, ratio * np.maximum(times, 1e-300), scheme,
                         startup).error_bound().max() <= tol

    hi = 1.0
    if ok(hi):
        return hi
    lo = 1e-8
    for _ in range(40):  # bisection in log r
        mid = math.sqrt(lo * hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def progress_bar(total: int, desc: str, comm, enabled: bool = True):
    """The time steps' progress (:class:`freqdyn.progress.Progress`), on MPI rank 0 only."""

    return Progress(total, desc, unit="steps", enabled=None if enabled and comm.rank == 0
                    else False)
