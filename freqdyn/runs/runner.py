"""Run a grokking experiment file: ``freqdyn grok EXPERIMENT.toml --out DIR``.

Each experiment kind is a function ``run(exp, out, device) -> Outcome`` that trains,
measures and draws; the runner around it is the same for all of them and writes

* ``DIR/result.nc``: the experiment's curves over steps and spectra over (step, k),
  with the experiment text, the freqdyn version, the kind and the size as attributes;
* ``DIR/<figure>.png``: the paper-style figures;
* ``DIR/summary.json``: the numbers that define the claim, and ``claim_holds``, the
  value of the file's ``[claim] rule`` over them.

All three are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import importlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from freqdyn import __version__
from freqdyn.errors import InputError
from freqdyn.runs.claims import evaluate_rule
from freqdyn.runs.experiment import Experiment

#: experiment kind → "module:function" implementing it (or the function itself).
KINDS = {
    # Grokking I: frequency view (Zhou, Zhang, Xu 2024)
    "aliasing": "freqdyn.grok.frequency_view:run_aliasing",
    "parity": "freqdyn.grok.frequency_view:run_parity",
    "image": "freqdyn.grok.frequency_view:run_image",
    # Grokking I: lazy to rich (Kumar, Bordelon, Gershman, Pehlevan 2024)
    "lazy-rich-toy": "freqdyn.grok.lazy_rich:run_toy",
    "lazy-rich-alpha-sweep": "freqdyn.grok.lazy_rich:run_alpha_sweep",
    "lazy-rich-phase": "freqdyn.grok.lazy_rich:run_phase_diagram",
    "modular-mlp-lazy-rich": "freqdyn.grok.lazy_rich:run_modular_mlp",
    # Grokking II: algorithmic data, loss-curve spectra, robustness
    "modular": "freqdyn.grok.algorithmic:run_modular",
    "progress-measures": "freqdyn.grok.progress:run_progress_measures",
    "loss-spectrum-grid": "freqdyn.grok.loss_spectrum:run_grid",
    "robustness-perturbation": "freqdyn.grok.robustness:run_perturbation",
    "abelian": "freqdyn.grok.robustness:run_abelian",
}


@dataclass
class Outcome:
    """What an experiment function returns: its dataset, summary numbers and figures."""

    dataset: xr.Dataset
    summary: dict
    figures: dict = field(default_factory=dict)


def experiment_function(kind: str):
    """The function that runs experiments of ``kind``."""
    if kind not in KINDS:
        raise InputError("experiment.kind", f"unknown kind {kind!r}; known: {sorted(KINDS)}")
    target = KINDS[kind]
    if callable(target):
        return target
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def seed_checkpoints(out: str | Path, seed: int) -> tuple[Path, bool]:
    """(``out/checkpoints/seed-N``, whether it holds checkpoints to resume from)."""
    from freqdyn.nets.loop import checkpoint_files

    folder = Path(out) / "checkpoints" / f"seed-{seed}"
    return folder, bool(checkpoint_files(folder))


def jsonable(value):
    """``value`` with numpy scalars/arrays turned into plain Python (NaN → None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclass
class GrokResult:
    """Where :func:`run_experiment` wrote its files, and the summary it wrote."""

    out: Path
    summary: dict
    result: Path
    figures: list[Path]


def run_experiment(exp: Experiment, out: str | Path, *, device: str = "cpu") -> GrokResult:
    """Run ``exp`` and write ``result.nc``, its figures and ``summary.json`` into ``out``."""
    from freqdyn.plots import save_figure
    from freqdyn.results import atomic_write, write_dataset

    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = experiment_function(exp.kind)
    # Denormal floats (|x| < 1.2e-38 in float32) arise once a cross-entropy is near zero and
    # make every operation on them ~100x slower on x86: the Nanda update slowed from 57 to
    # 141 ms within 3000 steps.  Flushing them to zero changes no printed digit.
    torch.set_flush_denormal(True)
    start = time.perf_counter()
    outcome = run(exp, out, device)
    seconds = time.perf_counter() - start
    ds = outcome.dataset
    ds.attrs.update({
        "experiment_toml": exp.text, "experiment": exp.name, "kind": exp.kind,
        "size": "paper" if exp.paper else "ci", "seeds": json.dumps(list(exp.seeds)),
        "freqdyn_version": __version__, "device": device,
    })
    ds.attrs.setdefault("fourier_convention", "none: no input-space Fourier transform here")
    result = write_dataset(ds, out / "result.nc")
    figures = []
    for key, fig in outcome.figures.items():
        path = out / f"{key}.png"
        save_figure(fig, path)
        figures.append(path)
    summary = jsonable(outcome.summary)
    claim = evaluate_rule(exp.rule, summary)
    summary.update({
        "experiment": exp.name, "kind": exp.kind, "size": "paper" if exp.paper else "ci",
        "seeds": list(exp.seeds), "freqdyn_version": __version__, "device": device,
        "seconds": round(seconds, 2), "claim_text": exp.claim_text,
        "claim_rule": exp.rule, "claim_holds": claim,
    })
    text = json.dumps(summary, indent=2) + "\n"
    atomic_write(out / "summary.json", lambda tmp: tmp.write_text(text))
    return GrokResult(out=out, summary=summary, result=result, figures=figures)
