"""Claim rules: the boolean expression an experiment file states over its summary.

A rule is a Python expression restricted to literals, the summary's keys as names,
arithmetic, comparisons, ``and``/``or``/``not``, indexing, comprehensions and the
functions in :data:`FUNCTIONS`.  Lists of numbers in the summary become numpy arrays,
so ``all(delay > 5 * t2)`` compares seed by seed.  Nothing else (attributes, imports,
lambdas, keyword arguments) is allowed, so a rule cannot do anything but compute.
"""

from __future__ import annotations

import ast
import math
import operator

import numpy as np

from freqdyn.errors import InputError


def _min(*args):
    return np.min(args[0]) if len(args) == 1 else min(args)


def _max(*args):
    return np.max(args[0]) if len(args) == 1 else max(args)


FUNCTIONS = {
    "all": lambda x: bool(np.all(x)), "any": lambda x: bool(np.any(x)),
    "min": _min, "max": _max, "abs": np.abs, "len": len, "sum": np.sum,
    "mean": np.mean, "median": np.median, "std": np.std, "log": np.log, "exp": np.exp,
    "sqrt": np.sqrt, "isfinite": np.isfinite, "zip": zip, "range": range,
}
CONSTANTS = {"True": True, "False": False, "None": None, "nan": math.nan, "inf": math.inf}

_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.Add, ast.Sub, ast.Mult,
    ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.Invert, ast.BitAnd, ast.BitOr, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE,
    ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.Call, ast.Name, ast.Load,
    ast.Store, ast.Constant, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.IfExp,
    ast.GeneratorExp, ast.ListComp, ast.comprehension,
)


def check_rule(rule: str) -> ast.Expression:
    """Parse ``rule`` and refuse anything outside the allowed grammar (``claim.rule``)."""
    try:
        tree = ast.parse(rule.strip(), mode="eval")
    except SyntaxError as exc:
        raise InputError("claim.rule", f"is not a valid expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise InputError("claim.rule", f"{type(node).__name__} is not allowed in a rule")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise InputError("claim.rule", f"only the functions {sorted(FUNCTIONS)} "
                                              "may be called")
            if node.keywords:
                raise InputError("claim.rule", "keyword arguments are not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise InputError("claim.rule", f"name {node.id!r} is not allowed")
    return tree


def rule_names(rule: str) -> set[str]:
    """The report keys a rule reads (its free names, without functions and constants)."""
    tree = check_rule(rule)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
              and isinstance(n.ctx, ast.Load)}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
             and isinstance(n.ctx, ast.Store)}
    return loaded - bound - set(FUNCTIONS) - set(CONSTANTS)


_SCALAR = (int, float, bool, type(None))
_INFINITE = {"inf": math.inf, "-inf": -math.inf}


def _number(v):
    return np.nan if v is None else _INFINITE.get(v, v) if isinstance(v, str) else v


def _is_numeric(v) -> bool:
    return isinstance(v, _SCALAR) or (isinstance(v, str) and v in _INFINITE)


def _as_value(value):
    """Numeric lists (None: NaN, "inf": ∞) become arrays, so rules compare seed by seed."""
    if isinstance(value, list) and value and all(
            _is_numeric(v) or (isinstance(v, list) and all(_is_numeric(w) for w in v))
            for v in value):
        try:
            if all(isinstance(v, bool) for v in value):
                return np.array(value)
            return np.array([[_number(w) for w in v] if isinstance(v, list) else _number(v)
                             for v in value], dtype=float)
        except (ValueError, TypeError):
            return value
    return _INFINITE.get(value, value) if isinstance(value, str) else value


def _namespace(summary: dict) -> dict:
    return {**CONSTANTS, **FUNCTIONS,
            **{k: _as_value(v) for k, v in summary.items() if k.isidentifier()}}


def _conjuncts(node: ast.AST) -> list[ast.AST]:
    """The terms of a top-level ``and`` (the rule itself when it is not one)."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [term for value in node.values for term in _conjuncts(value)]
    return [node]


#: The inequalities a margin is read from: (sign of b − a, symbol).
_ORDER = {ast.Lt: (1.0, "<"), ast.LtE: (1.0, "<="), ast.Gt: (-1.0, ">"), ast.GtE: (-1.0, ">=")}


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow, ast.BitAnd: operator.and_, ast.BitOr: operator.or_}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos,
          ast.Invert: operator.invert}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
            ast.Is: operator.is_, ast.IsNot: operator.is_not}


def _run(node: ast.expr, namespace: dict):
    """The value of a node of a checked rule (:func:`check_rule`): the one place a rule is
    evaluated, by walking its tree (no ``eval``), with Python's semantics for each node."""
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            if name not in namespace:
                raise NameError(f"name {name!r} is not defined")
            return namespace[name]
        case ast.BinOp(left=left, op=op, right=right):
            return _BINARY[type(op)](_run(left, namespace), _run(right, namespace))
        case ast.UnaryOp(op=op, operand=operand):
            return _UNARY[type(op)](_run(operand, namespace))
        case ast.BoolOp(op=op, values=values):
            for value_node in values[:-1]:
                value = _run(value_node, namespace)
                if bool(value) != isinstance(op, ast.And):  # and: first falsy; or: truthy
                    return value
            return _run(values[-1], namespace)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            a = _run(left, namespace)
            for i, (op, right) in enumerate(zip(ops, comparators, strict=True)):
                b = _run(right, namespace)
                result = _COMPARE[type(op)](a, b)
                if i < len(ops) - 1 and not result:  # a chain: a < b < c is (a<b) and (b<c)
                    return result
                a = b
            return result
        case ast.Call(func=func, args=args):
            return _run(func, namespace)(*(_run(arg, namespace) for arg in args))
        case ast.Subscript(value=value, slice=index):
            return _run(value, namespace)[_run(index, namespace)]
        case ast.Slice(lower=lower, upper=upper, step=step):
            return slice(*(None if n is None else _run(n, namespace)
                           for n in (lower, upper, step)))
        case ast.List(elts=elts):
            return [_run(e, namespace) for e in elts]
        case ast.Tuple(elts=elts):
            return tuple(_run(e, namespace) for e in elts)
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _run(body if _run(test, namespace) else orelse, namespace)
        case ast.ListComp(elt=elt, generators=generators):
            return list(_comprehension(elt, generators, namespace))
        case ast.GeneratorExp(elt=elt, generators=generators):
            return _comprehension(elt, generators, namespace)
    raise TypeError(f"{type(node).__name__} is not allowed in a rule")


