"""Experiment kind ``study``: theory next to trained networks on one case (or several arms).

Settings (``[settings]``, overridden by ``[full]``)::

    case = "../pde/gaussian-1d.toml"   # relative to the file; or an inline [settings.case]
    predictions = ["modal", "damping"] # registered methods (freqdyn.predict.registry)
    pde = "modal"                      # the prediction the tolerance holds (default: first)
    tolerance = "predicted"            # read by a check of kind "tolerance" (default
                                       # "predicted"; a number needs tolerance_reason)
    widths = [512]                     # networks trained per arm and seed ([] : none)
    times = [0.0, 0.5, 1.0]            # optional: replaces the case's [frequency] times
    train = { lr_fraction = 0.9 }      # [train] overrides for every network
    spread_draws = 16                  # kernel draws of the predicted spread (0: none)
    wrong_models = [{ name = "sigma_a+20%", sigma_a = 0.84 }]  # must fail (default: damping)

``[[arm]]`` tables (``name``, and ``rho_w``, ``sigma_a``, ``kappa``, ``loss_scale``
overrides, or ``lfp``: keys merged over the case's ``[lfp]`` table) run several variants
of the case.  Everything is in PDE time t (the t of
∂_t û = κ²α[σ_a²∇·(ρ_w∇û) − ρ_w û], docs/theory.md §5) and ξ in cycles per unit of x.

Per arm, width and reported time the report holds: the relative L²(ξ) error
‖û_pred − û_net‖/‖û_net‖ of each prediction against each trained network (per seed,
their mean and sample std: :mod:`freqdyn.analysis.stats`), against the seed-mean û
(``rel_l2_<method>_vs_seed_mean_net``, a diagnostic: Monte-Carlo error falls like
1/√seeds there, a systematic error does not), and from two seeds on the pde's error split
into its ``common`` and ``per_network`` parts (``error_split_<pde>``:
:func:`freqdyn.analysis.compare.error_split`), each prediction against each other, the
per-peak ratios |û(ω_k, t)|/|û(ω_k, 0)| and learning times (first t with ratio 1/e; for
predictions exact in time computed on a fine time grid, so that they resolve any wanted
time), the Parseval check of the loss and the parameter drift.  Top level:
``max_rel_l2_pde_vs_net``, the largest over t > 0 and arms of the seed-mean error of the
``pde`` prediction at the largest width: the expected error of one trained network.  For
1D arms trained by plain GD, ``budget`` splits the error at the largest width into finite
width, time discretisation and sampling (:mod:`freqdyn.analysis.budget`).

Finite width (docs/theory.md §12): each network's linearised twin gives, per width,
``rel_l2_twin_vs_net`` (the beyond-linear part) and ``rel_l2_twin_vs_<pde>`` (the part of
the network's own kernel and samples), and ``max_rel_l2_twin_vs_net`` at the top level;
per arm, ``predicted_spread`` (the standard deviation over draws of the m units of a
network's error against the infinite-width network on the same samples, predicted
without training: :mod:`freqdyn.analysis.finite_width`, in ``finite_width`` per time) next to
``measured_spread`` (the sample std over the seeds, given from 8 seeds on, with its 95 %
confidence interval: for 8 seeds s·[0.66, 2.04]), at the last reported time and the
largest width.  ``tolerance_bound`` per time is the predicted mean + 3 predicted spreads
of the seed mean (spread/√seeds), plus the motion beyond linear that the networks' twins
measure (``tolerance_bound_parts``): ``tolerance = "predicted"``, the default where this
theory applies.  It is finite width alone, measured from the infinite-width network and
not from the pde, so that a wrong pde (or a coarse box and sampling) cannot widen it.

Wrong models (``wrong_models``: a method and arm-like overrides; default the pde's
damping-only counterpart) are predicted for every arm and compared with the same
networks; the checks are then evaluated with each in place of the pde, and each must fail
one (:func:`freqdyn.runs.checks.evaluate_checks`).

The networks are independent runs: with a ``[sweep]`` table they go to Dask workers
(:mod:`freqdyn.runs.sweep`), here or on a cluster; each trains into
``DIR/runs/<arm>-m<width>-s<seed>``, resumes there when interrupted and is reused when
the study is run again.
"""

