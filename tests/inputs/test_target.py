"""Target transforms (convention B): closed forms (docs/theory.md §1) against quadrature."""

import numpy as np
import pytest

from freqdyn.inputs.fourier import riemann_transform, tensor_grid
from freqdyn.inputs.target import Target


def spec_windowed_cosines(xi, ell, terms, dim):
    """Spec §9.6: Σ_k A_k/2 (2π)^{d/2} ℓ^d [e^{−2π²ℓ²|ξ−ω_k|²} + e^{−2π²ℓ²|ξ+ω_k|²}]."""
    out = 0.0
    for amp, omega in terms:
        omega = np.asarray(omega, dtype=float)
        pref = amp / 2 * (2 * np.pi) ** (dim / 2) * ell**dim
        out = out + pref * (np.exp(-2 * np.pi**2 * ell**2 * np.sum((xi - omega) ** 2, -1))
                            + np.exp(-2 * np.pi**2 * ell**2 * np.sum((xi + omega) ** 2, -1)))
    return out


def test_1d_windowed_multisine_matches_spec_formula():
    target = Target("exp(-x**2/(2*1.5**2))*(cos(2*pi*0.5*x) + 0.3*cos(2*pi*2*x))", 1)
    assert target.method == "closed form"
    xi = np.linspace(-5, 5, 201)[:, None]
    expected = spec_windowed_cosines(xi, 1.5, [(1.0, [0.5]), (0.3, [2.0])], 1)
    np.testing.assert_allclose(target.transform(xi), expected, atol=1e-13)


def test_2d_windowed_multisine_matches_spec_formula():
    target = Target("exp(-(x0**2 + x1**2)/2)*(cos(2*pi*(0.5*x0 - x1)) + 2*cos(2*pi*x1))", 2)
    xi = tensor_grid([np.linspace(-3, 3, 31)] * 2)
    expected = spec_windowed_cosines(xi, 1.0, [(1.0, [0.5, -1.0]), (2.0, [0.0, 1.0])], 2)
    np.testing.assert_allclose(target.transform(xi), expected, atol=1e-13)


def test_sine_terms_give_imaginary_odd_transform():
    target = Target("exp(-x**2/2)*sin(2*pi*x)", 1)
    xi = np.linspace(-3, 3, 61)
    ghat = target.transform(xi)
    assert np.max(np.abs(ghat.real)) < 1e-14
    np.testing.assert_allclose(ghat.imag, -ghat.imag[::-1], atol=1e-14)
    minus = np.sqrt(2 * np.pi) / 2 * (np.exp(-2 * np.pi**2 * (xi - 1) ** 2)
                                      - np.exp(-2 * np.pi**2 * (xi + 1) ** 2))
    np.testing.assert_allclose(ghat, minus / 1j, atol=1e-14)


def test_closed_form_agrees_with_riemann_sum():
    target = Target("exp(-(x - 0.3)**2)*cos(5*x) + 0.5*exp(-2*x**2)", 1)
    assert target.method == "closed form"
    x = np.linspace(-12, 12, 4801)
    xi = [np.linspace(-4, 4, 81)]
    riemann = riemann_transform(target(x), [x], xi)
    np.testing.assert_allclose(target.transform_on_grid(xi), riemann, atol=1e-12)


def test_non_gaussian_target_uses_converged_quadrature():
    # ∫ e^{−2πiξx} /(1 + x²)² dx = (π/2)(1 + 2π|ξ|) e^{−2π|ξ|}; g decays like x^-4, so
    # the window |x| <= 63 leaves out about 2/(3·63³) ≈ 3e-6 of the integral
    target = Target("1/(1 + x**2)**2", 1)
    assert target.method == "quadrature"
    xi = np.linspace(-1.5, 1.5, 13)
    exact = np.pi / 2 * (1 + 2 * np.pi * np.abs(xi)) * np.exp(-2 * np.pi * np.abs(xi))
    np.testing.assert_allclose(target.transform(xi), exact, atol=1e-5)
    assert np.max(np.abs(target.transform(xi).imag)) < 1e-12


def test_l2_norm_and_parseval():
    target = Target("exp(-x**2/2)*cos(2*pi*x)", 1)
    xi = np.linspace(-8, 8, 16001)
    energy_hat = np.trapezoid(np.abs(target.transform(xi)) ** 2, xi)
    assert target.l2_norm_squared() == pytest.approx(energy_hat, rel=1e-10)
