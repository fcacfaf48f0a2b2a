"""Measurements: error transform, direct sums, drift, NTK Gram curvature."""

import numpy as np
import pytest
import torch

from freqdyn.inputs.case import load_case
from freqdyn.inputs.fourier import nudft, relative_l2, riemann_transform, tensor_grid
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.nets.measure import (
    error_transform,
    gram_lambda_max,
    measurement_axis,
    parameter_drift,
)
from freqdyn.nets.mlp import FourierFeatureMLP
from freqdyn.theory.ntk import empirical_ntk

GAUSS = load_case("pde/gaussian-1d.toml")
GAUSS2 = load_case("pde/gaussian-2d.toml")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", [GAUSS, GAUSS2], ids=["1d", "2d"])
def test_zero_network_measures_minus_target_transform(case, dtype):
    """f₀ = 0 by doubling: the measured û(·, 0) is −ĝ to 1e-6 (bar), float32 weights too."""
    net = FourierFeatureNetwork.from_case(case, 512, torch.Generator().manual_seed(0),
                                          f0="zero", dtype=dtype)
    axis = measurement_axis(case, 9.0, net)
    u_hat = error_transform(net, case, axis)
    err = relative_l2(u_hat, case.initial_error())
    assert err <= 1e-6


def test_measurement_axis_resolves_network_frequencies():
    net = FourierFeatureNetwork.from_case(GAUSS, 256, torch.Generator().manual_seed(0))
    axis = measurement_axis(GAUSS, 10.0, net)
    h = axis[1] - axis[0]
    w_reach = float(net.w.detach().abs().max())
    assert axis[0] == -10.0 and axis[-1] == 10.0 and axis.size % 2 == 1
    assert 1 / h >= 2 * (6.0 + max(6.0, w_reach)) * 0.99
    assert measurement_axis(GAUSS, 10.0, points=101).size == 101


def test_error_transform_of_random_network_matches_its_sinusoids():
    """û of f·1_box for f = Σ a cos + b sin has a closed form: each unit is a sinc pair."""
    w = torch.tensor([[0.7], [-1.3], [2.1]], dtype=torch.float64)
    a = torch.tensor([0.5, -0.2, 0.3], dtype=torch.float64)
    b = torch.tensor([0.1, 0.4, -0.6], dtype=torch.float64)
    net = FourierFeatureNetwork(w, a, b, kappa=1.0)
    R = 6.0
    axis = measurement_axis(GAUSS, R, net, points=4001)
    got = error_transform(net, GAUSS, axis, target_values=np.zeros(axis.size))
    xi = GAUSS.xi_axes()[0]
    c = 1 / np.sqrt(3)

    def box(nu):  # ∫_{-R}^{R} e^{2πi ν x} e^{-2πi ξ x} dx
        return 2 * R * np.sinc(2 * R * (xi - nu))

    expected = sum(c * (ak * 0.5 * (box(wk) + box(-wk)) + bk * (box(wk) - box(-wk)) / 2j)
                   for wk, ak, bk in zip(w[:, 0].numpy(), a.numpy(), b.numpy(), strict=True))
    # endpoint weights of the Riemann sum: O(h) times the boundary values
    assert np.abs(got - expected).max() <= 5e-3 * np.abs(expected).max()


def test_nudft_equals_riemann_sum_on_grid_points():
    axes = [np.linspace(-3, 3, 41), np.linspace(-2, 2, 31)]
    pts = tensor_grid(axes).reshape(-1, 2)
    vals = np.exp(-np.sum(pts**2, -1)) * np.cos(3 * pts[:, 0] - pts[:, 1])
    xi_axes = [np.linspace(-2, 2, 9), np.linspace(-1, 1, 5)]
    ref = riemann_transform(vals.reshape(41, 31), axes, xi_axes)
    h = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
    got = nudft(vals, pts, h, tensor_grid(xi_axes).reshape(-1, 2), chunk=7)
    assert np.allclose(got.reshape(9, 5), ref, rtol=0, atol=1e-12)


def test_nudft_random_samples_converge_to_transform():
    rng = np.random.default_rng(0)
    R, n = 8.0, 200_000
    x = rng.uniform(-R, R, n)
    xi = GAUSS.xi_axes()[0][::20]
    got = nudft(GAUSS.target(x), x, 2 * R / n, xi)
    exact = GAUSS.target.transform(xi)
    # Monte-Carlo: E|error(ξ)|² ≤ (2R/n) ∫|g|² dx at each ξ; allow 3× the RMS
    rms = np.sqrt(xi.size * 2 * R / n * GAUSS.target.l2_norm_squared())
    assert np.linalg.norm(got - exact) < 3 * rms
    assert 3 * rms < 0.2 * np.linalg.norm(exact)  # the check has teeth


def test_parameter_drift():
    net = FourierFeatureNetwork.from_case(GAUSS, 16, torch.Generator().manual_seed(0))
    initial = {k: v.detach().clone().double() for k, v in net.named_parameters()}
    assert parameter_drift(net, initial) == (0.0, 0.0)
    with torch.no_grad():
        net.w.mul_(1.1)
    drift, drift_w = parameter_drift(net, initial)
    assert drift_w == pytest.approx(0.1, rel=1e-12)
    total = torch.cat([v.reshape(-1) for v in initial.values()]).norm()
    assert drift == pytest.approx(0.1 * float(initial["w"].norm() / total), rel=1e-12)


@pytest.mark.parametrize("kind", ["fourier", "frozen", "mlp"])
def test_gram_lambda_max_matches_dense_eigenvalue(kind):
    gen = torch.Generator().manual_seed(1)
    if kind == "mlp":
        net = FourierFeatureMLP.from_case(GAUSS, 32, gen, depth=1, hidden=16)
    else:
        net = FourierFeatureNetwork.from_case(GAUSS, 128, gen, train_w=kind == "fourier")
    x = torch.linspace(-6, 6, 90, dtype=torch.float64)[:, None]
    dense = empirical_ntk(net, x).numpy() * 0.8 / x.shape[0]
    expected = np.linalg.eigvalsh(dense).max()
    got = gram_lambda_max(net, x, loss_scale=0.8, block_rows=17, tol=1e-10)
    assert got == pytest.approx(expected, rel=1e-8)