from __future__ import annotations

import collections
import functools
import json
import time as _time
import tomllib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import tomli_w

from freqdyn.analysis import compare
from freqdyn.analysis.budget import MAX_SAMPLES, error_budget
from freqdyn.analysis.finite_width import predicted_spread
from freqdyn.analysis.stats import event_statistics, mean_std, std_interval
from freqdyn.config import Table
from freqdyn.errors import AccuracyWarning, InputError
from freqdyn.inputs.case import Case, case_from_dict, load_case
from freqdyn.nets.settings import EXECUTION_KEYS, train_settings
from freqdyn.nets.train import require_networks_fit
from freqdyn.nets.train import train as train_network
from freqdyn.nets.twin import twin_dataset
from freqdyn.predict.registry import predict, predictor
from freqdyn.progress import say
from freqdyn.results import at_times, peak_ratios, read_dataset, write_dataset
from freqdyn.runs.checks import validate_against_study
from freqdyn.runs.runner import Outcome
from freqdyn.runs.sweep import run_sweep, sweep_settings
from freqdyn.theory.lfp import lfp_params

ARM_KEYS = {"name", "rho_w", "sigma_a", "kappa", "loss_scale", "lfp"}
#: Points of the fine time grid of the predictions exact in time (their learning times).
FINE_TIMES = 401


@dataclass
class Arm:
    """One case of a study: a name and the validated case (with the study's times)."""

    name: str
    case: Case


@dataclass
class StudyPlan:
    """A study's settings, resolved and checked (before anything trains)."""

    name: str
    arms: list[Arm]
    predictions: list[str]
    pde: str | None
    widths: list[int]
    seeds: list[int]
    train: dict
    spread_draws: int = 16
    tolerance: float | str | None = None
    wrong_models: list = field(default_factory=list)


@dataclass
class WrongModel:
    """A model the networks must refute: a prediction of each arm's case with overrides."""

    name: str
    method: str
    why: str
    cases: dict  # arm name -> Case



def _case_data(raw, base: Path) -> dict:
    if isinstance(raw, str):
        path = (base / raw).resolve()
        if not path.is_file():
            raise InputError("settings.case", f"file {raw!r} not found (relative to {base})")
        try:
            return tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InputError("settings.case", f"{path} is not valid TOML: {exc}") from None
    if isinstance(raw, dict):
        return json.loads(json.dumps(raw))
    raise InputError("settings.case", "give a case file path or an inline [settings.case] table")


def overridden_case_data(data: dict, table: Table) -> dict:
    """A copy of the case ``data`` with an arm's (or a wrong model's) overrides: ``rho_w``,
    ``sigma_a``, ``kappa``, ``loss_scale`` replace [network] keys; ``lfp`` is merged over
    the case's [lfp] table (e.g. lfp = { sigma_b = 2.0 })."""

    out = json.loads(json.dumps(data))
    for key in ("rho_w", "sigma_a", "kappa", "loss_scale"):
        if key in table:
            out.setdefault("network", {})[key] = table.get(key)
    if "lfp" in table:
        lfp = table.get("lfp")
        if not isinstance(lfp, dict):
            raise InputError(table.field("lfp"), f"must be a table of [lfp] keys, got {lfp!r}")
        out["lfp"] = {**out.get("lfp", {}), **lfp}
    return out


def _warn_beyond_horizon(times, own) -> None:
    """A study's times beyond its case's last time: the case's ξ box and truncation were
    chosen for its own horizon, and diffusion keeps spreading û after it (a study that
    means it says why in ``times_reason``)."""
    if own and max(times) > max(own):
        warnings.warn(f"settings.times reach t = {max(times):g}, beyond the case's last time "
                      f"{max(own):g}; its [frequency] box was chosen for its own times "
                      "(extend [frequency] times in the case to check it there, or say why "
                      "in settings.times_reason)",
                      AccuracyWarning, stacklevel=3)


