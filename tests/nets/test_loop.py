"""The shared grokking training loop: logging, evaluation, early stop, resume, divergence."""

import numpy as np
import pytest
import torch

from freqdyn.errors import InputError, TrainingDiverged
from freqdyn.nets.loop import checkpoint_files
from freqdyn.nets.records import adamw, train_loop


def _problem(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1, dtype=torch.float64)
    return model, x, y


def _loss(model, x, y, batch_gen=None):
    def loss_fn(step):
        idx = torch.randperm(64, generator=batch_gen)[:16] if batch_gen is not None \
            else slice(None)
        return 0.5 * ((model(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()
    return loss_fn


def test_per_step_records_match_a_hand_written_gd_loop():
    model, x, y = _problem()
    ref = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    log = train_loop(model, opt, _loss(model, x, y), steps=5, progress=False)
    assert log.steps.tolist() == [0, 1, 2, 3, 4]
    # Replay by hand: loss, gradient norm, parameter norm and the update cosine.
    w, b = (r.clone().requires_grad_(True) for r in ref)
    for t in range(5):
        loss = 0.5 * ((x @ w.T).squeeze(-1) + b - y).pow(2).mean()
        gw, gb = torch.autograd.grad(loss, (w, b))
        theta = torch.cat([w.detach().reshape(-1), b.detach()])
        with torch.no_grad():
            w -= 0.1 * gw
            b -= 0.1 * gb
        new = torch.cat([w.detach().reshape(-1), b.detach()])
        assert log.every("loss")[t] == pytest.approx(float(loss.detach()), rel=1e-14)
        assert log.every("grad_norm")[t] == pytest.approx(
            float(torch.cat([gw.reshape(-1), gb]).norm()), rel=1e-12)
        assert log.every("param_norm")[t] == pytest.approx(float(theta.norm()), rel=1e-14)
        assert log.every("update_cosine")[t] == pytest.approx(
            float(theta @ new / theta.norm() / new.norm()), rel=1e-14)


def test_evaluations_at_zero_every_k_and_the_end_and_early_stop():
    model, x, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = _loss(model, x, y)
    log = train_loop(model, opt, loss_fn, steps=10, eval_every=4, progress=False,
                     evaluate=lambda t: {"full": float(loss_fn(t).detach())})
    assert log.eval_steps == [0, 4, 8, 10]
    assert log.evals("full")[0] == pytest.approx(log.every("loss")[0])
    assert np.all(np.diff(log.evals("full")) < 0)
    model, x, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = _loss(model, x, y)
    log = train_loop(model, opt, loss_fn, steps=1000, eval_every=1, progress=False,
                     evaluate=lambda t: {"full": float(loss_fn(t).detach())},
                     stop=lambda lg: lg.last("full") < 1e-3)
    assert log.stopped_early and log.last("full") < 1e-3 and len(log.steps) < 1000
    assert log.evals("full")[-2] >= 1e-3


def test_resume_continues_bit_for_bit(tmp_path):
    def run(stop_after, resume, folder):
        model, x, y = _problem()
        opt, sched = adamw(model, lr=1e-2, weight_decay=0.1)
        gen = torch.Generator().manual_seed(5)
        return model, train_loop(
            model, opt, _loss(model, x, y, gen), steps=20, scheduler=sched, stop_after=stop_after,
            checkpoint_dir=folder, checkpoint_every=3, resume=resume, generators=[gen],
            evaluate=lambda t: {"w0": float(model.weight[0, 0].detach())}, eval_every=2,
            progress=False)

    full_model, full = run(None, False, tmp_path / "a")
    run(7, False, tmp_path / "b")
    assert [p.name for p in checkpoint_files(tmp_path / "b")] == \
        ["step-0000000003.pt", "step-0000000006.pt", "step-0000000007.pt"]
    part_model, part = run(None, True, tmp_path / "b")
    for a, b in zip(full_model.parameters(), part_model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert part.every("loss").tolist() == full.every("loss").tolist()
    assert part.eval_steps == full.eval_steps
    assert part.evals("w0").tolist() == full.evals("w0").tolist()


def test_warmup_is_linear_over_the_first_updates():
    model, _, _ = _problem()
    opt, sched = adamw(model, lr=1e-3, weight_decay=1.0, warmup=10)
    rates = []
    for _ in range(12):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:10] == pytest.approx([1e-4 * (t + 1) for t in range(10)])
    assert rates[10:] == pytest.approx([1e-3, 1e-3])
    assert opt.param_groups[0]["betas"] == (0.9, 0.98)
    with pytest.raises(InputError, match="settings.lr"):
        adamw(model, lr=0.0, weight_decay=1.0)


def test_divergence_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    model, x, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    base = _loss(model, x, y)

    def loss_fn(step):
        return base(step) * (float("nan") if step == 7 else 1.0)

    with pytest.raises(TrainingDiverged, match=r"at step 7.*step-0000000005\.pt"):
        train_loop(model, opt, loss_fn, steps=10, checkpoint_dir=tmp_path,
                   checkpoint_every=5, progress=False)
    assert [p.name for p in checkpoint_files(tmp_path)] == ["step-0000000005.pt"]
