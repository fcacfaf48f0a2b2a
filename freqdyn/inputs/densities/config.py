"""``[network.rho_w]`` tables → :class:`~freqdyn.inputs.densities.base.Density` objects."""

from __future__ import annotations

import numpy as np

from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.inputs.densities.base import Density
from freqdyn.inputs.densities.expression import Expression
from freqdyn.inputs.densities.families import Gaussian, Laplace, Mixture, StudentT, Uniform
from freqdyn.inputs.symbols import axis_symbols

FAMILIES = ("gaussian", "uniform", "laplace", "student_t", "mixture", "expression")


#: The range of a density's scale, bound or degrees of freedom (in cycles per unit of x):
#: beyond it its values or moments overflow double precision.
PARAMETER_RANGE = (1e-8, 1e8)


def _positive(table: Table, key: str) -> float:
    return table.number(key, low=0.0, low_open=True)


def _parameter(table: Table, key: str) -> float:
    """A scale, bound or number of degrees of freedom, within :data:`PARAMETER_RANGE`."""
    value = _positive(table, key)
    if not PARAMETER_RANGE[0] <= value <= PARAMETER_RANGE[1]:
        raise InputError(table.field(key), f"is {value:g}; freqdyn takes {PARAMETER_RANGE[0]:g} "
                                           f"to {PARAMETER_RANGE[1]:g} (beyond, the density's "
                                           "values overflow double precision)")
    return value


def _center(table: Table, dim: int):
    if "center" not in table:
        return None
    raw = table.get("center")
    try:
        c = np.broadcast_to(np.asarray(raw, dtype=float), (dim,))
    except (ValueError, TypeError):
        raise InputError(table.field("center"), f"must be a number or {dim} numbers, "
                                                f"got {raw!r}") from None
    if not np.all(np.isfinite(c)):
        raise InputError(table.field("center"), "must be finite")
    return c


_ALLOWED_KEYS = {
    "gaussian": {"scale", "center"},
    "uniform": {"bound", "center"},
    "laplace": {"scale", "center"},
    "student_t": {"scale", "dof", "center"},
    "mixture": {"components"},
    "expression": {"density", "support"},
}


def density_from_config(cfg: dict, dim: int, field: str = "network.rho_w") -> Density:
    """Build the density described by a case-file table (``[network.rho_w]``)."""
    table = Table(cfg, field)
    if dim not in (1, 2, 3):
        raise InputError("network.dim", f"must be 1, 2 or 3, got {dim!r}")
    family = table.choice("family", None, FAMILIES)
    table.refuse_unknown(_ALLOWED_KEYS[family] | {"family", "weight"})
    center = _center(table, dim)
    if family == "gaussian":
        return Gaussian(dim, _parameter(table, "scale"), center)
    if family == "uniform":
        return Uniform(dim, _parameter(table, "bound"), center)
    if family == "laplace":
        return Laplace(dim, _parameter(table, "scale"), center)
    if family == "student_t":
        return StudentT(dim, _parameter(table, "scale"), _parameter(table, "dof"), center)
    if family == "mixture":
        comps = cfg.get("components")
        if not isinstance(comps, list) or not comps:
            raise InputError(f"{field}.components", "must be a non-empty list of tables")
        parts, weights = [], []
        for i, comp in enumerate(comps):
            sub = f"{field}.components[{i}]"
            if not isinstance(comp, dict):
                raise InputError(sub, f"must be a table, got {comp!r}")
            if comp.get("family") == "mixture":
                raise InputError(f"{sub}.family", "a mixture component cannot itself be a mixture")
            weights.append(_positive(Table(comp, sub), "weight"))
            parts.append(density_from_config(comp, dim, sub))
        return Mixture(dim, parts, weights)
    text = cfg.get("density")
    if not isinstance(text, str):
        raise InputError(f"{field}.density", "must be sympy text in "
                                            f"{', '.join(map(str, axis_symbols('w', dim)))}")
    return Expression(dim, text, cfg.get("support"), field)
