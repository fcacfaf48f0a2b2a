"""A case file is data, never code: every place a user expression enters refuses code.

Each injection below ran Python through ``sympy.sympify`` (which evaluates its text)
before expressions were parsed by the whitelist of :mod:`freqdyn.inputs.symbols`.  Each
must now end in one line naming the field and the offending name, exit code 2, and no
side effect.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
import tomli_w

from freqdyn.analysis.design import parse_profile
from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case
from freqdyn.inputs.symbols import axis_symbols, parse_expression

ROOT = Path(__file__).resolve().parents[2]
CASE = (ROOT / "pde" / "gaussian-1d.toml").read_text()
G = 'g = "exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*cos(2*pi*2*x))"'

#: (text, what the one-line message must name)
INJECTIONS = [
    ("__import__('os').system('touch {marker}') + exp(-x**2)", "__import__"),
    ("exp(-x**2) + eval(\"open('{marker}', 'w')\")", "eval"),
    ("exp(-x**2).__class__.__base__", "__base__"),
    ("(lambda: open('{marker}', 'w'))() + x", "lambda"),
    ("[c for c in ().__class__.__bases__][0] + x", "Subscript"),
    ("x if open('{marker}', 'w') else x", "IfExp"),
    ("exp(x, evaluate=open('{marker}', 'w'))", "plain arguments"),
    ("Symbol('{marker}') + x", "Symbol"),
    ("'text' + x", "literal"),
]


def _texts(tmp_path):
    marker = tmp_path / "pwned"
    return marker, [(text.format(marker=marker), named) for text, named in INJECTIONS]


def test_the_whitelist_builds_the_same_expressions_sympy_did():
    x = axis_symbols("x", 1)[0]
    for text in ("exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*cos(2*pi*2*x))", "1/3 + x^2",
                 "-x**2 + sqrt(abs(x)) - tanh(E*x)", "max(x, 0) + Heaviside(x)", "2.5e-3"):
        assert parse_expression(text, "x", 1) == sp.sympify(text, locals={"x": x})
    w0, w1 = axis_symbols("w", 2)
    assert parse_expression("exp(-(w0**2 + w1**2))", "w", 2) == sp.exp(-(w0**2 + w1**2))


@pytest.mark.parametrize("field", ["target", "density", "profile"])
def test_code_in_an_expression_is_refused_and_never_runs(tmp_path, field):
    marker, texts = _texts(tmp_path)
    for text, named in texts:
        with pytest.raises(InputError) as info:
            if field == "target":
                load_case("c", text=CASE.replace(G, tomli_w.dumps({"g": text}).strip()))
            elif field == "density":
                density = tomli_w.dumps({"density": re.sub(r"\bx\b", "w", text)})
                load_case("c", text=CASE.replace('family = "gaussian"\nscale = 1.0',
                                                 'family = "expression"\n' + density))
            else:
                parse_profile(re.sub(r"\bx\b", "xi", text))
        message = str(info.value)
        assert "\n" not in message and named in message, message
        assert info.value.field in {"target.g", "network.rho_w.density", "--profile"}
        assert not marker.exists()


@pytest.mark.parametrize("text, named", [
    ("exp(-x**2", "cannot parse"),             # a syntax error: one line, no TokenError
    ("exp(-w**2)", "'w'"),                     # a foreign axis symbol, named
    ("x**1000000", "exponent"),                # an exponent sympy would expand for minutes
    ("", "empty"),
])
def test_bad_expressions_get_one_line_naming_the_problem(text, named):
    with pytest.raises(ValueError) as info:
        parse_expression(text, "x", 1)
    assert "\n" not in str(info.value) and named in str(info.value)


def test_derive_refuses_an_injected_target_with_exit_code_2(tmp_path):
    marker = tmp_path / "pwned"
    case = tmp_path / "case.toml"
    case.write_text(CASE.replace(G, f"g = \"__import__('os').system('touch {marker}') "
                                    f"+ exp(-x**2)\""))
    result = subprocess.run([sys.executable, "-m", "freqdyn", "derive", str(case)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "target.g" in result.stderr
    assert "__import__" in result.stderr
    assert not marker.exists()
