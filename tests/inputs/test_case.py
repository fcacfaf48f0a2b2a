"""Case files: the library in pde/ loads; bad input names the field and the problem."""

import numpy as np
import pytest
from conftest import CASE_FILES, make_case_text

from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case

REQUIRED = {"gaussian-1d", "uniform-1d", "laplace-1d", "mixture-1d", "expression-1d",
            "gaussian-2d"}


def test_case_library_has_the_required_cases():
    assert REQUIRED <= {p.stem for p in CASE_FILES}


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_every_library_case_loads(path):
    case = load_case(path)
    assert case.name == path.stem
    assert case.text == path.read_text()
    assert case.peaks.shape[1] == case.dim and len(case.peaks) >= 1
    assert case.truncation["target_energy_outside"] < 1e-8
    assert case.initial_error().shape == tuple(case.points)


def test_defaults_and_grid():
    case = load_case("t", text=make_case_text('family = "gaussian"\nscale = 1.0'))
    assert case.kappa == 1.0 and case.loss_scale == 1.0 and case.rate_factor == 1.0
    assert case.points == (601,)
    axis = case.xi_axes()[0]
    assert axis[0] == -6.0 and axis[-1] == 6.0
    np.testing.assert_allclose(case.peaks, [[1.0]], atol=1e-6)


def _error(text):
    with pytest.raises(InputError) as err:
        load_case("t", text=text)
    return err.value


GAUSS = 'family = "gaussian"\nscale = 1.0'


@pytest.mark.parametrize("text, field, problem", [
    ("not toml [", "case", "not valid TOML"),
    (make_case_text(GAUSS, extra="[fme]\ncells = 3"), "fme", "unknown key"),
    (make_case_text(GAUSS).replace("sigma_a = 0.5", "sigma_a = -0.5"),
     "network.sigma_a", ">= 0"),
    (make_case_text(GAUSS).replace("dim = 1", "dim = 4"), "network.dim", "1, 2 or 3"),
    (make_case_text(GAUSS, times="[0.0, 2.0, 1.0]"), "frequency.times", "increasing"),
    (make_case_text(GAUSS, times="[-1.0, 2.0]"), "frequency.times", ">= 0"),
    (make_case_text(GAUSS, bounds="[6.0, -6.0]"), "frequency.bounds", "lo < hi"),
    (make_case_text(GAUSS, bounds="[-0.5, 0.5]"), "frequency.bounds", "too small"),
    (make_case_text(GAUSS, g="exp(-x**2/2)*cos(2*pi*x)/x"), "target.g", "NaN"),
    (make_case_text(GAUSS, g="cos(2*pi*x)"), "target.g", "does not decay"),
    (make_case_text(GAUSS, g="exp(-y**2)"), "target.g", "only ['x'] are allowed"),
    (make_case_text(GAUSS, dim=2, g="exp(-x**2)", bounds="[-4.0, 4.0]"), "target.g",
     "['x0', 'x1']"),
    (make_case_text(GAUSS).replace('g = "', 'h = "'), "target.h", "unknown key"),
    (make_case_text(GAUSS, g="I*exp(-x**2)"), "target.g", "is complex"),
    (make_case_text(GAUSS, times="[0.5, 1.0]"), "frequency.times", "must start at 0"),
    (make_case_text(GAUSS).replace("[frequency]", "[frequency]\npoints = 1"),
     "frequency.points", "number of ξ grid points per axis: an integer >= 3; got 1"),
    (make_case_text(GAUSS).replace("[target]", '[target]\npeaks = "x"'), "target.peaks",
     "must be a list"),
    (make_case_text(GAUSS).replace("[target]", "[target]\npeaks = [9.0]"), "target.peaks",
     "outside the frequency bounds"),
    # finite but extreme: a range check names the field before any work (it overflowed)
    (make_case_text('family = "gaussian"\nscale = 1e-300'), "network.rho_w.scale", "1e-08 to"),
    (make_case_text(GAUSS).replace("sigma_a = 0.5", "sigma_a = 0.5\nkappa = 1e200"),
     "network.kappa", "<= 1e+06"),
    (make_case_text(GAUSS, times="[0.0, 1e300]"), "frequency.times", "up to 1e+12"),
    (make_case_text(GAUSS, g="1e300*exp(-x**2/2)*cos(2*pi*x)"), "target.g", "rescale"),
    # a grid that cannot fit is refused with its estimate (it was killed at 23 GB)
    (make_case_text(GAUSS).replace("[frequency]", "[frequency]\npoints = 1000000000"),
     "frequency.points", "176.0 GB"),
])
def test_bad_cases(text, field, problem):
    err = _error(text)
    assert err.field == field
    assert problem in str(err)


def test_too_small_domain_reports_the_truncated_mass():
    err = _error(make_case_text(GAUSS, bounds="[-1.0, 1.0]"))
    # a peak at ξ = ±1 of std 1/(2π): about half its energy lies outside [-1, 1]
    fraction = float(str(err).split("fraction ")[1].split(" ")[0])
    assert 0.3 < fraction < 0.7


def test_a_binary_file_as_the_case_is_a_clear_error(tmp_path):
    path = tmp_path / "case.toml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError) as err:
        load_case(path)
    assert err.value.field == "case" and "not a text file" in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_case(tmp_path / "nope.toml")
