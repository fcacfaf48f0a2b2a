"""Lazy to rich on modular addition (kind ``modular-mlp-lazy-rich``): the mean-field
quadratic pair MLP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from freqdyn.grok.lazy_rich import _long, _stats, _torch_device, first_passage
from freqdyn.grok.modular import modular_dataset
from freqdyn.nets.records import train_loop
from freqdyn.runs.experiment import Experiment
from freqdyn.runs.runner import Outcome


class QuadraticPairMLP(torch.nn.Module):
    """f(x) = (scale/(D·N)) W₂ (W₁x)² on one-hot pairs x ∈ {0, 1}^D, D = 2p
    (Kumar et al. 2024, Fig. 2).

    No biases; W₁ (N × D) and W₂ (p × N) start i.i.d. N(0, 1).  The authors' notebook applies
    ``scale`` twice; freqdyn applies it once (documented choice), so scale = 1 is the same.
    """

    def __init__(self, p: int, width: int, scale: float, generator: torch.Generator):
        super().__init__()
        self.p, self.scale = p, scale
        self.first = torch.nn.Parameter(torch.randn(width, 2 * p, generator=generator))
        self.second = torch.nn.Parameter(torch.randn(p, width, generator=generator))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([torch.nn.functional.one_hot(pairs[:, 0], self.p),
                       torch.nn.functional.one_hot(pairs[:, 1], self.p)], 1).to(self.first)
        hidden = (x @ self.first.T) ** 2
        return self.scale / (2 * self.p * self.first.shape[0]) * hidden @ self.second.T


def run_modular_mlp(exp: Experiment, out: Path, device: str) -> Outcome:
    """Paper Fig. 2: a + b mod p groks with plain GD, no weight decay, weight norm rising.

    Settings: ``p`` (23), ``train_fraction`` (0.9), ``width`` (100), ``scale`` (1), ``lr``
    (100, divided by scale²), ``steps``, ``eval_every``.  Loss: mean over pairs of the
    squared error summed over the p outputs, against one-hot labels.
    """
    p = exp.number("p", 23, low=2, integer=True)
    fraction = exp.number("train_fraction", 0.9, low=0.0, high=1.0)
    width = exp.number("width", 100, low=1, integer=True)
    scale = exp.number("scale", 1.0, low=1e-12)
    lr = exp.number("lr", 100.0, low=1e-12) / scale**2
    steps = exp.number("steps", 50_000, low=1, integer=True)
    eval_every = exp.number("eval_every", 50, low=1, integer=True)
    dev = _torch_device(device)
    seeds = list(exp.seeds)
    logs = []
    for seed in seeds:
        data = modular_dataset(p, "+", fraction, seed)
        gen = torch.Generator().manual_seed(seed)
        model = QuadraticPairMLP(p, width, scale, gen).to(dev)
        xs = {"train": data.pairs_train.to(dev), "val": data.pairs_val.to(dev)}
        ys = {"train": data.labels_train.to(dev), "val": data.labels_val.to(dev)}
        targets = {k: torch.nn.functional.one_hot(v, p).to(torch.float32) for k, v in ys.items()}

        def mse(split, model=model, xs=xs, targets=targets):
            return ((model(xs[split]) - targets[split]) ** 2).sum(1).mean()

        def evaluate(step, model=model, xs=xs, ys=ys, mse=mse):
            with torch.no_grad():
                row = {f"{k}_loss": float(mse(k)) for k in xs}
                row |= {f"{k}_accuracy": float((model(xs[k]).argmax(1) == ys[k]).float().mean())
                        for k in xs}
                row["weight_norm"] = float(sum(torch.linalg.matrix_norm(w)
                                               for w in model.parameters()))
            return row

        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        logs.append(train_loop(model, optimizer, lambda t, mse=mse: mse("train"), steps=steps,
                               evaluate=evaluate, eval_every=eval_every,
                               label=f"mod-{p} MLP seed {seed}"))
    steps_axis = np.asarray(logs[0].eval_steps)
    keys = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "weight_norm")
    curves = {k: np.stack([log.evals(k) for log in logs]) for k in keys}
    summary = {k: [] for k in ("t_train_acc", "t_val_acc", "delay", "final_val_accuracy",
                               "weight_norm_initial", "weight_norm_at_grok",
                               "weight_norm_final", "norm_rises", "grokked")}
    for i in range(len(seeds)):
        t_train = first_passage(steps_axis, -curves["train_accuracy"][i], -0.999)
        t_val = first_passage(steps_axis, -curves["val_accuracy"][i], -0.95)
        at = np.flatnonzero(steps_axis == t_val)
        norm = curves["weight_norm"][i]
        norm_grok = float(norm[at[0]]) if at.size else float("nan")
        summary["t_train_acc"].append(t_train)
        summary["t_val_acc"].append(t_val)
        summary["delay"].append(t_val - t_train)
        summary["final_val_accuracy"].append(float(curves["val_accuracy"][i, -1]))
        summary["weight_norm_initial"].append(float(norm[0]))
        summary["weight_norm_at_grok"].append(norm_grok)
        summary["weight_norm_final"].append(float(norm[-1]))
        summary["norm_rises"].append(bool(norm_grok > norm[0]))
        summary["grokked"].append(bool(np.isfinite(t_val) and t_val > t_train))
    summary["delay_stats"] = _stats(summary["delay"])
    text = {"train_loss": "training MSE (sum over outputs, mean over pairs)",
            "val_loss": "validation MSE", "train_accuracy": "training accuracy (argmax)",
            "val_accuracy": "validation accuracy (argmax)",
            "weight_norm": "‖W₁‖_F + ‖W₂‖_F"}
    ds = xr.Dataset({k: _long(text[k], v, ("seed", "step")) for k, v in curves.items()},
                    coords={"seed": seeds, "step": steps_axis})
    return Outcome(ds, summary, figure_set="grok.modular-mlp", figure_data={"ds": ds})
