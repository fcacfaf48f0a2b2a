"""Command line: ``freqdyn <command> CASE.toml ...``.

Commands
--------
derive       the NTK, damping, diffusion and learning-rate profile of a case (sympy)
kernel-flow  the kernel-flow reference û(ξ, t) → DIR/prediction.nc and DIR/prediction.png
solve        the error PDE by finite elements (or modal, or an LFP model) → DIR/prediction.nc
train        train a Fourier-feature network; its measured û(ξ, τ) → DIR/measured.nc
validate     a validation study: predictions next to trained networks → DIR/report.json
design       choose ρ_w for a wanted per-frequency learning-time profile → DIR/design.toml
grok         a grokking experiment → DIR/result.nc, figures, DIR/summary.json (claim_holds)
info         versions of freqdyn and its numerical stack (paste it into bug reports)
"""

from __future__ import annotations

import argparse
import platform
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np

from freqdyn import __version__
from freqdyn.errors import InputError
from freqdyn.predict.registry import PREDICTORS, methods


def _cmd_derive(args) -> int:
    from freqdyn.inputs.case import load_case
    from freqdyn.theory.derive import derive

    case = load_case(args.case)
    result = derive(case)
    if args.json:
        print(result.to_json())
        return 0
    print(f"case {case.name} (d = {case.dim}, rho_w: {case.rho_w.family}, "
          f"sigma_a = {case.sigma_a:g}, kappa = {case.kappa:g}, loss scale = {case.loss_scale:g})")
    print(f"  NTK       Theta(x, xp) = {result.ntk}")
    print("  PDE       d/dt u_hat = div(D grad u_hat) - c u_hat")
    print(f"  damping   c(xi) = {result.damping}")
    print(f"  diffusion D(xi) = {result.diffusion}")
    print(f"  rate      per-frequency learning rate (pure damping) = {result.rate}")
    return 0


def _cmd_solve(args) -> int:
    from freqdyn.inputs.case import load_case
    from freqdyn.runs.predictions import solve_to

    written = solve_to(load_case(args.case), args.out, args.method,
                       figure=not args.no_figure)
    if written is not None:
        print(written.summary)
        for path in written.paths:
            print(f"  wrote {path}")
    return 0


def _cmd_kernel_flow(args) -> int:
    args.method = "kernel-flow"
    return _cmd_solve(args)


def _cmd_train(args) -> int:
    from freqdyn.errors import TrainingDiverged
    from freqdyn.inputs.case import load_case
    from freqdyn.nets.train import train

    out = args.out or args.resume
    if not out:
        print("freqdyn train: give --out DIR (or --resume DIR)", file=sys.stderr)
        return 2
    case = load_case(args.case)
    try:
        result = train(case, out, resume=args.resume is not None)
    except TrainingDiverged as exc:
        print(f"freqdyn train: {exc}", file=sys.stderr)
        return 3
    ds = result.dataset
    print(f"trained {case.name}: m = {ds.attrs['width']}, {result.steps} steps in "
          f"{result.seconds:.1f} s; final loss {float(ds['loss'][-1]):.3e}, "
          f"drift {float(ds['drift'][-1]):.2e}")
    print(f"  wrote {result.measured}" + (f" and {result.figure}" if result.figure else ""))
    return 0


def _cmd_validate(args) -> int:
    from freqdyn.runs.study import load_study, run_study, summary

    study = load_study(args.study, full=args.full)
    report = run_study(study, args.out, progress=not args.quiet)
    print(summary(report))
    print(f"  wrote {Path(args.out) / 'report.json'}")
    for fig in report["figures"]:
        print(f"  wrote {fig}")
    return 0 if report["pass"] else 1


def _cmd_design(args) -> int:
    from freqdyn.analysis.design import run as design_run

    return design_run(args)


def _cmd_grok(args) -> int:
    from freqdyn.errors import TrainingDiverged
    from freqdyn.nets.settings import resolve_device
    from freqdyn.runs.experiment import load_experiment
    from freqdyn.runs.runner import run_experiment

    seeds = None
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise InputError("--seeds", f"must be comma-separated integers, got "
                                       f"{args.seeds!r}") from None
    overrides = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError("--set", f"must be KEY=VALUE (a TOML value), got {item!r}")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = value  # a bare word: a string
    exp = load_experiment(args.experiment, paper=args.paper, seeds=seeds,
                          overrides=overrides or None)
    try:
        result = run_experiment(exp, args.out, device=resolve_device(args.device))
    except TrainingDiverged as exc:
        print(f"freqdyn: {exc}", file=sys.stderr)
        return 3
    summary = result.summary
    verdict = "HOLDS" if summary["claim_holds"] else "DOES NOT HOLD"
    print(f"{exp.name} ({exp.kind}, {summary['size']} size, seeds {list(exp.seeds)}, "
          f"{summary['seconds']:.1f} s): claim {verdict}")
    if exp.claim_text:
        print(f"  claim: {exp.claim_text}")
    print(f"  rule:  {exp.rule}")
    print(f"  wrote {result.result}, {result.out / 'summary.json'}"
          + "".join(f", {p.name}" for p in result.figures))
    return 0


