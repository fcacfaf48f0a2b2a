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

import numpy as np
import torch
import xarray as xr
from torch import nn

from freqdyn.analysis.stats import mean_std
from freqdyn.errors import InputError
from freqdyn.grok.nudft import (
    nudft,
    relative_error_at_peaks,
    spectral_mismatch,
)
from freqdyn.nets.records import TrainingLog, train_loop
from freqdyn.runs.experiment import Experiment
from freqdyn.runs.runner import Outcome

CONVENTION = ("F[f](k) = (1/n) sum_j f(x_j) exp(-i k x_j), angular k (no 2 pi); along a unit "
              "direction d for vector inputs: x_j -> d.x_j")
ALIASING_CONDITIONS = ("sparse", "dense", "uniform")
GRID_POINTS = 10000


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


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
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
            return mse(model(xs["train"]), ys["train"])
        epoch, index = divmod(step, per_epoch)
        if epoch not in orders:
            orders.clear()
            gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            orders[epoch] = torch.randperm(n, generator=gen).to(device)
        rows = orders[epoch][index * batch:(index + 1) * batch]
        return mse(model(xs["train"][rows]), ys["train"][rows])

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
                values[f"{part}_loss"] = float(mse(out, ys[part]))
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
    fall_step = int(steps[after[0]]) if fell else None
    train_below = np.nonzero(train < train[0])[0]
    train_fall = int(steps[train_below[0]]) if train_below.size else None
    grokked = bool(rise > rise_tolerance and train[peak] < train[0] and fell)
    delay = None if fall_step is None or train_fall is None else fall_step - train_fall
    return {"test_peak_step": int(steps[peak]), "test_rise": rise, "test_fell": fell,
            "test_fall_step": fall_step, "train_fall_step": train_fall,
            "delay": delay, "grokked": grokked,
            "max_gap": float(np.max(test - train) / test[0]),
            "final_train_loss": float(train[-1]), "final_test_loss": float(test[-1])}


def add_mean_std(summary: dict, key: str) -> None:
    """``key_mean`` and ``key_std`` (sample std over seeds, freqdyn.analysis.stats)."""
    summary[f"{key}_mean"], summary[f"{key}_std"] = (float(v) for v in mean_std(summary[key]))


def make_optimizer(name: str, model: nn.Module, lr: float, field_name: str,
                   weight_decay: float = 0.0):
    """``adam``, ``adamw`` (decoupled weight decay, Omnigrok's choice) or ``sgd``; for adam
    and sgd a ``weight_decay`` is torch's L2 term added to the gradient."""
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise InputError(field_name, f"expected 'adam', 'adamw' or 'sgd', got {name!r}")


def run_lengths(exp: Experiment) -> tuple[int, int]:
    steps = exp.number("steps", integer=True, low=1)
    every = exp.number("eval_every", integer=True, low=1)
    return steps, every


# ----------------------------------------------------------------------- sin 6x aliasing

def _aliasing_dataset(runs, target_train, target_test, seeds, eval_steps, k, snaps,
                      x_test) -> xr.Dataset:
    """result.nc of the aliasing study: losses, output and target spectra, snapshots."""
    coords = {"condition": list(ALIASING_CONDITIONS), "seed": seeds,
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
        [[r.snapshots[s][:, 0] for s in snaps] for r in runs["sparse"]]),
        {"long_name": "network output h(x) on the test points, sparse condition"})
    ds = xr.Dataset(data, coords={**coords, "snapshot": snaps, "x": x_test})
    ds.attrs["fourier_convention"] = CONVENTION
    return ds


def run_aliasing(exp: Experiment, out: Path, device: str) -> Outcome:
    """sin 6x from aliased samples: the sparse non-uniform set groks, the controls do not."""
    steps, every = run_lengths(exp)
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
            add_mean_std(summary, f"{cond}_{key}")
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

    ds = _aliasing_dataset(runs, target_train, target_test, list(exp.seeds), eval_steps, k,
                           snaps, x_test)
    x_sparse = aliasing_points(n_sparse, "non-uniform", extras=extras, seed=exp.seeds[0])
    return Outcome(dataset=ds, summary=summary, figure_set="grok.aliasing",
                   figure_data={"layouts": layouts, "x_sparse": x_sparse, "snaps": snaps,
                                "ds": ds})


# --------------------------------------------------------------------------------- parity


# ---------------------------------------------------------------------------------- image
