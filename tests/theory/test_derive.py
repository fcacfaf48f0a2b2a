"""Symbolic derivation: NTK, damping, diffusion, rate, LFP coefficients."""

import json
import math

import numpy as np
import pytest
import sympy as sp
from conftest import make_case_text
from scipy import integrate

from freqdyn.inputs.case import load_case
from freqdyn.inputs.symbols import axis_symbols
from freqdyn.theory.derive import derive, unit_ntk
from freqdyn.theory.lfp import activation_transform_squared, derive_lfp
from freqdyn.theory.ntk import fourier_feature_ntk as analytic_ntk

RHO = {
    "gaussian": 'family = "gaussian"\nscale = 1.2',
    "gaussian-shifted": 'family = "gaussian"\nscale = 0.6\ncenter = 0.8',
    "uniform": 'family = "uniform"\nbound = 2.5',
    "laplace": 'family = "laplace"\nscale = 0.7',
    "student_t": 'family = "student_t"\nscale = 0.9\ndof = 3.0',
    "mixture": ('family = "mixture"\ncomponents = [{family = "gaussian", scale = 0.5, '
                'weight = 1.0}, {family = "laplace", scale = 0.4, center = 1.5, weight = 2.0}]'),
    "expression": 'family = "expression"\ndensity = "exp(-w**4/4)"',
}


def _case(rho, dim=1, sigma_a=0.7, extra_net=""):
    text = make_case_text(rho, dim=dim, sigma_a=sigma_a,
                          bounds="[-6.0, 6.0]" if dim == 1 else "[-4.0, 4.0]")
    return load_case("t", text=text.replace("[network.rho_w]", extra_net + "[network.rho_w]"))


