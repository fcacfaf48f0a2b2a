"""Time estimates and the time budget they are held to (``--max-minutes``).

A command estimates its work before it starts (:mod:`freqdyn.nets.cost` for training).
With a budget set, a run whose estimate does not fit in what is left of it is refused in
one line with the estimate (exit 2); without one, a run estimated to take longer than
:data:`LONG_SECONDS` says so (:class:`LongRunWarning`).  The budget is a deadline for the
whole command: a study's networks draw on the same minutes.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings

from freqdyn.errors import InputError

#: Estimated runs longer than this (seconds) are announced with a warning.
LONG_SECONDS = 600.0

_DEADLINE: dict[str, float | None] = {"at": None, "minutes": None}


class LongRunWarning(UserWarning):
    """A run is estimated to take longer than :data:`LONG_SECONDS`."""


@contextlib.contextmanager
def time_limit(minutes: float | None):
    """Hold the work started inside to ``minutes`` of wall time (None: no limit)."""
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise InputError("--max-minutes", f"must be a number of minutes > 0, got {minutes!r}")
    saved = dict(_DEADLINE)
    if minutes is not None:
        _DEADLINE.update(at=time.monotonic() + 60.0 * minutes, minutes=float(minutes))
    try:
        yield
    finally:
        _DEADLINE.update(saved)


def seconds_left() -> float | None:
    """Seconds left of the budget, or None without one."""
    if _DEADLINE["at"] is None:
        return None
    return max(_DEADLINE["at"] - time.monotonic(), 0.0)


def duration(seconds: float) -> str:
    """``seconds`` for a reader: "40 s", "12 min", "3.2 h"."""
    if seconds < 90:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def require_time(seconds: float, what: str, advice: str) -> None:
    """Refuse (InputError on ``--max-minutes``) an estimate of ``seconds`` that does not fit
    in the budget left; warn when there is no budget and it exceeds :data:`LONG_SECONDS`."""
    left = seconds_left()
    if left is not None and seconds > left:
        spent = 60.0 * _DEADLINE["minutes"] - left
        taken = f" ({duration(spent)} of it already spent)" if spent >= 1.0 else ""
        raise InputError("--max-minutes", f"{what} needs about {duration(seconds)}, more than "
                                          f"the {_DEADLINE['minutes']:g} min allowed{taken}; "
                                          f"{advice}")
    if left is None and seconds > LONG_SECONDS:
        warnings.warn(f"{what} will take about {duration(seconds)}; --max-minutes N refuses "
                      "what does not fit", LongRunWarning, stacklevel=2)
