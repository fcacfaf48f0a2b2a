"""Command line: ``freqdyn <command> ...``.  Each command parses its arguments, calls the
library once and prints; every error is one line on stderr (see docs/errors.md).

Commands
--------
derive       the NTK, damping, diffusion and learning-rate profile of a case (sympy)
solve        a prediction by a registered method → DIR/prediction.nc and prediction.png
kernel-flow  the kernel-flow reference (= solve --method kernel-flow)
train        train the case's network; its measured û(ξ, τ) → DIR/measured.nc
run          a study or experiment file → DIR/report.json (claim_holds), figures
validate     the same as run (studies)
grok         the same as run (grokking experiments; --paper is --full)
design       choose ρ_w for a wanted per-frequency learning-time profile → DIR/design.toml
info         versions of freqdyn and its numerical stack (paste it into bug reports)

Exit codes: 0 done (and the claim held), 1 done and the claim failed, 2 bad input, 3
diverged, 130 interrupted (the last checkpoint is named; run the command again to resume).
"""

from __future__ import annotations

import argparse
import errno
import os
import platform
import re
import sys
import tomllib
from importlib import metadata

from freqdyn import time_budget
from freqdyn._version import __version__
from freqdyn.errors import (
    EXIT_BAD_INPUT,
    EXIT_CLAIM_FAILED,
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InputError,
    TrainingDiverged,
)
from freqdyn.results import check_output_folder


def _cmd_derive(args) -> int:
    from freqdyn.inputs.case import load_case
    from freqdyn.theory.derive import derive

    case = load_case(args.case)
    result = derive(case)
    if args.json:
        print(result.to_json())
        return EXIT_OK
    print(f"case {case.name} (d = {case.dim}, rho_w: {case.rho_w.family}, "
          f"sigma_a = {case.sigma_a:g}, kappa = {case.kappa:g}, loss scale = {case.loss_scale:g})")
    print(f"  NTK       Theta(x, xp) = {result.ntk}")
    print("  PDE       d/dt u_hat = div(D grad u_hat) - c u_hat")
    print(f"  damping   c(xi) = {result.damping}")
    print(f"  diffusion D(xi) = {result.diffusion}")
    print(f"  rate      per-frequency learning rate (pure damping) = {result.rate}")
    return EXIT_OK


def _cmd_solve(args) -> int:
    from freqdyn.inputs.case import load_case
    from freqdyn.runs.predictions import solve_to

    written = solve_to(load_case(args.case), args.out, args.method, figure=not args.no_figure)
    if written is not None:
        print(written.summary)
        for path in written.paths:
            print(f"  wrote {path}")
    return EXIT_OK


def _cmd_kernel_flow(args) -> int:
    args.method = "kernel-flow"
    return _cmd_solve(args)


def _cmd_train(args) -> int:
    from freqdyn.inputs.case import load_case
    from freqdyn.runs.training import train_to as train

    out = args.out or args.resume
    if not out:
        raise InputError("--out", "give the output folder: freqdyn train CASE --out DIR")
    case = load_case(args.case)
    result = train(case, out, resume=True if args.resume else None)
    ds = result.dataset
    how = (f"resumed from step {result.resumed_from}, " if result.resumed_from is not None
           else "")
    print(f"trained {case.name}: m = {ds.attrs['width']}, {result.steps} steps ({how}"
          f"{float(ds.attrs['train_seconds']):.1f} s of training); final loss "
          f"{float(ds['loss'][-1]):.3e}, drift {float(ds['drift'][-1]):.2e}")
    print(f"  wrote {result.measured}" + (f" and {result.figure}" if result.figure else ""))
    return EXIT_OK


def _overrides(items) -> dict:
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError("--set", f"must be KEY=VALUE (a TOML value), got {item!r}")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = value  # a bare word: a string
    return overrides


def _comma_list(text: str | None, cast, flag: str, what: str) -> list | None:
    """``"1,2,3"`` as a list of ``cast`` values (None when not given); one-line refusal."""
    if not text:
        return None
    try:
        return [cast(v) for v in text.split(",")]
    except ValueError:
        raise InputError(flag, f"must be comma-separated {what}, got {text!r}") from None


def _cmd_run(args) -> int:
    from freqdyn.nets.settings import resolve_device
    from freqdyn.runs.experiment import load_experiment
    from freqdyn.runs.runner import headline, run_experiment

    seeds = _comma_list(args.seeds, int, "--seeds", "integers")
    exp = load_experiment(args.file, full=args.full, seeds=seeds,
                          overrides=_overrides(args.set) or None)
    if args.quiet:
        os.environ["FREQDYN_NO_PROGRESS"] = "1"
    result = run_experiment(exp, args.out, device=resolve_device(args.device, "--device"))
    print("\n".join(headline(result, exp)))
    return EXIT_OK if result.claim_holds else EXIT_CLAIM_FAILED


