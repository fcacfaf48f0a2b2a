"""Finite width on data: each draw is the exact linearised flow, the spread falls as
m^(-1/2) around the infinite-width MSE, and trained networks fall inside it."""

from dataclasses import replace

import numpy as np
import pytest
import torch

import freqdyn
from freqdyn.analysis.data_width import DRAW_SEED, width_prediction
from freqdyn.nets.settings import train_settings
from freqdyn.nets.setup import build_model
from freqdyn.nets.train import train
from freqdyn.predict.data_flow import data_kernel_flow
from freqdyn.results import read_dataset


def _case(n=129, scale=6.0, times=(0.0, 3.0, 30.0), **train_keys):
    x = np.linspace(0, 1, n)
    noise = np.random.default_rng(0).normal(size=n)
    y = np.sin(2 * np.pi * 2 * x) + 0.5 * np.sin(2 * np.pi * 9 * x) + 0.2 * noise
    return freqdyn.data_case(y, holdout={"stride": 2}, sigma_a=0.3, times=list(times),
                             rho_w={"family": "gaussian", "scale": scale},
                             train=dict(train_keys))


def _dense_linearised_mse(case, width, seed, f0):
    """Independent: the autodiff Jacobian of the network on every sample, the eNTK as a
    dense matrix, and the flow by its eigendecomposition."""
    s = train_settings(case, {"width": width, "dtype": "float64", "twin": False, "f0": f0})
    model = build_model(case, replace(s, seed=seed))
    target = case.target
    points = torch.from_numpy(target.points())
    params = [p for p in model.parameters()]
    rows = []
    for i in range(points.shape[0]):
        out = model(points[i:i + 1])[0]
        rows.append(torch.cat([g.ravel() for g in torch.autograd.grad(out, params)]))
    jac = torch.stack(rows).detach().numpy()
    with torch.no_grad():
        f0_values = model.evaluate(points).numpy() if f0 == "random" else 0.0 * jac[:, 0]
    train, test = target.train.ravel(), target.test.ravel()
    y = target.values.ravel()
    weight = case.loss_scale * target.cell_volume
    lam, q = np.linalg.eigh(weight * jac[train] @ jac[train].T)
    lam = np.maximum(lam, 0.0)
    r0 = q.T @ (f0_values[train] - y[train])
    train_mse, test_mse = [], []
    for t in case.times:
        residual = q @ (np.exp(-lam * t) * r0)
        integral = q @ (np.where(lam > 1e-14, -np.expm1(-lam * t) / np.maximum(lam, 1e-300),
                                 t) * r0)
        f_test = f0_values[test] - weight * jac[test] @ (jac[train].T @ integral)
        train_mse.append(np.mean(residual**2))
        test_mse.append(np.mean((f_test - y[test]) ** 2))
    return np.array(train_mse), np.array(test_mse)


@pytest.mark.parametrize("f0", ["zero", "random"])
def test_each_draw_is_the_exact_linearised_flow_of_its_network(f0):
    case = _case()
    pred = width_prediction(case, {"width": 64, "f0": f0}, draws=2)
    for k in range(2):
        train_mse, test_mse = _dense_linearised_mse(case, 64, DRAW_SEED + k, f0)
        np.testing.assert_allclose(pred.train_mse[k], train_mse, rtol=1e-7)
        np.testing.assert_allclose(pred.test_mse[k], test_mse, rtol=1e-7)
    assert pred.test_mse[0, -1] != pytest.approx(pred.test_mse[1, -1], rel=1e-3)


def test_spread_falls_as_inverse_root_width_around_the_infinite_width_mse():
    case = _case()
    infinite = float(data_kernel_flow(case)["test_mse"].values[-1])
    stats = {m: width_prediction(case, {"width": m}, draws=12).statistics()
             for m in (256, 4096)}
    ratio = stats[256]["test_mse_std"][-1] / stats[4096]["test_mse_std"][-1]
    assert 2.5 < ratio < 6.4  # sqrt(16) = 4, with 12 draws (std's own error ~ 20 %)
    for m, st in stats.items():  # the mean is the infinite-width MSE to O(1/m)
        gap = abs(st["test_mse_mean"][-1] - infinite)
        assert gap < 4 * st["test_mse_std"][-1] / np.sqrt(12) + 2.0 * infinite * 256 / m
    # and a wrong width (the 4096-unit statistics for the 256-unit networks) is far off
    assert stats[4096]["test_mse_std"][-1] < 0.5 * stats[256]["test_mse_std"][-1]


def test_trained_networks_fall_inside_the_predicted_spread(tmp_path):
    """An independent Monte Carlo: 16 trained networks of width 16 (where the finite-width
    shift of the mean, O(1/m), is as large as the spread of a 16-seed mean)."""
    width, seeds, draws = 16, range(16), 24
    case = _case(times=(0.0, 30.0))
    pred = width_prediction(case, {"width": width}, draws=draws).statistics()
    measured = []
    for seed in seeds:
        run = _case(times=(0.0, 30.0), width=width, seed=seed, dtype="float64", optimizer="gd",
                    min_steps=400)
        train(run, tmp_path / f"s{seed}")
        measured.append(float(read_dataset(tmp_path / f"s{seed}" / "measured.nc")
                              ["test_mse"].values[-1]))
    mean, spread = pred["test_mse_mean"][-1], pred["test_mse_std"][-1]
    net_mean = np.mean(measured)
    assert abs(net_mean - mean) < 3 * spread * np.sqrt(1 / len(seeds) + 1 / draws)
    assert 0.5 < np.std(measured, ddof=1) / spread < 2.0  # the spread itself
    # the wrong model: the infinite-width MSE, 0.064 against the networks' 0.160
    infinite = float(data_kernel_flow(case)["test_mse"].values[-1])
    assert abs(net_mean - infinite) > 3 * spread / np.sqrt(len(seeds))


def test_solve_reports_the_expected_mse_at_the_case_width(tmp_path):
    from freqdyn.runs.predictions import solve_to

    case = _case(width=64)
    written = solve_to(case, tmp_path, "kernel-flow", figure=False)
    ds = read_dataset(tmp_path / "prediction.nc")
    st = width_prediction(case, times=ds["time"].values).statistics()
    np.testing.assert_allclose(ds["expected_test_mse"].values, st["test_mse_mean"], rtol=1e-12)
    np.testing.assert_allclose(ds["expected_test_mse_std"].values, st["test_mse_std"],
                               rtol=1e-12)
    assert int(ds.attrs["width"]) == 64 and "at m = 64: test MSE" in written.summary
    solve_to(_case(), tmp_path / "plain", "kernel-flow", figure=False)
    assert "expected_test_mse" not in read_dataset(tmp_path / "plain" / "prediction.nc")
