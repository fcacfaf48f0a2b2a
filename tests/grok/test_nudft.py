"""Input-frequency NUDFT: closed forms, the FINUFFT fast path, projections, peak measures."""

import numpy as np
import pytest

import freqdyn.inputs.fourier as nudft_module
from freqdyn.errors import InputError
from freqdyn.grok.nudft import (
    amplitude,
    nudft,
    principal_direction,
    projected_nudft,
    relative_error_at_peaks,
    spectral_mismatch,
    spectral_peaks,
)


def even_grid(n: int) -> np.ndarray:
    """n evenly spaced points x_j = −π + 2πj/n on one period (right end excluded)."""
    return -np.pi + 2 * np.pi * np.arange(n) / n


def geometric_closed_form(m: float, k: np.ndarray, n: int) -> np.ndarray:
    """(1/n) Σ_j exp(i (m − k) x_j) on even_grid(n), summed as a geometric series."""
    r = (m - k) * 2 * np.pi / n
    lead = np.exp(-1j * (m - k) * np.pi) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (1 - np.exp(1j * r * n)) / (1 - np.exp(1j * r))
    ratio = np.where(np.isclose(np.mod(r, 2 * np.pi), 0), n, ratio)
    return lead * ratio


def rel_max(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("method", ["direct", "fast"])
def test_pure_exponential_matches_geometric_series(method):
    n, m = 257, 3.0
    x = even_grid(n)
    k = np.concatenate([np.arange(-10.0, 11.0), np.linspace(0.05, 7.3, 41)])
    got = nudft(x, np.exp(1j * m * x), k, method=method)
    want = geometric_closed_form(m, k, n)
    assert rel_max(got, want) <= 1e-10
    integer = k == np.round(k)
    assert np.allclose(got[integer], (k[integer] == m).astype(float), atol=1e-12)


def test_sin6x_on_the_test_grid_has_amplitude_half_at_six_only():
    x = np.linspace(-np.pi, np.pi, 1000)
    k = np.arange(0.0, 13.0)
    amp = amplitude(nudft(x, np.sin(6 * x), k))
    assert amp[6] == pytest.approx(0.5, abs=1e-3)
    assert np.delete(amp, 6).max() < 2e-3
    # exact on a grid of whole periods: sin 6x = (e^{6ix} − e^{−6ix})/(2i) → F(6) = −i/2
    exact = nudft(even_grid(1000), np.sin(6 * even_grid(1000)), k)
    assert abs(exact[6] - (-0.5j)) < 1e-12 and np.delete(np.abs(exact), 6).max() < 1e-12


def test_direct_sum_chunks_give_the_unchunked_sum(monkeypatch):
    rng = np.random.default_rng(1)
    x, f, k = rng.uniform(-5, 5, 300), rng.normal(size=300), rng.uniform(-9, 9, 70)
    whole = np.exp(-1j * np.outer(k, x)) @ f / x.size
    monkeypatch.setattr(nudft_module, "CHUNK_ELEMENTS", 1000)  # 3 frequencies per chunk
    assert rel_max(nudft(x, f, k, method="direct"), whole) <= 1e-13


@pytest.mark.parametrize("grid", ["uniform", "shifted-uniform", "scattered"])
def test_fast_path_matches_direct_sum(grid):
    rng = np.random.default_rng(2)
    x = rng.uniform(-40.0, 40.0, 4000)
    values = rng.normal(size=(4000, 3)) + 1j * rng.normal(size=(4000, 3))
    k = {"uniform": np.arange(0.0, 301.0),
         "shifted-uniform": np.linspace(-1.3, 2 * np.pi, 777),
         "scattered": np.sort(rng.uniform(-60.0, 60.0, 500))}[grid]
    fast = nudft(x, values, k, method="fast")
    direct = nudft(x, values, k, method="direct")
    assert fast.shape == direct.shape == (k.size, 3)
    for col in range(3):
        assert rel_max(fast[:, col], direct[:, col]) <= 1e-10


def test_auto_switches_to_the_fast_path_above_the_threshold(monkeypatch):
    calls = []
    original = nudft_module._fast

    def spy(*args):
        calls.append(args[0].size)
        return original(*args)

    monkeypatch.setattr(nudft_module, "_fast", spy)
    x, k = np.linspace(-1, 1, 100), np.arange(5.0)
    nudft(x, np.ones(100), k)
    assert calls == []
    monkeypatch.setattr(nudft_module, "FAST_THRESHOLD", 500)
    nudft(x, np.ones(100), k)
    assert calls == [100]


def test_multi_output_columns_are_independent_transforms():
    rng = np.random.default_rng(3)
    x, k = rng.uniform(-3, 3, 50), np.linspace(0, 10, 21)
    values = rng.normal(size=(50, 4))
    together = nudft(x, values, k)
    for col in range(4):
        assert np.allclose(together[:, col], nudft(x, values[:, col], k), atol=1e-15)


def test_principal_direction_recovers_the_stretched_axis_with_a_fixed_sign():
    rng = np.random.default_rng(4)
    axis = np.array([3.0, -4.0, 0.0]) / 5.0
    data = rng.normal(size=(2000, 1)) * 10 * axis + rng.normal(size=(2000, 3)) + 7.0
    d = principal_direction(data)
    assert np.linalg.norm(d) == pytest.approx(1.0)
    assert abs(d @ axis) > 0.999
    assert d[np.argmax(np.abs(d))] > 0  # largest entry (−4/5 direction) made positive
    assert np.allclose(principal_direction(-data), d)


def test_projected_nudft_is_the_1d_transform_of_the_projections():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 10))
    values = np.prod(np.sign(x), axis=1)
    k = np.linspace(0, 2 * np.pi, 33)
    direction = np.ones(10)
    got = projected_nudft(x, values, k, direction)
    s = x @ (direction / np.sqrt(10))
    want = np.array([np.mean(values * np.exp(-1j * kk * s)) for kk in k])
    assert rel_max(got, want) <= 1e-12


