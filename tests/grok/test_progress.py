"""Nanda progress measures against closed forms and brute-force projections."""

import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

from freqdyn.errors import InputError
from freqdyn.grok.models import build_model
from freqdyn.grok.modular import modular_dataset
from freqdyn.grok.progress import (
    embedding_fourier_norms,
    fall_step,
    fourier_basis,
    fourier_norms,
    gini,
    key_frequencies,
    key_share,
    logits_table,
    restricted_and_excluded_loss,
    sum_frequency_components,
)
from freqdyn.runs.experiment import load_experiment
from freqdyn.runs.runner import run_experiment


@pytest.mark.parametrize("p", [7, 13])
def test_fourier_basis_is_orthonormal(p):
    basis = fourier_basis(p)
    np.testing.assert_allclose(basis @ basis.T, np.eye(p), atol=1e-12)
    with pytest.raises(InputError):
        fourier_basis(8)


def test_fourier_norms_of_a_known_map():
    p = 11
    x = np.arange(p)
    w = np.stack([3 * np.cos(2 * np.pi * 2 * x / p),
                  4 * np.sin(2 * np.pi * 2 * x / p) + 1.0], axis=1)
    norms = fourier_norms(w)
    expected = np.zeros(6)
    expected[0] = math.sqrt(p)
    expected[2] = 5 * math.sqrt(p / 2)
    np.testing.assert_allclose(norms, expected, atol=1e-12)
    assert np.sum(norms**2) == pytest.approx(np.sum(w**2))          # Parseval
    assert key_frequencies(norms) == [2]
    assert key_share(norms, [2]) == pytest.approx(12.5 * p / (12.5 * p + p))


def test_key_frequencies_stand_out_of_the_floor():
    """A random embedding has no key frequency; planted ones over a floor are found, in
    order, whatever p; a factor ≤ 1 is refused."""
    rng = np.random.default_rng(0)
    for p in (31, 113):
        assert key_frequencies(fourier_norms(rng.normal(size=(p, 128)))) == []
        x = np.arange(p)[:, None]
        planted = (3 * np.cos(2 * np.pi * 4 * x / p + rng.uniform(0, 6, 64))
                   + 2 * np.cos(2 * np.pi * 9 * x / p + rng.uniform(0, 6, 64)))
        norms = fourier_norms(planted + 0.1 * rng.normal(size=(p, 64)))
        assert key_frequencies(norms) == [4, 9]
        assert key_share(norms, [4, 9]) > 0.95
    with pytest.raises(InputError, match="key_factor"):
        key_frequencies(norms, 1.0)


def test_mlp_embedding_norms_combine_both_operands():
    data = modular_dataset(7, "+", 0.5, 0)
    model = build_model({"model": "mlp", "width": 5}, data, seed=0)
    w = model.first.weight.detach().double().numpy()
    combined = np.sqrt(fourier_norms(w[:, :7].T) ** 2 + fourier_norms(w[:, 7:].T) ** 2)
    np.testing.assert_allclose(embedding_fourier_norms(model, 7), combined)


def test_gini_coefficient():
    assert gini([2.0, 2.0, 2.0]) == pytest.approx(0.0)
    assert gini([0.0, 0.0, 0.0, 5.0]) == pytest.approx(3 / 4)
    assert gini([1.0, 2.0, 3.0]) == pytest.approx(8 / (2 * 3 * 6))


def test_sum_components_equal_the_least_squares_projection():
    p, keys = 7, [1, 3]
    logits = torch.randn(p, p, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    constant, key_part = sum_frequency_components(logits, keys)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    s = (a + b).ravel()
    columns = [np.ones(p * p)]
    for k in keys:
        columns += [np.cos(2 * np.pi * k * s / p), np.sin(2 * np.pi * k * s / p)]
    design = np.stack(columns, axis=1)
    flat = logits.reshape(p * p, -1).numpy()
    coef, *_ = np.linalg.lstsq(design, flat, rcond=None)
    np.testing.assert_allclose(constant.numpy(), coef[0], atol=1e-12)
    np.testing.assert_allclose(key_part.reshape(p * p, -1).numpy(), design[:, 1:] @ coef[1:],
                               atol=1e-12)


class _Clock(torch.nn.Module):
    """Logits 4 Σ_k cos(w_k(a + b − c)) for the given frequencies: Nanda's algorithm."""

    def __init__(self, p, keys):
        super().__init__()
        self.p, self.keys = p, keys
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, pairs):
        c = torch.arange(self.p, dtype=torch.float64)
        s = (pairs[:, :1] + pairs[:, 1:]).double()
        return sum(4 * torch.cos(2 * math.pi * k * (s - c) / self.p) for k in self.keys)


def test_restricted_and_excluded_loss_of_a_pure_clock():
    data = modular_dataset(11, "+", 0.5, 0)
    model = _Clock(11, [2, 5])
    full = torch.nn.functional.cross_entropy(logits_table(model, data).reshape(121, -1),
                                             ((torch.arange(11)[:, None] + torch.arange(11))
                                              % 11).reshape(-1))
    restricted, excluded = restricted_and_excluded_loss(model, data, [2, 5])
    assert restricted == pytest.approx(float(full), rel=1e-10)       # nothing outside keys
    assert excluded == pytest.approx(math.log(11), rel=1e-10)        # nothing left: uniform
    restricted_one, _ = restricted_and_excluded_loss(model, data, [2])
    assert restricted_one > restricted + 0.1


