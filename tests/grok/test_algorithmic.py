"""Modular training: phase times, power-law fit, stopping rule, logging, resume, experiment."""

import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

from freqdyn.errors import InputError
from freqdyn.grok.algorithmic import (
    NOTSAWO_ADDITION,
    PowerLaw,
    fit_power_law,
    phase_times,
    stopping_budget,
    train_modular,
)
from freqdyn.grok.models import build_model
from freqdyn.grok.modular import modular_dataset
from freqdyn.runs.experiment import load_experiment
from freqdyn.runs.runner import run_experiment

TINY = {"model": "mlp", "p": 13, "width": 32, "train_fraction": 0.6, "batch_size": "full",
        "lr": 1e-2, "weight_decay": 1.0, "steps": 40, "eval_every": 10}


def test_phase_times_are_first_crossings():
    steps = [0, 10, 20, 30, 40, 50]
    train = [0.0, 0.2, 1.0, 0.99, 1.0, 1.0]
    val = [0.0, 0.0, 0.0, 0.5, 0.99, 1.0]
    assert phase_times(steps, train, val) == {"t1": 10, "t2": 20, "t3": 30, "t4": 50}
    assert phase_times(steps, [0.1] * 6, [0.0] * 6) == {"t1": 0, "t2": None, "t3": None,
                                                         "t4": None}


@pytest.mark.parametrize("law", [NOTSAWO_ADDITION, PowerLaw(a=1.85e6, gamma=1.18, b=0.0),
                                 PowerLaw(a=3.0e4, gamma=1.5, b=200.0)])
def test_power_law_fit_recovers_known_constants(law):
    r = np.arange(20.0, 95.0, 5.0)
    noise = np.random.default_rng(0).normal(0.0, 0.002, r.shape)
    fit = fit_power_law(r, law(r) * (1 + noise))
    assert fit.gamma == pytest.approx(law.gamma, rel=0.02)
    assert math.log(fit.a) == pytest.approx(math.log(law.a), rel=0.02)
    assert fit.b == pytest.approx(law.b, abs=0.02 * law(r).min())


def test_power_law_units_and_stopping_rule():
    # Notsawo et al. 2023: with r in percent the paper's addition fit gives about 1.5k, 5.6k
    # and 97k updates
    assert NOTSAWO_ADDITION(50) == pytest.approx(1.09e15 * 50**-7.73 + 1442.63)
    assert 1.4e3 < NOTSAWO_ADDITION(50) < 1.6e3
    assert 5.3e3 < NOTSAWO_ADDITION(30) < 5.9e3
    assert 9.0e4 < NOTSAWO_ADDITION(20) < 1.0e5
    assert stopping_budget(0.5, NOTSAWO_ADDITION) == math.ceil(NOTSAWO_ADDITION(50)) + 1000
    with pytest.raises(InputError):
        fit_power_law([20, 30], [5.0, 3.0])


def test_logging_matches_independent_evaluation():
    run = train_modular(TINY, seed=2, progress=False)
    log = run.log
    assert len(log.steps) == 40 and log.eval_steps == [0, 10, 20, 30, 40]
    data = modular_dataset(13, "+", 0.6, 2)
    assert torch.equal(run.data.pairs_train, data.pairs_train)
    fresh = build_model(TINY, data, seed=2)
    theta0 = torch.cat([q.detach().reshape(-1) for q in fresh.parameters()])
    assert log.every("param_norm")[0] == pytest.approx(float(theta0.norm()), rel=1e-6)
    with torch.no_grad():
        ce0 = float(torch.nn.functional.cross_entropy(fresh(data.pairs_train), data.labels_train))
    # full batch: the per-step batch loss at θ_t is the evaluated training loss at step t
    assert log.every("batch_loss")[0] == pytest.approx(ce0, rel=1e-6)
    for i, step in enumerate(log.eval_steps[:-1]):
        assert log.every("batch_loss")[step] == pytest.approx(log.evals("train_loss")[i],
                                                              rel=1e-5)
        assert log.every("batch_acc")[step] == pytest.approx(log.evals("train_acc")[i])
    np.testing.assert_allclose(log.every("loss"), log.every("batch_loss"), rtol=1e-6)
    with torch.no_grad():
        val_acc = float((run.model(data.pairs_val).argmax(1) == data.labels_val).float().mean())
    assert run.final["val_acc"] == pytest.approx(val_acc)
    assert run.phase_times == phase_times(log.eval_steps, log.evals("train_acc"),
                                          log.evals("val_acc"))


