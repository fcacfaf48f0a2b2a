"""Grokking as the transition from lazy to rich training (Kumar, Bordelon, Gershman, Pehlevan).

Experiment kinds (``freqdyn grok FILE``), on the committee machine of
:mod:`freqdyn.grok.committee` unless stated:

* ``lazy-rich-toy`` (:func:`run_toy`, paper Fig. 1): learning curves of the network, of its
  linearised twin and of kernel gradient descent with K₀; the ridgeless K₀-regression test
  MSE as the plateau level; the exact three-term decomposition of the population loss; the
  test-set NTK–label alignment and the weight norm over training.
* ``lazy-rich-alpha-sweep`` (:func:`run_alpha_sweep`, Fig. 3a): the grok amount against the
  output scale α at lr = η₀N/α², plus a very lazy run (α = ``lazy_alpha``) compared with K₀
  kernel gradient descent.
* ``lazy-rich-phase`` (:func:`run_phase_diagram`, Fig. 3e): grok amount over (α, ε).
* ``modular-mlp-lazy-rich`` (:func:`run_modular_mlp`, Fig. 2): a bias-free two-layer MLP
  with quadratic activation on one-hot pairs (a + b mod p), MSE on one-hot labels, plain GD
  without weight decay; the weight norm rises while it groks.

Grok amount (Kumar et al. 2024, authors' code): t_tr(θ) and t_te(θ) are the first logged steps at
which the train and test MSE fall below θ; grok amount = max(0, t_te(θ) − t_tr(θ)).  With
``relative_threshold = true`` the losses are first divided by their value at step 0 (the
normalised losses of Fig. 3a).  freqdyn's choices for runs that end before a passage: if
the test loss never passes, t_te is taken as the last step and the amount is a lower bound
(``censored``); if the training loss never passes, the amount is undefined (NaN).  The
phase diagram keeps censored runs as "not reached" (see :func:`_phase_summary`).  Passage
times are resolved to the logging grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr
from scipy.stats import spearmanr

from freqdyn.analysis.stats import mean_std
from freqdyn.errors import InputError
from freqdyn.grok.committee import (
    TeacherTask,
    k0_gram,
    kernel_descent_losses,
    kernel_regression_losses,
    ntk_gram,
    stack_tasks,
    sufficient_statistics,
    task_difficulty,
    teacher_task,
    train_committee,
)
from freqdyn.runs.experiment import Experiment
from freqdyn.runs.runner import Outcome

# ---------------------------------------------------------------------------------------------
# passage times and grok amount


def first_passage(steps: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """First step of the grid ``steps`` with ``values`` below ``threshold``; NaN if never."""
    below = np.flatnonzero(np.asarray(values) < threshold)
    return float(np.asarray(steps)[below[0]]) if below.size else float("nan")


def grok_amount(steps: np.ndarray, train: np.ndarray, test: np.ndarray, threshold: float,
                *, relative: bool = False) -> tuple[float, bool]:
    """(max(0, t_te(θ) − t_tr(θ)), censored) with the conventions of the module docstring."""
    train, test = np.asarray(train, dtype=float), np.asarray(test, dtype=float)
    if relative:
        train, test = train / train[0], test / test[0]
    t_train = first_passage(steps, train, threshold)
    t_test = first_passage(steps, test, threshold)
    if np.isnan(t_train):
        return float("nan"), True
    censored = bool(np.isnan(t_test))
    if censored:
        t_test = float(np.asarray(steps)[-1])
    return max(0.0, t_test - t_train), censored


def increases_when_censored(amounts, censored) -> bool:
    """Whether a row of grok amounts increases strictly, where a censored amount is only a
    lower bound: a < b holds when a was reached and b > a (b reached), or b's lower bound
    already exceeds a; a censored a is below nothing, so the row does not increase."""
    amounts, censored = list(amounts), list(censored)
    for j in range(1, len(amounts)):
        a, b = amounts[j - 1], amounts[j]
        if censored[j - 1] or not np.isfinite(a) or not b > a:
            return False
    return True


def log_schedule(steps: int, log_every: int, n_geometric: int = 60) -> np.ndarray:
    """Logged steps: 0, every ``log_every`` steps, the last one, and a geometric grid (log axes)."""
    if log_every < 1:
        raise InputError("settings.log_every", f"must be ≥ 1, got {log_every}")
    grid = np.geomspace(1, max(steps, 1), n_geometric).astype(int)
    return np.unique(np.r_[0, grid, np.arange(0, steps + 1, log_every), steps])


# ---------------------------------------------------------------------------------------------
# shared set-up of committee runs


def _torch_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device", f"{device!r} requested but CUDA is not available")
    return torch.device(device)


def _committee_settings(exp: Experiment) -> dict:
    """The toy-model settings shared by every committee experiment, checked."""
    get = exp.number
    s = {"dim": get("dim", 100, low=1, integer=True),
         "n_train": get("n_train", 550, low=1, integer=True),
         "n_test": get("n_test", 1000, low=2, integer=True),
         "width": get("width", 500, low=1, integer=True),
         "eta0": get("eta0", 1.0, low=1e-12),
         "steps": get("steps", 100_000, low=1, integer=True),
         "log_every": get("log_every", 100, low=1, integer=True),
         "threshold": get("threshold", 0.1, low=0.0),
         "target_scale": get("target_scale", 0.5, low=1e-12)}
    for key in ("centered", "relative_threshold"):
        value = exp.get(key, key == "centered")
        if not isinstance(value, bool):
            raise InputError(f"settings.{key}", f"must be true or false, got {value!r}")
        s[key] = value
    return s


def _seeded_problem(seed: int, s: dict, device: torch.device) -> tuple[TeacherTask, torch.Tensor]:
    """Teacher task and initial weights W₀ ~ N(0, 1) of one seed (same for every α, ε)."""
    gen = torch.Generator().manual_seed(seed)
    task = teacher_task(s["dim"], s["n_train"], s["n_test"], gen,
                        target_scale=s["target_scale"])
    w0 = torch.randn(s["width"], s["dim"], generator=gen, dtype=torch.float64)
    task = TeacherTask(*(getattr(task, k).to(device) for k in
                         ("beta", "x_train", "y_train", "x_test", "y_test")), task.target_scale)
    return task, w0.to(device)


def _batch(exp: Experiment, s: dict, device: torch.device, n_repeat: int):
    """Tasks and W₀ for every (repeat, seed) pair, repeat-major: shapes (n_repeat·n_seeds, …)."""
    problems = [_seeded_problem(seed, s, device) for seed in exp.seeds]
    tasks = [task for _ in range(n_repeat) for task, _ in problems]
    weights = torch.stack([w0 for _ in range(n_repeat) for _, w0 in problems])
    return stack_tasks(tasks), weights


def _k0_baselines(task: TeacherTask, eps, step_size: float, steps: np.ndarray):
    """Ridgeless K₀ regression (train, test MSE), K₀ kernel-GD curves (train, test) and the
    task difficulty yᵀK₀⁻¹y."""
    gram = k0_gram(task.x_train, task.x_train, eps)
    cross = k0_gram(task.x_test, task.x_train, eps)
    reg = kernel_regression_losses(gram, cross, task.y_train, task.y_test)
    descent = kernel_descent_losses(gram, cross, task.y_train, task.y_test, step_size, steps)
    difficulty = task_difficulty(gram, task.y_train).cpu().numpy()
    return [r.cpu().numpy() for r in reg], [d.cpu().numpy() for d in descent], difficulty


def _stats(values) -> dict:
    """Mean and sample standard deviation over seeds (:func:`freqdyn.analysis.stats.mean_std`):
    NaN when some seed's value is not finite (an event it did not reach)."""
    mean, std = mean_std(np.asarray(values, dtype=float).ravel())
    return {"mean": float(mean), "std": float(std)}


