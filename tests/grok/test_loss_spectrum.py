"""Loss-curve spectra: detrending, Hjorth parameters and the predictor scores.

Checked against closed forms (sinusoids, polynomials), direct sums and hand-worked or
brute-force answers.
"""

import itertools

import numpy as np
import pytest
import xarray as xr
from scipy import signal, stats

from freqdyn.errors import InputError
from freqdyn.grok import loss_spectrum as ls


def sinusoid(n, cycles, amplitude=1.0, phase=0.3):
    t = np.arange(n)
    omega = 2 * np.pi * cycles / n
    return amplitude * np.sin(omega * t + phase), omega


def test_activity_of_a_sinusoid_over_whole_periods_is_half_the_squared_amplitude():
    x, _ = sinusoid(400, 7, amplitude=0.2)
    assert ls.hjorth(x).activity == pytest.approx(0.2**2 / 2, rel=1e-12)


@pytest.mark.parametrize("cycles", [3, 40, 150])
def test_discrete_mobility_is_two_sin_half_omega_and_complexity_one(cycles):
    n = 200_000
    x, omega = sinusoid(n, cycles * 500)
    h = ls.hjorth(x)
    assert h.mobility == pytest.approx(2 * np.sin(omega / 2), rel=1e-4)
    assert h.complexity == pytest.approx(1.0, abs=1e-4)
    assert h.complexity_paper == pytest.approx(2 * np.sin(omega / 2), rel=1e-4)


def test_hjorth_complexity_of_two_tones_matches_the_moment_formula():
    # x = a1 sin(w1 t) + a2 sin(w2 t): var Δ^j x = Σ a_i²/2 (2 sin(w_i/2))^(2j) over long runs
    n = 400_000
    x1, w1 = sinusoid(n, 4000, 1.0)
    x2, w2 = sinusoid(n, 40000, 0.3, phase=1.1)
    m = [sum(a**2 / 2 * (2 * np.sin(w / 2)) ** (2 * j) for a, w in ((1.0, w1), (0.3, w2)))
         for j in range(3)]
    h = ls.hjorth(x1 + x2)
    assert h.mobility == pytest.approx(np.sqrt(m[1] / m[0]), rel=1e-3)
    assert h.complexity == pytest.approx(np.sqrt(m[2] / m[1]) / np.sqrt(m[1] / m[0]), rel=1e-3)


def test_linear_detrend_removes_a_line_exactly():
    t = np.arange(400.0)
    assert np.max(np.abs(ls.detrend(3.0 - 0.004 * t, "linear"))) < 1e-12


def test_smooth_detrend_removes_a_quadratic_exactly_up_to_the_edges():
    t = np.arange(400.0)
    trend = 2.0 - 0.01 * t + 3e-5 * t**2
    assert np.max(np.abs(ls.detrend(trend, "smooth", window=51))) < 1e-10


def test_smooth_detrend_interior_is_the_savitzky_golay_high_pass():
    x, _ = sinusoid(400, 23)
    coeffs = signal.savgol_coeffs(51, 2)
    trend = np.convolve(x, coeffs[::-1], mode="valid")  # centred windows, steps 25 … 374
    residual = ls.detrend(x, "smooth", window=51, polyorder=2)
    np.testing.assert_allclose(residual[25:-25], x[25:-25] - trend, atol=1e-12)


def test_fft_highpass_keeps_fast_bins_and_removes_slow_ones():
    n = 400
    fast, _ = sinusoid(n, 9)
    slow = 1.7 + np.cos(2 * np.pi * 2 * np.arange(n) / n)  # bins 0 and 2
    np.testing.assert_allclose(ls.detrend(fast + slow, "fft-highpass", cutoff=2), fast,
                               atol=1e-12)


def test_power_spectrum_obeys_parseval_for_odd_and_even_lengths():
    rng = np.random.default_rng(1)
    for n in (400, 401):
        x = rng.normal(size=n)
        k, p = ls.power_spectrum(x)
        assert k[-1] == n // 2
        assert p.sum() == pytest.approx(np.mean(x**2), rel=1e-12)
    x, _ = sinusoid(400, 12, amplitude=0.5)
    k, p = ls.power_spectrum(x)
    assert p[12] == pytest.approx(0.5**2 / 2, rel=1e-12)
    assert ls.band_energy(p, k, (10, 14)) == pytest.approx(0.125, rel=1e-12)
    assert ls.band_energy(p, k, (13, 200)) == pytest.approx(0.0, abs=1e-20)


