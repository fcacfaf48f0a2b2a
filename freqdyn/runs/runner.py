"""The one experiment runner: ``freqdyn run FILE --out DIR [--full]``.

Each experiment kind (:mod:`freqdyn.runs.kinds`) is a function ``run(exp, out, device) ->
Outcome`` that trains, measures and draws; the runner around it is the same for all and

1. checks the file completely before anything trains (the kind's settings, the checks and
   the names a rule reads; a study also checks its arms and peak indices), and locks
   ``DIR`` against a second run writing into it;
2. runs the kind (its long parts checkpoint into ``DIR`` and resume when run again);
3. evaluates the checks (:mod:`freqdyn.runs.checks`) on the outcome;
4. writes, atomically, ``DIR/result.nc`` (the kind's curves and spectra, when it has any),
   ``DIR/<figure>.png`` and ``DIR/report.json``.

``report.json`` holds the kind's numbers, every check with its numbers and ``pass``, and
``claim_holds`` (all checks pass), with the experiment's text, its size, seeds, device,
seconds and the freqdyn version.  The command exits 0 when the claim holds and 1 when it
does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import xarray as xr

import freqdyn.plots.data  # noqa: F401  (these three declare the kinds' figure sets)
import freqdyn.plots.grok  # noqa: F401
import freqdyn.plots.study  # noqa: F401
from freqdyn._version import __version__
from freqdyn.errors import InputError
from freqdyn.nets.loop import checkpoint_files
from freqdyn.plots import save_figure
from freqdyn.plots.registry import draw
from freqdyn.results import FolderLock, to_json, write_dataset, write_json
from freqdyn.runs.checks import evaluate_checks
from freqdyn.runs.claims import rule_names
from freqdyn.runs.experiment import Experiment
from freqdyn.runs.kind_keys import reported
from freqdyn.runs.kinds import KINDS, kind_entry

REPORT = "report.json"


@dataclass
class Outcome:
    """What an experiment kind returns: its dataset (or None), report numbers, figures, and
    the details its checks read (a study's per-arm reports).

    A kind names a registered figure set (``figure_set``, :mod:`freqdyn.plots.registry`)
    and the data it is drawn from (``figure_data``); the runner draws it, and no kind of
    freqdyn imports figures.  ``figures`` holds figures a kind drew itself (one a user
    registers outside the package may)."""

    dataset: xr.Dataset | None
    summary: dict
    figures: dict = field(default_factory=dict)
    details: object = None
    figure_set: str | None = None
    figure_data: dict = field(default_factory=dict)

    def all_figures(self) -> dict:
        """``figures`` and those of the figure set, by file stem."""
        drawn = dict(self.figures)
        if self.figure_set is not None:
            drawn.update(draw(self.figure_set, self.figure_data))
        return drawn


@dataclass
class RunResult:
    """Where :func:`run_experiment` wrote its files, and the report it wrote."""

    out: Path
    report: dict
    result: Path | None
    figures: list[Path]

    @property
    def summary(self) -> dict:
        return self.report

    @property
    def claim_holds(self) -> bool:
        return bool(self.report["claim_holds"])


def experiment_function(kind: str):
    """The function that runs experiments of ``kind``."""
    entry = KINDS.get(kind)
    if entry is None:
        raise InputError("experiment.kind", f"unknown kind {kind!r}; known: {sorted(KINDS)}")
    return entry.function()


def seed_checkpoints(out: str | Path, seed: int) -> tuple[Path, bool]:
    """(``out/checkpoints/seed-N``, whether it holds checkpoints to resume from)."""

    folder = Path(out) / "checkpoints" / f"seed-{seed}"
    return folder, bool(checkpoint_files(folder))


def precheck(exp: Experiment) -> None:
    """Refuse, before training, a rule that reads a key the kind does not report."""

    keys = kind_entry(exp.kind).report_keys
    if keys is None:
        return
    for i, check in enumerate(exp.checks):
        if check["kind"] == "rule":
            unknown = sorted(n for n in rule_names(check["rule"]) if not reported(n, keys))
            if unknown:
                import difflib

                close = difflib.get_close_matches(unknown[0], sorted(keys), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError("claim.rule" if i == 0 else f"check[{i}].rule",
                                 f"names {unknown} that experiments of kind {exp.kind!r} "
                                 f"do not report{hint}; they report "
                                 f"{', '.join(sorted(keys))}")


def run_experiment(exp: Experiment, out: str | Path, *, device: str = "cpu") -> RunResult:
    """Check, run and report ``exp`` into ``out`` (see the module text)."""


    out = Path(out)
    precheck(exp)
    run = experiment_function(exp.kind)
    with FolderLock(out):
        # Denormal floats (|x| < 1.2e-38 in float32) arise once a cross-entropy is near zero
        # and make every operation on them ~100x slower on x86: the Nanda update slowed from
        # 57 to 141 ms within 3000 steps.  Flushing them to zero changes no printed digit.
        torch.set_flush_denormal(True)
        start = time.perf_counter()
        outcome = run(exp, out, device)
        seconds = time.perf_counter() - start
        checks = evaluate_checks(exp, outcome)
        result = None
        if outcome.dataset is not None:
            ds = outcome.dataset
            ds.attrs.update({
                "experiment_toml": exp.text, "experiment": exp.name, "kind": exp.kind,
                "size": exp.size, "seeds": str(list(exp.seeds)),
                "freqdyn_version": __version__, "device": device,
            })
            ds.attrs.setdefault("fourier_convention",
                                "none: no input-space Fourier transform here")
            result = write_dataset(ds, out / "result.nc")
        figures = [save_figure(fig, out / f"{key}.png")
                   for key, fig in outcome.all_figures().items()]
        report = dict(outcome.summary)
        report.update({
            "experiment": exp.name, "kind": exp.kind, "size": exp.size,
            "seeds": list(exp.seeds), "freqdyn_version": __version__, "device": device,
            "seconds": round(seconds, 2), "claim_text": exp.claim_text,
            "checks": checks, "claim_holds": all(c["pass"] for c in checks),
            "experiment_toml": exp.text,
            "figures": [str(p) for p in figures],
        })
        write_json(out / REPORT, report)

    return RunResult(out=out, report=to_json(report), result=result, figures=figures)


def _short(value):
    """A check's number as printed: 4 significant digits (lists and dicts elementwise)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(_short(v)) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return value


#: The numbers of a check that the headline prints (report.json holds them all).
HEADLINE_NUMBERS = ("max_rel_l2_pde_vs_net", "at_most", "error_over_bound", "max_rel_dev",
                    "max_miss_factor", "slope", "slope_interval", "common_slope",
                    "per_network_slope", "max_error", "min_ratio", "max_log_spread", "spread",
                    "spread_than", "spread_than_at_least", "note", "rule", "failed_checks",
                    "max_rel_l2_vs_net", "wrong_over_true_error")


def headline(result: RunResult, exp: Experiment) -> list[str]:
    """The lines a command prints for a finished run."""
    rep = result.report
    verdict = "HOLDS" if rep["claim_holds"] else "DOES NOT HOLD"
    lines = [f"{exp.name} ({exp.kind}, {exp.size} size, seeds {list(exp.seeds)}, "
             f"{rep['seconds']:.1f} s): claim {verdict}"]
    if exp.claim_text:
        lines.append(f"  claim: {' '.join(exp.claim_text.split())}")
    if rep.get("max_rel_l2_pde_vs_net") is not None:
        lines.append(f"  max rel L2(xi) {rep.get('pde')} vs net over t > 0: "
                     f"{rep['max_rel_l2_pde_vs_net']:.4f}")
    for check in rep["checks"]:
        numbers = {k: check[k] for k in HEADLINE_NUMBERS if k in check}
        text = ", ".join(f"{k} {_short(v)}" for k, v in numbers.items())
        kind = check["kind"] + (f" {check['name']!r}" if check["kind"] == "wrong_model" else "")
        verdict = ("fails its checks, as it must" if check["pass"] else "PASSES TOO") \
            if check["kind"] == "wrong_model" else ("pass" if check["pass"] else "FAIL")
        lines.append(f"  check {kind}: {verdict}" + (f" ({text})" if text else ""))
        if check.get("tightest"):
            tight = check["tightest"]
            lines.append(f"    tightest term: {tight['term']}, margin {_short(tight['margin'])}"
                         f" ({100 * tight['relative']:.2g} % of its scale)")
    written = [str(result.out / REPORT)] + ([str(result.result)] if result.result else []) + \
        [str(p) for p in result.figures]
    lines.append("  wrote " + ", ".join(written))
    return lines
