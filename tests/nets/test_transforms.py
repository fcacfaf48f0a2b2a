"""The fast-transform pass of the 2-layer network against the dense closed form."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call, jvp, vjp

from freqdyn.errors import InputError
from freqdyn.inputs.case import load_case
from freqdyn.nets import transforms as tf
from freqdyn.nets.fourier import FourierFeatureNetwork
from freqdyn.nets.measure import gram_lambda_max
from freqdyn.nets.settings import train_settings
from freqdyn.theory.ntk import empirical_ntk

RNG = np.random.default_rng(0)


def _net(m: int, d: int, train_w: bool = True, dtype=torch.float64):
    w = torch.from_numpy(2.0 * RNG.standard_normal((m, d))).to(dtype)
    a, b = (torch.from_numpy(RNG.standard_normal(m)).to(dtype) for _ in range(2))
    return FourierFeatureNetwork(w, a, b, kappa=1.3, train_w=train_w)


def _layouts(d: int):
    n = {1: 401, 2: 36, 3: 11}[d]
    axis = -3 + (np.arange(n) + 0.5) * 6 / n
    return [tf.GridSamples.of_axis(axis, d), tf.ScatteredSamples(RNG.uniform(-3, 3, (700, d)))]


def _grads(net):
    return [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("train_w", [True, False])
def test_loss_and_gradients_equal_the_dense_closed_form(d, train_w):
    net = _net(257, d, train_w)
    for layout in _layouts(d):
        x = torch.from_numpy(layout.points())
        y = torch.from_numpy(np.cos(layout.points() @ np.arange(1, d + 1)))
        dense_loss = net.loss_and_grad(x, y, 0.7)
        dense = _grads(net)
        fast_loss = tf.loss_and_grad(net, tf.FourierTransforms(layout, tol=1e-13), y, 0.7)
        fast = _grads(net)
        assert float(fast_loss) == pytest.approx(float(dense_loss), rel=1e-10)
        for g_fast, g_dense in zip(fast, dense, strict=True):
            assert float((g_fast - g_dense).norm() / g_dense.norm()) <= 1e-10


@pytest.mark.parametrize("d", [1, 2])
def test_jacobian_products_and_ntk_equal_autograd(d):
    net = _net(120, d)
    layout = _layouts(d)[1]
    tr = tf.FourierTransforms(layout, tol=1e-13)
    x = torch.from_numpy(layout.points())
    params = {k: p.detach() for k, p in net.named_parameters()}
    v = {k: torch.from_numpy(RNG.standard_normal(p.shape)) for k, p in params.items()}
    _, jv = jvp(lambda p: functional_call(net, p, (x,)), (params,), (v,))
    flat_v = torch.cat([v[k].reshape(-1) for k in params]).numpy()
    np.testing.assert_allclose(tf.jacobian(net, tr, flat_v), jv.numpy(), rtol=1e-10,
                               atol=1e-10 * float(jv.abs().max()))
    u = torch.from_numpy(RNG.standard_normal(x.shape[0]))
    _, pull = vjp(lambda p: functional_call(net, p, (x,)), params)
    jtu = torch.cat([t.reshape(-1) for t in pull(u)[0].values()]).numpy()
    np.testing.assert_allclose(tf.jacobian_transpose(net, tr, u.numpy()), jtu, rtol=1e-10,
                               atol=1e-10 * np.abs(jtu).max())
    lam_fast = tf.gram_lambda_max(net, tr, 0.5)
    assert lam_fast == pytest.approx(gram_lambda_max(net, x, 0.5), rel=2e-3)
    probe = RNG.uniform(-2, 2, (9, d))
    np.testing.assert_allclose(tf.empirical_ntk(net, probe, chunk=50),
                               empirical_ntk(net, torch.from_numpy(probe)).numpy(),
                               rtol=1e-12, atol=1e-12)


def test_a_fifty_step_trajectory_equals_the_dense_one(tmp_path):
    """The same case trained by the dense and the transform pass: equal to 1e-9."""
    from freqdyn.nets.train import train

    text = open("pde/gaussian-1d.toml").read().replace("times = [0.0, 0.5, 1.0, 2.0, 5.0]",
                                                       "times = [0.0, 0.12]")
    runs = {}
    for backend in ("dense", "nufft"):
        case = load_case("g", text=text + f'\n[train]\nwidth = 512\nbackend = "{backend}"\n'
                                          "lr_fraction = 0.9\nf0 = \"centered\"\n")
        runs[backend] = train(case, tmp_path / backend, progress=False).dataset
    assert runs["nufft"].attrs["backend"] == "nufft" and runs["dense"].attrs["backend"] == "dense"
    steps = int(runs["dense"]["report_step"].values[-1])
    assert steps >= 50
    for var in ("loss", "u_hat_real", "u_hat_imag", "drift"):
        a, b = runs["nufft"][var].values, runs["dense"][var].values
        assert np.max(np.abs(a - b)) <= 1e-9 * np.max(np.abs(b)), var
    assert np.max(np.abs(runs["nufft"]["u_hat_real"].values[0]
                         + case.target.transform_on_grid(case.xi_axes()).real)) < 1e-12


def test_no_n_by_m_matrix_exists_on_the_transform_path():
    """m = 2^20 units on 8192 samples: an n×m float64 matrix would take 69 GB, more than the
    machine has, yet a full step of the transform pass runs in O(n + m) memory."""
    m, n = 2**20, 8192
    net = _net(m, 1)
    axis = -4 + (np.arange(n) + 0.5) * 8 / n
    layout = tf.GridSamples.of_axis(axis, 1)
    assert n * m * 8 > 24 * 2**30
    loss = tf.loss_and_grad(net, tf.FourierTransforms(layout), torch.zeros(n))
    assert math.isfinite(float(loss)) and net.w.grad.shape == (m, 1)


def test_bad_transform_settings_are_refused():
    case = load_case("pde/gaussian-1d.toml")
    for bad, field in [({"nufft_tol": 0.5}, "train.nufft_tol"),
                       ({"nufft_tol": 1e-9, "dtype": "float32"}, "train.nufft_tol"),
                       ({"backend": "fft"}, "train.backend"),
                       ({"backend": "nufft", "model": "fourier-mlp"}, "train.backend")]:
        with pytest.raises(InputError) as info:
            train_settings(case, bad)
        assert info.value.field == field
    assert train_settings(case).backend == "nufft"
    assert train_settings(case, {"model": "fourier-mlp"}).backend == "dense"
