"""The RKC2 flow integrator against exact flows (freqdyn.nets.rkc)."""

import numpy as np
import pytest
import scipy.linalg
import torch

from freqdyn.nets.rkc import ChebyshevFlow, rkc_coefficients, stages_for


def test_the_stability_boundary_grows_like_two_thirds_s_squared():
    """β(s) of damped RKC2 (ε = 2/13) is ≈ (2/3)(s² − 1)(1 − 2ε/15): 0.653 s² for large s."""
    for s in (2, 5, 20, 100):
        beta = rkc_coefficients(s)["beta"]
        assert beta == pytest.approx(2 / 3 * (s**2 - 1) * (1 - 2 * (2 / 13) / 15), rel=0.02)
    assert stages_for(1e4) == min(s for s in range(2, 300) if rkc_coefficients(s)["beta"] >= 1e4)


def _linear_flow(rtol, macro_steps=4, t_end=2.0):
    """dθ/dτ = −(Aθ − b) with eigenvalues 10^-1 … 10^5: exact θ(τ) = θ* + e^{−Aτ}(θ₀ − θ*)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    lam = np.logspace(-1, 5, 40)
    a = (q * lam) @ q.T
    b = rng.standard_normal(40)
    theta = torch.nn.Parameter(torch.zeros(40, dtype=torch.float64))
    at, bt = torch.from_numpy(a), torch.from_numpy(b)

    def closure():
        theta.grad = None
        loss = 0.5 * theta @ (at @ theta) - bt @ theta
        loss.backward()
        return loss

    opt = ChebyshevFlow([theta], macro_step=t_end / macro_steps, radius=lam.max(), rtol=rtol)
    for _ in range(macro_steps):
        opt.step(closure)
    star = np.linalg.solve(a, b)
    exact = star + scipy.linalg.expm(-a * t_end) @ (0.0 - star)
    err = np.linalg.norm(theta.detach().numpy() - exact) / np.linalg.norm(exact)
    return err, opt.counters["evaluations"], lam.max() * t_end / 2


def test_rkc_follows_the_exact_linear_flow_to_its_tolerance_with_few_gradients():
    """The error falls with the tolerance, stays within about its tolerance, and costs far
    fewer gradients than GD at its stability bound (λ_max τ/2 = 10^5 steps here)."""
    errors, counts = [], []
    for rtol in (1e-3, 1e-5, 1e-7):
        err, evaluations, gd_steps = _linear_flow(rtol)
        errors.append(err)
        counts.append(evaluations)
        assert err < 30 * rtol, (rtol, err)
    assert errors[0] > errors[1] > errors[2], errors
    assert counts[1] < gd_steps / 10, (counts, gd_steps)


def test_a_resumed_rkc_state_continues_bit_for_bit():
    """The optimizer's state (its next step size and counters) survives state_dict."""
    def run(split):
        theta = torch.nn.Parameter(torch.ones(5, dtype=torch.float64))
        scale = torch.arange(1.0, 6.0, dtype=torch.float64) ** 3

        def closure():
            theta.grad = None
            loss = 0.5 * (scale * theta**2).sum()
            loss.backward()
            return loss

        opt = ChebyshevFlow([theta], macro_step=0.1, radius=125.0, rtol=1e-6)
        for k in range(4):
            if split and k == 2:
                state = opt.state_dict()
                opt = ChebyshevFlow([theta], macro_step=0.1, radius=125.0, rtol=1e-6)
                opt.load_state_dict(state)
            opt.step(closure)
        return theta.detach().clone(), opt.counters["evaluations"]

    (a, na), (b, nb) = run(False), run(True)
    assert torch.equal(a, b) and na == nb


def _trained(tmp_path, name, **overrides):
    from dataclasses import replace

    from freqdyn.inputs.case import load_case
    from freqdyn.nets.train import train
    from freqdyn.results import u_hat

    case = replace(load_case("pde/gaussian-1d.toml"), times=np.array([0.0, 0.25, 0.5]))
    ds = train(case, tmp_path / name, progress=False,
               overrides={"width": 1024, "f0": "centered", "twin": False, **overrides}).dataset
    return u_hat(ds).values, int(ds.attrs["gradient_evaluations"])


@pytest.mark.slow
def test_rkc_trains_a_network_along_the_flow_that_small_step_gd_approaches(tmp_path):
    """The same network by GD (first order in η: its Richardson extrapolation from η and
    η/2 is the flow to O(η²)) and by RKC at two tolerances: RKC's distance to the flow falls
    with the tolerance, and is below GD's at 0.9 of its bound.  (In 1D λ_max t is small:
    the gradient counts are compared in benchmarks/bench_rkc.py, in 2D.)"""
    from freqdyn.inputs.fourier import relative_l2

    coarse, _ = _trained(tmp_path, "gd-0.1", lr_fraction=0.1)
    fine, _ = _trained(tmp_path, "gd-0.05", lr_fraction=0.05)
    flow = 2 * fine - coarse
    gd, _ = _trained(tmp_path, "gd-0.9", lr_fraction=0.9)
    gaps = {}
    for rtol in (1e-3, 1e-5):
        u, evaluations = _trained(tmp_path, f"rkc-{rtol}", integrator="rkc", rtol=rtol)
        gaps[rtol] = float(np.max(relative_l2(u, flow, axes=(1,))[1:]))
    gd_gap = float(np.max(relative_l2(gd, flow, axes=(1,))[1:]))
    assert gaps[1e-5] < gaps[1e-3] < gd_gap, (gaps, gd_gap)
    assert gaps[1e-3] < 5e-4, gaps


def test_an_interrupted_rkc_run_resumes_bit_for_bit(tmp_path):
    """Stopped after 3 of its macro steps and resumed from the checkpoint: the same
    network, the same gradient count, as the uninterrupted run."""
    from dataclasses import replace

    from freqdyn.inputs.case import load_case
    from freqdyn.nets.train import train
    from freqdyn.results import u_hat

    case = replace(load_case("pde/gaussian-1d.toml"), times=np.array([0.0, 0.5]))
    overrides = {"width": 256, "f0": "centered", "integrator": "rkc", "checkpoint_every": 1}
    whole = train(case, tmp_path / "whole", overrides=overrides, progress=False).dataset
    assert train(case, tmp_path / "split", overrides=overrides, progress=False,
                 stop_after=3) is None
    split = train(case, tmp_path / "split", overrides=overrides, progress=False).dataset
    assert np.array_equal(u_hat(whole).values, u_hat(split).values)
    assert whole.attrs["gradient_evaluations"] == split.attrs["gradient_evaluations"]


@pytest.mark.parametrize(("extra", "field"), [
    ({"optimizer": "sgd"}, "train.integrator"), ({"momentum": 0.5}, "train.integrator"),
    ({"twin": True}, "train.twin"), ({"rtol": 0.5}, "train.rtol")])
def test_rkc_settings_are_checked_before_training(extra, field):
    from freqdyn.errors import InputError
    from freqdyn.inputs.case import load_case
    from freqdyn.nets.settings import train_settings

    with pytest.raises(InputError) as info:
        train_settings(load_case("pde/gaussian-1d.toml"), {"integrator": "rkc", **extra})
    assert info.value.field == field
