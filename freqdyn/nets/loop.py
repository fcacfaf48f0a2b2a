"""The one training loop: every network freqdyn trains goes through :class:`TrainingLoop`.

One update takes θ_t to θ_{t+1}: ``objective(t)`` returns the loss L(θ_t) (penalties
included) and either leaves it to the loop to back-propagate or has already filled the
gradients (the closed-form and transform passes of the Fourier-feature network); then the
optimizer steps (and the learning-rate schedule, if any).  What differs between trainers
is in *callbacks* (:class:`Callback`): measurements at chosen states (the PDE-time report
schedule, grokking evaluations), per-step records, the divergence limit, progress, early
stopping.  The loop itself owns the step count, the checkpoints and the resume rule:

* **Checkpoints** (:class:`Checkpoints`): ``step-NNNNNNNNNN.pt`` files holding the model,
  optimizer and schedule states, the RNG states (torch's global one and the caller's
  generators), every callback's state and a *fingerprint* of the run (case or experiment
  text and settings).  Written atomically at the states the caller asks for and at the
  end; the newest :data:`KEEP` are kept.
* **Resume**: from the newest checkpoint that can be read and whose fingerprint matches;
  an unreadable file is named and skipped for the next older one; a different
  fingerprint is refused.  On the CPU a resumed run equals the uninterrupted one bit for
  bit.  Resuming says so on stderr.
* **Divergence** (:class:`LossGuard`): a NaN/inf loss, or one above the limit, raises
  :class:`~freqdyn.errors.TrainingDiverged` naming the step, the limit and the last good
  checkpoint (checkpoints at or after the bad step are removed).
* **Interrupt**: Ctrl-C writes a checkpoint of the current state before it propagates, so
  the run resumes where it stopped.

``train_loop`` is the grokking studies' interface to the same loop (evaluations every k
steps, per-step loss, gradient norm, parameter norm and update cosine; see
:class:`StepRecords`).
"""

from __future__ import annotations

import math
import pickle
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from freqdyn.errors import InputError, TrainingDiverged
from freqdyn.progress import Progress, say
from freqdyn.results import atomic_write

#: Checkpoint files kept per run (newest).
KEEP = 3
CHECKPOINT_VERSION = 2


class Callback:
    """Hooks of :class:`TrainingLoop`; override what you need.

    ``on_state(loop, step)`` sees every state θ_step the loop reaches (the start state and
    the state after each update) before any checkpoint of it is written, so what it records
    is part of that checkpoint.  ``state_dict``/``load_state_dict`` make a callback's
    records survive a resume (return None for a stateless callback).
    """

    def on_start(self, loop: TrainingLoop) -> None: ...

    def after_backward(self, loop: TrainingLoop, step: int) -> None: ...

    def after_update(self, loop: TrainingLoop, step: int, loss: torch.Tensor) -> None: ...

    def on_state(self, loop: TrainingLoop, step: int) -> None: ...

    def stop(self, loop: TrainingLoop) -> bool:
        return False

    def on_end(self, loop: TrainingLoop) -> None: ...

    def state_dict(self):
        return None

    def load_state_dict(self, state) -> None: ...


def checkpoint_files(folder) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    return sorted(Path(folder).glob("step-*.pt")) if folder is not None else []


@dataclass
class Checkpoints:
    """Where and when a run writes checkpoints, and what a resumable one must match.

    ``every``: write at states whose step is a multiple of it (0: never by count);
    ``at``: also at these steps; the final state is always written.
    """

    folder: Path
    fingerprint: str = ""
    every: int = 0
    at: frozenset = frozenset()
    keep: int = KEEP

    def __post_init__(self):
        self.folder = Path(self.folder)
        self.at = frozenset(int(s) for s in self.at)

    def due(self, step: int) -> bool:
        return step in self.at or (self.every > 0 and step > 0 and step % self.every == 0)

    def files(self) -> list[Path]:
        return checkpoint_files(self.folder)

    def write(self, state: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = atomic_write(self.folder / f"step-{state['step']:010d}.pt",
                            lambda tmp: torch.save(state, tmp))
        for old in self.files()[:-self.keep]:
            old.unlink(missing_ok=True)
        return path

    def latest(self) -> Path | None:
        files = self.files()
        return files[-1] if files else None

    def load_latest(self, map_location="cpu") -> tuple[dict, Path]:
        """The newest readable checkpoint with this fingerprint (see the module text)."""
        files = self.files()
        if not files:
            raise InputError("resume", f"no checkpoint in {self.folder}")
        for path in reversed(files):
            try:
                state = torch.load(path, map_location=map_location, weights_only=False)
            except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError,
                    zipfile.BadZipFile) as exc:
                say(f"checkpoint {path} is damaged ({type(exc).__name__}); trying an older one")
                continue
            if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
                say(f"checkpoint {path} is not a freqdyn checkpoint of this version; skipped")
                continue
            if state.get("fingerprint") != self.fingerprint:
                why = _difference(state.get("fingerprint"), self.fingerprint)
                raise InputError("resume", f"the checkpoints in {self.folder} belong to another "
                                           f"run ({why}); choose another --out or delete them")
            return state, path
        raise InputError("resume", f"no readable checkpoint in {self.folder} (every file is "
                                   "damaged); delete the folder and start again")


