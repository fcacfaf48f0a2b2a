"""Design for data: the scale of least predicted test MSE, its files, and its refusals."""

import json
from dataclasses import replace

import numpy as np
import pytest

import freqdyn
from freqdyn.analysis.data_design import design_scale
from freqdyn.analysis.data_width import DEFAULT_DRAWS, width_prediction
from freqdyn.cli import main
from freqdyn.inputs.case import load_case
from freqdyn.inputs.densities import density_from_config
from freqdyn.predict.data_flow import data_kernel_flow
from freqdyn.results import read_dataset


def _signal(n=257, seed=0):
    x = np.linspace(0, 1, n)
    noise = np.random.default_rng(seed).normal(size=n)
    return np.sin(2 * np.pi * 3 * x) + 0.5 * np.sin(2 * np.pi * 17 * x) + 0.3 * noise


def _write_case(tmp_path, holdout="holdout = { stride = 2 }", family='family = "gaussian"\n'
                'scale = 4.0'):
    np.save(tmp_path / "s.npy", _signal())
    path = tmp_path / "case.toml"
    path.write_text(f'name = "s"\n[network]\ndim = 1\nsigma_a = 0.1\n[network.rho_w]\n'
                    f'{family}\n[target]\ndata = "s.npy"\n{holdout}\n[frequency]\n'
                    'times = [0.0, 100.0]\n')
    return path


def test_underfit_and_overfit_on_either_side_of_the_designed_scale():
    case = freqdyn.data_case(_signal(), holdout={"stride": 2}, sigma_a=0.1, times=[0, 100],
                             rho_w={"family": "gaussian", "scale": 4.0})
    sd = design_scale(case, 100.0)
    assert not sd.at_grid_end
    assert sd.test_mse[0] > 2 * sd.test_mse[sd.best] < sd.test_mse[-1]  # under / over fit
    assert 8.0 < sd.scale < 40.0  # between the signal's 17 cycles and the 64 of Nyquist
    # every point of the curve is the flow at that scale (spot-check one, independently built)
    other = freqdyn.data_case(_signal(), holdout={"stride": 2}, sigma_a=0.1, times=[0, 100],
                              rho_w={"family": "gaussian", "scale": float(sd.scales[3])})
    assert sd.test_mse[3] == pytest.approx(float(data_kernel_flow(other)["test_mse"][-1]),
                                           rel=1e-12)


def test_design_command_writes_a_runnable_case(tmp_path, capsys):
    case = _write_case(tmp_path)
    assert main(["design", "--case", str(case), "--time", "100", "--out",
                 str(tmp_path / "d")]) == 0
    chosen = load_case(tmp_path / "d" / "design.toml")
    report = (tmp_path / "d" / "design.json").read_text()
    assert '"predicted_test_mse"' in report and chosen.is_data
    assert f"scale = {chosen.rho_w.scale:.4g}" in capsys.readouterr().out


@pytest.mark.parametrize("holdout, family, args, problem", [
    ("", 'family = "gaussian"\nscale = 4.0', [], "held-out samples"),
    ("holdout = { stride = 2 }", 'family = "expression"\ndensity = "exp(-w**2)"', [],
     "has none"),
    ("holdout = { stride = 2 }", 'family = "gaussian"\nscale = 4.0', ["--scales", "1,2"],
     "at least 3"),
    ("holdout = { stride = 2 }", 'family = "gaussian"\nscale = 4.0', ["--time", "-1"],
     "--time"),
])
def test_design_refusals_are_one_line(tmp_path, capsys, holdout, family, args, problem):
    case = _write_case(tmp_path, holdout, family)
    argv = ["design", "--case", str(case), "--out", str(tmp_path / "d"), *args]
    if "--time" not in args:
        argv += ["--time", "100"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and problem in err, err


def test_design_confirm_trains_networks_over_the_grid_and_they_agree(tmp_path, capsys):
    """``--confirm --width 8192``: the design is for width-8192 networks, one network per
    scale on the same samples confirms it; their test MSE joins the curve, and the
    report's agreement numbers are those of the stored runs.  Each network lies within 3
    predicted spreads of the expected MSE (one network against the mean of 8 draws:
    σ √(1 + 1/8))."""
    case = _write_case(tmp_path)
    out = tmp_path / "d"
    assert main(["design", "--case", str(case), "--time", "100", "--scales", "4,12,36,108",
                 "--confirm", "--width", "8192", "--seeds", "0", "--out", str(out)]) == 0
    report = json.loads((out / "design.json").read_text())
    measured = report["measured"]
    assert measured["width"] == 8192 and measured["grid_steps_apart"] == 0
    assert measured["excess_at_predicted"] == 0.0
    stored = [float(read_dataset(out / "runs" / f"scale{i:02d}-seed0" / "measured.nc")
                    ["test_mse"][-1]) for i in range(4)]
    np.testing.assert_allclose(measured["test_mse_mean"], stored, rtol=1e-12)
    predicted = np.array(report["curve"]["test_mse"])
    assert measured["max_rel_diff_pred_vs_net"] == pytest.approx(
        float(np.max(np.abs(predicted / stored - 1))), rel=1e-9)
    spread = np.array(report["curve"]["test_mse_std"])
    assert np.all(np.abs(np.array(stored) - predicted) < 3 * spread * np.sqrt(1 + 1 / 8))
    assert "networks (m = 8192, 1 seeds)" in capsys.readouterr().out


def test_width_alone_designs_for_width_m_networks(tmp_path, capsys):
    """``--width 16`` without ``--confirm``: the curve is the expected test MSE of width-16
    networks over draws of their linearised flow, with its spread; at so small a width it
    lies above the infinite-width curve at every scale (the kernel's Monte-Carlo error
    adds to the MSE)."""
    case = _write_case(tmp_path)
    out = tmp_path / "d"
    assert main(["design", "--case", str(case), "--time", "100", "--scales", "4,12,36",
                 "--width", "16", "--out", str(out)]) == 0
    report = json.loads((out / "design.json").read_text())
    assert report["width"] == 16 and report["draws"] == DEFAULT_DRAWS
    assert "width-16 networks" in report["model"] and report["measured"] is None
    loaded = load_case(case)
    at_12 = width_prediction(replace(loaded, rho_w=density_from_config(
        {"family": "gaussian", "scale": 12.0}, 1)), {"width": 16},
        times=np.array([0.0, 100.0])).statistics()
    assert report["curve"]["test_mse"][1] == pytest.approx(at_12["test_mse_mean"][-1],
                                                           rel=1e-10)
    assert report["curve"]["test_mse_std"][1] == pytest.approx(at_12["test_mse_std"][-1],
                                                               rel=1e-10)
    infinite = design_scale(loaded, 100.0, [4.0, 12.0, 36.0])
    assert np.all(np.array(report["curve"]["test_mse"]) > infinite.test_mse)
    assert "m = 16, ± " in capsys.readouterr().out


def test_a_width_below_two_is_refused(tmp_path, capsys):
    case = _write_case(tmp_path)
    assert main(["design", "--case", str(case), "--time", "100", "--width", "1",
                 "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--width" in err[0]
