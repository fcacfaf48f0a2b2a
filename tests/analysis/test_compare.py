"""Comparison measures: learning times, relative errors, Parseval loss, slopes."""

import numpy as np
import pytest
from conftest import make_case_text

from freqdyn.analysis import compare
from freqdyn.inputs.case import load_case
from freqdyn.results import frequency_dataset

CASE = make_case_text('family = "gaussian"\nscale = 1.0', g="exp(-x**2/2)*cos(2*pi*1.0*x)",
                      bounds="[-5.0, 5.0]", extra="points = 201")


@pytest.fixture(scope="module")
def case():
    return load_case("cmp", text=CASE)


def test_learning_time_of_exponentials_is_exact():
    times = np.linspace(0, 5, 11)
    rates = np.array([[2.0], [0.5], [0.1]])
    ratios = np.exp(-rates * times)
    got = compare.learning_times(times, ratios)
    assert got[:2] == pytest.approx([0.5, 2.0], rel=1e-12)
    assert got[2] == np.inf  # 1/0.1 = 10 lies beyond the reported times


def test_loglog_slope_recovers_power_law():
    m = 2.0 ** np.arange(10, 16)
    slope, c = compare.fit_loglog_slope(m, 3.0 * m**-0.5)
    assert slope == pytest.approx(-0.5, abs=1e-12)
    assert np.exp(c) == pytest.approx(3.0)


def test_relative_error_and_time_alignment(case):
    u0 = case.initial_error()
    u = np.stack([u0 * f for f in (1.0, 0.5, 0.25)])
    ref = frequency_dataset(case, u, "ref")
    other = frequency_dataset(case, u * np.array([1.0, 1.1, 0.8])[:, None], "other")
    assert compare.rel_l2_by_time(other, ref) == pytest.approx([0.0, 0.1, 0.2], abs=1e-12)
    sub = frequency_dataset(case, u[:2], "sub", times=case.times[:2])
    with pytest.raises(ValueError, match="t = 2"):
        compare.rel_l2_by_time(sub, ref)


def test_parseval_loss_matches_closed_form(case):
    # g = e^{-x²/2} cos(2πx): ∫g² dx = √π/2 (1 + e^{-4π²}); loss (α/2V) ∫|ĝ|² dξ.
    ds = frequency_dataset(case, case.initial_error()[None].repeat(3, 0), "ref")
    exact = np.sqrt(np.pi) / 2 * (1 + np.exp(-4 * np.pi**2))
    loss = compare.parseval_loss(ds, loss_scale=2.0, box_volume=10.0)
    assert loss == pytest.approx(2.0 / 20.0 * exact, rel=1e-6)


def test_seed_mean_and_spread():
    mean, std = compare.mean_spread([[1.0, 3.0], [3.0, 5.0]])
    assert mean.tolist() == [2.0, 4.0] and std.tolist() == [1.0, 1.0]