def _difference(old, new) -> str:
    """Which entries of two JSON fingerprints differ (for the refusal message)."""
    import json

    try:
        a, b = json.loads(old), json.loads(new)
    except (TypeError, ValueError):
        return "its settings differ"
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return "its settings differ"
    keys = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += [f"{key}.{k}" for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
        elif va != vb:
            keys.append(key)
    return "it differs in " + ", ".join(keys) if keys else "its settings differ"


class TrainingLoop:
    """Run ``steps`` updates of ``objective`` with callbacks and checkpoints (module text)."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                 objective: Callable[[int], torch.Tensor], *, steps: int, scheduler=None,
                 clip: float | None = None, callbacks: Iterable[Callback] = (),
                 checkpoints: Checkpoints | None = None,
                 generators: Iterable[torch.Generator] = (), label: str = "training",
                 progress: bool | None = None):
        if steps < 0:
            raise InputError("steps", f"must be >= 0, got {steps}")
        self.model, self.optimizer, self.objective = model, optimizer, objective
        self.steps, self.scheduler, self.clip = int(steps), scheduler, clip
        self.callbacks = list(callbacks)
        self.checkpoints = checkpoints
        self.generators = list(generators)
        self.label, self.progress = label, progress
        self.step = 0
        self.resumed_from: int | None = None
        self.params = [p for p in model.parameters() if p.requires_grad]

    # -- checkpoints -----------------------------------------------------------------
    def state(self) -> dict:
        return {"version": CHECKPOINT_VERSION, "step": self.step,
                "fingerprint": self.checkpoints.fingerprint if self.checkpoints else "",
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "torch_rng": torch.get_rng_state(),
                "generators": [g.get_state() for g in self.generators],
                "callbacks": [cb.state_dict() for cb in self.callbacks]}

    def save(self) -> Path | None:
        return self.checkpoints.write(self.state()) if self.checkpoints else None

    def restore(self) -> Path:
        state, path = self.checkpoints.load_latest()
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        for gen, gen_state in zip(self.generators, state["generators"], strict=True):
            gen.set_state(gen_state)
        for cb, cb_state in zip(self.callbacks, state["callbacks"], strict=True):
            if cb_state is not None:
                cb.load_state_dict(cb_state)
        self.step = self.resumed_from = int(state["step"])
        say(f"{self.label}: resumed from step {self.step} ({path})")
        return path

    def last_good(self) -> str:
        latest = self.checkpoints.latest() if self.checkpoints else None
        return str(latest) if latest else "none"

    # -- running -----------------------------------------------------------------------
    def _reach(self, step: int) -> bool:
        """State θ_step reached: callbacks see it, a checkpoint may be due; True = stop."""
        for cb in self.callbacks:
            cb.on_state(self, step)
        stopping = any(cb.stop(self) for cb in self.callbacks)
        if self.checkpoints and (stopping or step == self.steps or self.checkpoints.due(step)):
            self.save()
        return stopping

    def run(self, resume: bool = False, stop_after: int | None = None) -> int:
        """Train; returns the number of updates done.  ``stop_after`` ends the run (with a
        checkpoint, as a killed job leaves it) once that many updates are done."""
        if resume:
            self.restore()
        for cb in self.callbacks:
            cb.on_start(self)
        bar = Progress(self.steps, self.label, initial=self.step, enabled=self.progress)
        try:
            stopping = self._reach(self.step) if self.resumed_from is None else \
                any(cb.stop(self) for cb in self.callbacks)
            while not stopping and self.step < self.steps:
                if stop_after is not None and self.step >= stop_after:
                    self.save()
                    break
                stopping = self._update(bar)
        except KeyboardInterrupt:
            where = self.save() if self.checkpoints else None
            if where is not None:
                say(f"{self.label}: interrupted at step {self.step}; checkpoint {where}; "
                    "run the same command again to resume")
            raise
        finally:
            bar.close()
        for cb in self.callbacks:
            cb.on_end(self)
        return self.step

    def _update(self, bar: Progress) -> bool:
        t = self.step
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        loss = self.objective(t)
        if loss.requires_grad:
            loss.backward()
        for cb in self.callbacks:
            cb.after_backward(self, t)
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        if self.optimizer is not None:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step = t + 1
        for cb in self.callbacks:
            cb.after_update(self, self.step, loss.detach())
        bar.update(self.step)
        return self._reach(self.step)


class LossGuard(Callback):
    """Divergence limit: NaN/inf, or a loss above ``limit``, raises TrainingDiverged.

    Losses are kept on the device and checked every ``check_every`` updates (1 on the CPU;
    more on a GPU, to avoid a host synchronisation per step); ``history`` keeps them all
    when ``keep`` (the per-step loss of the Fourier-feature trainer).
    """

    def __init__(self, limit: float = math.inf, check_every: int = 1, keep: bool = False,
                 hint: str = ""):
        self.limit, self.check_every, self.keep, self.hint = limit, check_every, keep, hint
        self.pending: list[torch.Tensor] = []
        self.first_pending = 1
        self.history: list[float] = []

    def after_update(self, loop, step, loss):
        self.pending.append(loss)
        if len(self.pending) >= self.check_every:
            self.flush(loop)

    def on_end(self, loop):
        self.flush(loop)

    def flush(self, loop) -> None:
        if not self.pending:
            return
        values = torch.stack(self.pending).double().cpu().numpy()
        start = self.first_pending
        self.pending, self.first_pending = [], start + len(values)
        bad = np.flatnonzero(~np.isfinite(values) | (values > self.limit))
        if bad.size:
            step = start - 1 + int(bad[0])  # the loss of θ_step
            if loop.checkpoints:
                for path in loop.checkpoints.files():
                    if int(path.stem.split("-")[1]) > step:
                        path.unlink()
            limit = f" exceeds the limit {self.limit:.4g}" if math.isfinite(values[bad[0]]) \
                else " is not finite"
            raise TrainingDiverged(
                f"{loop.label}: training diverged at step {step}: loss "
                f"{values[bad[0]]:.4g}{limit}. {self.hint}last good checkpoint: "
                f"{loop.last_good()}")
        if self.keep:
            self.history.extend(values.tolist())

    def state_dict(self):
        return {"history": list(self.history), "first_pending": self.first_pending}

    def load_state_dict(self, state):
        self.history, self.first_pending = list(state["history"]), state["first_pending"]


# ---------------------------------------------------------------------------------------
# The grokking studies' interface: per-step records, evaluations, early stop
# ---------------------------------------------------------------------------------------

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
            self.log.add_eval(step, self.evaluate(step))
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


def train_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               loss_fn: Callable[[int], torch.Tensor], *, steps: int,
               evaluate: Callable[[int], dict[str, float]] | None = None,
               eval_every: int = 1, scheduler=None, clip: float | None = None,
               checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0,
               resume: bool = False, stop: Callable[[TrainingLog], bool] | None = None,
               generators: Iterable[torch.Generator] = (), progress: bool | None = None,
               label: str = "", stop_after: int | None = None, stateful: Iterable = (),
               fingerprint: str | None = None) -> TrainingLog:
    """Run ``steps`` updates of ``loss_fn`` with :class:`StepRecords`; return the log.

    ``evaluate(t)`` runs at t = 0, every ``eval_every`` steps and after the last step;
    ``stop(log)``, checked after each evaluation, ends the run early
    (``log.stopped_early``).  With ``checkpoint_dir``, checkpoints are written every
    ``checkpoint_every`` steps and at the end, and ``resume`` continues from the newest
    one; ``stateful`` objects (``state_dict``/``load_state_dict``) and ``fingerprint``
    go with them (see :class:`Checkpoints`).  ``stop_after``: see :meth:`TrainingLoop.run`.
    """
    if eval_every < 1:
        raise InputError("settings.eval_every", f"must be ≥ 1, got {eval_every}")
    log = TrainingLog()
    callbacks = [StepRecords(log, evaluate, eval_every, stop)]
    callbacks += [Stateful(obj) for obj in stateful]
    checkpoints = None if checkpoint_dir is None else Checkpoints(
        checkpoint_dir, fingerprint or "", every=checkpoint_every)
    loop = TrainingLoop(model, optimizer, loss_fn, steps=steps, scheduler=scheduler,
                        clip=clip, callbacks=callbacks, checkpoints=checkpoints,
                        generators=generators, label=label or "training", progress=progress)
    if resume and not (checkpoints and checkpoints.files()):
        raise InputError("resume", f"no checkpoint in {checkpoint_dir}")
    loop.run(resume=resume, stop_after=stop_after)
    return log
