"""The baselines users compare with: Grokfast-EMA, StableMax and ⊥Grad, against hand sums."""

import numpy as np
import pytest
import torch

from freqdyn.errors import InputError
from freqdyn.grok.algorithmic import cross_entropy, stablemax_log_probabilities, train_modular
from freqdyn.nets.gradient_filters import GrokfastEMA, OrthogonalGradient


class _Loop:
    def __init__(self, params):
        self.params = params


def test_grokfast_ema_amplifies_the_running_average():
    w = torch.nn.Parameter(torch.zeros(3))
    loop, ema = _Loop([w]), GrokfastEMA(alpha=0.5, lamb=2.0)
    grads = [torch.tensor([1.0, 0.0, 2.0]), torch.tensor([3.0, 1.0, 0.0])]
    h = None
    for step, g in enumerate(grads):
        w.grad = g.clone()
        ema.after_backward(loop, step)
        h = g.clone() if h is None else 0.5 * h + 0.5 * g
        assert torch.allclose(w.grad, g + 2.0 * h)
    restored = GrokfastEMA(0.5, 2.0)
    restored.load_state_dict(ema.state_dict())
    assert torch.equal(restored.averages[0], ema.averages[0])


def test_orthogonal_gradient_removes_the_component_along_the_weights():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0, 2.0]))
    w.grad = torch.tensor([3.0, 0.0, 1.0])
    OrthogonalGradient().after_backward(_Loop([w]), 0)
    expected = torch.tensor([3.0, 0.0, 1.0]) - (5.0 / 9.0) * torch.tensor([1.0, 2.0, 2.0])
    assert torch.allclose(w.grad, expected) and abs(float(w.grad @ w.detach())) < 1e-6


def test_stablemax_against_its_definition_and_no_collapse():
    x = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 0.5, 4.0]], dtype=torch.float64)
    s = np.where(x.numpy() >= 0, x.numpy() + 1, 1 / (1 - x.numpy()))
    assert np.allclose(stablemax_log_probabilities(x).exp().numpy(), s / s.sum(1, keepdims=True))
    labels = torch.tensor([0, 2])
    assert float(cross_entropy(x, labels, torch.float64, "stablemax")) == pytest.approx(
        -np.mean(np.log(s[[0, 1], [0, 2]] / s.sum(1))))
    # float32 softmax of logits 30 apart is exactly 1 (loss 0, no gradient); StableMax is not
    big = torch.tensor([[30.0, 0.0, 0.0]], requires_grad=True)
    assert float(cross_entropy(big, torch.tensor([0])).detach()) == 0.0
    loss = cross_entropy(big, torch.tensor([0]), kind="stablemax")
    loss.backward()
    assert float(loss.detach()) > 1e-3 and float(big.grad.abs().sum()) > 0


def test_train_modular_takes_the_options_and_refuses_unknown_ones():
    cfg = {"model": "mlp", "p": 7, "train_fraction": 0.5, "width": 16, "steps": 5,
           "eval_every": 5, "batch_size": "full"}
    base = train_modular(cfg, seed=0, progress=False)
    for options in ({"gradient_filter": "grokfast-ema"}, {"gradient_filter": "orthogonal"},
                    {"loss": "stablemax"}):
        run = train_modular({**cfg, **options}, seed=0, progress=False)
        assert run.log.every("loss")[0] == pytest.approx(base.log.every("loss")[0]) or \
            options == {"loss": "stablemax"}
        assert not np.array_equal(run.log.every("param_norm"), base.log.every("param_norm"))
    for key, value in (("gradient_filter", "ema"), ("loss", "hinge")):
        with pytest.raises(InputError, match=f"settings.{key}"):
            train_modular({**cfg, key: value}, seed=0, progress=False)
