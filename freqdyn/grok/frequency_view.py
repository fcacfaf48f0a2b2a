"""The frequency view of grokking (Zhou, Zhang, Xu; arXiv 2405.17479): three experiments.

Claim: when the training sample is sparse or non-uniform, its spectrum (the NUDFT of
:mod:`freqdyn.grok.nudft`, F[f](k) = (1/n) Σ_j f(x_j) e^{−i k x_j}, angular k) carries spurious
aliased components that the true function lacks.  A network that follows the frequency
principle fits the spurious low frequency first, so the training loss falls while the test
loss rises; it generalises only later, once the true frequency is learned.

* ``run_aliasing`` — y = sin 6x on [−π, π].  The non-uniform training set takes, from
  10000 evenly spaced points, the 20 minimising |sin x − sin 6x| and the 10 minimising
  |sin 3x − sin 6x| (two points belong to both lists and appear twice), plus n − 30
  extra points, evenly spaced on [−π, π] with both ends (``extras = "even"``, default) or
  drawn from the 10000-point grid at random (``"random"``).  Conditions: n = 65
  non-uniform ("sparse", groks), n = 1000 non-uniform ("dense") and n = 65 evenly spaced
  ("uniform") controls; test set 1000 evenly spaced points.  Spectra on the integer
  grid k = 0 … ``k_max``.
* ``run_parity`` — y = Π_i x_i on {±1}^10, all 1024 points split at random into train /
  test at each fraction; 2-layer ReLU network of width 1000, Adam, MSE on ±1 labels;
  spectra along d = (1, …, 1)/√10 (``direction = "ones"``; ``"pca"`` uses the first
  principal direction of the training inputs), k on ``n_k`` points in [0, ``k_top``].  On
  the full cube |F_d[y](k)| = |sin(k/√10)|^10, one peak at k = π√10/2 ≈ 4.97.
* ``run_image`` — scikit-learn digits (8×8, pixels/16 in [0, 1]; MNIST from IDX files
  when ``dataset = "mnist"``), MLP with three hidden ReLU layers of width 200 and every
  parameter of PyTorch's default init multiplied by α; α = 8 with Adam vs α = 1 with SGD,
  batch 200, MSE on one-hot targets, no weight decay.  Spectra along the first principal
  direction of all images (train + test) with k on 1000 points in [0, 2π]; every output
  coordinate is transformed against its one-hot target coordinate and the figures show the
  root-sum-square over the 10 coordinates.

Networks use PyTorch's default ``nn.Linear`` law U(±1/√fan_in) for weights and biases,
drawn from a generator seeded by the experiment seed, multiplied by ``init_scale``.  The
loss is the mean squared error over samples (and output coordinates).  Every run goes
through :func:`freqdyn.nets.loop.train_loop`.

Loss-curve events (all steps are evaluation steps, so they are resolved to ``eval_every``):

* test-loss peak: the step of max L_test and its relative rise (max L_test − L_test(0)) /
  L_test(0);
* test fall: the first step after the peak where L_test < ``fall_level``·L_test(0)
  (``fall_level`` = 1, "below its start", for sin 6x; 0.5 by default for parity, whose
  smallest fraction drifts back to its start without generalising); censored: the run
  length when it never happens;
* train fall: the first step where L_train < L_train(0);
* grokked: rise > ``rise_tolerance`` while L_train at the peak is below L_train(0), and
  the test loss falls below its start later; delay = test fall − train fall (0 or one
  evaluation interval when both improve together);
* gap: max over steps of (L_test − L_train) / L_test(0), small when both move together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from torch import nn

from freqdyn.errors import InputError
from freqdyn.grok.images import load_digits, load_mnist, subsample_train
from freqdyn.grok.nudft import (
    amplitude,
    nudft,
    principal_direction,
    projected_nudft,
    relative_error_at_peaks,
    spectral_mismatch,
    spectral_peaks,
)
from freqdyn.nets.loop import TrainingLog, train_loop
from freqdyn.runs.experiment import Experiment
from freqdyn.runs.runner import Outcome

CONVENTION = ("F[f](k) = (1/n) sum_j f(x_j) exp(-i k x_j), angular k (no 2 pi); along a unit "
              "direction d for vector inputs: x_j -> d.x_j")
ALIASING_CONDITIONS = ("sparse", "dense", "uniform")
GRID_POINTS = 10000
COLORS = {"train": "tab:blue", "test": "tab:orange"}


class Sine(nn.Module):
    """The activation σ(z) = sin z."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z)


ACTIVATIONS = {"sin": Sine, "relu": nn.ReLU, "tanh": nn.Tanh}


