"""``freqdyn design`` as a command: design ρ_w, check it, write the case, report and figure.

The design itself is :mod:`freqdyn.analysis.design`; this module writes its files
(``design.toml``, ``design.json``, ``design.png``) and the table the command prints.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w

from freqdyn._version import __version__
from freqdyn.analysis.data_design import (
    ScaleDesign,
    design_scale,
    network_agreement,
    rho_at_scale,
)
from freqdyn.analysis.design import (
    Design,
    case_table,
    design,
    modal_learning_times,
    parse_profile,
    report,
)
from freqdyn.errors import InputError
from freqdyn.inputs.case import case_from_dict
from freqdyn.plots import save_figure
from freqdyn.plots.design import design_figure, scale_figure
from freqdyn.results import FolderLock, atomic_write, write_json
from freqdyn.runs.data_scale import train_over_scales


@dataclass
class DesignFiles:
    """What :func:`design_to` wrote, with the design and its check by the modal solver."""

    design: Design
    report: dict
    modal: np.ndarray | None
    paths: list[Path]


def design_to(profile_text: str, band: float, out, *, sigma_a: float = 0.3,
              peak_count: int = 5, time: float | None = None,
              solver: bool = True) -> DesignFiles:
    """``freqdyn design``: design ρ_w, check it with the modal solver, write the files.

    ``out/design.toml`` (a case file for a study), ``out/design.json`` (wanted, achieved,
    deviations; with the freqdyn version and the case text) and ``out/design.png``, each
    written atomically.
    """
    if not (math.isfinite(band) and band > 0):
        raise InputError("--band", f"must be a finite half-width > 0, got {band}")
    if not (math.isfinite(sigma_a) and sigma_a >= 0):
        raise InputError("--sigma-a", f"must be a finite number >= 0, got {sigma_a}")
    profile = parse_profile(profile_text)
    d = design(profile, band, sigma_a=sigma_a, peaks=peak_count, level=time)
    name = "design-" + "".join(ch if ch.isalnum() else "-" for ch in profile_text)[:40]
    table = case_table(d, name)
    text = f"# written by freqdyn {__version__}: design --profile {profile_text!r} " \
           f"--band {band:g}\n" + tomli_w.dumps(table)
    case = case_from_dict(table, text=text)
    modal = modal_learning_times(case) if solver else None
    out = Path(out)
    with FolderLock(out):
        rep = dict(report(d, modal), profile=profile_text, freqdyn_version=__version__,
                   case_toml=text)
        paths = [atomic_write(out / "design.toml", lambda tmp: Path(tmp).write_text(text)),
                 write_json(out / "design.json", rep),
                 save_figure(design_figure(d, modal, title=f"design {profile_text} on "
                                                           f"[-{band:g}, {band:g}]"),
                             out / "design.png")]
    return DesignFiles(design=d, report=rep, modal=modal, paths=paths)


def design_lines(files: DesignFiles, profile_text: str) -> list[str]:
    """The table the command prints: wanted, first guess, designed, Gaussian, per peak."""
    d, modal, rep = files.design, files.modal, files.report
    lines = [f"designed rho_w on [-{d.probe.band:g}, {d.probe.band:g}] for profile "
             f"{profile_text}: loss scale {d.loss_scale:.4g}, {d.cost_evaluations} PDE "
             "evaluations",
             "  peak      wanted    first-guess  designed(FD)"
             + ("  designed(modal)" if modal is not None else "") + "  Gaussian s=B/4"]
    for k, w in enumerate(d.probe.peaks):
        row = (f"  {w:<8.3g}  {d.wanted[k]:<8.4g}  {d.achieved_first_guess[k]:<11.4g}  "
               f"{d.achieved[k]:<12.4g}")
        if modal is not None:
            row += f"  {modal[k]:<15.4g}"
        lines.append(row + f"  {d.gaussian[k]:.4g}")
    lines.append(f"  max |T/T_wanted - 1|: designed {rep['max_rel_dev_fd']:.3f} (FD)"
                 + (f", {rep['max_rel_dev_modal']:.3f} (modal)" if modal is not None else "")
                 + f"; first guess {rep['max_rel_dev_first_guess']:.3f}; Gaussian misses by "
                 f"{rep['gaussian_miss_factor']:.3g}x")
    lines += [f"  wrote {p}" for p in files.paths]
    return lines


#: GD steps each confirming network takes at least (GD's step error on the flow stays
#: about (λt)²/(2k) ≤ 1.5 % on the modes learned at T; docs/training.md).
CONFIRM_MIN_STEPS = 300


@dataclass(frozen=True)
class Confirmation:
    """Networks of width m, one per seed, trained at every scale of the design's grid."""

    width: int
    seeds: list[int]


