"""Training on operation tables with full logging, phase times t1–t4 and the t4(r) power law.

:func:`train_modular` trains one model (see :mod:`freqdyn.grok.models`) on one split table
(:mod:`freqdyn.grok.modular`) through the shared loop :func:`freqdyn.nets.loop.train_loop`
with AdamW and a linear warm-up (:func:`freqdyn.nets.loop.adamw`).  The settings ``cfg``
(keys, defaults):

=================== ====================================================================
key                 meaning (default)
=================== ====================================================================
model, sizes        see :func:`freqdyn.grok.models.build_model` ("mlp")
p                   modulus, or 120 for the S5 operations (97)
operation           a key of :data:`freqdyn.grok.modular.OPERATIONS` ("+")
train_fraction      r = |train| / |table| (0.3)
dedupe_symmetric    one of (x, y), (y, x) for symmetric operations (false)
split               "random" or "authors" (Nanda et al.'s exact split; see
                    :mod:`freqdyn.grok.modular`) ("random")
output              "answers" (n classes) or "vocabulary" (Nanda: the unembedding maps to
                    every input token, the n elements and "=", n + 1 classes) ("answers")
precision           "float32", or "float64": logits cast to float64 before the log-softmax
                    of every loss, as the authors do ("float32")
loss                "cross_entropy", or "stablemax" (Prieto et al. 2025; the fix for
                    float32 softmax collapse) for the training loss ("cross_entropy")
gradient_filter     "none", "grokfast-ema" (Lee et al. 2024; ``grokfast_alpha`` 0.98,
                    ``grokfast_lambda`` 2) or "orthogonal" (⊥Grad, Prieto et al. 2025);
                    see :mod:`freqdyn.nets.gradient_filters` ("none")
lr                  peak AdamW learning rate (1e-3)
weight_decay        AdamW decoupled weight decay λ (1.0)
betas               AdamW (β1, β2) ([0.9, 0.98])
warmup              linear warm-up updates (10)
batch_size          "full", or an integer; default min(512, ⌊n_train/2⌋) as Power et al.
steps               update budget (10000)
eval_every          updates between evaluations on the whole train and validation sets (10)
clip                gradient-norm clipping threshold (none)
power_law           [a, γ, b] of t4(r) = a (100 r)^(−γ) + b: caps the budget at the
                    stopping rule ⌈t4(r)⌉ + stop_margin (none)
stop_margin         ε of the stopping rule, in updates (1000)
after_t4            end the run this many updates after t4 (none: run the whole budget)
checkpoint_every    updates between checkpoints (100 evaluations)
=================== ====================================================================

Logged quantities.  Every update t (θ_t → θ_{t+1}): the loop's ``loss`` (objective with
penalties), ``grad_norm`` ‖∇L(θ_t)‖₂, ``param_norm`` ‖θ_t‖₂, ``update_cosine``
cos(θ_t, θ_{t+1}), and this module's ``batch_loss`` (mean cross-entropy in nats on the
training batch, penalties excluded) and ``batch_acc`` (fraction of the batch predicted
right), both at θ_t; with a full batch they are the training loss and accuracy at every
step.  Every ``eval_every`` updates: ``train_loss``, ``train_acc``, ``val_loss``,
``val_acc`` on the whole sets (no perturbation, no penalty), plus ``evaluate_extra``.

Phase times (Notsawo et al. 2023), read from the evaluations, so to the resolution
of ``eval_every``: t1 = first step with train accuracy > 0, t2 = first with train accuracy
= 1 (memorised), t3 = first with validation accuracy > 0, t4 = first with validation
accuracy = 1 (generalised); ``None`` where not reached.  A run "groks" when t4 exists;
the grokking delay is t4 − t2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from scipy.optimize import curve_fit

from freqdyn.analysis.stats import mean_std
from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.grok.export import export_seed_models
from freqdyn.grok.models import build_model
from freqdyn.grok.modular import ModularData, modular_dataset
from freqdyn.nets.gradient_filters import GrokfastEMA, OrthogonalGradient
from freqdyn.nets.records import TrainingLog, adamw, train_loop
from freqdyn.runs.runner import Outcome, seed_checkpoints

PHASES = ("t1", "t2", "t3", "t4")
EVALUATED = ("train_loss", "train_acc", "val_loss", "val_acc")
BATCH_RECORDS = ("batch_loss", "batch_acc")
#: Updates between checkpoints, in evaluations (checkpoints fall on evaluation steps).
CHECKPOINT_EVALS = 100


@dataclass(frozen=True)
class PowerLaw:
    """t4(r) = a r^(−γ) + b with r in percent (the paper's constants need r in percent)."""

    a: float
    gamma: float
    b: float

    def __call__(self, r_percent):
        return self.a * np.asarray(r_percent, dtype=float) ** (-self.gamma) + self.b


#: Notsawo et al.'s fit for addition mod 97, r ≥ 20 % (Fig 7).
NOTSAWO_ADDITION = PowerLaw(a=1.09e15, gamma=7.73, b=1442.63)


def fit_power_law(r_percent, t4) -> PowerLaw:
    """Least-squares fit of t4 = a r^(−γ) + b, r in percent, residuals relative to t4.

    Parametrised by log a so that a may span many decades (the paper's a is 1.09e15);
    the start is a straight-line fit of log(t4 − b₀) against log r with b₀ = min(t4)/2.
    """
    r = np.asarray(r_percent, dtype=float)
    t = np.asarray(t4, dtype=float)
    if r.shape != t.shape or r.ndim != 1 or len(r) < 3:
        raise InputError("t4", "needs at least three (r, t4) pairs of equal length")
    if np.any(r <= 0) or np.any(t <= 0) or not np.all(np.isfinite(t)):
        raise InputError("t4", "r and t4 must be positive and finite")
    b0 = 0.5 * t.min()
    slope, intercept = np.polyfit(np.log(r), np.log(t - b0), 1)

    def model(x, log_a, gamma, b):
        return np.exp(log_a - gamma * np.log(x)) + b

    (log_a, gamma, b), _ = curve_fit(model, r, t, p0=(intercept, -slope, b0), sigma=t,
                                     maxfev=20000)
    return PowerLaw(a=float(np.exp(log_a)), gamma=float(gamma), b=float(b))


def stopping_budget(train_fraction: float, law: PowerLaw, margin: int = 1000) -> int:
    """Notsawo et al.'s budget for a run outside the grokking set: ⌈t4(r)⌉ + ε updates."""
    return math.ceil(float(law(100.0 * train_fraction))) + int(margin)


def phase_times(eval_steps, train_acc, val_acc) -> dict[str, int | None]:
    """t1–t4 (Notsawo et al. 2023) from evaluated accuracies: first steps of train acc > 0, = 1 and
    val acc > 0, = 1; ``None`` for a phase never reached."""
    steps = np.asarray(eval_steps)

    def first(mask):
        hits = np.flatnonzero(mask)
        return int(steps[hits[0]]) if len(hits) else None

    train_acc, val_acc = np.asarray(train_acc), np.asarray(val_acc)
    return {"t1": first(train_acc > 0), "t2": first(train_acc >= 1),
            "t3": first(val_acc > 0), "t4": first(val_acc >= 1)}


class _BatchState(dict):
    """The previous update's batch accuracy (``state["train_acc"]`` of the hooks), saved with
    the checkpoints so that a resumed run's noise schedule continues where it stopped."""

    def __init__(self):
        super().__init__(train_acc=0.0)

    def state_dict(self) -> dict:
        return dict(self)

    def load_state_dict(self, saved: dict) -> None:
        self.update(saved)


@dataclass
class ModularRun:
    """One training run: its log, data, trained model, phase times and final numbers."""

    log: TrainingLog
    data: ModularData
    model: torch.nn.Module
    phase_times: dict
    final: dict
    cfg: dict
    seed: int
    seconds: float             # wall-clock seconds of the training loop
    cpu_seconds: float         # CPU seconds of this process during it (all threads)


PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def modular_data(cfg: dict, seed: int) -> ModularData:
    """The split table of ``cfg`` (keys p, operation, train_fraction, dedupe_symmetric, split)."""
    return modular_dataset(cfg.get("p", 97), cfg.get("operation", "+"),
                           cfg.get("train_fraction", 0.3), seed,
                           bool(cfg.get("dedupe_symmetric", False)),
                           split=cfg.get("split", "random"))


def loss_precision(cfg: dict) -> torch.dtype:
    """The dtype of every cross-entropy of ``cfg`` (key ``precision``)."""
    value = cfg.get("precision", "float32")
    if value not in PRECISIONS:
        raise InputError("settings.precision", f"must be one of {tuple(PRECISIONS)}, "
                                              f"got {value!r}")
    return PRECISIONS[value]


def stablemax_log_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """log of StableMax (Prieto et al. 2025, arXiv 2501.04697): p_i = s(x_i) / Σ_j s(x_j)
    with s(x) = x + 1 for x ≥ 0 and 1/(1 − x) for x < 0, which grows linearly, so that
    scaling the logits up cannot drive the loss to floating-point zero (softmax collapse)."""
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - torch.clamp(logits, max=0)))
    return torch.log(s) - torch.log(s.sum(dim=-1, keepdim=True))


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                  dtype: torch.dtype = torch.float32, kind: str = "cross_entropy") -> torch.Tensor:
    """Mean cross-entropy in nats of softmax (``kind = "cross_entropy"``) or StableMax
    (``"stablemax"``), with the logits cast to ``dtype`` first."""
    logits = logits.to(dtype)
    if kind == "stablemax":
        return torch.nn.functional.nll_loss(stablemax_log_probabilities(logits), labels)
    return torch.nn.functional.cross_entropy(logits, labels)