def frequency_mlp(in_dim: int, width: int, depth: int, out_dim: int, activation: str,
                  init_scale: float, seed: int) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` with ``activation``, then a linear read-out.

    Every weight and bias is drawn from U(±1/√fan_in) (PyTorch's nn.Linear default) with a
    generator seeded by ``seed``, then multiplied by ``init_scale`` (the α of Omnigrok).
    """
    if activation not in ACTIVATIONS:
        raise InputError("settings.activation", f"expected one of {sorted(ACTIVATIONS)}, "
                                               f"got {activation!r}")
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    fan_in = in_dim
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), ACTIVATIONS[activation]()]
        fan_in = width
    layers.append(nn.Linear(fan_in, out_dim))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                bound = init_scale / np.sqrt(layer.in_features)
                for p in (layer.weight, layer.bias):
                    p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
    return model


# ---------------------------------------------------------------------------------- data

def aliasing_points(n: int, layout: str, *, extras: str = "even", seed: int = 0) -> np.ndarray:
    """Training inputs of the sin 6x example (module text); ``layout`` "non-uniform"/"uniform"."""
    if layout == "uniform":
        return np.linspace(-np.pi, np.pi, n)
    if layout != "non-uniform":
        raise InputError("layout", f"expected 'non-uniform' or 'uniform', got {layout!r}")
    if n <= 30:
        raise InputError("settings.n", f"a non-uniform set needs n > 30, got {n}")
    grid = np.linspace(-np.pi, np.pi, GRID_POINTS)
    near_sin1 = np.argsort(np.abs(np.sin(grid) - np.sin(6 * grid)), kind="stable")[:20]
    near_sin3 = np.argsort(np.abs(np.sin(3 * grid) - np.sin(6 * grid)), kind="stable")[:10]
    if extras == "even":
        rest = np.linspace(-np.pi, np.pi, n - 30)
    elif extras == "random":
        rest = np.random.default_rng(seed).choice(grid, n - 30, replace=False)
    else:
        raise InputError("settings.extras", f"expected 'even' or 'random', got {extras!r}")
    return np.concatenate([grid[near_sin1], grid[near_sin3], rest])


def hypercube(bits: int) -> np.ndarray:
    """All 2^bits points of {−1, +1}^bits, shape (2^bits, bits)."""
    codes = (np.arange(2**bits)[:, None] >> np.arange(bits)) & 1
    return 1.0 - 2.0 * codes


def parity_spectrum_exact(k: np.ndarray, bits: int) -> np.ndarray:
    """|F_d[Π x_i](k)| on the full cube along d = 1/√bits: |sin(k/√bits)|^bits (closed form).

    F = Π_i ½ Σ_{x_i=±1} x_i e^{−i k x_i/√bits} = (−i sin(k/√bits))^bits.
    """
    return np.abs(np.sin(np.asarray(k) / np.sqrt(bits))) ** bits


def split_indices(total: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split: round(fraction·total) training indices, the rest for testing."""
    if not 0 < fraction < 1:
        raise InputError("settings.fractions", f"fractions must lie in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(total)
    n_train = int(round(fraction * total))
    return np.sort(order[:n_train]), np.sort(order[n_train:])


# ----------------------------------------------------------------------------- training

@dataclass
class ProbedRun:
    """A training log, spectra recorded at the evaluation steps, and output snapshots."""

    log: TrainingLog
    spectra: dict[str, np.ndarray] = field(default_factory=dict)
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((pred - target) ** 2)


def train_probed(model: nn.Module, optimizer: torch.optim.Optimizer, *, x_train, y_train,
                 x_test, y_test, steps: int, eval_every: int, seed: int, device: str,
                 spectra_fn=None, batch_size: int | None = None, classify: str = "",
                 snapshot_steps=(), label: str = "") -> ProbedRun:
    """Train by MSE with :func:`train_loop`, evaluating losses (and accuracy) and spectra.

    ``x_*``, ``y_*`` are numpy arrays (y of shape (n,) or (n, outputs)).  Full batch when
    ``batch_size`` is None, else batches of a fresh permutation per epoch, drawn from a
    generator seeded by ``seed`` and the epoch number.  ``spectra_fn(out_train, out_test)``
    returns named complex arrays, stacked over evaluation steps.  ``classify`` adds
    accuracies: "sign" (±1 labels) or "argmax" (one-hot).  ``snapshot_steps`` keeps the
    output on the test inputs at the evaluation steps nearest to them.
    """
    def tensor(a):
        arr = np.asarray(a, dtype=np.float32)
        return torch.as_tensor(arr.reshape(arr.shape[0], -1), device=device)

    xs = {"train": tensor(x_train), "test": tensor(x_test)}
    ys = {"train": tensor(y_train), "test": tensor(y_test)}
    model.to(device)
    n = xs["train"].shape[0]
    batch = n if batch_size is None else min(int(batch_size), n)
    per_epoch = -(-n // batch)
    orders: dict[int, torch.Tensor] = {}

    def loss_fn(step: int) -> torch.Tensor:
        if batch == n:
            return _mse(model(xs["train"]), ys["train"])
        epoch, index = divmod(step, per_epoch)
        if epoch not in orders:
            orders.clear()
            gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            orders[epoch] = torch.randperm(n, generator=gen).to(device)
        rows = orders[epoch][index * batch:(index + 1) * batch]
        return _mse(model(xs["train"][rows]), ys["train"][rows])

    eval_grid = list(range(0, steps + 1, eval_every))
    if eval_grid[-1] != steps:
        eval_grid.append(steps)
    keep = {min(eval_grid, key=lambda s, t=t: abs(s - t)) for t in snapshot_steps}
    run = ProbedRun(log=TrainingLog())
    recorded: dict[str, list[np.ndarray]] = {}

    def evaluate(step: int) -> dict[str, float]:
        values, outs = {}, {}
        with torch.no_grad():
            for part in ("train", "test"):
                out = model(xs[part])
                outs[part] = out.cpu().numpy().astype(np.float64)
                values[f"{part}_loss"] = float(_mse(out, ys[part]))
                if classify == "sign":
                    values[f"{part}_acc"] = float(torch.mean(
                        (torch.sign(out) == ys[part]).float()))
                elif classify == "argmax":
                    values[f"{part}_acc"] = float(torch.mean(
                        (out.argmax(1) == ys[part].argmax(1)).float()))
        if spectra_fn is not None:
            for name, spec in spectra_fn(outs["train"], outs["test"]).items():
                recorded.setdefault(name, []).append(spec)
        if step in keep:
            run.snapshots[step] = outs["test"]
        return values

    run.log = train_loop(model, optimizer, loss_fn, steps=steps, evaluate=evaluate,
                         eval_every=eval_every, label=label)
    run.spectra = {name: np.stack(specs) for name, specs in recorded.items()}
    return run


def loss_events(steps: np.ndarray, train: np.ndarray, test: np.ndarray,
                rise_tolerance: float, fall_level: float = 1.0) -> dict:
    """The loss-curve events of the module text for one run (curves at ``steps``)."""
    peak = int(np.argmax(test))
    rise = float((test[peak] - test[0]) / test[0])
    after = np.nonzero((np.arange(test.size) > peak) & (test < fall_level * test[0]))[0]
    fell = after.size > 0
    fall_step = int(steps[after[0]]) if fell else int(steps[-1])
    train_below = np.nonzero(train < train[0])[0]
    train_fall = int(steps[train_below[0]]) if train_below.size else int(steps[-1])
    grokked = bool(rise > rise_tolerance and train[peak] < train[0] and fell)
    return {"test_peak_step": int(steps[peak]), "test_rise": rise, "test_fell": fell,
            "test_fall_step": fall_step, "train_fall_step": train_fall,
            "delay": fall_step - train_fall, "grokked": grokked,
            "max_gap": float(np.max(test - train) / test[0]),
            "final_train_loss": float(train[-1]), "final_test_loss": float(test[-1])}


def _mean_std(summary: dict, key: str) -> None:
    values = np.asarray(summary[key], dtype=float)
    summary[f"{key}_mean"] = float(values.mean())
    summary[f"{key}_std"] = float(values.std())


def _band(ax, steps, curves, color, label):
    """Mean over seeds with a min–max band; ``curves`` shape (seeds, steps)."""
    ax.plot(steps, curves.mean(0), color=color, label=label)
    ax.fill_between(steps, curves.min(0), curves.max(0), color=color, alpha=0.25, lw=0)


def _optimizer(name: str, model: nn.Module, lr: float, field_name: str):
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    raise InputError(field_name, f"expected 'adam' or 'sgd', got {name!r}")


def _steps(exp: Experiment) -> tuple[int, int]:
    steps = exp.number("steps", integer=True, low=1)
    every = exp.number("eval_every", integer=True, low=1)
    return steps, every


# ----------------------------------------------------------------------- sin 6x aliasing

def run_aliasing(exp: Experiment, out: Path, device: str) -> Outcome:
    """sin 6x from aliased samples: the sparse non-uniform set groks, the controls do not."""
    steps, every = _steps(exp)
    n_sparse = exp.number("n_sparse", 65, integer=True, low=31)
    n_dense = exp.number("n_dense", 1000, integer=True, low=31)
    n_test = exp.number("n_test", 1000, integer=True, low=2)
    k = np.arange(0, exp.number("k_max", 16, integer=True, low=6) + 1, dtype=float)
    width = exp.number("width", 200, integer=True, low=1)
    depth = exp.number("depth", 3, integer=True, low=1)
    init_scale = exp.number("init_scale", 0.5, low=0)
    lr = exp.number("lr", 1e-4, low=0)
    tol = exp.number("rise_tolerance", 0.05, low=0)
    extras = exp.get("extras", "even")
    activation = exp.get("activation", "sin")
    snap_steps = [int(s) for s in exp.get("snapshot_steps", [0, steps // 5, steps])]
    x_test = np.linspace(-np.pi, np.pi, n_test)
    layouts = {"sparse": ("non-uniform", n_sparse), "dense": ("non-uniform", n_dense),
               "uniform": ("uniform", n_sparse)}

    def spectra_fn(points):
        return lambda out_train, out_test: {
            "output_train": nudft(points, out_train[:, 0], k),
            "output_test": nudft(x_test, out_test[:, 0], k)}

    runs: dict[str, list[ProbedRun]] = {c: [] for c in ALIASING_CONDITIONS}
    target_train = {c: [] for c in ALIASING_CONDITIONS}
    for cond in ALIASING_CONDITIONS:
        layout, n = layouts[cond]
        for seed in exp.seeds:
            x = aliasing_points(n, layout, extras=extras, seed=seed)
            target_train[cond].append(nudft(x, np.sin(6 * x), k))
            model = frequency_mlp(1, width, depth, 1, activation, init_scale, seed)
            runs[cond].append(train_probed(
                model, torch.optim.Adam(model.parameters(), lr=lr), x_train=x,
                y_train=np.sin(6 * x), x_test=x_test, y_test=np.sin(6 * x_test), steps=steps,
                eval_every=every, seed=seed, device=device, spectra_fn=spectra_fn(x),
                snapshot_steps=snap_steps, label=f"{cond} n={n} seed {seed}"))
    target_test = nudft(x_test, np.sin(6 * x_test), k)
    eval_steps = np.asarray(runs["sparse"][0].log.eval_steps)
    snaps = sorted(runs["sparse"][0].snapshots)

    summary: dict = {"conditions": {c: f"{layouts[c][0]} n={layouts[c][1]}"
                                    for c in ALIASING_CONDITIONS}}
    for cond in ALIASING_CONDITIONS:
        events = [loss_events(eval_steps, r.log.evals("train_loss"), r.log.evals("test_loss"),
                              tol) for r in runs[cond]]
        for key in events[0]:
            summary[f"{cond}_{key}"] = [e[key] for e in events]
        for key in ("test_peak_step", "test_fall_step", "delay", "test_rise", "max_gap",
                    "final_test_loss"):
            _mean_std(summary, f"{cond}_{key}")
        summary[f"{cond}_train_k1"] = float(np.mean(np.abs([s[1] for s in target_train[cond]])))
        summary[f"{cond}_mismatch"] = float(np.mean(
            [spectral_mismatch(s, target_test) for s in target_train[cond]]))
    summary["train_k1_spurious"] = summary["sparse_train_k1"]
    summary["test_k1"] = float(abs(target_test[1]))
    summary["test_k6"] = float(abs(target_test[6]))
    summary["test_mismatch"] = spectral_mismatch(target_test, target_test)
    # the "double origin" of the k = 1 amplitude, sparse condition: at the test-loss peak
    # and at the end, on training points and on test points
    sparse = runs["sparse"]
    peak_index = [int(np.argmax(r.log.evals("test_loss"))) for r in sparse]
    for where in ("train", "test"):
        amp = [np.abs(r.spectra[f"output_{where}"][:, 1]) for r in sparse]
        summary[f"output_{where}_k1_at_peak"] = [float(a[i]) for a, i in
                                                 zip(amp, peak_index, strict=True)]
        summary[f"output_{where}_k1_final"] = [float(a[-1]) for a in amp]
    summary["final_test_relative_error_k6"] = [
        float(relative_error_at_peaks(r.spectra["output_test"][-1], target_test, [6])[0])
        for r in sparse]

    coords = {"condition": list(ALIASING_CONDITIONS), "seed": list(exp.seeds),
              "step": eval_steps, "k": k}
    dims3, dims4 = ("condition", "seed", "step"), ("condition", "seed", "step", "k")
    data = {}
    for key, name in (("train_loss", "training MSE"), ("test_loss", "test MSE")):
        data[key] = (dims3, np.array([[r.log.evals(key) for r in runs[c]]
                                      for c in ALIASING_CONDITIONS]), {"long_name": name})
    for where in ("train", "test"):
        data[f"output_{where}_amplitude"] = (dims4, np.array(
            [[np.abs(r.spectra[f"output_{where}"]) for r in runs[c]]
             for c in ALIASING_CONDITIONS]),
            {"long_name": f"|F[h](k)| of the network output on the {where} points"})
    data["target_train_amplitude"] = (("condition", "seed", "k"), np.abs(np.array(
        [target_train[c] for c in ALIASING_CONDITIONS])),
        {"long_name": "|F[y](k)| of sin 6x on the training points"})
    data["target_test_amplitude"] = (("k",), np.abs(target_test),
                                     {"long_name": "|F[y](k)| of sin 6x on the test points"})
    data["sparse_output_snapshot"] = (("seed", "snapshot", "x"), np.array(
        [[r.snapshots[s][:, 0] for s in snaps] for r in sparse]),
        {"long_name": "network output h(x) on the test points, sparse condition"})
    ds = xr.Dataset(data, coords={**coords, "snapshot": snaps, "x": x_test})
    ds.attrs["fourier_convention"] = CONVENTION

    x_sparse = aliasing_points(n_sparse, "non-uniform", extras=extras, seed=exp.seeds[0])
    figures = {
        "losses": _aliasing_loss_figure(ds, layouts),
        "functions": _aliasing_function_figure(ds, x_sparse),
        "spectra": _aliasing_spectra_figure(ds, snaps),
        "data_spectra": _aliasing_data_figure(ds, layouts),
    }
    return Outcome(dataset=ds, summary=summary, figures=figures)


def _aliasing_loss_figure(ds: xr.Dataset, layouts) -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, cond in zip(axes, ALIASING_CONDITIONS, strict=True):
        for part in ("train", "test"):
            _band(ax, ds.step.values, ds[f"{part}_loss"].sel(condition=cond).values,
                  COLORS[part], part)
        ax.set_yscale("log")
        ax.set_title(f"{layouts[cond][0]}, n = {layouts[cond][1]}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("MSE (mean, min–max over seeds)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def _aliasing_function_figure(ds: xr.Dataset, x_sparse: np.ndarray) -> plt.Figure:
    snaps = ds.snapshot.values
    fig, axes = plt.subplots(1, snaps.size, figsize=(4 * snaps.size, 3.2), sharey=True)
    x = ds.x.values
    for ax, step in zip(np.atleast_1d(axes), snaps, strict=True):
        ax.plot(x, ds.sparse_output_snapshot.sel(snapshot=step).isel(seed=0), color="tab:red",
                label="output h(x)")
        ax.plot(x_sparse, np.sin(6 * x_sparse), "*", color="tab:blue", label="training data")
        ax.set_title(f"step {step}")
        ax.set_xlabel("x")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _aliasing_spectra_figure(ds: xr.Dataset, snaps) -> plt.Figure:
    fig, axes = plt.subplots(2, len(snaps), figsize=(4 * len(snaps), 6), sharex=True,
                             squeeze=False)
    sparse = ds.sel(condition="sparse").isel(seed=0)
    target = {"train": sparse.target_train_amplitude.values,
              "test": ds.target_test_amplitude.values}
    for row, where in enumerate(("train", "test")):
        for col, step in enumerate(snaps):
            ax = axes[row, col]
            ax.plot(ds.k, target[where], "o-", color="tab:orange", label="target")
            ax.plot(ds.k, sparse[f"output_{where}_amplitude"].sel(step=step), "s--",
                    color="tab:blue", label="output")
            ax.set_title(f"{where} points, step {step}")
        axes[row, 0].set_ylabel("|F(k)|")
    for ax in axes[-1]:
        ax.set_xlabel("k")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _aliasing_data_figure(ds: xr.Dataset, layouts) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(ds.k, ds.target_test_amplitude, "k-", lw=2, label="test (1000 even)")
    for cond in ALIASING_CONDITIONS:
        ax.plot(ds.k, ds.target_train_amplitude.sel(condition=cond).isel(seed=0), "o--",
                label=f"train, {layouts[cond][0]} n = {layouts[cond][1]}")
    ax.set_xlabel("k")
    ax.set_ylabel("|F[sin 6x](k)|")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------- parity

def run_parity(exp: Experiment, out: Path, device: str) -> Outcome:
    """10-bit parity at several training fractions: spectra along d and test-loss timing."""
    steps, every = _steps(exp)
    bits = exp.number("bits", 10, integer=True, low=2, high=16)
    fractions = [float(f) for f in exp.get("fractions", [0.2, 0.5, 0.8])]
    width = exp.number("width", 1000, integer=True, low=1)
    lr = exp.number("lr", 2e-4, low=0)
    init_scale = exp.number("init_scale", 1.0, low=0)
    low_band = exp.number("low_band", 1.9, low=0)
    tol = exp.number("rise_tolerance", 0.05, low=0)
    fall_level = exp.number("fall_level", 0.5, low=0, high=1)
    k = np.linspace(0.0, exp.number("k_top", 2 * np.pi, low=0), exp.number(
        "n_k", 201, integer=True, low=2))
    cube = hypercube(bits)
    labels = np.prod(cube, axis=1)
    choice = exp.get("direction", "ones")
    if choice not in ("ones", "pca"):
        raise InputError("settings.direction", f"expected 'ones' or 'pca', got {choice!r}")
    low = k <= low_band
    full_target = projected_nudft(cube, labels, k, np.ones(bits))

    runs, train_spectra, directions = {}, {}, {}
    for frac in fractions:
        runs[frac], train_spectra[frac] = [], []
        for seed in exp.seeds:
            train, test = split_indices(cube.shape[0], frac, seed)
            d = principal_direction(cube[train]) if choice == "pca" else np.ones(bits)
            directions[(frac, seed)] = d
            train_spectra[frac].append(projected_nudft(cube[train], labels[train], k, d))

            def spectra_fn(out_train, out_test, train=train, test=test, d=d):
                outputs = np.empty(cube.shape[0])
                outputs[train], outputs[test] = out_train[:, 0], out_test[:, 0]
                return {"output_full": projected_nudft(cube, outputs, k, d)}

            model = frequency_mlp(bits, width, 1, 1, "relu", init_scale, seed)
            runs[frac].append(train_probed(
                model, torch.optim.Adam(model.parameters(), lr=lr), x_train=cube[train],
                y_train=labels[train], x_test=cube[test], y_test=labels[test], steps=steps,
                eval_every=every, seed=seed, device=device, spectra_fn=spectra_fn,
                classify="sign", label=f"parity fraction {frac} seed {seed}"))
    eval_steps = np.asarray(runs[fractions[0]][0].log.eval_steps)
    peak = int(np.argmax(amplitude(full_target)))

    summary: dict = {"fractions": fractions, "exact_peak_k": float(np.pi * np.sqrt(bits) / 2),
                     "grid_peak_k": float(k[peak])}
    fall_means, low_means = [], []
    for frac in fractions:
        tag = f"f{round(100 * frac):02d}"
        events = [loss_events(eval_steps, r.log.evals("train_loss"), r.log.evals("test_loss"),
                              tol, fall_level) for r in runs[frac]]
        for key in ("test_peak_step", "test_rise", "test_fell", "test_fall_step", "grokked",
                    "final_test_loss"):
            summary[f"{tag}_{key}"] = [e[key] for e in events]
        summary[f"{tag}_final_test_acc"] = [r.log.last("test_acc") for r in runs[frac]]
        summary[f"{tag}_final_train_acc"] = [r.log.last("train_acc") for r in runs[frac]]
        low_amp = [float(np.abs(s[low]).mean()) for s in train_spectra[frac]]
        summary[f"{tag}_train_low_freq_amplitude"] = low_amp
        summary[f"{tag}_train_mismatch"] = [spectral_mismatch(s, full_target)
                                            for s in train_spectra[frac]]
        # output low-frequency amplitude on all points: the initial output's offset decays
        # first (to the dip, before the test-loss peak), then the spurious low frequencies of
        # the training subset build up while the test loss rises, then decay
        dips, rises, rise_steps, finals = [], [], [], []
        for r in runs[frac]:
            curve = np.abs(r.spectra["output_full"][:, low]).mean(1)
            dip = int(np.argmin(curve[:int(np.argmax(r.log.evals("test_loss"))) + 1]))
            top = dip + int(np.argmax(curve[dip:]))
            dips.append(float(curve[dip]))
            rises.append(float(curve[top]))
            rise_steps.append(int(eval_steps[top]))
            finals.append(float(curve[-1]))
        summary[f"{tag}_output_low_freq_dip"] = dips
        summary[f"{tag}_output_low_freq_rise_peak"] = rises
        summary[f"{tag}_output_low_freq_rise_peak_step"] = rise_steps
        summary[f"{tag}_output_low_freq_final"] = finals
        summary[f"{tag}_final_relative_error_at_peak"] = [
            float(relative_error_at_peaks(r.spectra["output_full"][-1], full_target,
                                          [peak])[0]) for r in runs[frac]]
        for key in ("test_fall_step", "train_low_freq_amplitude", "final_test_acc"):
            _mean_std(summary, f"{tag}_{key}")
        fall_means.append(summary[f"{tag}_test_fall_step_mean"])
        low_means.append(summary[f"{tag}_train_low_freq_amplitude_mean"])
    summary["test_fall_step_by_fraction"] = fall_means
    summary["train_low_freq_amplitude_by_fraction"] = low_means
    summary["full_low_freq_amplitude"] = float(np.abs(full_target[low]).mean())
    summary["deviations"] = _parity_deviations(summary, fractions)

    coords = {"fraction": fractions, "seed": list(exp.seeds), "step": eval_steps, "k": k}
    data = {}
    for key, name in (("train_loss", "training MSE (±1 labels)"), ("test_loss", "test MSE"),
                      ("train_acc", "training accuracy of sign(h)"),
                      ("test_acc", "test accuracy of sign(h)")):
        data[key] = (("fraction", "seed", "step"), np.array(
            [[r.log.evals(key) for r in runs[f]] for f in fractions]), {"long_name": name})
    data["output_full_amplitude"] = (("fraction", "seed", "step", "k"), np.array(
        [[np.abs(r.spectra["output_full"]) for r in runs[f]] for f in fractions]),
        {"long_name": "|F_d[h](k)| of the network output on all 2^bits points"})
    data["target_train_amplitude"] = (("fraction", "seed", "k"), np.abs(np.array(
        [train_spectra[f] for f in fractions])),
        {"long_name": "|F_d[y](k)| of parity on the training subset"})
    data["target_full_amplitude"] = (("k",), amplitude(full_target),
                                     {"long_name": "|F_d[y](k)| of parity on all points"})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["fourier_convention"] = CONVENTION
    ds.attrs["direction"] = "(1, ..., 1)/sqrt(bits)" if choice == "ones" else \
        "first principal direction of the training inputs"
    figures = {"losses": _parity_loss_figure(ds),
               "data_spectra": _parity_data_figure(ds),
               "output_spectra": _parity_output_figure(ds, exp.get("focus_fraction", 0.5))}
    return Outcome(dataset=ds, summary=summary, figures=figures)


def _parity_deviations(summary: dict, fractions: list[float]) -> list[str]:
    """Where this run departs from the paper's parity observations (spec G1.6), in words."""
    notes = []
    for frac in fractions:
        tag = f"f{round(100 * frac):02d}"
        if not all(summary[f"{tag}_test_fell"]):
            notes.append(f"fraction {frac:g}: the test loss did not fall below the set level "
                         f"within the run in {summary[f'{tag}_test_fell'].count(False)} seed(s)")
        if not all(np.asarray(summary[f"{tag}_output_low_freq_rise_peak"])
                   > np.asarray(summary[f"{tag}_output_low_freq_dip"])):
            notes.append(f"fraction {frac:g}: the output's low frequencies on all points did "
                         "not build up after the initial decay in every seed")
    steps = summary["test_fall_step_by_fraction"]
    if any(a < b for a, b in zip(steps, steps[1:], strict=False)):
        notes.append("the test loss does not fall later for every smaller fraction")
    return notes


def _parity_loss_figure(ds: xr.Dataset) -> plt.Figure:
    fractions = ds.fraction.values
    fig, axes = plt.subplots(1, fractions.size, figsize=(4 * fractions.size, 3.4),
                             sharey=True, squeeze=False)
    for ax, frac in zip(axes[0], fractions, strict=True):
        for part in ("train", "test"):
            _band(ax, ds.step.values, ds[f"{part}_loss"].sel(fraction=frac).values,
                  COLORS[part], part)
        ax.set_title(f"training fraction {frac:g}")
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[0, 0].set_ylabel("MSE (mean, min–max over seeds)")
    axes[0, 0].legend()
    fig.tight_layout()
    return fig


def _parity_data_figure(ds: xr.Dataset) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    shades = plt.cm.Blues(np.linspace(0.4, 1.0, ds.fraction.size))
    for frac, color in zip(ds.fraction.values, shades, strict=True):
        ax.plot(ds.k, ds.target_train_amplitude.sel(fraction=frac).mean("seed"), color=color,
                label=f"training subset {frac:g} (seed mean)")
    ax.plot(ds.k, ds.target_full_amplitude, color="tab:orange", lw=2, label="all points")
    ax.set_xlabel("k (along the projection direction)")
    ax.set_ylabel("|F_d[y](k)|")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _parity_output_figure(ds: xr.Dataset, focus: float) -> plt.Figure:
    if focus not in ds.fraction.values:
        raise InputError("settings.focus_fraction", f"{focus} is not one of the fractions")
    sel = ds.output_full_amplitude.sel(fraction=focus).isel(seed=0)
    steps = ds.step.values
    halves = (steps[: max(2, steps.size // 3)], steps[steps.size // 3:])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, window in zip(axes, halves, strict=True):
        picks = window[np.linspace(0, window.size - 1, min(6, window.size)).astype(int)]
        shades = plt.cm.Blues(np.linspace(0.35, 1.0, picks.size))
        for step, color in zip(picks, shades, strict=True):
            ax.plot(ds.k, sel.sel(step=step), color=color, label=f"step {step}")
        ax.plot(ds.k, ds.target_full_amplitude, color="tab:orange", lw=2, label="parity")
        ax.set_xlabel("k")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"|F_d[h](k)| on all points, fraction {focus:g}")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------- image

IMAGE_ARMS = ("large_init", "default_init")


def _image_data(exp: Experiment, seed: int):
    name = exp.get("dataset", "digits")
    n_train = exp.number("n_train", 1000, integer=True, low=1)
    if name == "digits":
        return load_digits(n_train, seed)
    if name == "mnist":
        return subsample_train(load_mnist(exp.require("mnist_dir")), n_train, seed)
    raise InputError("settings.dataset", f"expected 'digits' or 'mnist', got {name!r}")


def run_image(exp: Experiment, out: Path, device: str) -> Outcome:
    """Large init (α = 8, Adam) groks on images; default init (α = 1, SGD) does not."""
    steps, every = _steps(exp)
    width = exp.number("width", 200, integer=True, low=1)
    depth = exp.number("depth", 3, integer=True, low=1)
    batch = exp.number("batch_size", 200, integer=True, low=1)
    k = np.linspace(0.0, exp.number("k_top", 2 * np.pi, low=0),
                    exp.number("n_k", 1000, integer=True, low=2))
    low_band = exp.number("low_band", 1.0, low=0)
    arms = {
        "large_init": (exp.number("large_alpha", 8.0, low=0), exp.get("large_optimizer", "adam"),
                       exp.number("large_lr", 1e-3, low=0)),
        "default_init": (exp.number("default_alpha", 1.0, low=0),
                         exp.get("default_optimizer", "sgd"),
                         exp.number("default_lr", 0.02, low=0)),
    }
    snap_steps = [int(s) for s in exp.get("snapshot_steps", [0, steps // 10, steps])]
    low = k <= low_band

    runs = {arm: [] for arm in IMAGE_ARMS}
    targets = []
    for seed in exp.seeds:
        data = _image_data(exp, seed)
        classes = data.n_classes
        onehot = {part: np.eye(classes)[getattr(data, f"y_{part}")] for part in ("train", "test")}
        x_all = np.concatenate([data.x_train, data.x_test])
        d = principal_direction(x_all)
        proj = {"train": data.x_train @ d, "full": x_all @ d}
        y_full = np.concatenate([onehot["train"], onehot["test"]])
        targets.append({"train": nudft(proj["train"], onehot["train"], k),
                        "full": nudft(proj["full"], y_full, k)})

        def spectra_fn(out_train, out_test, proj=proj):
            return {"output_train": nudft(proj["train"], out_train, k),
                    "output_full": nudft(proj["full"], np.concatenate([out_train, out_test]), k)}

        for arm in IMAGE_ARMS:
            alpha, opt_name, lr = arms[arm]
            model = frequency_mlp(x_all.shape[1], width, depth, classes, "relu", alpha, seed)
            runs[arm].append(train_probed(
                model, _optimizer(opt_name, model, lr, f"settings.{arm.split('_')[0]}_optimizer"),
                x_train=data.x_train, y_train=onehot["train"], x_test=data.x_test,
                y_test=onehot["test"], steps=steps, eval_every=every, seed=seed, device=device,
                spectra_fn=spectra_fn, batch_size=batch, classify="argmax",
                label=f"{data.name} {arm} seed {seed}"))
    eval_steps = np.asarray(runs["large_init"][0].log.eval_steps)
    snaps = [min(eval_steps, key=lambda s, t=t: abs(s - t)) for t in snap_steps]

    def rss(spec):
        """Root-sum-square over output coordinates of |F(k)|: shape (..., k)."""
        return np.sqrt(np.sum(np.abs(spec) ** 2, axis=-1))

    def distance(spec, target):
        """‖F[h] − F[y]‖ / ‖F[y]‖ over k and output coordinates (per evaluation step)."""
        return np.sqrt(np.sum(np.abs(spec - target) ** 2, axis=(-2, -1))
                       / np.sum(np.abs(target) ** 2))

    summary: dict = {"dataset": exp.get("dataset", "digits"),
                     "arms": {a: {"alpha": arms[a][0], "optimizer": arms[a][1],
                                  "lr": arms[a][2]} for a in IMAGE_ARMS}}
    curves = {}
    for arm in IMAGE_ARMS:
        dist = {where: np.array([distance(r.spectra[f"output_{where}"], t[where])
                                 for r, t in zip(runs[arm], targets, strict=True)])
                for where in ("train", "full")}
        curves[arm] = dist
        train_acc = np.array([r.log.evals("train_acc") for r in runs[arm]])
        test_acc = np.array([r.log.evals("test_acc") for r in runs[arm]])
        gap = train_acc - test_acc
        summary[f"{arm}_final_train_acc"] = train_acc[:, -1].tolist()
        summary[f"{arm}_final_test_acc"] = test_acc[:, -1].tolist()
        summary[f"{arm}_max_acc_gap"] = gap.max(1).tolist()
        summary[f"{arm}_max_acc_gap_step"] = eval_steps[gap.argmax(1)].tolist()
        reach = train_acc >= exp.number("train_acc_level", 0.99, low=0, high=1)
        summary[f"{arm}_train_acc_step"] = [int(eval_steps[np.argmax(r)]) if r.any()
                                            else int(steps) for r in reach]
        summary[f"{arm}_init_amplitude_ratio"] = [
            float(rss(r.spectra["output_full"][0]).sum() / rss(t["full"]).sum())
            for r, t in zip(runs[arm], targets, strict=True)]
        mid = np.argmax(gap, axis=1)
        summary[f"{arm}_spectral_distance_train_at_gap"] = [
            float(dist["train"][i, m]) for i, m in enumerate(mid)]
        summary[f"{arm}_spectral_distance_full_at_gap"] = [
            float(dist["full"][i, m]) for i, m in enumerate(mid)]
        summary[f"{arm}_spectral_distance_full_final"] = dist["full"][:, -1].tolist()
        # frequency principle check: relative error in the low band vs the rest, early on
        early = max(1, eval_steps.size // 10)
        low_err, high_err = [], []
        for r, t in zip(runs[arm], targets, strict=True):
            diff = np.abs(r.spectra["output_full"][early] - t["full"]) ** 2
            ref = np.abs(t["full"]) ** 2
            low_err.append(float(np.sqrt(diff[low].sum() / ref[low].sum())))
            high_err.append(float(np.sqrt(diff[~low].sum() / ref[~low].sum())))
        summary[f"{arm}_early_low_band_error"] = low_err
        summary[f"{arm}_early_high_band_error"] = high_err
        for key in ("final_test_acc", "max_acc_gap", "train_acc_step"):
            _mean_std(summary, f"{arm}_{key}")
    summary["early_step"] = int(eval_steps[max(1, eval_steps.size // 10)])
    summary["deviations"] = _image_deviations(summary)
    summary["target_peak_k"] = float(k[spectral_peaks(rss(targets[0]["full"]))[0]])

    coords = {"arm": list(IMAGE_ARMS), "seed": list(exp.seeds), "step": eval_steps, "k": k}
    data_vars = {}
    for key, name in (("train_loss", "training MSE on one-hot targets"),
                      ("test_loss", "test MSE"), ("train_acc", "training accuracy"),
                      ("test_acc", "test accuracy")):
        data_vars[key] = (("arm", "seed", "step"), np.array(
            [[r.log.evals(key) for r in runs[a]] for a in IMAGE_ARMS]), {"long_name": name})
    for where in ("train", "full"):
        data_vars[f"output_{where}_amplitude"] = (("arm", "seed", "step", "k"), np.array(
            [[rss(r.spectra[f"output_{where}"]) for r in runs[a]] for a in IMAGE_ARMS]),
            {"long_name": f"root-sum-square over classes of |F_d[h_c](k)|, {where} set"})
        data_vars[f"target_{where}_amplitude"] = (("seed", "k"), np.array(
            [rss(t[where]) for t in targets]),
            {"long_name": f"root-sum-square over classes of |F_d[y_c](k)|, {where} set"})
        data_vars[f"spectral_distance_{where}"] = (("arm", "seed", "step"), np.array(
            [curves[a][where] for a in IMAGE_ARMS]),
            {"long_name": f"||F[h] - F[y]|| / ||F[y]|| over k and classes, {where} set"})
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs["fourier_convention"] = CONVENTION
    ds.attrs["direction"] = "first principal direction of all images (train + test)"
    figures = {"accuracy": _image_accuracy_figure(ds, arms)}
    for arm in IMAGE_ARMS:
        figures[f"spectra_{arm}"] = _image_spectra_figure(ds, arm, snaps, arms[arm])
    return Outcome(dataset=ds, summary=summary, figures=figures)


def _image_deviations(summary: dict) -> list[str]:
    """Where this run departs from the paper's image observations (spec G1.6), in words."""
    notes = []
    gap = np.asarray(summary["large_init_max_acc_gap"])
    final_gap = np.asarray(summary["large_init_final_train_acc"]) - np.asarray(
        summary["large_init_final_test_acc"])
    if np.any(final_gap > 0.5 * gap):
        notes.append("large init: the test accuracy has not caught up with the training "
                     "accuracy by the end of the run (no late generalisation seen); final test "
                     f"accuracy {np.round(summary['large_init_final_test_acc'], 3).tolist()}")
    if np.any(gap <= 0.1):
        notes.append("large init: training accuracy did not run ahead of test accuracy by "
                     "more than 0.1 in every seed")
    if np.any(np.asarray(summary["default_init_max_acc_gap"]) >= 0.1):
        notes.append("default init: a train-test accuracy gap of 0.1 or more appeared")
    if not all(np.asarray(summary["default_init_early_low_band_error"])
               < np.asarray(summary["default_init_early_high_band_error"])):
        notes.append("default init: low frequencies were not fitted first in every seed")
    return notes


def _image_accuracy_figure(ds: xr.Dataset, arms) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    steps = np.maximum(ds.step.values, 1)
    for ax, arm in zip(axes, IMAGE_ARMS, strict=True):
        for part in ("train", "test"):
            _band(ax, steps, ds[f"{part}_acc"].sel(arm=arm).values, COLORS[part], part)
        alpha, opt, lr = arms[arm]
        ax.set_title(f"α = {alpha:g}, {opt} lr {lr:g}")
        ax.set_xscale("log")
        ax.set_xlabel("step")
    axes[0].set_ylabel("accuracy (mean, min–max over seeds)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def _image_spectra_figure(ds: xr.Dataset, arm: str, snaps, setting) -> plt.Figure:
    fig, axes = plt.subplots(2, len(snaps), figsize=(4 * len(snaps), 6), sharex=True,
                             squeeze=False)
    sel = ds.sel(arm=arm).isel(seed=0)
    for row, where in enumerate(("train", "full")):
        for col, step in enumerate(snaps):
            ax = axes[row, col]
            ax.plot(ds.k, sel[f"output_{where}_amplitude"].sel(step=step), color="tab:blue",
                    label="output")
            ax.plot(ds.k, sel[f"target_{where}_amplitude"], color="tab:orange", label="target")
            ax.set_title(f"{where} set, step {step}")
        axes[row, 0].set_ylabel("rss over classes of |F_d(k)|")
    for ax in axes[-1]:
        ax.set_xlabel("k along the first principal direction")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"α = {setting[0]:g}, {setting[1]} lr {setting[2]:g}")
    fig.tight_layout()
    return fig