def _long(text: str, data: np.ndarray, dims: tuple[str, ...]) -> xr.DataArray:
    """A variable with its meaning and units in ``long_name``."""
    return xr.DataArray(data, dims=dims, attrs={"long_name": text})


# ---------------------------------------------------------------------------------------------
# Fig. 1: the toy model


CURVE_TEXT = {
    "train_loss": "training MSE of the centered network (label units squared)",
    "test_loss": "test-set MSE of the centered network",
    "population_loss": "exact population MSE, the sum of the three decomposition terms",
    "variance_term": "variance error 1/4 (2s|β|²/D − αε Tr M/D)²",
    "misalignment_term": "misalignment error ‖αεM − 2sββᵀ‖_F²/(2D²)",
    "linear_term": "power in linear modes α²|w̄|²/D",
    "param_norm": "weight norm ‖W‖_F",
    "relative_change": "relative parameter change ‖W − W₀‖_F/‖W₀‖_F",
    "twin_train_loss": "training MSE of the linearised twin",
    "twin_test_loss": "test-set MSE of the linearised twin",
    "twin_population_loss": "exact population MSE of the linearised twin",
    "alignment": "test-set NTK–label alignment (code variant, dimensionless)",
    "population_check": "population MSE from the neurons' Gaussian moments (independent check)",
}


