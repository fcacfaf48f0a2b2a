"""The figure sets of experiment kinds, registered by declaration.

A kind that wants figures returns its data with the name of a figure set
(:class:`freqdyn.runs.runner.Outcome` ``figure_set`` and ``figure_data``); the runner draws
them with :func:`draw`.  A plotting module declares its sets with :func:`figure_set`, so
that compute code never imports figures and figures never import compute.
"""

from __future__ import annotations

from collections.abc import Callable

#: figure-set name → function(**figure_data) → {file stem: matplotlib Figure}
FIGURE_SETS: dict[str, Callable[..., dict]] = {}


def figure_set(name: str):
    """Register the decorated function as the figure set ``name``."""
    def register(function: Callable[..., dict]) -> Callable[..., dict]:
        if name in FIGURE_SETS:
            raise ValueError(f"figure set {name!r} is registered twice")
        FIGURE_SETS[name] = function
        return function
    return register


def draw(name: str, data: dict) -> dict:
    """The figures of the set ``name`` drawn from ``data`` (its keyword arguments)."""
    if name not in FIGURE_SETS:
        raise KeyError(f"no figure set {name!r}; registered: {', '.join(sorted(FIGURE_SETS))}")
    return FIGURE_SETS[name](**data)