def test_peaks_relative_error_and_mismatch():
    x_test = np.linspace(-np.pi, np.pi, 1000)
    k = np.arange(0.0, 13.0)
    test_spec = nudft(x_test, np.sin(6 * x_test), k)
    assert spectral_peaks(test_spec).tolist() == [6]
    assert relative_error_at_peaks(0.5 * test_spec, test_spec, [6]) == pytest.approx([0.5])
    assert relative_error_at_peaks(np.zeros(13), test_spec, [6]) == pytest.approx([1.0])
    # a training set with a planted k = 1 alias: spurious power outside k = 6
    x_train = np.concatenate([np.linspace(-np.pi, np.pi, 35), np.full(10, 0.5)])
    train_spec = nudft(x_train, np.sin(6 * x_train), k)
    power = np.abs(train_spec) ** 2
    assert spectral_mismatch(train_spec, test_spec) == pytest.approx(
        1 - power[6] / power.sum(), rel=1e-12)
    assert spectral_mismatch(test_spec, test_spec) < 1e-4
    # a broad true peak: its whole band counts as support
    broad_test = np.array([0.0, 0.05, 0.5, 1.0, 0.5, 0.05])
    broad_train = np.array([0.3, 0.1, 0.5, 1.0, 0.5, 0.0])
    assert spectral_mismatch(broad_train, broad_test) == pytest.approx(0.1 / 1.6)
    # end points count as peaks when they dominate their neighbour
    assert spectral_peaks(np.array([1.0, 0.2, 0.1, 0.5])).tolist() == [0, 3]


@pytest.mark.parametrize(("call", "field"), [
    (lambda: nudft(np.zeros((3, 2)), np.zeros(3), [1.0]), "x"),
    (lambda: nudft(np.zeros(3), np.zeros(4), [1.0]), "values"),
    (lambda: nudft(np.zeros(3), np.zeros(3), [np.nan]), "k"),
    (lambda: nudft(np.zeros(3), np.zeros(3), [1.0], method="fft"), "method"),
    (lambda: nudft(np.zeros(3), np.zeros(3), [1.0], eps=0.0), "eps"),
    (lambda: projected_nudft(np.zeros((3, 2)), np.zeros(3), [1.0], [0.0, 0.0]), "direction"),
    (lambda: principal_direction(np.ones((5, 2))), "data"),
    (lambda: relative_error_at_peaks(np.ones(3), np.array([1.0, 0.0, 1.0]), [1]), "peaks"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(InputError) as info:
        call()
    assert info.value.field == field
