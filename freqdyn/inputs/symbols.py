"""Names of the symbolic variables freqdyn reads and writes, and the one parser of user text.

A variable ``v`` in dimension d = 1 is the plain symbol ``v``; in d = 2, 3 it is the
tuple ``v0, v1[, v2]``.  This is the naming every case file and every derived
expression uses: ``x`` (input), ``xp`` (second input of a kernel), ``w`` (first-layer
frequency), ``xi`` (frequency of the error transform), ``z`` (input difference).

User expressions (a target g, a density, a design profile) are data, never code: they are
parsed by Python's ``ast`` and walked against a whitelist (numbers, the axis symbols,
``pi`` and ``E``, ``+ - * / **`` (``^`` is read as ``**``) and the functions of
:data:`FUNCTIONS`), and the sympy expression is built from the tree node by node.  Nothing
is evaluated as Python, so a name outside the whitelist cannot run (docs/errors.md).
"""

import ast
import math

import sympy as sp

#: The functions a user expression may call, by the name it uses.
FUNCTIONS = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "Abs": sp.Abs,
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "sinh": sp.sinh, "cosh": sp.cosh,
    "tanh": sp.tanh, "asin": sp.asin, "acos": sp.acos, "atan": sp.atan, "sinc": sp.sinc,
    "erf": sp.erf, "erfc": sp.erfc, "sign": sp.sign, "Heaviside": sp.Heaviside,
    "min": sp.Min, "Min": sp.Min, "max": sp.Max, "Max": sp.Max,
}
#: The constants a user expression may name.
CONSTANTS = {"pi": sp.pi, "E": sp.E}
#: The longest expression text read (a case's expressions are a line or two).
MAX_LENGTH = 2000
#: The largest literal exponent (a larger one is a typo, and sympy would expand it).
MAX_POWER = 64

_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
              ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
              ast.Pow: lambda a, b: a ** b}


def axis_symbols(name: str, dim: int) -> tuple[sp.Symbol, ...]:
    """The real sympy symbols of variable ``name`` in ``dim`` dimensions."""
    if dim == 1:
        return (sp.Symbol(name, real=True),)
    return tuple(sp.Symbol(f"{name}{i}", real=True) for i in range(dim))


def _allowed_text(symbols: dict) -> str:
    return (f"use numbers, {', '.join(sorted(symbols))}, pi, E, + - * / ** and the "
            f"functions {', '.join(sorted(FUNCTIONS))}")


def _unknown_name(name: str, symbols: dict) -> str:
    """One line on a name outside the whitelist: a foreign axis, ``I``, a function, other."""
    if name in ("I", "j", "J"):
        return (f"the name {name!r} is complex: a target and a density are real; "
                f"{_allowed_text(symbols)}")
    if name in FUNCTIONS:
        return f"the function {name!r} is called without arguments; write {name}(...)"
    if name.isidentifier() and len(name.rstrip("0123456789")) <= 2:
        return (f"uses the symbol {name!r}, but in d = {len(symbols)} only "
                f"{sorted(symbols)} are allowed")
    return f"the name {name!r} is not allowed here; {_allowed_text(symbols)}"


def _number(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"the literal {value!r} is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"the literal {value!r} is not finite")
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value)


def _build(node, symbols: dict):
    """The sympy expression of a whitelisted ``ast`` node (ValueError names what is not)."""
    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.Name):
        if node.id in symbols:
            return symbols[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ValueError(_unknown_name(node.id, symbols))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _build(node.operand, symbols)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _build(node.left, symbols), _build(node.right, symbols)
        if isinstance(node.op, ast.Pow) and right.is_number \
                and abs(float(right)) > MAX_POWER:
            raise ValueError(f"the exponent {right} is larger than {MAX_POWER} in magnitude")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ValueError(f"the call {called!r} is not allowed; {_allowed_text(symbols)}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ValueError(f"{node.func.id}() takes plain arguments only")
        return FUNCTIONS[node.func.id](*(_build(a, symbols) for a in node.args))
    shown = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    raise ValueError(f"{shown!r} ({type(node).__name__}) is not allowed; "
                     f"{_allowed_text(symbols)}")


def parse_expression(text: str, name: str, dim: int) -> sp.Expr:
    """The sympy expression of user ``text`` in the axis symbols of ``name``.

    Raises ``ValueError`` with a one-line message on a syntax error, a name, call or
    construct outside the whitelist (naming it), or a foreign symbol (for example ``x``
    in a density of ``w``, or ``w1`` when d = 1).
    """
    symbols = {str(s): s for s in axis_symbols(name, dim)}
    if not isinstance(text, str) or not text.strip():
        raise ValueError("is empty; give an expression")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"is {len(text)} characters long, more than the {MAX_LENGTH} read")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")  # ^: power
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ValueError(f"cannot parse {text!r}: {exc.msg}{where}") from None
    try:
        expr = _build(tree.body, symbols)
    except (TypeError, ZeroDivisionError, RecursionError) as exc:
        raise ValueError(f"cannot build {text!r}: {exc}") from None
    if not isinstance(expr, sp.Expr):  # every node is built as a sympy object
        raise ValueError(f"{text!r} is not an expression")
    return expr
