"""The LFP's ReLU/tanh network: its passes against autograd, its NTK against the
infinite-width kernels, and its runs through the one training loop."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case
from freqdyn.nets.lfp_net import LFPNetwork
from freqdyn.nets.settings import train_settings
from freqdyn.nets.train import train
from freqdyn.results import u_hat
from freqdyn.theory.lfp import lfp_params
from freqdyn.theory.ntk import relu_ntk, tanh_ntk

CASE = """
name = "lfp-net"
[network]
dim = {dim}
sigma_a = 1.0
[network.rho_w]
family = "gaussian"
scale = 1.0
[target]
g = "{g}"
[frequency]
bounds = {bounds}
times = [0.0, 10.0, 20.0]
points = {points}
[lfp]
sigma_b = 5.0
[train]
{train}
"""
TRAIN = {"width": 256, "f0": '"centered"', "lr_fraction": 0.9, "momentum": 0.9}
G1 = "exp(-x**2/2)*cos(2*pi*0.5*x)"
G2 = "exp(-(x0**2 + x1**2)/2)*cos(2*pi*0.5*x0)"


def make_case(model="lfp-relu", dim=1, **extra):
    table = dict(TRAIN, model=f'"{model}"', **extra)
    text = CASE.format(dim=dim, g=G1 if dim == 1 else G2,
                       train="\n".join(f"{k} = {v}" for k, v in table.items()),
                       bounds="[-2.0, 2.0]" if dim == 1 else "[[-2.0, 2.0], [-2.0, 2.0]]",
                       points=81 if dim == 1 else 21)
    return load_case("lfp-net", text=text)


def draw(m, d, seed=0, sigma_b=5.0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(m, d, generator=gen, dtype=torch.float64)
    b = sigma_b * torch.randn(m, generator=gen, dtype=torch.float64)
    a = torch.randn(m, generator=gen, dtype=torch.float64)
    return w, b, a


@pytest.mark.parametrize(("activation", "backend", "d"), [
    ("relu", "sorted", 1), ("relu", "dense", 1), ("tanh", "dense", 1), ("relu", "dense", 2),
    ("tanh", "dense", 2)])
def test_loss_and_gradient_equal_autograd(activation, backend, d):
    w, b, a = draw(700, d)
    gen = torch.Generator().manual_seed(5)
    x = 6 * torch.rand(333, d, generator=gen, dtype=torch.float64) - 3
    y = torch.cos(x.sum(1))
    net = LFPNetwork(w, b, a, activation, kappa=1.3, backend=backend)
    ref = LFPNetwork(w, b, a, activation, kappa=1.3)
    loss_ref = 0.7 * 0.5 * ((ref(x) - y) ** 2).mean()
    loss_ref.backward()
    loss, loss_ref = float(net.loss_and_grad(x, y, 0.7)), float(loss_ref.detach())
    assert abs(loss - loss_ref) <= 1e-12 * loss_ref
    for name in ("w", "b", "a"):
        got, want = getattr(net, name).grad, getattr(ref, name).grad
        assert float((got - want).norm() / want.norm()) <= 1e-10, name


def test_sorted_pass_handles_ties_and_flat_units():
    """Units with w = 0 (active everywhere iff b > 0), and samples in any order."""
    w, b, a = draw(300, 1)
    w[:5] = 0.0
    b[:3], b[3:5] = 1.0, -1.0
    x = torch.randperm(200, generator=torch.Generator().manual_seed(1)).double()[:, None] / 40 - 2
    y = torch.sin(x[:, 0])
    got = LFPNetwork(w, b, a, "relu", backend="sorted")
    want = LFPNetwork(w, b, a, "relu", backend="dense")
    assert torch.allclose(got.evaluate(x), want.evaluate(x), rtol=1e-12, atol=1e-12)
    got.loss_and_grad(x, y)
    want.loss_and_grad(x, y)
    for name in ("w", "b", "a"):
        assert torch.allclose(getattr(got, name).grad, getattr(want, name).grad, rtol=1e-10,
                              atol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_products_are_adjoint_and_give_the_gram(activation):
    w, b, a = draw(400, 1)
    net = LFPNetwork(w, b, a, activation, backend="sorted" if activation == "relu" else "dense")
    x = torch.linspace(-3, 3, 60, dtype=torch.float64)[:, None]
    gen = torch.Generator().manual_seed(2)
    u = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in (w, b, a)]
    v = torch.randn(60, generator=gen, dtype=torch.float64)
    left = float(net.jvp(x, *u) @ v)
    right = sum(float((g * uu).sum()) for g, uu in zip(net.vjp(x, v), u, strict=True))
    assert left == pytest.approx(right, rel=1e-12)
    gram = net.empirical_ntk(x.numpy()) / 60
    assert net.gram_lambda_max(x, tol=1e-10) == pytest.approx(np.linalg.eigvalsh(gram).max(),
                                                             rel=1e-8)


def _unit_kernels(net, x):
    """Per-unit NTK contributions k_j(x, x') (m, n, n): Θ̂ is their mean (κ = 1)."""
    w, b, a = (p.detach() for p in (net.w, net.b, net.a))
    z = x @ w.T + b
    s = torch.relu(z) if net.activation == "relu" else torch.tanh(z)
    ds = ((z > 0).double() if net.activation == "relu" else 1 - torch.tanh(z) ** 2) * a
    poly = 1 + x @ x.T
    return (s.T[:, :, None] * s.T[:, None, :] + ds.T[:, :, None] * ds.T[:, None, :] * poly)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_empirical_ntk_is_the_infinite_width_kernel_within_monte_carlo(activation):
    """Θ̂ = mean of m i.i.d. unit kernels: within 4 standard errors of the closed form
    (ReLU: arc-cosine; tanh: quadrature), and its error falls with the width."""
    case = make_case(f"lfp-{activation}")
    params = lfp_params(case, activation)
    kernel = relu_ntk if activation == "relu" else tanh_ntk
    x = torch.linspace(-2.5, 2.5, 9, dtype=torch.float64)[:, None]
    exact = kernel(x.numpy(), x.numpy(), params)
    errors = {}
    for m in (1000, 16000):
        errs = []
        for seed in range(3):
            w, b, a = draw(m, 1, seed=seed, sigma_b=params.sigma_b)
            net = LFPNetwork(w, b, a, activation)
            emp = net.empirical_ntk(x.numpy())
            units = _unit_kernels(net, x)
            assert np.allclose(units.mean(0).numpy(), emp, rtol=1e-10, atol=1e-12)
            stderr = units.std(0).numpy() / np.sqrt(m)
            assert np.all(np.abs(emp - exact) <= 4 * stderr + 1e-12)
            errs.append(np.linalg.norm(emp - exact) / np.linalg.norm(exact))
        errors[m] = np.mean(errs)
    assert errors[16000] < 0.5 * errors[1000]  # m^{-1/2}: a factor 4 expected


def test_tanh_quadrature_converges():
    params = replace(lfp_params(make_case("lfp-tanh"), "tanh"), sigma_b=3.0, weight_scale=1.3,
                     outer_std=0.7)
    x = np.array([[-5.0], [-0.5], [0.0], [0.7], [6.0]])
    coarse, fine = tanh_ntk(x, x, params), tanh_ntk(x, x, params, digits=40.0)
    assert np.abs(coarse - fine).max() <= 1e-6 * np.abs(fine).max()
    with pytest.raises(ValueError, match="d = 1"):
        tanh_ntk(np.zeros((2, 2)), np.zeros((2, 2)), params)


def test_sorted_and_dense_trajectories_agree(tmp_path):
    case = make_case(steps=50, optimizer='"gd"', momentum=0.0)
    runs = {}
    for backend in ("sorted", "dense"):
        res = train(case, tmp_path / backend, overrides={"backend": backend, "steps": 50},
                    progress=False)
        runs[backend] = res.dataset
        assert res.dataset.attrs["backend"] == backend
    a, b = (u_hat(runs[k]).values for k in ("sorted", "dense"))
    assert np.abs(a - b).max() <= 1e-9 * np.abs(b).max()


@pytest.mark.parametrize("f0", ["centered", "zero"])
def test_training_starts_at_minus_g_and_learns(tmp_path, f0):
    case = make_case(f0=f'"{f0}"')
    res = train(case, tmp_path / f0, progress=False)
    ds = res.dataset
    u = u_hat(ds).values
    g_hat = case.target.transform_on_grid(case.xi_axes())
    # the measurement is the Riemann sum over [-R, R] of the LFP data grid (h = 1/32)
    assert np.abs(u[0] + g_hat).max() <= 1e-6 * np.abs(g_hat).max()
    assert np.linalg.norm(u[-1]) < 0.9 * np.linalg.norm(u[0])
    ntk = json.loads(ds.attrs["ntk_start"])
    assert ntk["max_abs_deviation"] < ntk["max_abs_analytic"]  # the closed-form NTK is there


def test_resume_is_bit_for_bit(tmp_path):
    case = make_case()
    whole = train(case, tmp_path / "whole", progress=False).dataset
    assert train(case, tmp_path / "parts", stop_after=37, progress=False) is None
    parts = train(case, tmp_path / "parts", progress=False)
    assert parts.resumed_from == 37
    assert np.array_equal(u_hat(whole).values, u_hat(parts.dataset).values)


@pytest.mark.parametrize(("extra", "field"), [
    ({"backend": '"nufft"'}, "train.backend"),
    ({"backend": '"sorted"', "model": '"lfp-tanh"'}, "train.backend"),
    ({"train_w": "false"}, "train.train_w"),
    ({"twin": "true"}, "train.twin"),
    ({"width": 255, "f0": '"zero"'}, "train.width"),
])
def test_bad_lfp_training_settings_are_refused(extra, field):
    model = extra.pop("model", '"lfp-relu"').strip('"')
    case = make_case(model, **extra)
    with pytest.raises(InputError) as info:
        train_settings(case)
    assert info.value.field == field


def test_sorted_is_refused_in_two_dimensions():
    case = make_case(dim=2, backend='"sorted"')
    with pytest.raises(InputError, match="d = 1"):
        train_settings(case)


def test_bad_lfp_table_is_refused_before_training():
    case = load_case("x", text=make_case().text.replace("sigma_b = 5.0", "sigma_b = 0.2"))
    with pytest.raises(InputError) as info:
        train_settings(case)
    assert info.value.field == "lfp.sigma_b"