def _bind(target: ast.expr, value, scope: dict) -> None:
    """Assign a comprehension's ``for`` target (a name or a tuple of targets)."""
    if isinstance(target, ast.Name):
        scope[target.id] = value
        return
    values = list(value)
    if not isinstance(target, ast.Tuple) or len(values) != len(target.elts):
        raise ValueError("cannot unpack the comprehension's values onto its target")
    for sub, item in zip(target.elts, values, strict=True):
        _bind(sub, item, scope)


def _comprehension(elt: ast.expr, generators: list, namespace: dict):
    """The values of ``elt`` over the ``for … if …`` clauses, in their own scope."""
    first, rest = generators[0], generators[1:]
    for item in _run(first.iter, namespace):
        scope = dict(namespace)
        _bind(first.target, item, scope)
        if all(_run(cond, scope) for cond in first.ifs):
            if rest:
                yield from _comprehension(elt, rest, scope)
            else:
                yield _run(elt, scope)


def rule_margins(rule: str, summary: dict) -> list[dict]:
    """How far each inequality of a rule's top-level ``and`` is from flipping.

    For ``a < b`` (or ≤) the margin is min(b − a) over the seeds, for ``a > b`` min(a − b);
    chained comparisons give one entry per pair.  ``relative`` divides by max(|a|, |b|) at
    the tightest element.  A negative margin is a failed term; NaN (an event not reached)
    is reported as ``None``.  Terms that are not inequalities of numbers are left out.
    """
    tree = check_rule(rule)
    namespace = _namespace(summary)
    margins = []
    for term in _conjuncts(tree.body):
        if (isinstance(term, ast.Call) and isinstance(term.func, ast.Name)
                and term.func.id == "all" and len(term.args) == 1):
            term = term.args[0]          # all(a < b): the seed-by-seed comparison itself
        if not isinstance(term, ast.Compare):
            continue
        sides = [term.left, *term.comparators]
        for op, left, right in zip(term.ops, sides[:-1], sides[1:], strict=True):
            if type(op) not in _ORDER:
                continue
            sign, symbol = _ORDER[type(op)]
            try:
                with np.errstate(invalid="ignore"):
                    a, b = (np.asarray(_run(side, namespace), dtype=float)
                            for side in (left, right))
                    gap = np.broadcast_to(sign * (b - a), np.broadcast(a, b).shape)
            except (TypeError, ValueError, IndexError, KeyError, NameError, ZeroDivisionError):
                continue
            if gap.size == 0:
                continue
            worst = int(np.argmin(np.where(np.isnan(gap), -np.inf, gap).ravel()))
            value = float(gap.ravel()[worst])
            scale = float(max(np.abs(np.broadcast_to(a, gap.shape).ravel()[worst]),
                              np.abs(np.broadcast_to(b, gap.shape).ravel()[worst])))
            finite = np.isfinite(value)
            margins.append({"term": f"{ast.unparse(left)} {symbol} {ast.unparse(right)}",
                            "margin": value if finite else None,
                            "relative": (value / scale if finite and scale > 0 else None)})
    return margins


def evaluate_rule(rule: str, summary: dict) -> bool:
    """The truth value of ``rule`` with the summary's keys as variables.

    Missing names raise a :class:`InputError` that lists the summary keys.  ``None``
    inside numeric lists (an event that never happened) becomes NaN, which fails
    every comparison.
    """
    tree = check_rule(rule)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
             and isinstance(node.ctx, ast.Load)}
    bound = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
             and isinstance(node.ctx, ast.Store)}
    missing = sorted(names - bound - set(summary) - set(FUNCTIONS) - set(CONSTANTS))
    if missing:
        raise InputError("claim.rule", f"unknown name(s) {missing}; the summary has "
                                      f"{sorted(summary)}")
    namespace = _namespace(summary)
    try:
        with np.errstate(invalid="ignore"):
            value = _run(tree.body, namespace)
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise InputError("claim.rule", f"could not be evaluated on this summary: "
                                      f"{type(exc).__name__}: {exc}") from None
    try:
        return bool(np.all(value))
    except (TypeError, ValueError) as exc:
        raise InputError("claim.rule", f"does not evaluate to a truth value: {exc}") from None