def plan_study(exp) -> StudyPlan:
    """Resolve and check a study: cases per arm, predictions, widths, checks."""

    t = exp.table()
    data = _case_data(t.get("case"), exp.base)
    if "times" in t:
        own = data.get("frequency", {}).get("times")
        data.setdefault("frequency", {})["times"] = t.numbers("times", low=0.0)
        if "times_reason" not in t:
            _warn_beyond_horizon(data["frequency"]["times"], own)
    base_name = data.get("name", exp.name)
    arms_raw = list(exp.arms) or [{"name": base_name}]
    arms = []
    for i, raw in enumerate(arms_raw):
        arm_table = Table(raw, f"arm[{i}]", ARM_KEYS)
        name = arm_table.string("name", f"arm{i}")
        arm_data = overridden_case_data(data, arm_table)
        arm_data["name"] = f"{base_name}-{name}" if len(arms_raw) > 1 else base_name
        arms.append(Arm(name, case_from_dict(arm_data, text=tomli_w.dumps(arm_data))))
    if len({a.name for a in arms}) != len(arms):
        raise InputError("arm", "two arms have the same name")
    predictions = t.get("predictions", [])
    if not isinstance(predictions, list) or not all(isinstance(p, str) for p in predictions):
        raise InputError("settings.predictions", f"must be a list of method names, got "
                                                 f"{predictions!r}")
    for p in predictions:
        entry = predictor(p, "settings.predictions")
        for arm in arms:
            if arm.case.dim not in entry.dims:
                raise InputError("settings.predictions", f"{p!r} works in d = {entry.dims}; "
                                                         f"the case has d = {arm.case.dim}")
    _refuse_peaks_in_ball(arms, predictions)
    pde = t.get("pde", predictions[0] if predictions else None)
    if pde is not None and pde not in predictions:
        raise InputError("settings.pde", f"{pde!r} must be one of the predictions {predictions}")
    widths = t.integers("widths", [], low=2, nonempty=False)
    if not widths and not predictions:
        raise InputError("settings.widths", "the study has neither predictions nor networks")
    if widths and not any(np.any(arm.case.times > 0) for arm in arms):
        raise InputError("settings.times", "networks are compared at the times t > 0; give "
                                           "at least one")
    train = Table(t.get("train", {}), "settings.train").data
    for arm in arms:
        for width in widths:
            train_settings(arm.case, dict(train, width=width))  # refuse bad [train] now
    validate_against_study(exp.checks, {a.name: a for a in arms},
                           {a.name: len(a.case.peaks) for a in arms}, predictions, len(widths))
    spread_draws = t.integer("spread_draws", 16, low=0)
    tolerance = _tolerance_setting(t, arms, pde, widths, train, spread_draws)
    return StudyPlan(name=exp.name, arms=arms, predictions=predictions, pde=pde, widths=widths,
                     seeds=list(exp.seeds), train=train, spread_draws=spread_draws,
                     tolerance=tolerance, wrong_models=_wrong_models(t, data, arms, pde))


def _tolerance_setting(t: Table, arms, pde, widths, train, spread_draws):
    """``tolerance``: "predicted" (the default where the finite-width theory applies: the
    2-layer Fourier-feature model with a pde and networks), or a number that the file
    explains in ``tolerance_reason``; None for a study with no pde or no networks."""

    applies = bool(pde and widths and spread_draws) and all(
        train_settings(a.case, dict(train, width=widths[0])).model == "fourier" for a in arms)
    raw = t.get("tolerance", "predicted" if applies else None)
    if raw is None:
        return None
    if raw == "predicted":
        if not applies:
            raise InputError("settings.tolerance", '"predicted" needs a pde, networks, '
                                                   "spread_draws > 0 and the 2-layer "
                                                   "Fourier-feature model; give a number and "
                                                   "say why in settings.tolerance_reason")
        return "predicted"
    value = t.number("tolerance", low=0.0, low_open=True)
    reason = t.get("tolerance_reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError("settings.tolerance_reason", "a hand-set tolerance must say why "
                                                      '(or use tolerance = "predicted")')
    return value