@pytest.mark.parametrize("name", RHO)
@pytest.mark.parametrize("dim", [1, 2])
def test_damping_and_diffusion_equal_closed_forms(name, dim):
    if dim == 2 and name in ("expression", "mixture"):
        rho = RHO[name].replace("w**4", "(w0**2 + w1**2)**2")
        if name == "mixture":
            rho = rho.replace("center = 1.5", "center = [1.5, -0.5]")
    else:
        rho = RHO[name]
    case = _case(rho, dim=dim, extra_net="kappa = 1.5\nloss_scale = 0.8\n")
    result = derive(case)
    pts = np.random.default_rng(7).uniform(-4, 4, size=(100, dim))
    rho_sym = case.rho_w.even_density(pts)
    factor = 1.5**2 * 0.8
    np.testing.assert_allclose(result.numeric("damping")(pts), factor * rho_sym,
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(result.numeric("diffusion")(pts),
                               factor * 0.7**2 * rho_sym, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(result.numeric("rate")(pts), factor * rho_sym,
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["gaussian", "uniform", "laplace", "student_t", "mixture"])
def test_derived_ntk_text_matches_the_analytic_kernel(name):
    case = _case(RHO[name])
    payload = json.loads(derive(case).to_json())
    assert {"ntk", "damping", "diffusion", "rate"} <= set(payload)
    x, xp = sp.symbols("x xp", real=True)
    ntk = sp.lambdify((x, xp), sp.sympify(payload["ntk"], locals={"x": x, "xp": xp}),
                      modules=["numpy", "scipy"])
    pts = np.random.default_rng(1).uniform(-2, 2, size=(50, 2))
    expected = np.array([analytic_ntk(case, [[a]], [[b]])[0, 0] for a, b in pts])
    got = np.array([complex(ntk(a, b)).real for a, b in pts])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    xi = sp.Symbol("xi", real=True)
    damping = sp.lambdify(xi, sp.sympify(payload["damping"], locals={"xi": xi}), "numpy")
    np.testing.assert_allclose(float(damping(0.3)), case.rho_w.even_density([[0.3]])[0])


def test_unit_ntk_has_the_spec_form_in_3d():
    expr, kappa, sigma_a = unit_ntk(3)
    x, xp, w = (axis_symbols(n, 3) for n in ("x", "xp", "w"))
    spec = kappa**2 * (1 + 4 * sp.pi**2 * sigma_a**2 * sum(a * b for a, b in zip(x, xp,
                                                                                   strict=True)))
    spec *= sp.cos(2 * sp.pi * sum(wi * (a - b) for wi, a, b in zip(w, x, xp, strict=True)))
    vals = np.random.default_rng(2).normal(size=(5, 11))
    syms = (*x, *xp, *w, kappa, sigma_a)
    f1, f2 = sp.lambdify(syms, expr), sp.lambdify(syms, spec)
    for v in vals:
        v[-2:] = np.abs(v[-2:])
        assert f1(*v) == pytest.approx(f2(*v), rel=1e-12)


def test_fourier_transform_of_the_kernel_is_the_density():
    """The step the derivation rests on: F[k](ξ) = ρ_w^sym(ξ) (convention B)."""
    z, xi = sp.symbols("z xi", real=True)
    s = sp.Rational(3, 2)
    k = sp.exp(-2 * sp.pi**2 * s**2 * z**2)
    rho = sp.exp(-xi**2 / (2 * s**2)) / sp.sqrt(2 * sp.pi * s**2)
    assert sp.simplify(sp.fourier_transform(k, z, xi) - rho) == 0


def test_3d_derivation_runs():
    text = make_case_text('family = "gaussian"\nscale = 1.0', dim=3, bounds="[-4.0, 4.0]")
    case = load_case("t", text=text.replace("[frequency]", "[frequency]\npoints = 9"))
    result = derive(case)
    pts = np.random.default_rng(3).uniform(-3, 3, size=(20, 3))
    np.testing.assert_allclose(result.numeric("diffusion")(pts),
                               0.25 * case.rho_w.even_density(pts), rtol=1e-12)


# --- LFP ---------------------------------------------------------------------------------


def test_tanh_transform_uses_pi_squared_argument():
    """F[sech²](η) = 2π²η csch(π²η) in convention B (not πη, as a secondary source prints
    it)."""
    for eta in (0.05, 0.2, 0.5):
        direct = 2 * integrate.quad(lambda x, e=eta: np.cos(2 * np.pi * e * x) / np.cosh(x) ** 2,
                                    0, 40, limit=400)[0]
        closed = 2 * np.pi**2 * eta / np.sinh(np.pi**2 * eta)
        wrong = 2 * np.pi**2 * eta / np.sinh(np.pi * eta)
        assert direct == pytest.approx(closed, abs=1e-11)
        assert abs(direct - wrong) > 1e-3
    eta = sp.Symbol("eta", positive=True)
    expr = activation_transform_squared("tanh", eta)
    assert float(expr.subs(eta, 0.3)) == pytest.approx(
        (2 * np.pi**2 * 0.3 / np.sinh(np.pi**2 * 0.3)) ** 2 / (4 * np.pi**2 * 0.09))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_relu_lfp_damping_against_numeric_moments(dim):
    sigma_b, s_w = 8.0, 1.3
    lfp = derive_lfp("relu", dim, sigma_b, weight_scale=s_w, outer_std=0.9)

    def moment(k):  # E|w|^k for w ∼ N(0, s_w² I_d), numerically
        dens = lambda r: (2 * r ** (dim - 1) * np.exp(-r**2 / (2 * s_w**2))  # noqa: E731
                          / ((2 * s_w**2) ** (dim / 2) * math.gamma(dim / 2)))
        return integrate.quad(lambda r: r**k * dens(r), 0, np.inf)[0]

    c_d = math.gamma(dim / 2) / (math.sqrt(2 * math.pi) * sigma_b * math.pi ** (dim / 2))
    for k in (0.3, 1.0, 2.5):
        damping = c_d * (moment(3) / (16 * math.pi**4 * k ** (dim + 3))
                         + 0.81 * moment(1) / (4 * math.pi**2 * k ** (dim + 1)))
        diffusion = c_d * 0.81 * moment(1) / (16 * math.pi**4 * k ** (dim + 1))
        assert float(lfp.damping.subs(lfp.radius, k)) == pytest.approx(damping, rel=1e-10)
        assert float(lfp.diffusion.subs(lfp.radius, k)) == pytest.approx(diffusion, rel=1e-10)


def test_tanh_lfp_decays_exponentially_and_relu_algebraically():
    relu = derive_lfp("relu", 1, 10.0)
    tanh = derive_lfp("tanh", 1, 10.0)
    tanh_vals = tanh.numeric("damping")([1.0, 2.0, 3.0])
    relu_vals = relu.numeric("damping")([1.0, 2.0, 3.0])
    # the tanh damping is the radial mean of r^-1 π² csch²(π²k/r) + 4π⁴k²r^-3 csch²(π²k/r)
    k = 2.0
    radial = lambda r: np.sqrt(2 / np.pi) * np.exp(-r**2 / 2)  # noqa: E731  |w|, w ∼ N(0, 1)
    with np.errstate(over="ignore"):
        term = integrate.quad(lambda r: radial(r) * (np.pi**2 / r + 4 * np.pi**4 * k**2 / r**3)
                              / np.sinh(np.pi**2 * k / r) ** 2, 0, np.inf)[0]
    assert tanh_vals[1] == pytest.approx(term / (np.sqrt(2 * np.pi) * 10.0), rel=1e-8)
    # local power-law exponents: tanh's steepen without bound (faster than any power),
    # ReLU's stay between the k^-2 and k^-4 of its two terms
    tanh_slopes = np.diff(np.log(tanh_vals)) / np.diff(np.log([1.0, 2.0, 3.0]))
    relu_slopes = np.diff(np.log(relu_vals)) / np.diff(np.log([1.0, 2.0, 3.0]))
    assert tanh_slopes[1] < tanh_slopes[0] < -8
    assert np.all((relu_slopes > -4) & (relu_slopes < -2))
    assert relu_vals[2] / relu_vals[1] == pytest.approx(
        (1 + 2 * np.pi**2 * 9) / (1 + 2 * np.pi**2 * 4) * (2 / 3) ** 4, rel=1e-10)
    with pytest.raises(ValueError, match="activation"):
        derive_lfp("gelu", 1, 10.0)