def _toy_seed_row(c: dict, i: int, steps, k0_test: float, k0_descent_final: float, s: dict,
                  tolerance: float) -> dict:
    """The toy's report for seed index ``i``: plateau, test bump, falls, grok amount,
    alignment and weight norm (curves ``c`` of :func:`train_committee`)."""
    train, test, align = c["train_loss"][i], c["test_loss"][i], c["alignment"][i]
    peak = int(np.argmax(test))
    plateau = float(train[peak])
    ratio = plateau / k0_test
    amount, censored = grok_amount(steps, train, test, s["threshold"],
                                   relative=s["relative_threshold"])
    after = slice(peak, None)
    rho = spearmanr(align[after], test[after]).statistic if test[after].size > 2 else 0.0
    rows = {
        "k0_regression_test_loss": k0_test, "train_plateau": plateau,
        "plateau_ratio": ratio, "plateau_near_k0": bool(abs(ratio - 1) < tolerance),
        "test_initial": float(test[0]), "test_peak": float(test[peak]),
        "test_peak_step": int(steps[peak]),
        "test_rises": bool(test[peak] > 1.05 * test[0]),
        "train_final": float(train[-1]), "test_final": float(test[-1]),
        "both_fall": bool(train[-1] < 0.5 * plateau and test[-1] < 0.5 * test[peak]),
        "grok_amount": amount, "grok_censored": censored,
        "t_train": first_passage(steps, train, s["threshold"]),
        "t_test": first_passage(steps, test, s["threshold"]),
        "alignment_initial": float(align[0]), "alignment_at_peak": float(align[peak]),
        "alignment_final": float(align[-1]),
        "alignment_rises": bool(align[-1] > 1.05 * align[peak] and rho < -0.5),
        "alignment_test_spearman": float(rho),
        "param_norm_initial": float(c["param_norm"][i, 0]),
        "param_norm_final": float(c["param_norm"][i, -1]),
        "norm_rises": bool(c["param_norm"][i, -1] > c["param_norm"][i, 0]),
        "twin_test_final": float(c["twin_test_loss"][i, -1]),
        "k0_descent_test_final": k0_descent_final,
        "test_set_vs_population_rel": float(np.max(np.abs(
            test / c["population_loss"][i] - 1))),
    }
    return rows