#: Keys of a wrong model (settings.wrong_models entries).
WRONG_KEYS = {"name", "method", "why", "rho_w", "sigma_a", "kappa", "lfp"}


def _wrong_models(t: Table, data: dict, arms, pde) -> list[WrongModel]:
    """``wrong_models``: models the networks must refute, each a prediction (``method``,
    default the pde) of the case with overrides (as an arm's).  Default: the damping-only
    counterpart of the pde (its registry entry's ``damping_only``), when it has one."""

    if pde is None:
        return []
    damping = predictor(pde).damping_only
    default = ([{"name": "damping-only", "method": damping,
                 "why": "no diffusion: the damping term of the pde alone"}] if damping else [])
    raw = t.get("wrong_models", default)
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise InputError("settings.wrong_models", "must be an array of tables, e.g. "
                                                  '[{ name = "damping-only", method = '
                                                  '"damping" }]')
    out = []
    for i, entry in enumerate(raw):
        table = Table(entry, f"settings.wrong_models[{i}]", WRONG_KEYS)
        method = table.string("method", pde)
        predictor(method, table.field("method"))
        cases = {}
        for arm in arms:
            arm_data = overridden_case_data(tomllib.loads(arm.case.text), table)
            cases[arm.name] = case_from_dict(arm_data, text=tomli_w.dumps(arm_data))
            if cases[arm.name].dim not in predictor(method).dims:
                raise InputError(table.field("method"), f"{method!r} works in d = "
                                                        f"{predictor(method).dims}")
        out.append(WrongModel(table.string("name", f"wrong{i}"), method,
                              table.string("why", ""), cases))
    if len({w.name for w in out}) != len(out):
        raise InputError("settings.wrong_models", "two wrong models have the same name")
    return out


def _refuse_peaks_in_ball(arms, predictions) -> None:
    """An LFP prediction leaves out |ξ| < ε: a target peak there has no predicted ratio."""

    acts = {p.split("-")[1] for p in predictions if p.startswith("lfp-")}
    for arm in arms:
        for act in acts:
            eps = lfp_params(arm.case, act).ball
            inside = np.linalg.norm(arm.case.peaks, axis=1) < eps
            if inside.any():
                raise InputError("target.peaks", f"peak {arm.case.peaks[inside][0].tolist()} of "
                                                 f"arm {arm.name!r} lies in the LFP's excluded "
                                                 f"ball |xi| < {eps:g}; move it out or lower "
                                                 "lfp.epsilon")


# ---------------------------------------------------------------------------------------
# Networks: one cell per (arm, width, seed)
# ---------------------------------------------------------------------------------------


def run_folder(out, arm: str, width: int, seed: int) -> Path:
    return Path(out) / "runs" / f"{arm}-m{width}-s{seed}"


def train_cell(cell: dict, *, root: str, cases: dict, train: dict, extra: dict) -> dict:
    """Train (or reuse, or resume) the network of one cell; returns where it was written.

    Module level, so that Dask workers can run it: ``cases`` maps arm names to case text.
    """

    case = load_case(cell["arm"], text=cases[cell["arm"]])
    overrides = dict(train, width=cell["m"], seed=cell["seed"], **extra)
    folder = run_folder(root, cell["arm"], cell["m"], cell["seed"])
    existing = folder / "measured.nc"
    ds = _stored_result(existing) if existing.is_file() else None
    if ds is not None:
        wanted = json.loads(json.dumps(train_settings(case, overrides).computation()))
        have = json.loads(ds.attrs["train"])
        if ds.attrs.get("case_toml") == case.text and all(have.get(k) == v
                                                         for k, v in wanted.items()):
            return {"measured": str(existing), "reused": True}
        raise InputError("--out", f"{folder} holds a different run; choose another --out")
    # progress as for `freqdyn train` (plain lines every 30 s off a terminal): a study's
    # full-size network can train for many minutes, and silence reads as a hang
    result = train_network(case, folder, overrides=overrides)
    return {"measured": str(result.measured), "reused": False,
            "seconds": float(result.dataset.attrs["train_seconds"]),
            "resumed_from": result.resumed_from}