def _confirmed(case, sd: ScaleDesign, confirm: Confirmation, out: Path) -> dict:
    """The networks' test MSE over the scale grid, next to the prediction."""
    mse = train_over_scales(case, sd.time, sd.scales, confirm.width, confirm.seeds,
                            {"min_steps": CONFIRM_MIN_STEPS}, out)
    return {"width": confirm.width, "seeds": confirm.seeds, "test_mse": mse,
            **network_agreement(sd, mse)}


def data_design_to(case, time: float, out, scales=None, confirm: Confirmation | None = None,
                   width: int | None = None) -> tuple[ScaleDesign, list[Path], dict | None]:
    """``freqdyn design --case DATA.toml --time T [--width M [--confirm]]``: the ρ_w scale
    of least predicted test MSE at T (:mod:`freqdyn.analysis.data_design`), at infinite
    width or the expected one of width-M networks; writes
    ``design.json`` (scale, predicted_test_mse, the whole curve, and with ``confirm`` the
    networks' measured curve), ``design.toml`` (the case at that scale, its data path made
    absolute) and ``design.png``."""
    out = Path(out)
    with FolderLock(out):
        sd = design_scale(case, time, scales, width=width)
        measured = _confirmed(case, sd, confirm, out) if confirm is not None else None
        table = tomllib.loads(case.text)
        table["network"]["rho_w"] = rho_at_scale(case, sd.scale)
        table["target"]["data"] = str(case.target.path)
        text = (f"# written by freqdyn {__version__}: design --case {case.name} --time "
                f"{time:g}\n" + tomli_w.dumps(table))
        report = {"scale": sd.scale, "scale_key": sd.key, "family": sd.family,
                  "time": sd.time, "predicted_test_mse": float(sd.test_mse[sd.best]),
                  "predicted_train_mse": float(sd.train_mse[sd.best]),
                  "best_at_grid_end": sd.at_grid_end,
                  "width": sd.width, "draws": sd.draws,
                  "curve": {"scale": sd.scales, "test_mse": sd.test_mse,
                            "train_mse": sd.train_mse, "test_mse_std": sd.test_mse_std},
                  "model": sd.model,
                  "measured": measured,
                  "freqdyn_version": __version__, "case_toml": case.text,
                  "data_sha256": case.target.sha256}
        figure = scale_figure(sd, f"{case.name}: test MSE against the {sd.key}",
                              measured=measured)
        paths = [write_json(out / "design.json", report),
                 atomic_write(out / "design.toml", lambda tmp: Path(tmp).write_text(text)),
                 save_figure(figure, out / "design.png")]
    return sd, paths, measured


def data_design_lines(sd: ScaleDesign, paths: list[Path], measured: dict | None = None
                      ) -> list[str]:
    """What ``freqdyn design --case`` prints."""
    at = ("infinite width" if sd.width is None else
          f"m = {sd.width}, ± {sd.test_mse_std[sd.best]:.2g} over {sd.draws} draws")
    lines = [f"rho_w {sd.family} {sd.key} = {sd.scale:.4g}: predicted test MSE "
             f"{sd.test_mse[sd.best]:.4g} at t = {sd.time:g} ({at}; train "
             f"{sd.train_mse[sd.best]:.4g}); {sd.scales.size} scales from "
             f"{sd.scales[0]:.3g} to {sd.scales[-1]:.3g}"]
    if measured is not None:
        lines.append(f"  networks (m = {measured['width']}, {len(measured['seeds'])} seeds): "
                     f"best {sd.key} {measured['networks_best_scale']:.4g}, "
                     f"{measured['grid_steps_apart']} grid steps from the prediction; their "
                     f"test MSE at the predicted {sd.key} "
                     f"{measured['test_mse_mean'][sd.best]:.4g}, "
                     f"{100 * measured['excess_at_predicted']:.1f} % above their best; "
                     f"prediction vs networks at most "
                     f"{100 * measured['max_rel_diff_pred_vs_net']:.1f} % over the grid")
    if sd.at_grid_end:
        lines.append("  warning: the least test MSE is at an end of the scale grid; the best "
                     "scale may lie beyond it (give --scales)")
    return lines + [f"  wrote {p}" for p in paths]