def run_toy(exp: Experiment, out: Path, device: str) -> Outcome:
    """Paper Fig. 1: lazy plateau at the K₀-regression level, then feature learning.

    Extra settings: ``alpha`` (1), ``eps`` (0.02), ``plateau_tolerance`` (0.3: the training
    loss at the test-loss peak must lie within this relative distance of the ridgeless
    K₀-regression test MSE).
    """
    s = _committee_settings(exp)
    alpha = exp.number("alpha", 1.0, low=1e-12)
    eps = exp.number("eps", 0.02, low=0.0)
    tolerance = exp.number("plateau_tolerance", 0.3, low=0.0)
    dev = _torch_device(device)
    task, w0 = _batch(exp, s, dev, 1)
    steps = log_schedule(s["steps"], s["log_every"])
    run = train_committee(task, w0, alpha=alpha, eps=eps, eta0=s["eta0"], steps=s["steps"],
                          log_steps=steps, centered=s["centered"], check=True, label=exp.name)
    (reg_train, reg_test), (gd_train, gd_test), difficulty = _k0_baselines(
        task, eps, 2 * s["eta0"] / s["n_train"], steps)
    c = run.curves
    seeds = list(exp.seeds)

    summary = {key: [] for key in (
        "k0_regression_test_loss", "train_plateau", "plateau_ratio", "plateau_near_k0",
        "test_initial", "test_peak", "test_peak_step", "test_rises", "train_final",
        "test_final", "both_fall", "grok_amount", "grok_censored", "t_train", "t_test",
        "alignment_initial", "alignment_at_peak", "alignment_final", "alignment_rises",
        "alignment_test_spearman", "param_norm_initial", "param_norm_final", "norm_rises",
        "twin_test_final", "k0_descent_test_final", "test_set_vs_population_rel")}
    for i in range(len(seeds)):
        rows = _toy_seed_row(c, i, steps, float(reg_test[i]), float(gd_test[i, -1]), s,
                             tolerance)
        for key, value in rows.items():
            summary[key].append(value)
    decomposition_error = np.abs(c["population_loss"] / c["population_check"] - 1)
    summary["decomposition_max_rel_error"] = float(decomposition_error.max())
    summary["decomposition_terms_sum_max_rel_error"] = float(np.max(np.abs(
        (c["variance_term"] + c["misalignment_term"] + c["linear_term"])
        / c["population_check"] - 1)))
    for key in ("plateau_ratio", "test_peak", "test_final", "grok_amount", "alignment_final"):
        summary[f"{key}_stats"] = _stats(summary[key])
    summary["k0_task_difficulty"] = difficulty.tolist()
    summary["settings"] = {**s, "alpha": alpha, "eps": eps}
    summary.update(_plateau_margin(summary["plateau_ratio"], tolerance))

    data = {k: _long(CURVE_TEXT[k], v, ("seed", "step")) for k, v in c.items()}
    data["k0_descent_train_loss"] = _long("training MSE of kernel GD with K₀", gd_train,
                                          ("seed", "step"))
    data["k0_descent_test_loss"] = _long("test MSE of kernel GD with K₀", gd_test,
                                         ("seed", "step"))
    data["k0_regression_test_loss"] = _long("test MSE of ridgeless K₀ regression",
                                            reg_test, ("seed",))
    data["k0_regression_train_loss"] = _long("training MSE of ridgeless K₀ regression",
                                             reg_train, ("seed",))
    ds = xr.Dataset(data, coords={"seed": seeds, "step": steps})
    return Outcome(ds, summary, figure_set="grok.lazy-rich-toy", figure_data={"ds": ds})


# ---------------------------------------------------------------------------------------------
# Fig. 3(a): α sweep