def _stored_result(path: Path):
    """A stored network result, or None when it is damaged (truncated, not a result file):
    then it is named on stderr and removed, to be rebuilt from the run's checkpoints."""
    try:
        return read_dataset(path)
    except (OSError, ValueError, KeyError) as exc:
        say(f"{path} is damaged ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
            "rebuilding it from its checkpoints", enabled=True)
        path.unlink()
        return None


def train_networks(plan: StudyPlan, exp, out, extra: dict | None = None) -> dict:
    """Every (arm, width, seed) network, in process or through the ``[sweep]`` workers."""

    cells = [{"arm": arm.name, "m": width, "seed": seed}
             for arm in plan.arms for width in plan.widths for seed in plan.seeds]
    task = functools.partial(train_cell, root=str(out), train=plan.train, extra=extra or {},
                             cases={arm.name: arm.case.text for arm in plan.arms})
    _require_cells_fit(plan, cells, out, extra or {})
    results = {}
    if exp.sweep:
        records = run_sweep(task, cells, Path(out) / "sweep", sweep_settings(exp.text),
                            on_done=lambda name, done, total: say(
                                f"{plan.name}: {done}/{total} networks ({name})"))
        for cell, record in zip(cells, records, strict=True):
            results[(cell["arm"], cell["m"], cell["seed"])] = record["result"]["measured"]
        return results
    for i, cell in enumerate(cells):
        start = _time.perf_counter()
        res = task(cell)
        results[(cell["arm"], cell["m"], cell["seed"])] = res["measured"]
        how = "reused" if res["reused"] else f"trained in {_time.perf_counter() - start:.1f} s"
        if res.get("resumed_from") is not None:
            how += f" (resumed from step {res['resumed_from']})"
        say(f"{plan.name}: network {i + 1}/{len(cells)} ({cell['arm']}, m = {cell['m']}, "
            f"seed {cell['seed']}) {how}")
    return results


def _require_cells_fit(plan: StudyPlan, cells, out, extra: dict) -> None:
    """With ``--max-minutes``: the networks not yet trained, one estimate per (arm, width)
    times its seeds, must fit before the first trains (:func:`require_networks_fit`)."""
    left = collections.Counter(
        (c["arm"], c["m"]) for c in cells
        if not (run_folder(out, c["arm"], c["m"], c["seed"]) / "measured.nc").is_file())
    arms = {arm.name: arm for arm in plan.arms}
    jobs = [(arms[name].case, dict(plan.train, width=m, seed=plan.seeds[0], **extra), count)
            for (name, m), count in left.items()]
    require_networks_fit(jobs, f"training the {sum(left.values())} networks of {plan.name}")


def train_all(exp, out, extra: dict | None = None) -> None:
    """Train every network of a study file into ``out/runs`` (no predictions, no report).

    ``extra`` adds execution-only [train] keys (device, checkpoint_every, …); a later run
    of the study into the same ``out`` reuses these networks.
    """

    for key in set(extra or {}) - EXECUTION_KEYS:
        raise InputError(f"train.{key}", f"only {sorted(EXECUTION_KEYS)} may be added here")
    train_networks(plan_study(exp), exp, out, extra)


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------


def _predictions(arm: Arm, plan: StudyPlan, out: Path) -> tuple[dict, dict]:
    """Every prediction of an arm (written to out/predictions), and fine-time learning
    times for the predictions exact in time."""

    case = arm.case
    preds, learning = {}, {}
    for method in plan.predictions:
        start = _time.perf_counter()
        if predictor(method).exact_in_time:  # one prediction, read at the case's times
            fine = np.union1d(case.times, np.linspace(0.0, case.times[-1], FINE_TIMES))
            ds = predict(replace(case, times=fine), method)
            learning[method] = compare.learning_times(fine, peak_ratios(ds, case.peaks))
            preds[method] = at_times(ds, case.times)
        else:
            preds[method] = predict(case, method)
        write_dataset(preds[method], out / "predictions" / f"{arm.name}-{method}.nc")
        say(f"{plan.name}: {arm.name}: {method} in {_time.perf_counter() - start:.1f} s")
    return preds, learning


