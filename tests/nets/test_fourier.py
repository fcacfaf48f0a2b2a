"""Fourier-feature networks: closed-form gradients, doubling, frozen w, NTK at init."""

import math

import numpy as np
import pytest
import torch

from freqdyn.inputs.case import load_case
from freqdyn.nets.fourier import FourierFeatureNetwork, default_block_rows
from freqdyn.nets.measure import analytic_kernel, empirical_kernel, ntk_comparison, probe_points
from freqdyn.nets.mlp import FourierFeatureMLP, autograd_loss_and_grad

CASES = {name: load_case(f"pde/{name}.toml") for name in ("gaussian-1d", "uniform-1d",
                                                            "gaussian-2d")}


def _data(case, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = 4 * torch.rand(n, case.dim, generator=gen, dtype=torch.float64) - 2
    return x, torch.from_numpy(case.target(x.numpy()))


@pytest.mark.parametrize("name", ["gaussian-1d", "gaussian-2d"])
@pytest.mark.parametrize("train_w", [True, False])
def test_closed_form_gradient_matches_autograd(name, train_w):
    case = CASES[name]
    net = FourierFeatureNetwork.from_case(case, 96, torch.Generator().manual_seed(1),
                                          train_w=train_w)
    x, y = _data(case, 157)
    loss = net.loss_and_grad(x, y, loss_scale=0.7, block_rows=23)  # ragged last block
    closed = {k: p.grad.clone() for k, p in net.named_parameters()}
    ref = autograd_loss_and_grad(net, x, y, 0.7, block_rows=1000)
    assert float(loss) == pytest.approx(float(ref), rel=1e-13)
    assert set(closed) == ({"w", "a", "b"} if train_w else {"a", "b"})
    for k, p in net.named_parameters():
        scale = p.grad.abs().max()
        assert float((closed[k] - p.grad).abs().max()) <= 1e-12 * float(scale), k


def test_compiled_closed_form_matches_eager():
    case = CASES["gaussian-2d"]
    net = FourierFeatureNetwork.from_case(case, 48, torch.Generator().manual_seed(1))
    x, y = _data(case, 60)
    loss = net.loss_and_grad(x, y, 0.7, block_rows=30)
    eager = [p.grad.clone() for p in net.parameters()]
    assert float(net.loss_and_grad(x, y, 0.7, block_rows=30, compiled=True)) == \
        pytest.approx(float(loss), rel=1e-13)
    for g, p in zip(eager, net.parameters(), strict=True):
        assert torch.allclose(p.grad, g, rtol=1e-12, atol=1e-14 * float(g.abs().max()))


def test_closed_form_loss_definition():
    """L = (α/2N) Σ (f − y)², with f from the plain forward pass."""
    case = CASES["gaussian-1d"]
    net = FourierFeatureNetwork.from_case(case, 64, torch.Generator().manual_seed(2))
    x, y = _data(case, 50)
    with torch.no_grad():
        expected = 1.3 * 0.5 * torch.mean((net(x) - y) ** 2)
    assert float(net.loss_and_grad(x, y, 1.3)) == pytest.approx(float(expected), rel=1e-13)
    assert torch.allclose(net.evaluate(x, block_rows=7), net(x).detach(), rtol=0, atol=1e-13)


def test_doubling_gives_zero_output_and_frozen_w_is_a_buffer():
    case = CASES["gaussian-1d"]
    x, _ = _data(case, 40)
    net = FourierFeatureNetwork.from_case(case, 64, torch.Generator().manual_seed(3), f0="zero")
    assert float(net.evaluate(x).abs().max()) <= 1e-14  # pairs cancel up to rounding
    frozen = FourierFeatureNetwork.from_case(case, 64, torch.Generator().manual_seed(3),
                                             f0="zero", train_w=False)
    assert [k for k, _ in frozen.named_parameters()] == ["a", "b"]
    assert "w" in frozen.state_dict()
    assert torch.equal(frozen.w, net.w.detach())
    with pytest.raises(ValueError, match="even width"):
        FourierFeatureNetwork.from_case(case, 63, torch.Generator(), f0="zero")


def test_from_case_reproducible_from_generator():
    case = CASES["uniform-1d"]
    one = FourierFeatureNetwork.from_case(case, 32, torch.Generator().manual_seed(5))
    two = FourierFeatureNetwork.from_case(case, 32, torch.Generator().manual_seed(5))
    other = FourierFeatureNetwork.from_case(case, 32, torch.Generator().manual_seed(6))
    assert all(torch.equal(p, q) for p, q in zip(one.parameters(), two.parameters(),
                                                   strict=True))
    assert not torch.equal(one.w, other.w)
    assert float(one.w.detach().abs().max()) <= 3.0  # uniform on [-3, 3]


@pytest.mark.parametrize("name,f0", [("gaussian-1d", "random"), ("uniform-1d", "random"),
                                     ("gaussian-1d", "zero"), ("uniform-1d", "zero")])
def test_empirical_ntk_at_init_within_monte_carlo_bound(name, f0):
    """|Θ̂ − Θ| ≤ 4 max|Θ|/√m (m independent draws: m/2 for a doubled network).

    The bound is ≈ 2.8 standard deviations of the largest-variance entry (see
    ntk_comparison); over seeds 0-4 the observed maxima were 0.46-1.14 of the bound
    computed with the full width, i.e. ≤ 0.8 with m/2 for doubled networks.
    """
    case = CASES[name]
    m = 4096
    net = FourierFeatureNetwork.from_case(case, m, torch.Generator().manual_seed(0), f0=f0)
    probe = probe_points(case, 3.0, 21)
    independent = m // 2 if f0 == "zero" else m
    cmp = ntk_comparison(empirical_kernel(net, probe), analytic_kernel(case, probe, True),
                         independent)
    assert cmp["max_abs_deviation"] <= cmp["bound_4max_over_sqrt_m"]
    assert cmp["bound_4max_over_sqrt_m"] == pytest.approx(
        4 * cmp["max_abs_analytic"] / math.sqrt(independent))


def test_empirical_ntk_deviation_falls_like_inverse_sqrt_width():
    case = CASES["gaussian-1d"]
    probe = probe_points(case, 2.0, 11)
    analytic = analytic_kernel(case, probe, True)

    def deviations(m):
        return np.array([np.linalg.norm(empirical_kernel(
            FourierFeatureNetwork.from_case(case, m, torch.Generator().manual_seed(seed)),
            probe) - analytic) for seed in range(6)])

    small, large = deviations(256), deviations(4096)
    ratio = small.mean() / large.mean()
    # standard error of the ratio of two means over 6 seeds (first order)
    se = ratio * np.hypot(small.std(ddof=1) / small.mean(), large.std(ddof=1) / large.mean()) \
        / np.sqrt(6)
    low, high = ratio - 3 * se, ratio + 3 * se
    assert low <= 4.0 <= high, (ratio, se)            # √16 = 4: the rate m^(−1/2)
    assert high < 16 ** (2 / 3) and low > 16 ** (1 / 3), (ratio, se)  # not m^(∓1/3 ± …)


def test_frozen_w_ntk_is_the_stationary_kernel():
    case = CASES["gaussian-1d"]
    net = FourierFeatureNetwork.from_case(case, 8192, torch.Generator().manual_seed(0),
                                          train_w=False)
    probe = probe_points(case, 2.0, 9)
    emp = empirical_kernel(net, probe)
    stationary = analytic_kernel(case, probe, train_w=False)
    assert np.abs(emp - stationary).max() <= 4 / math.sqrt(8192)
    # the full kernel would differ by the x·x' term, far beyond that
    assert np.abs(analytic_kernel(case, probe, True) - stationary).max() > 10


def test_mlp_parametrisations_agree_at_init_and_doubling():
    case = CASES["gaussian-2d"]
    x, y = _data(case, 30)
    kw = {"depth": 2, "hidden": 16, "activation": "tanh"}
    ntk = FourierFeatureMLP.from_case(case, 32, torch.Generator().manual_seed(4), **kw)
    std = FourierFeatureMLP.from_case(case, 32, torch.Generator().manual_seed(4),
                                      parametrization="standard", **kw)
    assert torch.allclose(ntk(x), std(x), atol=1e-12)
    # ... but the gradients scale differently (by the fan-in factors)
    ntk.loss_and_grad(x, y)
    std.loss_and_grad(x, y)
    g_ntk = ntk.cores[0].weights[0].grad
    g_std = std.cores[0].weights[0].grad
    assert torch.allclose(g_std, g_ntk * math.sqrt(16) / (5 / 3), rtol=1e-10)
    zero = FourierFeatureMLP.from_case(case, 32, torch.Generator().manual_seed(4), f0="zero",
                                       **kw)
    assert float(zero.evaluate(x).abs().max()) <= 1e-14
    assert len(list(zero.parameters())) == 2 * len(list(ntk.parameters()))


@pytest.mark.parametrize("activation", ["relu", "gelu", "sin", "softplus"])
def test_mlp_loss_and_grad_blocks_match_one_pass(activation):
    case = CASES["gaussian-1d"]
    x, y = _data(case, 41)
    net = FourierFeatureMLP.from_case(case, 16, torch.Generator().manual_seed(7), depth=1,
                                      hidden=8, activation=activation, train_w=False)
    assert "cores.0.w" not in dict(net.named_parameters())
    loss = net.loss_and_grad(x, y, 2.0, block_rows=9)
    grads = [p.grad.clone() for p in net.parameters()]
    ref = net.loss_and_grad(x, y, 2.0, block_rows=100)
    assert float(loss) == pytest.approx(float(ref), rel=1e-13)
    for g, p in zip(grads, net.parameters(), strict=True):
        assert torch.allclose(g, p.grad, rtol=1e-11, atol=1e-15)
    with pytest.raises(ValueError, match="activation"):
        FourierFeatureMLP.from_case(case, 16, torch.Generator(), activation="swish")


def test_default_block_rows():
    assert default_block_rows(1 << 10, "cpu") * (1 << 10) == 1 << 20
    assert default_block_rows(1 << 30, "cpu") == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_closed_form_gradient_on_gpu_matches_cpu():
    case = CASES["gaussian-2d"]
    net = FourierFeatureNetwork.from_case(case, 4096, torch.Generator().manual_seed(0))
    x, y = _data(case, 3000)
    loss = net.loss_and_grad(x, y)
    grads = [p.grad.clone() for p in net.parameters()]
    gpu = net.to("cuda")
    for compiled in (False, True):
        loss_gpu = gpu.loss_and_grad(x.cuda(), y.cuda(), compiled=compiled)
        assert float(loss_gpu) == pytest.approx(float(loss), rel=1e-10)
        for g, p in zip(grads, gpu.parameters(), strict=True):
            assert torch.allclose(p.grad.cpu(), g, rtol=1e-9,
                                  atol=1e-12 * float(g.abs().max()))
