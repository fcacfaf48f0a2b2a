"""Memory estimates and the budget they are held to, so a run that cannot fit is refused
before it starts (with the estimate) instead of being killed part-way.

The budget is 75 % of the machine's physical memory, or ``FREQDYN_MEMORY_GB`` (in GB,
10⁹ bytes) when that is set.
"""

from __future__ import annotations

import os

from freqdyn.errors import InputError

#: Share of the physical memory a single run may plan to use.
BUDGET_FRACTION = 0.75


def physical_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def budget_bytes() -> float:
    """Bytes a run may plan for (``FREQDYN_MEMORY_GB`` or 75 % of physical memory)."""
    given = os.environ.get("FREQDYN_MEMORY_GB")
    if given:
        try:
            value = float(given)
        except ValueError:
            raise InputError("FREQDYN_MEMORY_GB", f"must be a number of GB, got {given!r}") \
                from None
        if not value > 0:
            raise InputError("FREQDYN_MEMORY_GB", f"must be > 0, got {given!r}")
        return value * 1e9
    return BUDGET_FRACTION * physical_bytes()


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB"


def require(field: str, needed: float, what: str, advice: str) -> None:
    """Refuse (InputError on ``field``) when ``needed`` bytes exceed the budget."""
    budget = budget_bytes()
    if needed > budget:
        raise InputError(field, f"{what} needs about {gb(needed)}, more than the "
                                f"{gb(budget)} this machine allows (FREQDYN_MEMORY_GB); "
                                f"{advice}")
