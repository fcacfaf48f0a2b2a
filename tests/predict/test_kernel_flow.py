"""Kernel-flow reference against exact solutions of the error PDE."""

import numpy as np
import pytest
from conftest import make_case_text

from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import CONVENTION, relative_l2
from freqdyn.predict.exact import pure_damping, uniform_box_series
from freqdyn.predict.kernel_flow import KernelFlowSettings, default_settings, evolve, kernel_flow
from freqdyn.results import u_hat

UNIFORM = make_case_text('family = "uniform"\nbound = 3.0', sigma_a=0.3,
                         g="exp(-x**2/8)*(cos(2*pi*x) + cos(2*pi*4*x))",
                         times="[0.0, 1.0, 2.0, 5.0, 10.0]")


def _errors(ds, reference):
    return relative_l2(u_hat(ds).values, reference, axes=(1,))


def test_uniform_band_matches_exact_cosine_series():
    case = load_case("uniform", text=UNIFORM)
    ds = kernel_flow(case)
    exact = uniform_box_series(case)
    assert np.all(_errors(ds, exact) <= 1e-4)
    # the truncation estimate is stored and of the right size
    assert np.all(ds["truncation_error"].values <= 1e-4)
    # the out-of-band peak at ξ = 4 is never learned; the in-band one is
    xi = case.xi_axes()[0]
    at4, at1 = np.argmin(np.abs(xi - 4)), np.argmin(np.abs(xi - 1))
    mag = np.abs(u_hat(ds).values)
    np.testing.assert_allclose(mag[:, at4], mag[0, at4], rtol=1e-6)
    assert mag[-1, at1] < 0.1 * mag[0, at1]


@pytest.mark.parametrize("rho", [
    'family = "gaussian"\nscale = 1.0',
    'family = "uniform"\nbound = 3.5',
    'family = "mixture"\ncomponents = [{family = "gaussian", scale = 0.5, weight = 1.0}, '
    '{family = "gaussian", scale = 0.5, center = 2.0, weight = 1.0}]',
    'family = "expression"\ndensity = "exp(-(w/2)**6)"',
])
def test_pure_damping_when_sigma_a_is_zero(rho):
    case = load_case("damping", text=make_case_text(
        rho, sigma_a=0.0, g="exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*cos(2*pi*2*x))",
        times="[0.0, 0.5, 1.0, 2.0, 5.0]"))
    ds = kernel_flow(case)
    assert np.all(_errors(ds, pure_damping(case)) <= 1e-6)


def test_gaussian_diffusion_changes_the_answer():
    """With σ_a > 0 the kernel flow is not pure damping (the diffusion term matters)."""
    case = load_case("g", text=make_case_text('family = "gaussian"\nscale = 1.0', sigma_a=0.7,
                                              times="[0.0, 1.0, 2.0]"))
    errors = _errors(kernel_flow(case), pure_damping(case))
    assert errors[0] < 1e-12 and errors[-1] > 0.05


def test_lanczos_and_eigendecomposition_agree():
    case = load_case("uniform", text=UNIFORM)
    base = default_settings(case)
    eig, _ = evolve(case, KernelFlowSettings(base.R, base.spacing, "eig", False))
    lanczos, info = evolve(case, KernelFlowSettings(base.R, base.spacing, "lanczos", False))
    assert np.all(relative_l2(lanczos, eig, axes=(1,)) < 1e-10)
    assert info["lanczos_iterations"] < 400


def test_2d_uniform_box_matches_exact_series():
    text = make_case_text('family = "uniform"\nbound = 1.5', dim=2, sigma_a=0.3,
                          g="exp(-(x0**2 + x1**2)/8)*cos(2*pi*(0.5*x0 + 0.25*x1))",
                          bounds="[-2.0, 2.0]", times="[0.0, 1.0, 2.0]",
                          extra="[kernel_flow]\nR = 16.0")
    case = load_case("u2", text=text.replace("[frequency]", "[frequency]\npoints = 41"))
    ds = kernel_flow(case, default_settings(case))
    exact = uniform_box_series(case, quadrature_nodes=256)
    err = relative_l2(u_hat(ds).values, exact, axes=(1, 2))
    assert np.all(err <= 1e-4), err


def test_result_carries_case_version_and_convention():
    case = load_case("uniform", text=UNIFORM)
    ds = kernel_flow(case, times=[0.0, 1.0])
    assert ds.attrs["case_toml"] == UNIFORM
    assert ds.attrs["fourier_convention"] == CONVENTION
    assert ds.attrs["method"] == "kernel-flow"
    assert ds.attrs["freqdyn_version"]
    assert list(ds["time"].values) == [0.0, 1.0]


def test_bad_kernel_flow_settings():
    from freqdyn.errors import InputError

    case = load_case("u", text=UNIFORM + "[kernel_flow]\nmethod = 'dense'\n")
    with pytest.raises(InputError, match="kernel_flow.method"):
        default_settings(case)
    case = load_case("u", text=UNIFORM + "[kernel_flow]\nR = -1.0\n")
    with pytest.raises(InputError, match="kernel_flow.R"):
        default_settings(case)


def test_a_given_box_that_cuts_off_the_error_is_refused_and_a_marginal_one_warns():
    """[kernel_flow] R = 1 truncates g itself (estimated error 0.3): refused, naming
    kernel_flow.R; a box whose estimate lies between 1e-3 and 5 % warns."""
    from freqdyn.errors import AccuracyWarning, InputError

    text = make_case_text('family = "gaussian"\nscale = 1.0', g="exp(-x**2/2)*cos(2*pi*0.5*x)",
                          bounds="[-4.0, 4.0]", times="[0.0, 1.0]")
    with pytest.raises(InputError, match=r"kernel_flow.R: R = 1 gives an estimated truncation"):
        kernel_flow(load_case("g", text=text + "[kernel_flow]\nR = 1.0\n"))
    with pytest.warns(AccuracyWarning, match=r"the box R = 3 cuts off"):
        kernel_flow(load_case("g", text=text + "[kernel_flow]\nR = 3.0\n"))