def test_hooks_penalty_and_minibatch_resume(tmp_path):
    seen = []

    def hook(emb, step, state):
        seen.append((step, state["train_acc"]))
        return emb

    def penalty(model, pairs, labels, step):
        return 0.5 * torch.ones((), dtype=torch.float32)

    cfg = {**TINY, "batch_size": 16, "steps": 30}
    run = train_modular(cfg, seed=0, embedding_hook=hook, extra_loss=penalty, progress=False)
    np.testing.assert_allclose(run.log.every("loss") - run.log.every("batch_loss"), 0.5,
                               rtol=1e-5)
    assert [s for s, _ in seen] == list(range(30))
    assert seen[0][1] == 0.0
    assert [a for _, a in seen[1:]] == list(run.log.every("batch_acc")[:-1])
    # an interrupted run resumed from its checkpoint equals the uninterrupted one
    train_modular({**cfg, "steps": 20}, seed=0, checkpoint_dir=tmp_path, progress=False)
    resumed = train_modular(cfg, seed=0, checkpoint_dir=tmp_path, resume=True, progress=False)
    plain = train_modular(cfg, seed=0, progress=False)
    for key in ("loss", "param_norm", "batch_acc"):
        np.testing.assert_array_equal(resumed.log.every(key), plain.log.every(key))
    np.testing.assert_array_equal(resumed.log.evals("val_loss"), plain.log.evals("val_loss"))


def test_budget_rules_and_default_batch():
    capped = train_modular({**TINY, "power_law": [0.0, 1.0, 5.0], "stop_margin": 7},
                           seed=0, progress=False)
    assert len(capped.log.steps) == 12
    default_batch = []
    train_modular({**TINY, "steps": 2, "batch_size": 40}, seed=0,
                  extra_loss=lambda m, x, y, t: default_batch.append(len(x)) or 0.0,
                  progress=False)
    assert default_batch == [40, 40]
    sizes = []
    cfg = {k: v for k, v in TINY.items() if k != "batch_size"} | {"steps": 1}
    train_modular(cfg, seed=0, extra_loss=lambda m, x, y, t: sizes.append(len(x)) or 0.0,
                  progress=False)
    assert sizes == [min(512, round(0.6 * 169) // 2)]
    with pytest.raises(InputError) as err:
        train_modular({**TINY, "batch_size": "half"}, seed=0)
    assert err.value.field == "settings.batch_size"


EXPERIMENT = """
[experiment]
name = "tiny-modular"
kind = "modular"
seeds = [0, 1]
[settings]
model = "mlp"
p = 31
width = 64
train_fraction = 0.8
batch_size = "full"
lr = 1e-2
steps = 150
eval_every = 10
[claim]
rule = "all(memorised) and max(t2) < 150"
"""


def test_run_modular_experiment_end_to_end(tmp_path):
    exp = load_experiment("tiny", text=EXPERIMENT)
    result = run_experiment(exp, tmp_path, device="cpu")
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["claim_holds"] is True and result.summary["claim_holds"] is True
    ds = xr.open_dataset(tmp_path / "result.nc")
    assert ds["batch_acc"].dims == ("seed", "step") and ds.sizes["step"] == 150
    for i, seed in enumerate(summary["seeds"]):
        val = ds["train_acc"].sel(seed=seed).values
        first = int(ds["eval_step"].values[np.flatnonzero(val >= 1)[0]])
        assert summary["t2"][i] == first == int(ds["t2"].sel(seed=seed))
        assert summary["final_val_acc"][i] == pytest.approx(float(ds["val_acc"].sel(seed=seed)[-1]))
    assert summary["t2_mean"] == pytest.approx(np.mean(summary["t2"]))
    assert (tmp_path / "curves.png").stat().st_size > 0
    ds.close()


@pytest.mark.parametrize("model", ["nanda", "power"])
def test_transformers_fit_the_training_pairs(model):
    cfg = {**TINY, "model": model, "p": 7, "d_model": 16, "n_heads": 2, "d_head": 8,
           "d_mlp": 32, "train_fraction": 0.5, "lr": 1e-2, "weight_decay": 0.0, "steps": 60,
           "eval_every": 20}
    run = train_modular(cfg, seed=0, progress=False)
    assert run.log.evals("train_loss")[-1] < 0.3 * run.log.evals("train_loss")[0]
    assert run.phase_times["t2"] is not None and run.final["train_acc"] == 1.0