def run_alpha_sweep(exp: Experiment, out: Path, device: str) -> Outcome:
    """Paper Fig. 3(a): the grok amount grows with the laziness α (lr = η₀N/α²).

    Extra settings: ``alphas`` ([0.5, 1, 2, 4]), ``eps`` (0.25), ``lazy_alpha`` (10⁴: a
    run in the lazy limit, compared with K₀ kernel gradient descent over the same steps).
    """
    s = _committee_settings(exp)
    alphas = exp.get("alphas", [0.5, 1.0, 2.0, 4.0])
    if (not isinstance(alphas, list) or len(alphas) < 2
            or not all(isinstance(a, (int, float)) and a > 0 for a in alphas)):
        raise InputError("settings.alphas", f"must be a list of ≥ 2 positive numbers, got "
                                           f"{alphas!r}")
    eps = exp.number("eps", 0.25, low=0.0)
    lazy_alpha = exp.number("lazy_alpha", 10_000.0, low=1e-12)
    dev = _torch_device(device)
    all_alphas = [float(a) for a in alphas] + [lazy_alpha]
    n_seed = len(exp.seeds)
    task, w0 = _batch(exp, s, dev, len(all_alphas))
    alpha_per_run = torch.tensor(np.repeat(all_alphas, n_seed), dtype=torch.float64,
                                 device=dev)
    steps = log_schedule(s["steps"], s["log_every"])
    run = train_committee(task, w0, alpha=alpha_per_run, eps=eps, eta0=s["eta0"],
                          steps=s["steps"], log_steps=steps, centered=s["centered"],
                          twin=False, alignment=False, label=exp.name)
    shape = (len(all_alphas), n_seed, steps.size)
    curves = {k: v.reshape(shape).transpose(1, 0, 2) for k, v in run.curves.items()}
    first = TeacherTask(*(getattr(task, k)[:n_seed] for k in
                          ("beta", "x_train", "y_train", "x_test", "y_test")),
                        task.target_scale)
    step_size = 2 * s["eta0"] / s["n_train"]
    (_, reg_test), (gd_train, gd_test), _ = _k0_baselines(first, eps, step_size, steps)
    # the finite-width lazy limit: kernel GD with the empirical NTK of W₀ (the twin's kernel)
    w_bar0, second0 = sufficient_statistics(w0[:n_seed])
    _, emp_test = kernel_descent_losses(
        ntk_gram(first.x_train, first.x_train, w_bar0, second0, eps),
        ntk_gram(first.x_test, first.x_train, w_bar0, second0, eps),
        first.y_train, first.y_test, step_size, steps[-1:])
    emp_test = emp_test[..., -1].cpu().numpy()

    n_alpha = len(alphas)
    amounts = np.empty((n_seed, n_alpha))
    censored = np.zeros((n_seed, n_alpha), dtype=bool)
    final_test = curves["test_loss"][:, :n_alpha, -1]
    for i in range(n_seed):
        for j in range(n_alpha):
            amounts[i, j], censored[i, j] = grok_amount(
                steps, curves["train_loss"][i, j], curves["test_loss"][i, j], s["threshold"],
                relative=s["relative_threshold"])
    increasing = [increases_when_censored(row, cut) for row, cut in zip(amounts, censored,
                                                                         strict=True)]
    absolute = np.array([[grok_amount(steps, curves["train_loss"][i, j],
                                      curves["test_loss"][i, j], 0.1)[0]
                          for j in range(n_alpha)] for i in range(n_seed)])
    lazy_test = curves["test_loss"][:, -1, -1]
    lazy_vs_descent = lazy_test / gd_test[:, -1] - 1
    summary = {
        "alphas": [float(a) for a in alphas],
        "grok_amount": amounts.tolist(), "grok_censored": censored.tolist(),
        "grok_amount_mean": mean_std(np.where(censored, np.nan, amounts))[0].tolist(),
        "grok_amount_std": mean_std(np.where(censored, np.nan, amounts))[1].tolist(),
        "increasing_in_alpha": increasing,
        "final_test_loss": final_test.tolist(),
        "final_test_increasing_in_alpha": [bool(np.all(np.diff(r) > 0)) for r in final_test],
        "lazy_alpha": lazy_alpha, "lazy_final_test_loss": lazy_test.tolist(),
        "k0_descent_final_test_loss": gd_test[:, -1].tolist(),
        "lazy_vs_k0_descent_rel": lazy_vs_descent.tolist(),
        "lazy_vs_k0_descent_max_abs_rel": float(np.abs(lazy_vs_descent).max()),
        "empirical_kernel_descent_final_test_loss": emp_test.tolist(),
        "lazy_vs_empirical_kernel_rel": (lazy_test / emp_test - 1).tolist(),
        "lazy_vs_empirical_kernel_max_abs_rel": float(np.abs(lazy_test / emp_test - 1).max()),
        "grok_amount_absolute_0.1": absolute.tolist(),
        "k0_regression_test_loss": reg_test.tolist(),
        "lazy_vs_k0_regression_rel": (lazy_test / reg_test - 1).tolist(),
        "settings": {**s, "eps": eps},
    }
    ds = _sweep_dataset(curves, amounts, censored, gd_train, gd_test,
                        {"seed": list(exp.seeds), "alpha": all_alphas, "step": steps})
    return Outcome(ds, summary, figure_set="grok.alpha-sweep",
                   figure_data={"ds": ds, "n_alpha": n_alpha})


