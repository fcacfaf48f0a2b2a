"""The continuum error PDE beside the sampled kernel flow of a data case
(freqdyn.predict.data_pde)."""

import numpy as np
import pytest

from freqdyn.inputs.case import data_case
from freqdyn.inputs.fourier import relative_l2
from freqdyn.predict.registry import predict
from freqdyn.results import u_hat
from freqdyn.theory.derive import derive

X = np.linspace(-4.0, 4.0, 801)  # spacing 0.01: the data's Nyquist frequency is 50
BUMP = np.exp(-X**2) * np.cos(2 * np.pi * 1.5 * X)  # decays well inside the box
TIMES = [0.0, 0.5, 2.0, 8.0, 32.0]


def _flow(holdout, scale):
    case = data_case(BUMP, extent=[[-4.0, 4.0]], holdout=holdout, sigma_a=0.3,
                     rho_w={"family": "gaussian", "scale": scale}, times=TIMES)
    return case, predict(case, "kernel-flow")


@pytest.mark.parametrize("holdout", [None, {"stride": 2}])
def test_the_pde_is_the_sampled_flow_where_sampling_resolves_rho_w(holdout):
    """ρ_w's reach (≈ 3 × 2 = 6) far below the training Nyquist frequency (50 or 25), a
    signal that vanishes at the box edges: the PDE matches the flow within its own
    discretisation estimate at every time; the damping-only model (no diffusion) misses
    by over 100 times that."""
    case, ds = _flow(holdout, 2.0)
    diff, disc = ds["pde_difference"].values[1:], ds["pde_discretisation_error"].values[1:]
    assert np.all(diff <= disc), (diff, disc)
    assert np.all(disc < 2e-3), disc
    u = u_hat(ds).values
    damping = derive(case).numeric("damping")(case.target.dft_axes()[0][:, None])
    damping_only = u[0] * np.exp(-np.outer(case.times, damping))
    assert np.all(relative_l2(damping_only, u, axes=1)[1:] > 100 * disc), disc


def test_the_pde_misses_where_the_training_grid_aliases_rho_w():
    """Stride 4 (training Nyquist 12.5) under ρ_w of reach ≈ 30: the frequencies above
    12.5 alias, and the PDE is off by far more than its discretisation estimate at late
    times, over all frequencies and in the resolved band alike."""
    _, ds = _flow({"stride": 4}, 10.0)
    assert float(ds.attrs["training_nyquist"]) == pytest.approx(12.5)
    disc = ds["pde_discretisation_error"].values
    assert ds["pde_difference"].values[-1] > 0.2 > 20 * disc[-1]
    assert ds["pde_difference_resolved"].values[-1] > 0.2


def test_in_two_dimensions_the_pde_is_said_not_computed():
    y = np.outer(np.hanning(32), np.hanning(32))
    case = data_case(y, extent=[[0.0, 1.0], [0.0, 1.0]], sigma_a=0.3, times=[0.0, 1.0],
                     rho_w={"family": "gaussian", "scale": 3.0})
    ds = predict(case, "kernel-flow")
    assert "pde_difference" not in ds
    assert ds.attrs["continuum_pde"].startswith("not computed in d > 1")