def _cmd_info(args) -> int:  # noqa: ARG001
    import scipy
    import sympy
    import torch
    import xarray

    print(f"freqdyn {__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    for mod in (np, scipy, sympy, torch, xarray):
        print(f"{mod.__name__} {mod.__version__}")
    print(f"torch CUDA available: {torch.cuda.is_available()}")
    try:  # read from the package metadata: importing the DOLFINx stack here is not needed
        print(f"dolfinx-solver-real {metadata.version('dolfinx-solver-real')}")
    except metadata.PackageNotFoundError:
        print("dolfinx-solver-real not installed (freqdyn solve unavailable)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="freqdyn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"freqdyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("derive", help="symbolic NTK and PDE coefficients of a case")
    p.add_argument("case", help="case file (TOML)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("kernel-flow", help="kernel-flow reference prediction (= solve "
                                           "--method kernel-flow)")
    p.add_argument("case", help="case file (TOML)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-figure", action="store_true", help="skip prediction.png")
    p.set_defaults(func=_cmd_kernel_flow)

    p = sub.add_parser("solve", help="finite-element / modal / LFP prediction (MPI-aware)")
    p.add_argument("case", help="case file (TOML)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", default="fem", choices=list(methods()),
                   help="prediction method (default: %(default)s): " + ", ".join(
                       f"{m.name}: {m.description}" for m in PREDICTORS.values()))
    p.add_argument("--no-figure", action="store_true", help="skip prediction.png")
    p.set_defaults(func=_cmd_solve)

    p = sub.add_parser("train", help="train a network and measure its error transform")
    p.add_argument("case", help="case file (TOML) with an optional [train] table")
    p.add_argument("--out", help="output folder (measured.nc, training.png, checkpoints/)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="DIR",
                   help="continue the run in DIR (default: --out) from its newest checkpoint")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("validate", help="run a validation study (theory vs trained networks)")
    p.add_argument("study", help="study file (TOML), e.g. validation/gaussian-1d.toml")
    p.add_argument("--out", required=True, help="output folder (report.json, figures, runs/)")
    p.add_argument("--full", action="store_true", help="full size ([full] table of the study)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("design", help="design rho_w for a wanted learning-time profile")
    p.add_argument("--profile", required=True,
                   help='flat | power:<p> | "<sympy expression in xi>": wanted learning '
                        "time T(xi), up to a constant factor")
    p.add_argument("--band", required=True, type=float, help="band half-width B: rho_w "
                                                             "lives on [-B, B]")
    p.add_argument("--time", type=float, default=None,
                   help="wanted learning time at the profile's geometric mean (sets the "
                        "loss scale); default: the time reached with loss scale 1")
    p.add_argument("--sigma-a", type=float, default=0.3, help="outer-weight std sigma_a")
    p.add_argument("--peaks", type=int, default=5, help="target peaks across the band")
    p.add_argument("--out", default="out/design", help="output folder")
    p.add_argument("--no-solver", action="store_true",
                   help="skip the check of the result with the modal (FEM) solver")
    p.set_defaults(func=_cmd_design)

    p = sub.add_parser("grok", help="run a grokking experiment (validation/grokking/*.toml)")
    p.add_argument("experiment", help="experiment file (TOML)")
    p.add_argument("--out", required=True, help="output folder (result.nc, figures, "
                                                "summary.json)")
    p.add_argument("--paper", action="store_true",
                   help="paper size: merge the file's [paper] table over [settings]")
    p.add_argument("--seeds", help="comma-separated seeds replacing the file's, e.g. 0,1,2")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting (a TOML value), e.g. --set weight_decay=0.3; "
                        "repeatable")
    p.add_argument("--device", default="cpu",
                   help="torch device: cpu (default), auto (CUDA when present), cuda, cuda:N")
    p.set_defaults(func=_cmd_grok)

    p = sub.add_parser("info", help="versions of freqdyn and its stack")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command line draws to files only
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        where = (getattr(args, "case", None) or getattr(args, "study", None)
                 or getattr(args, "experiment", None) or "input")
        print(f"freqdyn: error in {where}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
