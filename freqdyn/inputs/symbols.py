"""Names of the symbolic variables freqdyn reads and writes.

A variable ``v`` in dimension d = 1 is the plain symbol ``v``; in d = 2, 3 it is the
tuple ``v0, v1[, v2]``.  This is the naming every case file and every derived
expression uses: ``x`` (input), ``xp`` (second input of a kernel), ``w`` (first-layer
frequency), ``xi`` (frequency of the error transform), ``z`` (input difference).
"""

import sympy as sp


def axis_symbols(name: str, dim: int) -> tuple[sp.Symbol, ...]:
    """The real sympy symbols of variable ``name`` in ``dim`` dimensions."""
    if dim == 1:
        return (sp.Symbol(name, real=True),)
    return tuple(sp.Symbol(f"{name}{i}", real=True) for i in range(dim))


def parse_expression(text: str, name: str, dim: int) -> sp.Expr:
    """Parse sympy text whose only free variables are the axis symbols of ``name``.

    Raises ``ValueError`` with a readable message on a syntax error or on foreign
    symbols (for example ``x`` in a density of ``w``, or ``w1`` when d = 1).
    """
    allowed = axis_symbols(name, dim)
    local = {str(s): s for s in allowed}
    try:
        expr = sp.sympify(text, locals=local)
    except (sp.SympifyError, SyntaxError, TypeError) as exc:
        raise ValueError(f"cannot parse {text!r} as a sympy expression ({exc})") from None
    if not isinstance(expr, sp.Expr):
        raise ValueError(f"{text!r} is not an expression")
    foreign = {str(s) for s in expr.free_symbols} - set(local)
    if foreign:
        raise ValueError(
            f"uses the symbol(s) {sorted(foreign)}, but in d = {dim} only "
            f"{sorted(local)} are allowed"
        )
    return expr