def _confirmation(args):
    """The networks of ``design --case … --confirm --width M [--seeds …]``, or None."""
    from freqdyn.runs.design import Confirmation

    if args.width is not None and args.width < 2:
        raise InputError("--width", f"must be a network width M >= 2, got {args.width}")
    if not args.confirm:
        return None
    if args.width is None or args.width < 2:
        raise InputError("--width", "give the networks' width M >= 2 for --confirm")
    seeds = _comma_list(args.seeds, int, "--seeds", "integers") or [0]
    return Confirmation(width=args.width, seeds=seeds)


def _cmd_design(args) -> int:
    from freqdyn.runs.design import data_design_lines, data_design_to, design_lines, design_to

    if args.case:
        from freqdyn.inputs.case import load_case

        if args.time is None:
            raise InputError("--time", "give the training time T the design is for")
        scales = _comma_list(args.scales, float, "--scales", "numbers")
        sd, paths, measured = data_design_to(load_case(args.case), args.time, args.out,
                                             scales, _confirmation(args), width=args.width)
        print("\n".join(data_design_lines(sd, paths, measured)))
        return EXIT_OK
    for flag, value in (("--confirm", args.confirm), ("--width", args.width)):
        if value:
            raise InputError(flag, "applies to a data case (--case DATA.toml)")
    for flag, value in (("--profile", args.profile), ("--band", args.band)):
        if value is None:
            raise InputError(flag, "is required (or --case DATA.toml --time T for a data case)")

    files = design_to(args.profile, args.band, args.out, sigma_a=args.sigma_a,
                      peak_count=args.peak_count, time=args.time, solver=not args.no_solver)
    print("\n".join(design_lines(files, args.profile)))
    return EXIT_OK