def test_fall_step():
    steps = np.array([0, 10, 20, 30, 40])
    assert fall_step(steps, [5, 3, 1, 2, 1], 2.5) == 20
    assert fall_step(steps, [5, 1, 3, 1, 1], 2.5) == 30
    assert fall_step(steps, [5, 5, 5, 5, 3], 2.5) is None
    assert fall_step(steps, [1, 1, 1, 1, 1], 2.5) == 0


EXPERIMENT = """
[experiment]
name = "tiny-progress"
kind = "progress-measures"
seeds = [0]
[settings]
model = "mlp"
p = 31
width = 64
train_fraction = 0.8
batch_size = "full"
lr = 1e-2
steps = 120
eval_every = 10
measure_every = 20
key_factor = 4
[claim]
rule = "all(memorised) and max(n_key_frequencies) <= 15"
"""


def test_run_progress_measures_end_to_end(tmp_path):
    exp = load_experiment("tiny", text=EXPERIMENT)
    result = run_experiment(exp, tmp_path, device="cpu")
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["claim_holds"] is True and result.summary["claim_holds"] is True
    ds = xr.open_dataset(tmp_path / "result.nc")
    assert list(ds["measure_step"].values) == list(range(0, 121, 20))
    assert ds["embedding_fourier_norm"].dims == ("seed", "measure_step", "k")
    assert ds.sizes["k"] == 16
    keys = summary["key_frequencies"][0]
    assert sorted(keys) == list(np.flatnonzero(ds["is_key_frequency"].values[0]))
    final_norms = ds["embedding_fourier_norm"].values[0, -1]
    assert summary["key_share"][0] == pytest.approx(key_share(final_norms, keys))
    assert key_frequencies(final_norms, 4) == keys
    val = ds["val_loss"].sel(seed=0).values
    eval_steps = list(ds["eval_step"].values)
    measured = ds["measure_test_loss"].values[0]
    np.testing.assert_allclose(measured, [val[eval_steps.index(s)] for s in range(0, 121, 20)])
    gini_final = float(ds["gini_embedding"].values[0, -1])
    assert gini_final == pytest.approx(gini(final_norms), rel=1e-9)
    for key in ("curves", "fourier_norms", "progress_measures"):
        assert (tmp_path / f"{key}.png").stat().st_size > 0
    ds.close()


def test_neuron_frequency_fractions_find_a_planted_clock_neuron():
    """A neuron reading cos(w_k a) + cos(w_k b) + its product is all frequency k; a neuron
    reading a random table spreads over every frequency."""
    from freqdyn.grok.progress import neuron_frequency_fractions

    data = modular_dataset(13, "+", train_fraction=0.5, seed=0)
    w = 2 * np.pi * 3 / 13

    class Planted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def mlp_activations(self, pairs):
            a, b = pairs[:, 0].double(), pairs[:, 1].double()
            clock = 2 + torch.cos(w * a) + torch.sin(w * b) + torch.cos(w * a) * torch.cos(w * b)
            noise = torch.sin(1.7 * a * a + 0.3 * b)  # not band-limited to one k
            return torch.stack([clock, noise, torch.zeros_like(a)], dim=1)

    fractions = neuron_frequency_fractions(Planted(), data)
    assert fractions.shape == (3, 6)
    assert fractions[0, 2] == pytest.approx(1.0, abs=1e-12)
    assert fractions[0].sum() == pytest.approx(1.0, abs=1e-12)
    assert fractions[1].max() < 0.5 and fractions[1].sum() < 1.0 + 1e-12
    assert np.all(fractions[2] == 0)  # a dead neuron explains nothing


def test_progress_run_resumes_with_its_weight_copies(tmp_path, monkeypatch):
    """Stop after 60 of 120 updates, re-run the same file: the same summary as a whole run,
    and a changed file refuses the old checkpoints."""
    from freqdyn.grok import algorithmic
    from freqdyn.grok.progress import run_progress_measures

    text = EXPERIMENT.replace('model = "mlp"', 'model = "nanda"\nd_model = 16\nn_heads = 2\n'
                                               'd_head = 8\nd_mlp = 32')
    exp = load_experiment("tiny", text=text)
    whole = run_progress_measures(exp, tmp_path / "whole", "cpu").summary
    original = algorithmic.train_loop
    monkeypatch.setattr(algorithmic, "train_loop",
                        lambda *a, **kw: original(*a, **{**kw, "stop_after": 60}))
    run_progress_measures(exp, tmp_path / "cut", "cpu")  # as a killed run leaves it
    monkeypatch.setattr(algorithmic, "train_loop", original)
    resumed = run_progress_measures(exp, tmp_path / "cut", "cpu").summary
    for key in ("key_frequencies", "final_val_loss", "final_restricted_loss",
                "neuron_clustered_share", "excluded_rise_factor"):
        assert resumed[key] == whole[key]
    other = load_experiment("tiny", text=text.replace("lr = 1e-2", "lr = 2e-2"))
    with pytest.raises(InputError, match="another run"):
        run_progress_measures(other, tmp_path / "cut", "cpu")