def _arm_report(arm: Arm, plan: StudyPlan, preds: dict, learning: dict, runs_by_width):
    case = arm.case
    times, peaks = case.times, case.peaks
    rep = {"case": case.name, "times": times, "peaks": peaks.tolist(), "predictions": {},
           "widths": {}}
    for method, ds in preds.items():
        ratios = peak_ratios(ds, peaks)
        rep["predictions"][method] = {
            "peak_ratios": ratios,
            "learning_times": learning.get(method, compare.learning_times(times, ratios)),
            "not_reached_by": float(times[-1])}
    balls = {compare.excluded_ball(ds) for ds in preds.values()} - {0.0}
    if balls:  # every error and ratio of the arm leaves out |ξ| < ε
        rep["excluded_ball"] = {"epsilon": max(balls), "meaning": (
            "errors are over |xi| >= epsilon: the LFP models leave out the ball |xi| < epsilon "
            "(their coefficients are singular at 0; NaN there)")}
    rep["prediction_pairs"] = {
        f"{a} vs {b}": compare.rel_l2_by_time(preds[a], preds[b])
        for i, a in enumerate(plan.predictions) for b in plan.predictions[i + 1:]}
    for width, runs in runs_by_width.items():
        entry = {"seeds": plan.seeds}
        seed_mean = compare.mean_dataset(runs)
        for method, ds in preds.items():
            errs = [compare.rel_l2_by_time(ds, run) for run in runs]
            mean, std = mean_std(errs)
            entry[f"rel_l2_{method}_vs_net"] = {"mean": mean, "std": std, "per_seed": errs}
            entry[f"rel_l2_{method}_vs_seed_mean_net"] = compare.rel_l2_by_time(ds, seed_mean)
        if plan.pde and len(runs) >= 2:
            entry[f"error_split_{plan.pde}"] = compare.error_split(preds[plan.pde], runs,
                                                                   seed_mean)
        ratios = [peak_ratios(run, peaks) for run in runs]
        mean, std = mean_std(ratios)
        lt = [compare.learning_times(times, r) for r in ratios]
        entry["peak_ratios_net"] = {"mean": mean, "std": std}
        entry["learning_times_net"] = event_statistics(lt, times[-1])
        volume = float(runs[0].attrs["box_volume"])
        entry["loss_net"] = mean_std([compare.measured_loss_at_reports(r) for r in runs])[0]
        if plan.pde and not compare.excluded_ball(preds[plan.pde]):
            loss_pde = compare.parseval_loss(preds[plan.pde], case.loss_scale, volume)
            entry["loss_parseval_pde"] = loss_pde
            entry["loss_parseval_rel_diff"] = np.abs(entry["loss_net"] - loss_pde) / loss_pde
        entry.update(_twin_entries(runs, preds.get(plan.pde) if plan.pde else None, plan.pde,
                                   peaks))
        entry["drift"] = mean_std([run["drift"].values for run in runs])[0]
        entry["drift_w"] = mean_std([run["drift_w"].values for run in runs])[0]
        entry["train_seconds"] = [float(run.attrs["train_seconds"]) for run in runs]
        entry["device"] = runs[0].attrs.get("device", "")
        entry["steps"] = [int(run["report_step"].values[-1]) for run in runs]
        rep["widths"][str(width)] = entry
    if runs_by_width and plan.pde and _budget_applies(case, plan):

        largest = max(runs_by_width)
        start = _time.perf_counter()
        say(f"{plan.name}: {arm.name}: error budget (dense NTK flow on the training samples)")
        rep["budget"] = dict(error_budget(case, dict(plan.train, width=largest),
                                          preds[plan.pde], runs_by_width[largest]),
                             width=largest)
        say(f"{plan.name}: {arm.name}: error budget in {_time.perf_counter() - start:.1f} s")
    if runs_by_width and plan.pde:
        rep.update(_finite_width(case, plan, preds[plan.pde], runs_by_width))
    return rep


#: Seeds from which a study reports the measured spread.
SPREAD_SEEDS = 8


