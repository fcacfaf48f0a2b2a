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

:mod:`freqdyn.nets.records` is the grokking studies' interface to the same loop
(evaluations every k steps, per-step loss, gradient norm, parameter norm, update cosine).
"""

from __future__ import annotations

import json
import math
import pickle
import signal
import threading
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
        deferred = _DeferredInterrupt()
        try:
            with deferred:
                stopping = self._reach(self.step) if self.resumed_from is None else \
                    any(cb.stop(self) for cb in self.callbacks)
                while not stopping and self.step < self.steps:
                    deferred.check()
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
        if getattr(self.optimizer, "needs_closure", False):
            return self._integrate(t, bar)
        loss = self._gradient(t)
        for cb in self.callbacks:
            cb.after_backward(self, t)
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        if self.optimizer is not None:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return self._advance(t, loss, bar)

    def _advance(self, t: int, loss: torch.Tensor, bar: Progress) -> bool:
        """θ_{t+1} reached: count it, tell the callbacks, draw the bar; True = stop."""
        self.step = t + 1
        for cb in self.callbacks:
            cb.after_update(self, self.step, loss.detach())
        bar.update(self.step)
        return self._reach(self.step)

    def _gradient(self, t: int) -> torch.Tensor:
        """L at the current parameters, with their gradients filled."""
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        loss = self.objective(t)
        if loss.requires_grad:
            loss.backward()
        return loss

    def _integrate(self, t: int, bar: Progress) -> bool:
        """One step of an optimizer that evaluates the objective itself (a flow
        integrator: :class:`freqdyn.nets.rkc.ChebyshevFlow`); the loss is θ_t's."""
        return self._advance(t, self.optimizer.step(lambda: self._gradient(t)), bar)


class _DeferredInterrupt:
    """Ctrl-C (SIGINT) is acted on between updates only, so that an interrupted run stops
    with its parameters, optimizer state and step count consistent (and its checkpoint
    resumes to the uninterrupted numbers bit for bit); a signal that arrives inside an
    update, a transform or a checkpoint write is held until that step is done."""

    def __init__(self):
        self.pending = False
        self.previous = None

    def _hold(self, signum, frame):
        self.pending = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def check(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


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
                    if int(path.stem.split("-")[1]) >= max(step, 1):  # θ_step is bad
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