def _sweep_dataset(curves, amounts, censored, gd_train, gd_test, coords) -> xr.Dataset:
    """result.nc of the α sweep (the lazy-limit column has no grok amount)."""
    dims = ("seed", "alpha", "step")
    data = {k: _long(CURVE_TEXT[k], v, dims) for k, v in curves.items()}
    data["grok_amount"] = _long("max(0, t_te(θ) − t_tr(θ)) in GD steps (a lower bound where "
                                "censored)",
                                np.pad(amounts, ((0, 0), (0, 1)), constant_values=np.nan),
                                ("seed", "alpha"))
    data["censored"] = _long("1 where the test loss never passes θ within the run",
                             np.pad(censored, ((0, 0), (0, 1))).astype(np.int8),
                             ("seed", "alpha"))
    data["k0_descent_test_loss"] = _long("test MSE of kernel GD with K₀", gd_test,
                                         ("seed", "step"))
    data["k0_descent_train_loss"] = _long("training MSE of kernel GD with K₀", gd_train,
                                          ("seed", "step"))
    return xr.Dataset(data, coords=coords)


# ---------------------------------------------------------------------------------------------
# Fig. 3(e): (α, ε) phase diagram


def _phase_summary(amounts: np.ndarray, censored: np.ndarray, alphas, epsilons) -> dict:
    """Cell means and rank correlations of the grok amount (seed, α, ε), censored runs kept
    as "not reached".

    A run whose test (or train) loss never passes θ has no grok amount: its cell's mean is
    NaN, and so is every statistic that needs that cell (the corners).  The Spearman
    correlations run over the cells that every seed reached, with their number
    (``cells_reached`` of ``cells``) next to them.  The lower bounds (last step − t_tr) stay
    in ``grok_amount_lower_bound``.
    """
    reached = np.where(censored, np.nan, amounts)
    mean = mean_std(reached)[0]
    a_grid, e_grid = np.meshgrid(alphas, epsilons, indexing="ij")
    finite = np.isfinite(mean)

    def spearman(grid):
        if finite.sum() < 3:
            return float("nan")
        return float(spearmanr(grid[finite], mean[finite]).statistic)

    best = np.nanargmax(mean) if finite.any() else None
    return {
        "alphas": alphas, "epsilons": epsilons,
        "grok_amount_mean": [[None if not np.isfinite(v) else float(v) for v in row]
                             for row in mean],
        "grok_amount": [[[None if not np.isfinite(v) else float(v) for v in row]
                         for row in seed] for seed in reached],
        "grok_amount_lower_bound": amounts.tolist(),
        "censored_fraction": float(censored.mean()),
        "cells": int(mean.size), "cells_reached": int(finite.sum()),
        "spearman_amount_alpha": spearman(a_grid), "spearman_amount_eps": spearman(e_grid),
        "lazy_misaligned_corner": float(mean[-1, 0]), "rich_aligned_corner": float(mean[0, -1]),
        "max_cell": (None if best is None else
                     [float(a_grid.ravel()[best]), float(e_grid.ravel()[best])]),
    }