def _twin_entries(runs, pred, pde: str | None, peaks) -> dict:
    """Twin vs network and twin vs the pde prediction, per time (mean, std, per seed)."""

    if not all("twin_u_hat_real" in run for run in runs):
        return {}
    twins = [twin_dataset(run) for run in runs]
    out = {}
    pairs = [("rel_l2_twin_vs_net", lambda tw, run: compare.rel_l2_by_time(tw, run))]
    if pred is not None:
        pairs.append((f"rel_l2_twin_vs_{pde}", lambda tw, run: compare.rel_l2_by_time(tw, pred)))
    for key, fn in pairs:
        errs = [fn(tw, run) for tw, run in zip(twins, runs, strict=True)]
        mean, std = mean_std(errs)
        out[key] = {"mean": mean, "std": std, "per_seed": errs}
    out["peak_ratios_twin"] = mean_std([peak_ratios(tw, peaks) for tw in twins])[0]
    return out


def _finite_width(case, plan: StudyPlan, pred, runs_by_width) -> dict:
    """Predicted against measured spread at the largest width (module text)."""

    largest = max(runs_by_width)
    runs = runs_by_width[largest]
    errs = np.array([compare.rel_l2_by_time(pred, run) for run in runs])

    measured = (float(mean_std(errs[:, -1])[1]) if len(runs) >= SPREAD_SEEDS else None)
    out = {"measured_spread": measured, "measured_spread_seeds": len(runs),
           "measured_spread_interval_95": (std_interval(measured, len(runs))
                                           if measured is not None else None)}
    try:
        if plan.spread_draws == 0:
            raise InputError("settings.spread_draws", "is 0")
        model = train_settings(case, dict(plan.train, width=largest)).model
        if model != "fourier":
            raise InputError("train.model", f"the finite-width prediction covers the 2-layer "
                                            f"Fourier-feature model, not {model!r}")
        say(f"{plan.name}: {case.name}: predicted finite-width spread ({plan.spread_draws} "
            f"kernel draws or first order at m = {largest})")
        # measured from the infinite-width network on the same samples, not from the pde:
        # the bound is what finite width allows, and a wrong pde cannot widen it
        fw = predicted_spread(case, dict(plan.train, width=largest), case.times, None,
                              draws=plan.spread_draws)
    except InputError as exc:
        out.update(predicted_spread=None, finite_width={"not_predicted": str(exc)})
        return out
    out.update(predicted_spread=float(fw["predicted_spread"][-1]), finite_width=fw)
    # the seed mean of n linearised networks' errors: predicted mean ± spread/√n, bounded at
    # 3 spreads; plus the motion beyond linear, measured by each network's twin (seed mean
    # of ‖net − twin‖/‖net‖), which the theory leaves out: ‖net − pde‖ ≤ ‖twin − pde‖ +
    # ‖net − twin‖.  Neither part depends on the pde.
    linear = linear_bound(fw["predicted_mean_error"], fw["predicted_spread"], len(runs))
    twins = [run["rel_l2_twin_vs_net"].values for run in runs if "rel_l2_twin_vs_net" in run]
    beyond = np.mean(twins, axis=0) if len(twins) == len(runs) else np.zeros_like(linear)
    later = np.asarray(case.times) > 0
    out["tolerance_bound"] = np.where(later, linear + beyond, np.nan)
    out["tolerance_bound_parts"] = {"predicted_linear": np.where(later, linear, np.nan),
                                    "measured_beyond_linear": np.where(later, beyond, np.nan),
                                    "twins": len(twins) == len(runs)}
    return out


#: The predicted tolerance: the predicted mean error plus this many predicted spreads of
#: the seed mean (docs/theory.md §12).
TOLERANCE_SPREADS = 3.0


def linear_bound(mean_error, spread, seeds: int) -> np.ndarray:
    """The linear part of the predicted tolerance of a seed mean over ``seeds`` networks:
    μ + 3σ/√seeds (docs/theory.md §12)."""
    return np.asarray(mean_error) + TOLERANCE_SPREADS * np.asarray(spread) / np.sqrt(seeds)