def test_spectral_signature_uses_only_the_first_t0_steps_and_all_variants():
    rng = np.random.default_rng(2)
    loss = np.exp(-np.arange(600) / 300) + 0.01 * rng.random(600) + 0.5
    other = loss.copy()
    other[400:] = 9.0
    a = ls.spectral_signature(loss, t0=400)
    b = ls.spectral_signature(other, t0=400)
    assert a == b
    assert set(a) == set(ls.variant_names())
    assert set(a["smooth"]) >= {"activity", "mobility", "complexity", "complexity_paper",
                                "band_3_10"}
    residual = ls.detrend(np.log(loss[:400]), "linear")
    assert a["log-linear"]["activity"] == pytest.approx(np.mean(residual**2), rel=1e-12)


def test_smooth_activity_ignores_a_quadratic_trend_and_sees_a_fast_oscillation():
    n = 400
    t = np.arange(n)
    wiggle, _ = sinusoid(n, 50, amplitude=0.02)  # period 8 steps
    loss = 2.0 - 2e-3 * t + 3e-6 * t**2 + wiggle
    with_trend = ls.spectral_signature(loss, t0=n)["smooth"]["activity"]
    without = ls.spectral_signature(2.0 + wiggle, t0=n)["smooth"]["activity"]
    assert with_trend == pytest.approx(without, rel=1e-8)
    # away from the edges the residual is the sinusoid times 1 − H(ω), H the filter's gain
    coeffs = signal.savgol_coeffs(51, 2)
    gain = np.sum(coeffs * np.cos(2 * np.pi * 50 / n * np.arange(-25, 26)))
    assert with_trend == pytest.approx((1 - gain) ** 2 * 0.02**2 / 2, rel=0.03)


def test_bad_inputs_name_the_field():
    with pytest.raises(InputError, match="settings.detrend_window"):
        ls.detrend(np.ones(100), "smooth", window=50)
    with pytest.raises(InputError, match="settings.detrend"):
        ls.detrend(np.ones(100), "wavelet")
    with pytest.raises(InputError, match="settings.t0"):
        ls.spectral_signature(np.ones(100), t0=400)


def test_minmax_normalise():
    v = np.array([[2.0, 4.0], [np.nan, 6.0]])
    np.testing.assert_allclose(ls.minmax_normalise(v), [[0.0, 0.5], [np.nan, 1.0]])
    np.testing.assert_allclose(ls.minmax_normalise([3.0, 3.0]), [0.0, 0.0])


def test_spearman_of_monotone_data_is_one_with_a_degenerate_interval():
    x = np.arange(10.0)
    up = ls.spearman_interval(x, x**3)
    assert (up["rho"], up["low"], up["high"], up["sign"]) == (1.0, 1.0, 1.0, 1)
    assert up["sign_certain"]
    down = ls.spearman_interval(x, -np.exp(x))
    assert down["rho"] == pytest.approx(-1.0) and down["sign"] == -1


def test_spearman_matches_scipy_with_ties_and_the_interval_covers_it():
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = np.round(x + rng.normal(size=40), 0)  # many ties
    result = ls.spearman_interval(x, y, rng=np.random.default_rng(4))
    reference = stats.spearmanr(x, y)
    assert result["rho"] == pytest.approx(reference.statistic, rel=1e-12)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-12)
    assert result["low"] < result["rho"] < result["high"]
    noise = ls.spearman_interval(rng.normal(size=30), rng.normal(size=30),
                                 rng=np.random.default_rng(5))
    assert noise["low"] < 0 < noise["high"] and not noise["sign_certain"]


def test_auroc_known_answers_and_brute_force_with_ties():
    assert ls.auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert ls.auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert np.isnan(ls.auroc([1.0, 2.0], [1, 1]))
    rng = np.random.default_rng(6)
    score = rng.integers(0, 5, size=30).astype(float)
    label = rng.random(30) < 0.4
    pairs = [(1.0 if p > q else 0.5 if p == q else 0.0)
             for p, q in itertools.product(score[label], score[~label])]
    assert ls.auroc(score, label) == pytest.approx(np.mean(pairs), rel=1e-12)


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(7)
    score = rng.normal(size=25)
    label = score + rng.normal(size=25) > 0
    direction, threshold, accuracy = ls.best_threshold(score, label)
    grid = np.linspace(-5, 5, 20001)
    brute = max(np.mean((d * score > c) == label) for d in (1, -1) for c in grid)
    assert accuracy == pytest.approx(brute)
    assert np.mean((direction * score > threshold) == label) == pytest.approx(accuracy)


