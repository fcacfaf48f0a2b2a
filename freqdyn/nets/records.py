"""Per-step records, evaluations and early stopping on the one training loop.

The interface the grokking studies train through: :func:`train_loop` runs
:class:`freqdyn.nets.loop.TrainingLoop` with :class:`StepRecords` (per update: loss,
‖∇L‖₂ before clipping, ‖θ‖₂, cos(θ_t, θ_{t+1}); evaluations at step 0, every k steps and
at the end; an early-stop rule), and :func:`adamw` is the grokking optimiser."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from freqdyn import time_budget
from freqdyn.errors import InputError, TrainingDiverged
from freqdyn.nets.loop import Callback, Checkpoints, TrainingLoop
from freqdyn.progress import say

PER_STEP = ("loss", "grad_norm", "param_norm", "update_cosine")


@dataclass
class TrainingLog:
    """Per-step records (``every``) and evaluations (``evals``) of one run.

    ``steps`` are the update steps 0 … T−1 that were taken; ``eval_steps`` the steps at
    which ``evaluate`` ran (0 … T, the state after the last update included).
    """

    per_step: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PER_STEP})
    eval_steps: list[int] = field(default_factory=list)
    eval_values: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def steps(self) -> np.ndarray:
        return np.arange(len(self.per_step["loss"]))

    def every(self, key: str) -> np.ndarray:
        """The per-step record ``key`` (one of ``PER_STEP``), shape (T,)."""
        if key not in self.per_step:
            raise KeyError(f"{key!r} is not a per-step record; they are {list(PER_STEP)}")
        return np.asarray(self.per_step[key], dtype=float)

    def evals(self, key: str) -> np.ndarray:
        """The evaluated quantity ``key`` at ``eval_steps``."""
        if key not in self.eval_values:
            raise KeyError(f"{key!r} was not evaluated; evaluated: {sorted(self.eval_values)}")
        return np.asarray(self.eval_values[key], dtype=float)

    def last(self, key: str) -> float:
        """The latest evaluated value of ``key``."""
        return float(self.evals(key)[-1])

    def add_eval(self, step: int, values: dict[str, float]) -> None:
        if self.eval_steps and self.eval_steps[-1] == step:
            return
        self.eval_steps.append(int(step))
        for key, value in values.items():
            column = self.eval_values.setdefault(key, [])
            if len(column) != len(self.eval_steps) - 1:
                raise ValueError(f"evaluate() returned {key!r} at step {step} but not before")
            column.append(float(value))

    def state(self) -> dict:
        return {"per_step": self.per_step, "eval_steps": self.eval_steps,
                "eval_values": self.eval_values, "stopped_early": self.stopped_early}

    @classmethod
    def from_state(cls, state: dict) -> TrainingLog:
        return cls(per_step={k: list(v) for k, v in state["per_step"].items()},
                   eval_steps=list(state["eval_steps"]),
                   eval_values={k: list(v) for k, v in state["eval_values"].items()},
                   stopped_early=state["stopped_early"])


class StepRecords(Callback):
    """Per update t: the loss L(θ_t), ‖∇L(θ_t)‖₂ before clipping, ‖θ_t‖₂ and cos(θ_t, θ_{t+1});
    and ``evaluate(step)`` at step 0, every ``eval_every`` steps and at the end, with the
    early-stop rule ``stop(log)`` checked after each evaluation."""

    def __init__(self, log: TrainingLog, evaluate=None, eval_every: int = 1, stop=None):
        self.log, self.evaluate, self.eval_every, self.stop_rule = log, evaluate, eval_every, stop
        self.theta = None
        self.grad_norm = math.nan
        self.stopping = False
        self.eval_seconds: list[float] = []  # wall time of each evaluation (CostCheck)

    @staticmethod
    def _flat(params) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in params])

    def on_start(self, loop):
        self.theta = self._flat(loop.params)
        if self.log.stopped_early:
            self.stopping = True

    def after_backward(self, loop, step):
        grads = [torch.linalg.vector_norm(p.grad) for p in loop.params if p.grad is not None]
        self.grad_norm = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else 0.0

    def after_update(self, loop, step, loss):
        value = float(loss)
        if not math.isfinite(value):
            raise TrainingDiverged(f"{loop.label}: loss became {value} at step {step - 1}; "
                                   f"last good state: {loop.last_good()}")
        new = self._flat(loop.params)
        norm, new_norm = torch.linalg.vector_norm(self.theta), torch.linalg.vector_norm(new)
        cosine = float(self.theta @ new / (norm * new_norm)) if norm * new_norm > 0 else 1.0
        for key, val in zip(PER_STEP, (value, self.grad_norm, float(norm), cosine),
                            strict=True):
            self.log.per_step[key].append(val)
        self.theta = new

    def on_state(self, loop, step):
        if self.evaluate is not None and (step == 0 or step % self.eval_every == 0
                                          or step == loop.steps):
            start = time.perf_counter()
            self.log.add_eval(step, self.evaluate(step))
            self.eval_seconds.append(time.perf_counter() - start)
            if self.stop_rule is not None and self.stop_rule(self.log):
                self.stopping = self.log.stopped_early = True

    def stop(self, loop):
        return self.stopping

    def state_dict(self):
        return self.log.state()

    def load_state_dict(self, state):
        restored = TrainingLog.from_state(state)
        self.log.per_step, self.log.eval_steps = restored.per_step, restored.eval_steps
        self.log.eval_values, self.log.stopped_early = restored.eval_values, \
            restored.stopped_early


class Stateful(Callback):
    """Saves and restores an object with ``state_dict``/``load_state_dict`` (a recorder)."""

    def __init__(self, obj):
        self.obj = obj

    def state_dict(self):
        return self.obj.state_dict()

    def load_state_dict(self, state):
        self.obj.load_state_dict(state)


def adamw(model_or_params, lr: float, weight_decay: float, betas=(0.9, 0.98),
          warmup: int = 10):
    """AdamW with a linear warm-up: the rate is lr·min(1, (t+1)/warmup) at update t.

    The grokking defaults of Power et al. (β = (0.9, 0.98), 10 warm-up updates).
    Returns ``(optimizer, scheduler)``; the loop steps both.
    """
    if not lr > 0 or not math.isfinite(lr):
        raise InputError("settings.lr", f"must be a finite number > 0, got {lr}")
    if weight_decay < 0:
        raise InputError("settings.weight_decay", f"must be ≥ 0, got {weight_decay}")
    if warmup < 0:
        raise InputError("settings.warmup", f"must be ≥ 0, got {warmup}")
    params = model_or_params.parameters() if isinstance(model_or_params, torch.nn.Module) \
        else model_or_params
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay,
                                  betas=tuple(betas))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: min(1.0, (t + 1) / warmup) if warmup else 1.0)
    return optimizer, scheduler


class CostCheck(Callback):
    """Say a run's cost from its own first updates, and refuse it when it does not fit
    ``--max-minutes`` (:mod:`freqdyn.time_budget`).

    Updates 2 and 3 after the start (or the resume) are timed, without the evaluations
    between them (their time is measured by :class:`StepRecords`); the estimate for the
    ``steps`` left is steps × update + evaluations × the mean evaluation, an upper bound
    when the run may stop early.  Timing the run itself leaves its random draws and its
    records as they are.
    """

    def __init__(self, records: StepRecords, steps: int, eval_every: int):
        self.records, self.steps, self.eval_every = records, int(steps), int(eval_every)
        self.marks: list[tuple[int, float, float]] = []

    def on_start(self, loop):
        self.marks, self.start = [], loop.step

    def after_update(self, loop, step, loss):
        if step - self.start in (1, 3):
            self.marks.append((step, time.perf_counter(), sum(self.records.eval_seconds)))
        if step - self.start == 3:
            (_, t1, e1), (_, t3, e3) = self.marks
            update = max(t3 - t1 - (e3 - e1), 0.0) / 2
            evals = self.records.eval_seconds
            mean_eval = sum(evals) / len(evals) if evals else 0.0
            left = self.steps - step
            count = left // self.eval_every + 1 if evals else 0
            seconds = left * update + count * mean_eval
            say(f"{loop.label}: cost: at most {left} more updates at {update * 1e3:.3g} ms "
                f"and {count} evaluations at {mean_eval * 1e3:.3g} ms, about "
                f"{time_budget.duration(seconds)}", loop.progress)
            time_budget.require_time(seconds, loop.label, "lower the steps or the model size, or "
                                                     "raise --max-minutes")


def train_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               loss_fn: Callable[[int], torch.Tensor], *, steps: int,
               evaluate: Callable[[int], dict[str, float]] | None = None,
               eval_every: int = 1, scheduler=None, clip: float | None = None,
               checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0,
               resume: bool = False, stop: Callable[[TrainingLog], bool] | None = None,
               generators: Iterable[torch.Generator] = (), progress: bool | None = None,
               label: str = "", stop_after: int | None = None, stateful: Iterable = (),
               fingerprint: str | None = None,
               callbacks: Iterable[Callback] = ()) -> TrainingLog:
    """Run ``steps`` updates of ``loss_fn`` with :class:`StepRecords`; return the log.

    ``evaluate(t)`` runs at t = 0, every ``eval_every`` steps and after the last step;
    ``stop(log)``, checked after each evaluation, ends the run early
    (``log.stopped_early``).  With ``checkpoint_dir``, checkpoints are written every
    ``checkpoint_every`` steps and at the end, and ``resume`` continues from the newest
    one; ``stateful`` objects (``state_dict``/``load_state_dict``) and ``fingerprint``
    go with them (see :class:`Checkpoints`).  ``callbacks`` run after the loop's own
    records (e.g. :mod:`freqdyn.nets.gradient_filters`), their state checkpointed too.
    ``stop_after``: see :meth:`TrainingLoop.run`.
    """
    if eval_every < 1:
        raise InputError("settings.eval_every", f"must be ≥ 1, got {eval_every}")
    log = TrainingLog()
    extra = list(callbacks)
    callbacks = [StepRecords(log, evaluate, eval_every, stop)]
    callbacks += [Stateful(obj) for obj in stateful]
    callbacks += extra + [CostCheck(callbacks[0], steps, eval_every)]
    checkpoints = None if checkpoint_dir is None else Checkpoints(
        checkpoint_dir, fingerprint or "", every=checkpoint_every)
    loop = TrainingLoop(model, optimizer, loss_fn, steps=steps, scheduler=scheduler,
                        clip=clip, callbacks=callbacks, checkpoints=checkpoints,
                        generators=generators, label=label or "training", progress=progress)
    if resume and not (checkpoints and checkpoints.files()):
        raise InputError("resume", f"no checkpoint in {checkpoint_dir}")
    loop.run(resume=resume, stop_after=stop_after)
    return log