def _plateau_margin(ratios: list[float], tolerance: float) -> dict:
    """The plateau check's margin, tolerance − max |ratio − 1|, against the seed spread of the
    ratio (sample std): a margin below the spread is a pass the next seed may undo, and the
    report says so (``plateau_margin_below_spread``)."""
    ratios = np.asarray(ratios, dtype=float)
    margin = float(tolerance - np.max(np.abs(ratios - 1)))
    spread = float(mean_std(ratios)[1]) if ratios.size > 1 else float("nan")
    return {"plateau_tolerance": float(tolerance), "plateau_margin": margin,
            "plateau_ratio_spread": spread,
            "plateau_margin_below_spread": bool(np.isfinite(spread) and margin < spread)}


def run_phase_diagram(exp: Experiment, out: Path, device: str) -> Outcome:
    """Paper Fig. 3(e): grok amount over laziness α and initial alignment ε.

    Extra settings: ``alphas``, ``epsilons`` (grids).  Every (α, ε, seed) is one configuration
    of a single batched run of ``steps`` GD steps (the paper stops at convergence; the fixed
    length only affects censored cells).  A run whose loss never passes θ has no grok amount
    ("not reached", :func:`_phase_summary`); the lower bounds of the module docstring are kept
    as ``grok_amount_lower_bound``, and the censored cells are marked in the figure.
    """
    s = _committee_settings(exp)
    grids = {}
    for key in ("alphas", "epsilons"):
        values = exp.require(key)
        if (not isinstance(values, list) or len(values) < 2
                or not all(isinstance(v, (int, float)) and v > 0 for v in values)):
            raise InputError(f"settings.{key}", f"must be a list of ≥ 2 positive numbers, got "
                                               f"{values!r}")
        grids[key] = [float(v) for v in values]
    alphas, epsilons = grids["alphas"], grids["epsilons"]
    dev = _torch_device(device)
    n_seed, n_a, n_e = len(exp.seeds), len(alphas), len(epsilons)
    task, w0 = _batch(exp, s, dev, n_a * n_e)
    cell_alpha = np.repeat(np.repeat(alphas, n_e), n_seed)
    cell_eps = np.repeat(np.tile(epsilons, n_a), n_seed)
    steps = log_schedule(s["steps"], s["log_every"])
    run = train_committee(task, w0, alpha=torch.tensor(cell_alpha, device=dev),
                          eps=torch.tensor(cell_eps, device=dev), eta0=s["eta0"],
                          steps=s["steps"], log_steps=steps, centered=s["centered"],
                          twin=False, alignment=False, label=exp.name)
    shape = (n_a, n_e, n_seed, steps.size)
    curves = {k: v.reshape(shape).transpose(2, 0, 1, 3) for k, v in run.curves.items()}
    amounts = np.empty((n_seed, n_a, n_e))
    censored = np.zeros((n_seed, n_a, n_e), dtype=bool)
    for idx in np.ndindex(n_seed, n_a, n_e):
        amounts[idx], censored[idx] = grok_amount(
            steps, curves["train_loss"][idx], curves["test_loss"][idx], s["threshold"],
            relative=s["relative_threshold"])
    summary = _phase_summary(amounts, censored, alphas, epsilons)
    summary["settings"] = s
    reached = np.where(censored, np.nan, amounts)
    dims = ("seed", "alpha", "eps", "step")
    data = {k: _long(CURVE_TEXT[k], v, dims) for k, v in curves.items()
            if k in ("train_loss", "test_loss", "population_loss", "param_norm")}
    data["grok_amount"] = _long("max(0, t_te(θ) − t_tr(θ)) in GD steps; NaN (not reached) "
                                "where a loss never passes θ", reached,
                                ("seed", "alpha", "eps"))
    data["censored"] = _long("1 where the test loss never passes θ within the run",
                             censored.astype(np.int8), ("seed", "alpha", "eps"))
    ds = xr.Dataset(data, coords={"seed": list(exp.seeds), "alpha": alphas, "eps": epsilons,
                                  "step": steps})
    return Outcome(ds, summary, figure_set="grok.phase-diagram", figure_data={"ds": ds})


# ---------------------------------------------------------------------------------------------
# Fig. 2: modular addition with a quadratic MLP
