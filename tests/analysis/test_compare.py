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
    assert np.isnan(got[2])  # 1/0.1 = 10 lies beyond the reported times: not reached


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


def test_slope_interval_covers_the_true_slope_at_its_level():
    """Noisy power laws m^{-1/2}·e^{N(0, 0.1²)}: the 95 % interval holds −1/2 in about 95 %
    of 400 draws (binomial 3σ band), and an exact power law gives a zero-width interval."""
    rng = np.random.default_rng(0)
    m = 2.0 ** np.arange(10, 21)
    hits = 0
    for _ in range(400):
        fit = compare.slope_interval(m, m**-0.5 * np.exp(0.1 * rng.standard_normal(m.size)))
        lo, hi = fit["interval"]
        hits += lo <= -0.5 <= hi
    assert abs(hits / 400 - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 400)
    exact = compare.slope_interval(m, 2 * m**-1.0)
    assert exact["slope"] == pytest.approx(-1.0, abs=1e-12)
    assert exact["interval"] == pytest.approx([-1.0, -1.0], abs=1e-10)
    assert np.isnan(compare.slope_interval(m[:2], m[:2] ** -0.5)["interval"]).all()


def test_error_split_recovers_a_shared_and_a_per_network_error(case):
    """Networks û_s = û + c + δ_s (c shared, δ_s independent, zero mean): error_split gives
    ‖c‖/‖û‖ and the rms ‖δ‖/‖û‖, within their sampling error over 200 networks."""
    rng = np.random.default_rng(1)
    u0 = case.initial_error()
    u = np.stack([u0 * f for f in (1.0, 0.5, 0.25)])
    pred = frequency_dataset(case, u, "pde")
    scale = np.linalg.norm(u, axis=1, keepdims=True)
    c = 0.03 * scale * rng.standard_normal(u.shape) / np.sqrt(u.shape[1])
    nets = []
    for _ in range(200):
        delta = 0.05 * scale * rng.standard_normal(u.shape) / np.sqrt(u.shape[1])
        nets.append(frequency_dataset(case, u + c + delta, "net"))
    split = compare.error_split(pred, nets)
    mean_net = np.mean([n["u_hat_real"].values for n in nets], axis=0)
    norm = np.linalg.norm(mean_net, axis=1)
    assert split["common"] == pytest.approx(np.linalg.norm(c, axis=1) / norm, rel=0.05)
    assert split["per_network"] == pytest.approx(0.05 * scale[:, 0] / norm, rel=0.03)
    # per_network² + common² is the mean squared error of one network
    one = np.mean([compare.rel_l2_by_time(pred, n) ** 2 for n in nets], axis=0)
    assert split["common"] ** 2 + split["per_network"] ** 2 == pytest.approx(one, rel=0.02)
    no_common = compare.error_split(pred, [frequency_dataset(case, u + d, "net") for d in (
        0.05 * scale * rng.standard_normal((40, *u.shape)) / np.sqrt(u.shape[1]))])
    assert np.all(no_common["common"] < 0.5 * no_common["per_network"])
    with pytest.raises(ValueError, match="two networks"):
        compare.error_split(pred, nets[:1])