def _cmd_info(args) -> int:  # noqa: ARG001
    import numpy as np
    import scipy
    import sympy
    import torch
    import xarray

    print(f"freqdyn {__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    for mod in (np, scipy, sympy, torch, xarray):
        print(f"{mod.__name__} {mod.__version__}")
    print(f"torch CUDA available: {torch.cuda.is_available()}")
    for dist in ("finufft", "cufinufft", "dolfinx-solver-real"):
        try:
            print(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            print(f"{dist} not installed")
    return EXIT_OK


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the module text's layout and shows every option's default."""


def build_parser() -> argparse.ArgumentParser:
    from freqdyn.predict.registry import PREDICTORS

    parser = argparse.ArgumentParser(prog="freqdyn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"freqdyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, help_text):
        return sub.add_parser(name, help=help_text, description=help_text,
                              formatter_class=_Formatter)

    p = command("derive", "symbolic NTK and PDE coefficients of a case")
    p.add_argument("case", help="case file (TOML)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=_cmd_derive)

    methods = "; ".join(f"{m.name}: {m.description}" for m in PREDICTORS.values())
    for name, func, help_text in (
            ("solve", _cmd_solve, "a prediction of û(ξ, t) by a registered method (MPI-aware)"),
            ("kernel-flow", _cmd_kernel_flow, "the kernel-flow reference (= solve --method "
                                              "kernel-flow)")):
        p = command(name, help_text)
        p.add_argument("case", help="case file (TOML)")
        p.add_argument("--out", required=True, help="output folder (prediction.nc, .png)")
        if name == "solve":
            p.add_argument("--method", default="fem", choices=list(PREDICTORS),
                           metavar="METHOD", help=f"prediction method ({methods})")
        p.add_argument("--no-figure", action="store_true", help="skip prediction.png")
        p.set_defaults(func=func)

    p = command("train", "train the case's network and measure its error transform")
    p.add_argument("case", help="case file (TOML) with an optional [train] table")
    p.add_argument("--out", help="output folder (measured.nc, training.png, checkpoints/); "
                                 "a run started again there resumes (required unless "
                                 "--resume DIR)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="resume the run in DIR (an error if DIR holds no checkpoint)")
    _max_minutes_argument(p)
    p.set_defaults(func=_cmd_train)

    for name, help_text in (("run", "run a study or experiment file"),
                            ("validate", "run a validation study (= run)"),
                            ("grok", "run a grokking experiment (= run; --paper is --full)")):
        p = command(name, help_text)
        p.add_argument("file", help="study or experiment file (TOML)")
        p.add_argument("--out", required=True,
                       help="output folder (report.json, figures, runs/, checkpoints/); a "
                            "run started again there resumes")
        p.add_argument("--full", "--paper", action="store_true", dest="full",
                       help="full (paper) size: merge the file's [full] table over [settings]")
        p.add_argument("--seeds", help="comma-separated seeds replacing the file's, e.g. 0,1,2")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override one setting (a TOML value), e.g. --set "
                            "weight_decay=0.3; repeatable")
        p.add_argument("--device", default="auto",
                       help="torch device: auto (CUDA when present), cpu, cuda, cuda:N")
        p.add_argument("--quiet", action="store_true", help="no progress lines")
        _max_minutes_argument(p)
        p.set_defaults(func=_cmd_run)

    _design_arguments(command("design", "design rho_w for a wanted learning-time profile"))
    p = command("info", "versions of freqdyn and its stack")
    p.set_defaults(func=_cmd_info)
    return parser


def _design_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``freqdyn design`` (a learning-time profile, or a data case)."""
    p.add_argument("--case", default=None,
                   help="a data case: choose the rho_w scale of least predicted test MSE at "
                        "--time instead (design.json, design.toml, design.png)")
    p.add_argument("--scales", default=None,
                   help="with --case: comma-separated scales to try (default: 25 from "
                        "1/256 of the training grid's Nyquist frequency up to it)")
    p.add_argument("--profile", default=None,
                   help='flat | power:<p> | "<sympy expression in xi>": wanted learning '
                        "time T(|xi|), up to a constant factor")
    p.add_argument("--band", default=None, type=float,
                   help="band half-width B: rho_w lives on [-B, B]")
    p.add_argument("--time", type=float, default=None,
                   help="wanted learning time at the profile's geometric mean (sets the "
                        "loss scale); default: the time reached with loss scale 1")
    p.add_argument("--sigma-a", type=float, default=0.3, help="outer-weight std sigma_a")
    p.add_argument("--peak-count", "--peaks", type=int, default=5, dest="peak_count",
                   help="number of probe peaks placed across the band")
    p.add_argument("--confirm", action="store_true",
                   help="with --case: train networks of --width at every scale of the grid "
                        "and add their test MSE to design.json and design.png")
    p.add_argument("--width", type=int, default=None,
                   help="with --case: design for width-M networks (the expected test MSE "
                        "of their linearised flow over draws), and the width --confirm "
                        "trains; without it the design is for infinite width")
    p.add_argument("--seeds", default=None,
                   help="with --confirm: comma-separated seeds, one network each (0)")
    p.add_argument("--out", default="out/design", help="output folder")
    p.add_argument("--no-solver", action="store_true",
                   help="skip the check of the result with the modal (FEM) solver")
    _max_minutes_argument(p)
    p.set_defaults(func=_cmd_design)


def _max_minutes_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-minutes", type=float, default=None, metavar="N",
                   help="refuse (exit 2, with the estimate) training that will not finish "
                        "within N minutes of wall time; each network's estimate is printed "
                        "before it starts")


def _where(args) -> str:
    return (getattr(args, "case", None) or getattr(args, "file", None) or "input")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    """Warnings as one line on stderr, ``freqdyn: warning (AccuracyWarning): ...`` (no
    source line echoed)."""
    return f"freqdyn: warning ({category.__name__}): {message}\n"


def _allocation_failure(exc: BaseException) -> str | None:
    """'an array of N GB' when ``exc`` is an allocation failure (Python's MemoryError, or
    torch's CPU allocator refusing), else None: a size no estimate caught before."""
    text = str(exc)
    if isinstance(exc, MemoryError):
        return "more memory"
    if "can't allocate memory" not in text and "DefaultCPUAllocator" not in text:
        return None
    match = re.search(r"allocate (\d+) bytes", text)
    return f"an array of {int(match.group(1)) / 1e9:.1f} GB" if match else "more memory"


def main(argv: list[str] | None = None) -> int:
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # the command line draws to files only
    warnings.formatwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "out", None):
            check_output_folder(args.out)
        with time_budget.time_limit(getattr(args, "max_minutes", None)):
            return args.func(args)
    except InputError as exc:
        print(f"freqdyn: error in {_where(args)}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingDiverged as exc:
        print(f"freqdyn: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except (MemoryError, RuntimeError) as exc:
        asked = _allocation_failure(exc)
        if asked is None:
            raise
        print(f"freqdyn: error in {_where(args)}: the run asked for {asked}, more than this "
              "machine can allocate; lower the sizes in its settings (width, d_model, "
              "samples, points)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("freqdyn: interrupted; finished results are kept, and a run started again "
              "with the same command resumes from its last checkpoint", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"freqdyn: error: no space left on the device while writing "
                  f"{exc.filename or 'a result'}; free some space and run the command again "
                  "(finished results and checkpoints are kept)", file=sys.stderr)
            return EXIT_BAD_INPUT
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            print(f"freqdyn: error: cannot write {exc.filename or 'a result'} ({exc.strerror}); "
                  "choose an output folder you can write to", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
