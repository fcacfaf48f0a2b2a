"""One interface, every network: the trainer's pass (freqdyn.nets.passes.NetworkPass) of
each model checked against autodiff, the way neural-tangents checks its empirical-NTK
implementations against each other.

For the 2-layer Fourier-feature network (transform and dense passes), the multi-layer
Fourier-feature MLP and the LFP ReLU/tanh networks (dense, and sorted prefix sums for ReLU
in 1D): the loss L = (α/2N)Σ(f − y)² and its gradient against torch.autograd of the
model's own forward pass, f at the samples against the forward pass, the empirical NTK
against the vmap/jacrev Jacobian product (freqdyn.theory.ntk.empirical_ntk), and λ_max of
the Gram (α/N)JJᵀ against a dense eigensolve of that Jacobian.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from freqdyn.inputs.case import load_case
from freqdyn.nets.passes import Network, NetworkPass
from freqdyn.nets.settings import train_settings
from freqdyn.nets.setup import build_model, training_samples
from freqdyn.nets.transforms import ScatteredSamples
from freqdyn.theory.ntk import empirical_ntk

PDE = Path(__file__).resolve().parents[2] / "pde"
VARIANTS = [
    ("gaussian-1d", {"model": "fourier", "backend": "nufft"}),
    ("gaussian-1d", {"model": "fourier", "backend": "dense"}),
    ("gaussian-2d", {"model": "fourier", "backend": "nufft"}),
    ("gaussian-1d", {"model": "fourier-mlp", "depth": 2, "hidden": 16}),
    ("relu-1d", {"model": "lfp-relu", "backend": "dense"}),
    ("relu-1d", {"model": "lfp-relu", "backend": "sorted"}),
    ("tanh-1d", {"model": "lfp-tanh", "backend": "dense"}),
]


def _jacobian(model, x: torch.Tensor) -> torch.Tensor:
    rows = []
    for xi in x:
        model.zero_grad(set_to_none=True)
        model(xi[None]).sum().backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()
                               if p.requires_grad]))
    return torch.stack(rows)


@pytest.mark.parametrize("name,options", VARIANTS,
                         ids=[f"{n}-{o['model']}-{o.get('backend', 'autograd')}"
                              for n, o in VARIANTS])
def test_every_network_pass_equals_autodiff(name, options):
    case = load_case(PDE / f"{name}.toml")
    settings = train_settings(case, {"width": 64, "dtype": "float64", "samples": 40, **options})
    model = build_model(case, settings)
    x_np = training_samples(case, settings)[:40]
    x = torch.from_numpy(x_np)
    net = NetworkPass(model, settings, x_np, x, case.dim)
    if net.fast:           # the transform pass needs its own sample layout: rebuild on x_np
        net = NetworkPass(model, settings, x_np, x, case.dim, layout=ScatteredSamples(x_np))
    assert isinstance(net, Network)
    y = torch.from_numpy(np.sin(3 * x_np.sum(axis=1)))
    alpha, n = 2.0, x.shape[0]

    with torch.no_grad():
        f = model(x).reshape(-1)
    assert torch.allclose(net.evaluate().reshape(-1), f, rtol=1e-9, atol=1e-10)

    loss = net.loss_and_grad(y, alpha)
    fast = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad(set_to_none=True)
    reference = alpha / (2 * n) * ((model(x).reshape(-1) - y) ** 2).sum()
    reference.backward()
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-9)
    wanted = [p.grad for p in model.parameters() if p.requires_grad]
    scale = max(float(w.abs().max()) for w in wanted)
    for got, want in zip(fast, wanted, strict=True):
        assert torch.allclose(got, want, rtol=1e-7, atol=1e-9 * scale)

    jac = _jacobian(model, x)
    probe = x_np[:7]
    ntk = np.asarray(net.ntk(probe))
    assert np.allclose(ntk, empirical_ntk(model, torch.from_numpy(probe)).numpy(), rtol=1e-8,
                       atol=1e-10 * np.abs(ntk).max())
    dense = np.linalg.eigvalsh((alpha / n * jac @ jac.T).numpy())[-1]
    assert net.gram_lambda_max(alpha) == pytest.approx(dense, rel=2e-3)
