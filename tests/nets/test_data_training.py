"""Networks on a data case: the same samples, loss and time as the data kernel flow."""

import numpy as np
import pytest

import freqdyn
from freqdyn.nets.train import train
from freqdyn.predict.data_flow import data_kernel_flow

TIMES = [0.0, 10.0, 30.0]


def _case(scale=16.0, width=16384):
    x = np.linspace(0, 1, 257)
    y = np.sin(2 * np.pi * 3 * x) + 0.5 * np.sin(2 * np.pi * 17 * x)
    return freqdyn.data_case(y, holdout={"stride": 2}, sigma_a=0.1, times=TIMES,
                             rho_w={"family": "gaussian", "scale": scale},
                             train={"width": width, "lr_fraction": 0.02, "seed": 1})


def test_trained_network_follows_the_data_kernel_flow(tmp_path):
    """Tolerance 2 %: the Monte-Carlo spread of a kernel of m = 16384 independent units is
    of order m^{-1/2} ≈ 0.8 % per entry, and η at 2 % of the stability bound keeps the
    gradient-descent factor (1 − ηλ)^k within 0.1 % of e^{−λt} at these times.  The
    wrong-model arm (ρ_w of half the scale) must miss by more than twice the tolerance."""
    case = _case()
    measured = train(case, tmp_path / "run", progress=False).dataset
    assert "train_mse" in measured and measured.attrs["twin"] == "not run on data cases"
    right = data_kernel_flow(case)
    wrong = data_kernel_flow(_case(scale=8.0))
    for key in ("train_mse", "test_mse"):
        got = measured[key].values[1:]
        assert np.abs(got / right[key].values[1:] - 1).max() < 0.02, (key, got)
        assert np.abs(got / wrong[key].values[1:] - 1).max() > 0.04
    np.testing.assert_allclose(measured["xi"].values, right["xi"].values)
    assert measured["train_mse"].values[0] == pytest.approx(right["train_mse"].values[0])
    report = freqdyn.compare(right, measured)  # the public compare on a data case
    assert report["rel_l2"][0] < 1e-12 and report["max_rel_l2"] < 0.05
