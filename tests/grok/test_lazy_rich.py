"""Lazy-to-rich experiments: passage times, grok amount and tiny end-to-end runs."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

from freqdyn.errors import InputError
from freqdyn.grok.lazy_rich import first_passage, grok_amount, log_schedule
from freqdyn.runs.experiment import load_experiment
from freqdyn.runs.runner import run_experiment

TOY = dict(dim=12, n_train=66, n_test=200, width=40, eps=0.1, eta0=5.0, steps=400,
           log_every=10)


def _experiment(kind, settings, seeds=(0, 1, 2), rule="True"):
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    text = (f'[experiment]\nname = "tiny-{kind}"\nkind = "{kind}"\nseeds = {list(seeds)}\n'
            f'[settings]\n{lines}\n[claim]\nrule = "{rule}"\n')
    return load_experiment(f"tiny-{kind}", text=text)


def test_first_passage_and_grok_amount_conventions():
    steps = np.array([0, 10, 20, 30, 40])
    train = np.array([1.0, 0.5, 0.08, 0.03, 0.01])
    test = np.array([1.0, 1.2, 0.9, 0.09, 0.05])
    assert first_passage(steps, train, 0.1) == 20
    assert np.isnan(first_passage(steps, test, 0.001))
    assert grok_amount(steps, train, test, 0.1) == (10.0, False)
    assert grok_amount(steps, test, train, 0.1) == (0.0, False)          # max(0, ·)
    assert grok_amount(steps, train, test, 0.04) == (10.0, True)         # test never passes
    amount, censored = grok_amount(steps, test, train, 0.001)
    assert np.isnan(amount) and censored                                  # train never passes
    # relative: thresholds on L(t)/L(0)
    assert grok_amount(steps, 2 * train, 3 * test, 0.1, relative=True) == (10.0, False)


def test_log_schedule():
    grid = log_schedule(1000, 300, n_geometric=5)
    assert grid[0] == 0 and grid[-1] == 1000
    assert {300, 600, 900, 1, 5, 31, 177}.issubset(set(grid.tolist()))
    assert np.all(np.diff(grid) > 0)
    with pytest.raises(InputError, match="settings.log_every"):
        log_schedule(10, 0)


def test_toy_end_to_end(tmp_path):
    torch.set_num_threads(1)
    exp = _experiment("lazy-rich-toy", TOY,
                      rule="decomposition_max_rel_error < 1e-6 and all(both_fall)")
    result = run_experiment(exp, tmp_path, device="cpu")
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["claim_holds"] is True
    assert summary["decomposition_max_rel_error"] < 1e-6
    for name in ("learning_curves", "decomposition", "alignment"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    ds = xr.load_dataset(result.result)
    assert ds["test_loss"].dims == ("seed", "step") and ds.sizes["seed"] == 3
    # the K₀ regression level, recomputed with numpy from the same seeded data
    gen = torch.Generator().manual_seed(1)
    beta = torch.randn(12, generator=gen, dtype=torch.float64).numpy()
    x_tr = (torch.randn(66, 12, generator=gen, dtype=torch.float64) / 12**0.5).numpy()
    x_te = (torch.randn(200, 12, generator=gen, dtype=torch.float64) / 12**0.5).numpy()

    def k0(a, b):
        dot = a @ b.T
        return dot + 0.1**2 * dot**2

    y_tr, y_te = 0.5 * (x_tr @ beta) ** 2, 0.5 * (x_te @ beta) ** 2
    pred = k0(x_te, x_tr) @ np.linalg.solve(k0(x_tr, x_tr), y_tr)
    assert summary["k0_regression_test_loss"][1] == pytest.approx(np.mean((pred - y_te) ** 2),
                                                                  rel=1e-8)
    # summary numbers are read off the stored curves
    test = ds["test_loss"].values[2]
    assert summary["test_peak"][2] == pytest.approx(test.max())
    assert summary["train_plateau"][2] == pytest.approx(ds["train_loss"].values[2, test.argmax()])
    # the terms add up to the population loss; the test set estimates it
    terms = sum(ds[k] for k in ("variance_term", "misalignment_term", "linear_term"))
    np.testing.assert_allclose(terms, ds["population_check"], rtol=1e-9)
    assert summary["norm_rises"] == [True, True, True]


def test_alpha_sweep_end_to_end(tmp_path):
    torch.set_num_threads(1)
    settings = dict(TOY, n_train=54, eps=0.25, eta0=2.0, target_scale=1.0, steps=600,
                    relative_threshold=True, threshold=0.5, alphas=[0.5, 1.0, 2.0, 4.0])
    exp = _experiment("lazy-rich-alpha-sweep", settings, rule="all(increasing_in_alpha)")
    result = run_experiment(exp, tmp_path, device="cpu")
    summary = result.summary
    assert summary["claim_holds"] is True
    amounts = np.array(summary["grok_amount"])
    assert amounts.shape == (3, 4) and np.all(np.diff(amounts, axis=1) > 0)
    # the α = 10⁴ run is the lazy limit: kernel GD with the empirical NTK of W₀
    assert summary["lazy_vs_empirical_kernel_max_abs_rel"] < 5e-3
    ds = xr.load_dataset(result.result)
    assert ds["train_loss"].dims == ("seed", "alpha", "step")
    assert ds.sizes["alpha"] == 5
    again = grok_amount(ds["step"].values, ds["train_loss"].values[1, 2],
                        ds["test_loss"].values[1, 2], 0.5, relative=True)[0]
    assert amounts[1, 2] == again


def test_phase_diagram_end_to_end(tmp_path):
    torch.set_num_threads(1)
    settings = dict(dim=20, n_train=110, n_test=200, width=100, eta0=4.0, steps=1000,
                    log_every=5, alphas=[0.5, 4.0], epsilons=[0.05, 0.4])
    exp = _experiment("lazy-rich-phase", settings, seeds=(0,),
                      rule="lazy_misaligned_corner > rich_aligned_corner")
    result = run_experiment(exp, tmp_path, device="cpu")
    assert result.summary["claim_holds"] is True
    ds = xr.load_dataset(result.result)
    assert ds["grok_amount"].dims == ("seed", "alpha", "eps")
    cell = ds.sel(alpha=4.0, eps=0.05)
    amount, censored = grok_amount(ds["step"].values, cell["train_loss"].values[0],
                                   cell["test_loss"].values[0], 0.1)
    assert not censored and float(cell["grok_amount"][0]) == amount > 0


def test_modular_mlp_end_to_end(tmp_path):
    torch.set_num_threads(1)
    settings = dict(p=13, train_fraction=0.9, width=60, steps=500, eval_every=20)
    exp = _experiment("modular-mlp-lazy-rich", settings, seeds=(0,),
                      rule="all(grokked) and all(norm_rises)")
    result = run_experiment(exp, tmp_path, device="cpu")
    summary = result.summary
    assert summary["claim_holds"] is True
    ds = xr.load_dataset(result.result)
    acc = ds["val_accuracy"].values[0]
    step = ds["step"].values
    # read back: memorised first (train accuracy 1), validation ≥ 95 % later
    assert summary["t_train_acc"][0] == step[np.argmax(ds["train_accuracy"].values[0] >= 0.999)]
    assert summary["t_val_acc"][0] == step[np.argmax(acc >= 0.95)]
    assert summary["t_val_acc"][0] > summary["t_train_acc"][0]
    assert summary["weight_norm_at_grok"][0] > summary["weight_norm_initial"][0]


def test_bad_settings_name_the_field(tmp_path):
    with pytest.raises(InputError, match="settings.alphas"):
        run_experiment(_experiment("lazy-rich-alpha-sweep", dict(TOY, alphas=[1.0])),
                       tmp_path)
    with pytest.raises(InputError, match="settings.epsilons"):
        phase = {k: v for k, v in TOY.items() if k != "eps"}  # the phase kind scans epsilons
        run_experiment(_experiment("lazy-rich-phase", dict(phase, alphas=[1.0, 2.0])),
                       tmp_path)
    with pytest.raises(InputError, match="settings.eps: unknown key"):
        _experiment("lazy-rich-phase", dict(TOY, alphas=[1.0, 2.0], epsilons=[0.1, 0.2]))
    with pytest.raises(InputError, match="settings.centered"):
        run_experiment(_experiment("lazy-rich-toy", dict(TOY, centered="yes")), tmp_path)