def _batch_size(cfg: dict, n_train: int) -> int | None:
    """``None`` for full batch, else the minibatch size (default min(512, ⌊n/2⌋))."""
    value = cfg.get("batch_size", min(512, n_train // 2))
    if value == "full":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError("settings.batch_size", f"must be \"full\" or a positive integer, "
                                               f"got {value!r}")
    return None if value >= n_train else value


@torch.no_grad()
def evaluate_split(model, pairs: torch.Tensor, labels: torch.Tensor,
                   dtype: torch.dtype = torch.float32) -> tuple[float, float]:
    """(mean cross-entropy in nats, accuracy) of ``model`` on a whole split."""
    logits = model(pairs)
    return (float(cross_entropy(logits, labels, dtype)),
            float((logits.argmax(dim=1) == labels).float().mean()))


def table_loss(model, data: ModularData) -> float:
    """Cross-entropy in nats over the whole table (training and validation pairs), in float64:
    the quantity of Nanda et al.'s final loss (2.41e-7 at P = 113)."""
    pairs, labels = data.all_pairs()
    device = next(model.parameters()).device
    model.eval()
    loss = evaluate_split(model, pairs.to(device), labels.to(device), torch.float64)[0]
    model.train()
    return loss


LOSSES = ("cross_entropy", "stablemax")
GRADIENT_FILTERS = ("none", "grokfast-ema", "orthogonal")


@dataclass(frozen=True)
class ModularSettings:
    """The checked optimisation settings of :func:`train_modular` (module text)."""

    lr: float
    weight_decay: float
    warmup: int
    steps: int
    eval_every: int
    betas: tuple[float, float]
    clip: float | None
    after_t4: int | None
    checkpoint_every: int
    dtype: torch.dtype
    loss: str
    gradient_filter: str
    grokfast: tuple[float, float]

    def gradient_filters(self) -> list:
        """The loop callbacks of ``gradient_filter`` (:mod:`freqdyn.nets.gradient_filters`)."""
        if self.gradient_filter == "grokfast-ema":
            return [GrokfastEMA(*self.grokfast)]
        return [OrthogonalGradient()] if self.gradient_filter == "orthogonal" else []


def _choice(cfg: dict, key: str, choices: tuple[str, ...]) -> str:
    value = cfg.get(key, choices[0])
    if value not in choices:
        raise InputError(f"settings.{key}", f"must be one of {choices}, got {value!r}")
    return value


def _modular_settings(cfg: dict, data: ModularData) -> ModularSettings:
    """Read and check the optimisation settings of ``cfg`` for ``data``."""
    t = Table(cfg, "settings")
    steps = t.integer("steps", 10000, low=0)
    eval_every = t.integer("eval_every", 10, low=1)
    betas = cfg.get("betas", (0.9, 0.98))
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise InputError("settings.betas", f"must be two numbers in [0, 1), got {betas!r}")
    clip = None if cfg.get("clip") is None else t.number("clip", low=0.0, low_open=True)
    if cfg.get("power_law") is not None:
        law = cfg["power_law"]
        if len(law) != 3:
            raise InputError("settings.power_law", f"must be [a, gamma, b], got {law!r}")
        margin = t.integer("stop_margin", 1000, low=0)
        steps = min(steps, stopping_budget(data.train_fraction, PowerLaw(*law), margin))
    after_t4 = None if cfg.get("after_t4") is None else t.integer("after_t4", low=0)
    return ModularSettings(
        lr=t.number("lr", 1e-3, low=0.0, low_open=True),
        weight_decay=t.number("weight_decay", 1.0, low=0.0),
        warmup=t.integer("warmup", 10, low=0), steps=steps, eval_every=eval_every,
        betas=(float(betas[0]), float(betas[1])), clip=clip, after_t4=after_t4,
        checkpoint_every=t.integer("checkpoint_every", CHECKPOINT_EVALS * eval_every, low=1),
        dtype=loss_precision(cfg), loss=_choice(cfg, "loss", LOSSES),
        gradient_filter=_choice(cfg, "gradient_filter", GRADIENT_FILTERS),
        grokfast=(t.number("grokfast_alpha", 0.98, low=0.0, high=1.0),
                  t.number("grokfast_lambda", 2.0, low=0.0)))


def train_modular(cfg: dict, seed: int, device: str = "cpu", *,
                  embedding_hook: Callable | None = None, extra_loss: Callable | None = None,
                  evaluate_extra: Callable | None = None,
                  checkpoint_dir: str | Path | None = None, resume: bool = False,
                  progress: bool | None = None, label: str = "", stateful=(),
                  fingerprint: str | None = None) -> ModularRun:
    """Train ``cfg``'s model on ``cfg``'s table from ``seed`` (module text: keys, records).

    ``embedding_hook(emb, step, state) -> emb`` replaces the training embeddings (e.g. adds
    noise); ``state["train_acc"]`` is the batch accuracy of the previous update (0 before
    the first).  ``extra_loss(model, pairs, labels, step) -> tensor`` is added to the
    cross-entropy (e.g. a penalty).  ``evaluate_extra(model, data, step) -> dict`` adds
    evaluated metrics.  ``seed`` sets the split, the initialisation and the batches.
    With ``checkpoint_dir`` a checkpoint is written every 100 evaluations and at the end;
    ``resume`` continues from the newest one (``stateful`` and ``fingerprint``: see
    :func:`freqdyn.nets.loop.train_loop`).
    """
    data = modular_data(cfg, seed)
    model = build_model(cfg, data, seed).to(device)
    run_settings = _modular_settings(cfg, data)
    steps, eval_every, after_t4 = (run_settings.steps, run_settings.eval_every,
                                   run_settings.after_t4)
    dtype, loss_kind = run_settings.dtype, run_settings.loss

    pairs_train, labels_train = data.pairs_train.to(device), data.labels_train.to(device)
    batch_size = _batch_size(cfg, len(pairs_train))
    batches = torch.Generator().manual_seed(seed)
    optimizer, scheduler = adamw(model, run_settings.lr, run_settings.weight_decay,
                                 betas=run_settings.betas, warmup=run_settings.warmup)

    records: dict[str, list[float]] = {key: [] for key in BATCH_RECORDS}
    state = _BatchState()

    def loss_fn(step: int) -> torch.Tensor:
        if batch_size is None:
            pairs, labels = pairs_train, labels_train
        else:
            index = torch.randperm(len(pairs_train), generator=batches)[:batch_size]
            pairs, labels = pairs_train[index.to(device)], labels_train[index.to(device)]
        if embedding_hook is None:
            logits = model(pairs)
        else:
            logits = model.head(embedding_hook(model.embed(pairs), step, state))
        loss = cross_entropy(logits, labels, dtype, loss_kind)
        accuracy = float((logits.argmax(dim=1) == labels).float().mean())
        records["batch_loss"].append(float(loss.detach()))
        records["batch_acc"].append(accuracy)
        state["train_acc"] = accuracy
        if extra_loss is not None:
            loss = loss + extra_loss(model, pairs, labels, step)
        return loss

    evaluate = _evaluator(model, data, device, dtype, evaluate_extra)

    def merge_records(log: TrainingLog) -> None:
        _merge_batch_records(log, records)

    def stop(log: TrainingLog) -> bool:
        merge_records(log)
        if after_t4 is None:
            return False
        t4 = phase_times(log.eval_steps, log.evals("train_acc"), log.evals("val_acc"))["t4"]
        return t4 is not None and log.eval_steps[-1] >= t4 + after_t4

    start, cpu_start = time.perf_counter(), time.process_time()
    log = train_loop(model, optimizer, loss_fn, steps=steps, evaluate=evaluate,
                     eval_every=eval_every, scheduler=scheduler, clip=run_settings.clip,
                     checkpoint_dir=checkpoint_dir,
                     checkpoint_every=run_settings.checkpoint_every,
                     callbacks=run_settings.gradient_filters(),
                     resume=resume, stop=stop, generators=[batches], progress=progress,
                     label=label or f"{cfg.get('model', 'mlp')} seed {seed}",
                     stateful=[state, *stateful], fingerprint=fingerprint)
    merge_records(log)
    return _finished_run(log, data, model, cfg, seed, time.perf_counter() - start,
                         time.process_time() - cpu_start)


def _evaluator(model, data: ModularData, device: str, dtype: torch.dtype,
               evaluate_extra: Callable | None) -> Callable[[int], dict[str, float]]:
    """``evaluate(step)``: loss and accuracy on both whole splits, plus ``evaluate_extra``."""
    splits = {"train": (data.pairs_train.to(device), data.labels_train.to(device)),
              "val": (data.pairs_val.to(device), data.labels_val.to(device))}

    def evaluate(step: int) -> dict[str, float]:
        model.eval()
        values = {}
        for name, (pairs, labels) in splits.items():
            values[f"{name}_loss"], values[f"{name}_acc"] = evaluate_split(model, pairs, labels,
                                                                           dtype)
        if evaluate_extra is not None:
            values.update(evaluate_extra(model, data, step))
        model.train()
        return values

    return evaluate


def _merge_batch_records(log: TrainingLog, records: dict[str, list[float]]) -> None:
    """Move this process's batch records into the log (restored ones kept on resume)."""
    for key in BATCH_RECORDS:
        log.per_step.setdefault(key, []).extend(records[key])
        records[key].clear()


def _finished_run(log: TrainingLog, data: ModularData, model, cfg: dict, seed: int,
                  seconds: float, cpu_seconds: float) -> ModularRun:
    """The run's phase times and final numbers (the float64 table loss among them)."""
    times = phase_times(log.eval_steps, log.evals("train_acc"), log.evals("val_acc"))
    final = {key: log.last(key) for key in EVALUATED}
    final.update(steps=int(log.eval_steps[-1]), grokked=times["t4"] is not None,
                 table_loss=table_loss(model, data))
    return ModularRun(log=log, data=data, model=model, phase_times=times, final=final,
                      cfg=dict(cfg), seed=seed, seconds=seconds, cpu_seconds=cpu_seconds)


def delay_ratio(times: dict) -> float:
    """(t4 − t2)/t2, the grokking delay in units of the memorisation time (NaN if undefined)."""
    t2, t4 = times["t2"], times["t4"]
    return (t4 - t2) / t2 if t2 and t4 is not None else math.nan


def runs_dataset(runs: list[ModularRun], extra_evals: tuple[str, ...] = ()) -> xr.Dataset:
    """Per-step records over ("seed", "step") and evaluations over ("seed", "eval_step").

    Runs that stopped early are padded with NaN to the longest run.
    """
    n_steps = max(len(run.log.steps) for run in runs)
    longest = max(runs, key=lambda run: len(run.log.eval_steps))
    eval_steps = np.asarray(longest.log.eval_steps)

    def padded(values, length):
        out = np.full(length, np.nan)
        out[: len(values)] = values
        return out

    per_step_meaning = {
        "loss": "training objective at θ_t, penalties included (nats)",
        "grad_norm": "‖∇L(θ_t)‖₂ before clipping", "param_norm": "‖θ_t‖₂",
        "update_cosine": "cos(θ_t, θ_{t+1})",
        "batch_loss": "cross-entropy on the training batch at θ_t (nats)",
        "batch_acc": "accuracy on the training batch at θ_t (fraction)",
    }
    eval_meaning = {
        "train_loss": "cross-entropy on the whole training set (nats)",
        "train_acc": "accuracy on the whole training set (fraction)",
        "val_loss": "cross-entropy on the validation set (nats)",
        "val_acc": "accuracy on the validation set (fraction)",
    }
    variables = {}
    for key, meaning in per_step_meaning.items():
        variables[key] = xr.Variable(
            ("seed", "step"), np.stack([padded(run.log.every(key), n_steps) for run in runs]),
            {"long_name": meaning})
    for key in (*EVALUATED, *extra_evals):
        variables[key] = xr.Variable(
            ("seed", "eval_step"),
            np.stack([padded(run.log.evals(key), len(eval_steps)) for run in runs]),
            {"long_name": eval_meaning.get(key, key)})
    for phase in PHASES:
        variables[phase] = xr.Variable(
            "seed", np.array([np.nan if run.phase_times[phase] is None
                              else run.phase_times[phase] for run in runs], dtype=float),
            {"long_name": f"phase time {phase} (updates; NaN: not reached)"})
    return xr.Dataset(variables, coords={"seed": [run.seed for run in runs],
                                         "step": np.arange(n_steps), "eval_step": eval_steps})


def runs_summary(runs: list[ModularRun]) -> dict:
    """Per-seed phase times, delays and final numbers, with mean and sample std."""
    summary: dict = {"seeds": [run.seed for run in runs]}
    for phase in PHASES:
        summary[phase] = [run.phase_times[phase] for run in runs]
    summary["delay"] = [None if run.phase_times["t4"] is None or run.phase_times["t2"] is None
                        else run.phase_times["t4"] - run.phase_times["t2"] for run in runs]
    summary["delay_ratio"] = [delay_ratio(run.phase_times) for run in runs]
    summary["memorised"] = [run.phase_times["t2"] is not None for run in runs]
    summary["grokked"] = [run.final["grokked"] for run in runs]
    for key in EVALUATED:
        summary[f"final_{key}"] = [run.final[key] for run in runs]
    summary["final_table_loss"] = [run.final["table_loss"] for run in runs]
    summary["max_val_acc"] = [float(np.max(run.log.evals("val_acc"))) for run in runs]
    summary["steps_run"] = [run.final["steps"] for run in runs]
    summary["seconds_per_seed"] = [round(run.seconds, 2) for run in runs]
    summary["seconds_training"] = round(sum(run.seconds for run in runs), 2)
    summary["cpu_seconds_per_seed"] = [round(run.cpu_seconds, 2) for run in runs]
    summary["cpu_seconds_training"] = round(sum(run.cpu_seconds for run in runs), 2)
    for key in ("t2", "t4", "delay_ratio", "final_val_acc"):
        values = [math.nan if v is None else v for v in summary[key]]
        summary[f"{key}_mean"], summary[f"{key}_std"] = (float(v) for v in mean_std(values))
    summary["n_grokked"] = int(sum(summary["grokked"]))
    return summary


def run_modular(exp, out: Path, device: str):
    """Experiment kind "modular": train ``exp``'s settings for every seed; phase times,
    delays (t4 − t2)/t2, final accuracies; curves figure."""

    cfg = dict(exp.settings)
    runs = []
    for seed in exp.seeds:
        folder, resume = seed_checkpoints(out, seed)
        runs.append(train_modular(cfg, seed, device, label=f"{exp.name} seed {seed}",
                                  checkpoint_dir=folder, resume=resume,
                                  fingerprint=exp.fingerprint(seed)))
    summary = runs_summary(runs)
    summary.update(model=cfg.get("model", "mlp"), p=runs[0].data.p,
                   operation=runs[0].data.operation,
                   train_fraction=runs[0].data.train_fraction,
                   n_train=len(runs[0].data.pairs_train),
                   hooked_transformer_files=export_seed_models(runs, out))
    dataset = runs_dataset(runs)
    op = runs[0].data.operation
    title = (f"{cfg.get('model', 'mlp')} on x {op} y mod {runs[0].data.p}, "
             f"r = {runs[0].data.train_fraction:g}")
    return Outcome(dataset=dataset, summary=summary,
                   figure_set="grok.curves", figure_data={"runs": runs, "title": title})
