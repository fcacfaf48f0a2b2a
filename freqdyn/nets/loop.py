"""The training loop shared by every grokking experiment.

One loop, so that every experiment logs the same per-step quantities and checkpoints,
resumes and stops on divergence the same way.  A step t takes θ_t to θ_{t+1}; for each
step the loop records

=============== =====================================================================
key             meaning
=============== =====================================================================
loss            the objective L(θ_t) returned by ``loss_fn(t)`` (penalties included)
grad_norm       ‖∇L(θ_t)‖₂ over all trainable parameters, before any clipping
param_norm      ‖θ_t‖₂
update_cosine   cos(θ_t, θ_{t+1}) = θ_t·θ_{t+1} / (‖θ_t‖ ‖θ_{t+1}‖)
=============== =====================================================================

``evaluate(t)`` (e.g. train/validation loss and accuracy) runs at t = 0, every
``eval_every`` steps and after the last step; its values are logged by key at those
steps.  Everything else (batches, input noise, penalties) lives in the caller's
``loss_fn`` closure, so the loop stays one piece of code.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from freqdyn.errors import InputError, TrainingDiverged
from freqdyn.results import atomic_write

PER_STEP = ("loss", "grad_norm", "param_norm", "update_cosine")
#: Checkpoint files kept (newest last).
KEEP_CHECKPOINTS = 2
CHECKPOINT_VERSION = 1


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

    def _add_eval(self, step: int, values: dict[str, float]) -> None:
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


def adamw(model_or_params, lr: float, weight_decay: float, betas=(0.9, 0.98),
          warmup: int = 10):
    """AdamW with a linear warm-up: the rate is lr·min(1, (t+1)/warmup) at update t.

    The grokking defaults of Power et al. (β = (0.9, 0.98), 10 warm-up updates).
    Returns ``(optimizer, scheduler)``; call ``scheduler.step()`` after each update
    (the loop does).
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


def checkpoint_files(folder: Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    return sorted(Path(folder).glob("step-*.pt"))


def _save_checkpoint(folder: Path, state: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = atomic_write(folder / f"step-{state['step']:010d}.pt",
                        lambda tmp: torch.save(state, tmp))
    for old in checkpoint_files(folder)[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


def _flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def train_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               loss_fn: Callable[[int], torch.Tensor], *, steps: int,
               evaluate: Callable[[int], dict[str, float]] | None = None,
               eval_every: int = 1, scheduler=None, clip: float | None = None,
               checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0,
               resume: bool = False, stop: Callable[[TrainingLog], bool] | None = None,
               generators: Iterable[torch.Generator] = (), progress: bool | None = None,
               label: str = "", stop_after: int | None = None, stateful: Iterable = (),
               fingerprint: str | None = None) -> TrainingLog:
    """Run ``steps`` optimizer updates of ``loss_fn`` and log them (see the module text).

    ``clip`` clips the gradient norm; ``stop(log)``, checked after each evaluation,
    ends the run early (``log.stopped_early``).  ``stop_after`` interrupts the run after
    that many steps in total (with a checkpoint, as a killed job would leave it).  With
    ``checkpoint_dir`` the model, optimizer, scheduler, log and the RNG states (torch's
    global one and those of ``generators``, the caller's batch/noise generators) are
    written atomically every ``checkpoint_every`` steps and at the end; ``resume=True``
    continues from the newest checkpoint, which on the CPU gives the same run bit for bit,
    and says so on stderr.  ``stateful`` objects (with ``state_dict``/``load_state_dict``,
    e.g. a recorder of weights) are saved and restored with the checkpoint; ``fingerprint``
    (e.g. the experiment text) is stored too, and a resume whose fingerprint differs is
    refused.  A NaN/inf loss raises :class:`TrainingDiverged`; the last checkpoint then
    holds the last good state.
    """
    if steps < 0:
        raise InputError("settings.steps", f"must be ≥ 0, got {steps}")
    if eval_every < 1:
        raise InputError("settings.eval_every", f"must be ≥ 1, got {eval_every}")
    generators = list(generators)
    stateful = list(stateful)
    params = [p for p in model.parameters() if p.requires_grad]
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    log, start = TrainingLog(), 0
    if resume:
        files = checkpoint_files(folder) if folder else []
        if not files:
            raise InputError("resume", f"no checkpoint in {folder}")
        state = torch.load(files[-1], map_location="cpu", weights_only=False)
        if state.get("fingerprint") != fingerprint:
            raise InputError("resume", f"the checkpoints in {folder} belong to another run "
                                      "(settings differ); choose another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        for gen, gen_state in zip(generators, state["generators"], strict=True):
            gen.set_state(gen_state)
        for obj, obj_state in zip(stateful, state.get("stateful", []), strict=True):
            obj.load_state_dict(obj_state)
        log, start = TrainingLog.from_state(state["log"]), state["step"]
        print(f"{label or 'training'}: resumed from step {start} ({files[-1]})",
              file=sys.stderr, flush=True)
        if log.stopped_early:
            return log

    def checkpoint(step: int) -> Path | None:
        if folder is None:
            return None
        return _save_checkpoint(folder, {
            "version": CHECKPOINT_VERSION, "step": step, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "generators": [g.get_state() for g in generators], "log": log.state(),
            "stateful": [obj.state_dict() for obj in stateful], "fingerprint": fingerprint})

    def run_evaluation(step: int) -> bool:
        if evaluate is not None:
            log._add_eval(step, evaluate(step))
        return stop is not None and stop(log)

    if start == 0 and run_evaluation(0):
        log.stopped_early = True
        checkpoint(0)
        return log

    use_tqdm = _progress_default() if progress is None else progress
    bar = None
    if use_tqdm:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, initial=start, desc=label or "train", leave=False)
    last_good = checkpoint_files(folder)[-1] if resume else None
    theta = _flat(params)
    for t in range(start, steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(t)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            where = f"; last good state: {last_good}" if last_good else \
                ("; no checkpoint was written" if folder is None else "")
            raise TrainingDiverged(f"{label or 'training'}: loss became {loss_value} at step "
                                   f"{t}{where}")
        loss.backward()
        if clip is not None:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        else:
            grad_norm = float(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in params
                             if p.grad is not None])))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        new_theta = _flat(params)
        norm, new_norm = torch.linalg.vector_norm(theta), torch.linalg.vector_norm(new_theta)
        cosine = float(theta @ new_theta / (norm * new_norm)) if norm * new_norm > 0 else 1.0
        for key, value in zip(PER_STEP, (loss_value, grad_norm, float(norm), cosine),
                              strict=True):
            log.per_step[key].append(value)
        theta = new_theta
        if bar is not None:
            bar.update(1)
        done = t + 1
        stopping = False
        if done % eval_every == 0 or done == steps:
            stopping = run_evaluation(done)
        if stopping:
            log.stopped_early = True
        if folder is not None and (stopping or done == steps or
                                   (checkpoint_every and done % checkpoint_every == 0)):
            last_good = checkpoint(done)
        if stopping:
            break
        if stop_after is not None and done >= stop_after:
            if folder is not None:
                last_good = checkpoint(done)
            break
    if bar is not None:
        bar.close()
    return log


def _progress_default() -> bool:
    from freqdyn.nets.train import progress_enabled

    return progress_enabled()