def test_leave_one_out_threshold_accuracy_worked_by_hand():
    # Holding out 3: the rule learnt on {1, 2, 4} cuts at the midpoint 3, so 3 is called
    # negative (wrong); the other three held-out runs are called right.
    cv = ls.cv_threshold_accuracy([1.0, 2.0, 3.0, 4.0], [False, False, True, True])
    assert cv == {"accuracy": 0.75, "majority": 0.5, "folds": 4}


def test_grouped_cross_validation_separable_and_reversed_direction():
    score = np.array([5.0, 6.0, 1.0, 2.0, 5.5, 6.5, 1.5, 2.5])
    label = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=bool)  # low score groks
    cv = ls.cv_threshold_accuracy(score, label, groups=[0, 0, 0, 0, 1, 1, 1, 1])
    assert cv["accuracy"] == 1.0 and cv["folds"] == 2
    summary = ls.evaluate_predictor(score, np.where(label, 1.0, 0.1), groups=[0] * 4 + [1] * 4)
    assert summary["auroc"] == 0.0
    assert summary["spearman"]["sign"] == -1
    assert summary["n_groks"] == 4 and summary["cv"]["accuracy"] == 1.0


TINY_GRID = """
[experiment]
name = "tiny-loss-spectrum-grid"
kind = "loss-spectrum-grid"
seeds = [0]
[settings]
p = 11
model = "mlp"
width = 24
batch_size = "full"
eval_every = 30
steps = 130
t0 = 120
detrend_window = 21
bands = [[3, 10], [11, 60]]
learning_rates = [1e-3, 1e-2]
weight_decays = [0.1, 1.0]
train_fractions = [0.3, 0.6]
n_boot = 200
[sweep]
executor = "inprocess"
[claim]
rule = "len(spearman_rho) == 2 and all(n_runs == 4)"
"""


def test_grid_end_to_end_recomputes_and_resumes(tmp_path, monkeypatch):
    from freqdyn.grok import algorithmic
    from freqdyn.runs.experiment import load_experiment
    from freqdyn.runs.runner import run_experiment

    exp = load_experiment("tiny", text=TINY_GRID)
    result = run_experiment(exp, tmp_path, device="cpu")
    summary = result.summary
    assert summary["claim_holds"] and summary["cells"] == 8
    assert len(list((tmp_path / "cells").glob("*.json"))) == 8
    assert {p.name for p in result.figures} >= {"heatmaps.png", "activity_vs_accuracy.png"}

    with xr.open_dataset(tmp_path / "result.nc", engine="h5netcdf") as ds:
        ds = ds.load()
    # the stored activity is the mean square of the Savitzky–Golay residual of the loss head
    loss = ds["loss"].isel(r=1, lr=1, wd=0, seed=0).values[:120]
    residual = loss - signal.savgol_filter(loss, 21, 2, mode="interp")
    stored = float(ds["activity"].sel(variant="smooth").isel(r=1, lr=1, wd=0, seed=0))
    assert stored == pytest.approx(np.mean(residual**2), rel=1e-9)
    _, power = ls.power_spectrum(residual)
    np.testing.assert_allclose(ds["spectrum"].isel(r=1, lr=1, wd=0, seed=0).values, power,
                               rtol=1e-9, atol=1e-30)
    # the per-r Spearman ρ is scipy's over that r's runs
    for j in range(2):
        act = ds["activity"].sel(variant="smooth").isel(r=j).values.ravel()
        val = ds["val_acc"].isel(r=j).values.ravel()
        if np.ptp(val) > 0 and np.ptp(act) > 0:
            assert summary["spearman_rho"][j] == pytest.approx(
                stats.spearmanr(act, val).statistic, rel=1e-9)
        assert 0.0 <= np.min(val) and np.max(val) <= 1.0
    norm = ds["activity_normalised"].isel(r=0).values
    assert np.nanmin(norm) == 0.0 and np.nanmax(norm) == 1.0

    # a re-run finds every cell finished and trains nothing
    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(algorithmic, "train_modular", no_training)
    again = run_experiment(exp, tmp_path / ".", device="cpu").summary
    assert again["spearman_rho"] == summary["spearman_rho"]