def _wrong_model_report(wrong: WrongModel, plan: StudyPlan, data: dict, out: Path) -> dict:
    """A wrong model's prediction of every arm against the same trained networks: its peak
    ratios, learning times and rel L²(ξ) error per width (seed mean); the checks are then
    evaluated with it in place of the pde (:func:`freqdyn.runs.checks.evaluate_checks`)."""

    arms, worst = {}, []
    for name, (arm, _, runs_by_width) in data.items():
        case = replace(wrong.cases[name], times=arm.case.times)
        label = Arm(f"{name}-wrong-{wrong.name}", case)
        preds, learning = _predictions(label, replace(plan, predictions=[wrong.method]), out)
        ds = preds[wrong.method]
        ratios = peak_ratios(ds, arm.case.peaks)
        by_width = {str(w): {"mean": mean_std([compare.rel_l2_by_time(ds, r) for r in runs])[0]}
                    for w, runs in runs_by_width.items()}
        arms[name] = {"peak_ratios": ratios, "not_reached_by": float(case.times[-1]),
                      "learning_times": learning.get(wrong.method,
                                                     compare.learning_times(case.times, ratios)),
                      "rel_l2_vs_net": by_width}
        later = np.asarray(case.times) > 0
        worst.append(float(np.max(by_width[str(max(runs_by_width))]["mean"][later])))
    return {"name": wrong.name, "method": wrong.method, "why": wrong.why,
            "max_rel_l2_vs_net": max(worst), "arms": arms}


def _budget_applies(case, plan: StudyPlan) -> bool:
    """The dense error budget: 1D, plain GD, at most a few thousand samples."""

    if case.dim != 1:
        return False
    s = train_settings(case, plan.train)
    return s.model == "fourier" and s.optimizer == "gd" and s.momentum == 0 \
        and s.integrator == "steps" and s.n_samples <= MAX_SAMPLES \
        and s.f0 in ("zero", "centered")


def _max_pde_error(rep: dict, pde: str | None) -> float | None:
    net = compare.largest_width(rep)
    if net is None or pde is None:
        return None
    err = np.asarray(net[f"rel_l2_{pde}_vs_net"]["mean"])
    later = np.asarray(rep["times"]) > 0
    return float(np.max(err[later])) if later.any() else None


def _max_twin_error(rep: dict) -> float | None:
    net = compare.largest_width(rep)
    if net is None or "rel_l2_twin_vs_net" not in net:
        return None
    err = np.asarray(net["rel_l2_twin_vs_net"]["mean"])
    later = np.asarray(rep["times"]) > 0
    return float(np.max(err[later])) if later.any() else None


def run_study_kind(exp, out, device: str):
    """Experiment kind ``study`` (module text): predictions, networks, report, figures."""

    out = Path(out)
    plan = plan_study(exp)
    extra = {} if device in (None, "auto") or "device" in plan.train else {"device": device}
    measured = train_networks(plan, exp, out, extra) if plan.widths else {}
    reports, data = {}, {}
    for arm in plan.arms:
        preds, learning = _predictions(arm, plan, out)
        runs = {w: [read_dataset(measured[(arm.name, w, s)]) for s in plan.seeds]
                for w in plan.widths}
        reports[arm.name] = _arm_report(arm, plan, preds, learning, runs)
        data[arm.name] = (arm, preds, runs)
    errors = [e for r in reports.values() if (e := _max_pde_error(r, plan.pde)) is not None]
    twin = [e for r in reports.values() if (e := _max_twin_error(r)) is not None]
    summary = {"pde": plan.pde, "predictions": plan.predictions, "widths": plan.widths,
               "train": plan.train, "tolerance": plan.tolerance,
               "max_rel_l2_pde_vs_net": max(errors) if errors else None,
               "max_rel_l2_twin_vs_net": max(twin) if twin else None, "arms": reports}
    if plan.widths and plan.wrong_models:
        summary["wrong_models"] = [_wrong_model_report(w, plan, data, out)
                                   for w in plan.wrong_models]

    return Outcome(dataset=None, summary=summary, details=reports,
                   figure_set="study",
                   figure_data={"plan": plan, "data": data, "reports": reports})
