"""``freqdyn validate STUDY.toml --out DIR [--full]``: theory next to trained networks.

A *study* names a case, the predictions to compute and the networks to train, states
what it must show, and checks it.  Everything is in PDE time t (the t of
∂_t û = κ²α[σ_a²∇·(ρ_w∇û) − ρ_w û]) and ξ in cycles per unit of x (convention B).

```toml
name = "gaussian-1d"
claim = "Gaussian rho_w: the low peak is learned first, and the PDE predicts it"
case = "../pde/gaussian-1d.toml"   # relative to this file; or an inline [case] table
predictions = ["modal", "damping"]  # kernel-flow, fem, modal, damping, uniform-series, lfp-*
pde = "modal"                       # the prediction held to the tolerance
tolerance = 0.3                     # on max_rel_l2_pde_vs_net (CI size)
[measure]                           # the CI-size measurement
widths = [512]
seeds = [0, 1]
times = [0.0, 0.5, 1.0]             # optional: replaces the case's [frequency] times
train = { lr_fraction = 0.9 }       # [train] overrides for every run
[full]                              # what --full replaces (any [measure] key + tolerance)
widths = [16384]
seeds = [0, 1, 2]
tolerance = 0.05
[[arm]]                             # optional: several ρ_w on the same case
name = "uniform"
rho_w = { family = "uniform", bound = 3.0 }
[[check]]                           # optional claims, see CHECKS
kind = "peak_order"
first = 0
later = 1
```

Per arm, per width and per reported time the report (``DIR/report.json``) holds: the
relative L²(ξ) error ‖û_pred − û_net‖/‖û_net‖ of each prediction against each trained
network (per seed, their mean and standard deviation), against the seed-mean û of the
networks (``rel_l2_<method>_vs_seed_mean_net``, a diagnostic only: Monte-Carlo error
falls like 1/√seeds there, a systematic error does not), each prediction against each other,
the per-peak ratios |û(ω_k, t)|/|û(ω_k, 0)| and learning times (first t with ratio 1/e),
the Parseval check of the loss (the trainer's L = (α/2N)Σ(f − g)² against
(α/2V)∫|û_pred|²dξ, V = (2R)^d), and the parameter drift ‖θ_t − θ₀‖/‖θ₀‖.  Top level:
``max_rel_l2_pde_vs_net`` (the largest over t > 0 of the seed-mean of the per-network
errors of the ``pde`` prediction at the largest width, over all arms: the expected error
of one trained network), the checks, and ``pass``.

Figures: ``heatmaps-<arm>.png`` (predicted | measured | difference of log10|û|),
``peaks.png`` (theory lines, network markers with ±1 std bands), ``loss-<arm>.png``
(measured loss with the Parseval prediction) and, with several widths,
``width.png`` (error against m on log–log axes with the fitted slope).
"""

from __future__ import annotations

import json
import math
import time as _time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from freqdyn.analysis import compare
from freqdyn.errors import InputError
from freqdyn.inputs.case import Case, case_from_dict, read_toml
from freqdyn.nets.settings import EXECUTION_KEYS
from freqdyn.predict.registry import predict, predictor
from freqdyn.results import peak_ratios, read_dataset, write_dataset

CHECKS = {
    "peak_order": "peak `first` is learned before peak `later`: its ratio is smaller at "
                  "every t > 0, in the pde prediction and in the networks",
    "frozen": "the ratios of `peaks` stay above 1 − `tol` at every time (never learned)",
    "equal_decay": "the ratios of `peaks` agree: max_t |log r_i − log r_j| <= `tol`",
    "model_fails": "prediction `method` misses the networks: its max error >= `at_least`",
    "slope": "fitted log–log slope of the pde-vs-net error against m lies in `range`",
    "learning_times": "arm `arm`: measured learning times vs `wanted` (per peak): "
                      "max |T/T_wanted − 1| <= `within`, or max(T/Tw, Tw/T) >= `miss_by`",
    "spread_less": "measured learning-time spread max T/min T of arm `arm` is below that "
                   "of arm `than`",
}
STUDY_KEYS = {"name", "claim", "case", "predictions", "pde", "tolerance", "measure", "full",
              "arm", "check"}
MEASURE_KEYS = {"widths", "seeds", "times", "train", "tolerance"}



def toml_text(data: dict) -> str:
    """TOML text of a nested dict of strings, numbers, booleans and lists (case files)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines: list[str] = []

    def table(prefix: str, d: dict):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if prefix and scalars:
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {value(v)}")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines) + "\n"


@dataclass
class Arm:
    """One case of a study: a name and the validated case (with the study's times)."""

    name: str
    case: Case


@dataclass
class Study:
    """A parsed study: arms, predictions, measurement plan, tolerance and checks."""

    name: str
    claim: str
    arms: list[Arm]
    predictions: list[str]
    pde: str | None
    widths: list[int]
    seeds: list[int]
    train: dict
    tolerance: float | None
    checks: list[dict] = field(default_factory=list)
    full: bool = False


def _case_data(raw: dict, base: Path) -> dict:
    spec = raw.get("case")
    if isinstance(spec, str):
        path = (base / spec).resolve()
        if not path.is_file():
            raise InputError("case", f"file {spec!r} not found (relative to {base})")
        return tomllib.loads(path.read_text())
    if isinstance(spec, dict):
        return dict(spec)
    raise InputError("case", "give a case file path or an inline [case] table")


def load_study(source: str | Path, *, full: bool = False, text: str | None = None) -> Study:
    """Read a study file (or TOML ``text`` with ``source`` as its location)."""
    path = Path(source)
    raw, text = read_toml(source, text, "study")
    unknown = set(raw) - STUDY_KEYS
    if unknown:
        raise InputError(sorted(unknown)[0], f"unknown study key; known: {sorted(STUDY_KEYS)}")
    plan = dict(raw.get("measure", {}))
    if full:
        plan.update(raw.get("full", {}))
    for key in set(plan) - MEASURE_KEYS:
        raise InputError(f"measure.{key}", f"unknown key; known: {sorted(MEASURE_KEYS)}")
    base = path.parent if path.suffix else path
    data = _case_data(raw, base)
    if "times" in plan:
        data.setdefault("frequency", {})["times"] = list(plan["times"])
    arms_raw = raw.get("arm") or [{"name": data.get("name", "case")}]
    arms = []
    for i, arm in enumerate(arms_raw):
        name = arm.get("name", f"arm{i}")
        arm_data = json.loads(json.dumps(data))
        if "rho_w" in arm:
            arm_data["network"]["rho_w"] = arm["rho_w"]
        for key in ("sigma_a", "kappa", "loss_scale"):
            if key in arm:
                arm_data["network"][key] = arm[key]
        arm_data["name"] = f"{data.get('name', 'case')}-{name}" if len(arms_raw) > 1 \
            else data.get("name", name)
        arms.append(Arm(name, case_from_dict(arm_data, text=toml_text(arm_data))))
    predictions = list(raw.get("predictions", []))
    for p in predictions:
        predictor(p, "predictions")
    pde = raw.get("pde", predictions[0] if predictions else None)
    if pde is not None and pde not in predictions:
        raise InputError("pde", f"{pde!r} must be one of the predictions {predictions}")
    widths = [int(w) for w in plan.get("widths", [])]
    seeds = [int(s) for s in plan.get("seeds", [0])]
    if any(w < 2 or w % 2 for w in widths):
        raise InputError("measure.widths", f"must be even integers >= 2, got {widths}")
    checks = list(raw.get("check", []))
    for i, chk in enumerate(checks):
        if chk.get("kind") not in CHECKS:
            raise InputError(f"check[{i}].kind", f"must be one of {sorted(CHECKS)}")
    tol = plan.get("tolerance", raw.get("tolerance"))
    return Study(name=raw.get("name", path.stem), claim=raw.get("claim", ""), arms=arms,
                 predictions=predictions, pde=pde, widths=widths, seeds=seeds,
                 train=dict(plan.get("train", {})),
                 tolerance=None if tol is None else float(tol), checks=checks, full=full)


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------


def _measure(case: Case, width: int, seed: int, train_overrides: dict, folder: Path,
             progress: bool):  # noqa: ARG001  (training progress bars stay off)
    """Train one network (or reuse ``folder/measured.nc`` from an identical run)."""
    from freqdyn.nets.settings import train_settings
    from freqdyn.nets.train import train

    overrides = dict(train_overrides, width=width, seed=seed)
    existing = folder / "measured.nc"
    if existing.is_file():
        ds = read_dataset(existing)
        wanted = json.loads(json.dumps(train_settings(case, overrides).computation()))
        have = json.loads(ds.attrs["train"])
        same = all(have.get(k) == v for k, v in wanted.items())
        if ds.attrs.get("case_toml") == case.text and same:
            return ds
        raise InputError("out", f"{folder} holds a different run; choose another --out")
    return train(case, folder, overrides=overrides, progress=False, figure=False).dataset


def _finite(x):
    """JSON-safe floats: inf and NaN become strings."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, np.ndarray):
        return _finite(x.tolist())
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else str(float(x))
    if isinstance(x, np.integer):
        return int(x)
    return x


def _arm_report(arm: Arm, study: Study, out: Path, progress: bool):
    case = arm.case
    times = case.times
    preds = {}
    for method in study.predictions:
        start = _time.perf_counter()
        preds[method] = predict(case, method)
        if progress:
            print(f"  {arm.name}: {method} in {_time.perf_counter() - start:.1f} s")
        write_dataset(preds[method], out / "predictions" / f"{arm.name}-{method}.nc")
    peaks = case.peaks
    rep = {"case": case.name, "times": times, "peaks": peaks.tolist(),
           "predictions": {}, "widths": {}}
    for method, ds in preds.items():
        ratios = peak_ratios(ds, peaks)
        rep["predictions"][method] = {
            "peak_ratios": ratios, "learning_times": compare.learning_times(times, ratios)}
    pairs = {}
    for i, a in enumerate(study.predictions):
        for b in study.predictions[i + 1:]:
            pairs[f"{a} vs {b}"] = compare.rel_l2_by_time(preds[a], preds[b])
    rep["prediction_pairs"] = pairs
    measured = {}
    for width in study.widths:
        runs = []
        for seed in study.seeds:
            start = _time.perf_counter()
            folder = out / "runs" / f"{arm.name}-m{width}-s{seed}"
            runs.append(_measure(case, width, seed, study.train, folder, progress))
            if progress:
                print(f"  {arm.name}: m = {width}, seed {seed} trained in "
                      f"{_time.perf_counter() - start:.1f} s")
        measured[width] = runs
        entry = {"seeds": study.seeds}
        seed_mean = compare.mean_dataset(runs)
        for method, ds in preds.items():
            errs = [compare.rel_l2_by_time(ds, run) for run in runs]
            mean, std = compare.mean_spread(errs)
            entry[f"rel_l2_{method}_vs_net"] = {"mean": mean, "std": std, "per_seed": errs}
            entry[f"rel_l2_{method}_vs_seed_mean_net"] = compare.rel_l2_by_time(ds, seed_mean)
        ratios = [peak_ratios(run, peaks) for run in runs]
        mean, std = compare.mean_spread(ratios)
        lt = [compare.learning_times(times, r) for r in ratios]
        entry["peak_ratios_net"] = {"mean": mean, "std": std}
        entry["learning_times_net"] = {"mean": np.mean(lt, axis=0), "per_seed": lt}
        volume = float(runs[0].attrs["box_volume"])
        loss_net = [compare.measured_loss_at_reports(run) for run in runs]
        entry["loss_net"] = compare.mean_spread(loss_net)[0]
        if study.pde:
            loss_pde = compare.parseval_loss(preds[study.pde], case.loss_scale, volume)
            entry["loss_parseval_pde"] = loss_pde
            entry["loss_parseval_rel_diff"] = np.abs(entry["loss_net"] - loss_pde) / loss_pde
        entry["drift"] = compare.mean_spread([run["drift"].values for run in runs])[0]
        entry["drift_w"] = compare.mean_spread([run["drift_w"].values for run in runs])[0]
        entry["train_seconds"] = [float(run.attrs["train_seconds"]) for run in runs]
        entry["device"] = runs[0].attrs.get("device", "")
        entry["steps"] = [int(run["report_step"].values[-1]) for run in runs]
        rep["widths"][str(width)] = entry
    return rep, preds, measured


def train_all(study: Study, out: str | Path, extra: dict | None = None,
              progress: bool = True) -> None:
    """Train every (arm, width, seed) of ``study`` into ``out/runs`` (no predictions).

    ``extra`` adds execution-only [train] keys (see :data:`EXECUTION_KEYS`); a later
    ``run_study`` with the same ``out`` reuses these runs.
    """
    for key in set(extra or {}) - EXECUTION_KEYS:
        raise InputError(f"train.{key}", f"only {sorted(EXECUTION_KEYS)} may be added here")
    overrides = dict(study.train, **(extra or {}))
    for arm in study.arms:
        for width in study.widths:
            for seed in study.seeds:
                start = _time.perf_counter()
                folder = Path(out) / "runs" / f"{arm.name}-m{width}-s{seed}"
                ds = _measure(arm.case, width, seed, overrides, folder, progress)
                if progress:
                    print(f"{study.name}/{arm.name}: m = {width}, seed {seed}: "
                          f"{int(ds['report_step'].values[-1])} steps in "
                          f"{_time.perf_counter() - start:.1f} s on {ds.attrs.get('device')}",
                          flush=True)


def _max_pde_error(rep: dict, pde: str) -> float | None:
    if not rep["widths"] or pde is None:
        return None
    last = rep["widths"][max(rep["widths"], key=int)]
    err = np.asarray(last[f"rel_l2_{pde}_vs_net"]["mean"])
    later = np.asarray(rep["times"]) > 0
    return float(np.max(err[later])) if later.any() else 0.0


def run_check(chk: dict, study: Study, reports: dict[str, dict]) -> dict:
    """Evaluate one ``[[check]]`` against the arm reports; returns its numbers and ``pass``."""
    kind = chk["kind"]
    rep = reports[chk.get("arm", study.arms[0].name)]
    net = compare.largest_width(rep)
    pde = rep["predictions"].get(study.pde) if study.pde else None
    later = np.asarray(rep["times"]) > 0
    res = {"kind": kind, "meaning": CHECKS[kind], **{k: v for k, v in chk.items()
                                                     if k != "kind"}}
    sources = {}
    if pde is not None:
        sources["pde"] = np.asarray(pde["peak_ratios"])
    if net is not None:
        sources["net"] = np.asarray(net["peak_ratios_net"]["mean"])
    if kind == "peak_order":
        ok = True
        for src, r in sources.items():
            good = bool(np.all(r[chk["first"], later] < r[chk["later"], later]))
            res[f"{src}_ratios_first"] = r[chk["first"]]
            res[f"{src}_ratios_later"] = r[chk["later"]]
            ok &= good
        res["pass"] = ok and bool(sources)
    elif kind == "frozen":
        mins = {src: float(np.min(r[chk["peaks"]])) for src, r in sources.items()}
        res["min_ratio"] = mins
        res["pass"] = bool(mins) and all(v >= 1 - chk["tol"] for v in mins.values())
    elif kind == "equal_decay":
        spread = {}
        for src, r in sources.items():
            logs = np.log(np.maximum(r[chk["peaks"]], 1e-300))
            spread[src] = float(np.max(logs.max(axis=0) - logs.min(axis=0)))
        res["max_log_spread"] = spread
        res["pass"] = bool(spread) and all(v <= chk["tol"] for v in spread.values())
    elif kind == "model_fails":
        err = np.asarray(net[f"rel_l2_{chk['method']}_vs_net"]["mean"])
        res["max_error"] = float(np.max(err[later]))
        res["pass"] = res["max_error"] >= chk["at_least"]
    elif kind == "slope":
        widths = sorted(int(w) for w in rep["widths"])
        errs = [float(np.max(np.asarray(
            rep["widths"][str(w)][f"rel_l2_{study.pde}_vs_net"]["mean"])[later]))
            for w in widths]
        if len(widths) < 2:
            res.update(note="needs at least two widths", widths=widths)
            res["pass"] = False
        else:
            slope, _ = compare.fit_loglog_slope(widths, errs)
            res.update(widths=widths, errors=errs, slope=slope)
            lo, hi = chk["range"]
            res["pass"] = bool(lo <= slope <= hi)
    elif kind == "learning_times":
        wanted = np.asarray(chk["wanted"], dtype=float)
        got = np.asarray(net["learning_times_net"]["mean"], dtype=float)
        ratio = got / wanted
        res["measured"], res["ratio"] = got, ratio
        if pde is not None:
            res["pde"] = pde["learning_times"]
        if "within" in chk:
            res["max_rel_dev"] = float(np.max(np.abs(ratio - 1)))
            res["pass"] = res["max_rel_dev"] <= chk["within"]
        else:
            res["max_miss_factor"] = float(np.max(np.maximum(ratio, 1 / ratio)))
            res["pass"] = res["max_miss_factor"] >= chk["miss_by"]
    elif kind == "spread_less":
        def spread(r):
            lt = np.asarray(compare.largest_width(r)["learning_times_net"]["mean"], dtype=float)
            return float(lt.max() / lt.min())

        res["spread"] = spread(rep)
        res["spread_than"] = spread(reports[chk["than"]])
        res["pass"] = res["spread"] < res["spread_than"]
    return res


def run_study(study: Study, out: str | Path, progress: bool = True) -> dict:
    """Run every arm, write ``out/report.json`` and the figures; return the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = _time.perf_counter()
    reports, data = {}, {}
    for arm in study.arms:
        reports[arm.name], preds, measured = _arm_report(arm, study, out, progress)
        data[arm.name] = (arm, preds, measured)
    errs = [e for r in reports.values() if (e := _max_pde_error(r, study.pde)) is not None]
    max_err = max(errs) if errs else None
    checks = [run_check(chk, study, reports) for chk in study.checks]
    tol_ok = True if max_err is None or study.tolerance is None else max_err <= study.tolerance
    report = {
        "study": study.name, "claim": study.claim, "size": "full" if study.full else "ci",
        "pde": study.pde, "predictions": study.predictions, "widths": study.widths,
        "seeds": study.seeds, "train": study.train, "tolerance": study.tolerance,
        "max_rel_l2_pde_vs_net": max_err,
        "tolerance_pass": tol_ok, "checks": checks,
        "pass": bool(tol_ok and all(c["pass"] for c in checks)),
        "arms": reports, "seconds": _time.perf_counter() - start,
    }
    report["figures"] = [str(p) for p in write_figures(study, data, reports, out)]
    text = json.dumps(_finite(report), indent=1)
    tmp = out / ".report.json.tmp"
    tmp.write_text(text)
    tmp.replace(out / "report.json")
    return report


def summary(report: dict) -> str:
    """Headline lines of a report."""
    lines = [f"study {report['study']} ({report['size']} size): "
             f"{'PASS' if report['pass'] else 'FAIL'}"]
    if report["max_rel_l2_pde_vs_net"] is not None:
        lines.append(f"  max rel L2(xi) {report['pde']} vs net over t > 0: "
                     f"{report['max_rel_l2_pde_vs_net']:.4f} (tolerance "
                     f"{report['tolerance']})")
    for chk in report["checks"]:
        nums = {k: chk[k] for k in ("max_rel_dev", "max_miss_factor", "slope", "max_error",
                                    "min_ratio", "max_log_spread", "spread", "spread_than")
                if k in chk}
        lines.append(f"  check {chk['kind']}: {'pass' if chk['pass'] else 'FAIL'} "
                     f"{json.dumps(_finite(nums))}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------


def write_figures(study: Study, data: dict, reports: dict, out: Path) -> list[Path]:
    """All figures of a study run; returns their paths."""
    from freqdyn.plots import save_figure as save
    from freqdyn.plots.study import heatmap_figure, loss_figure, peaks_figure, width_figure

    paths = []
    have_nets = bool(study.widths)
    for name, (arm, preds, measured) in data.items():
        pred = preds.get(study.pde) if study.pde else None
        if have_nets:
            runs = measured[max(measured)]
            if pred is not None:
                path = out / f"heatmaps-{name}.png"
                save(heatmap_figure(pred, runs, f"{arm.case.name}: log10|û(ξ, t)|, "
                                                f"m = {max(measured)}"), path)
                paths.append(path)
            path = out / f"loss-{name}.png"
            save(loss_figure(arm, pred, runs), path)
            paths.append(path)
    path = out / "peaks.png"
    save(peaks_figure(study, data, reports), path)
    paths.append(path)
    if study.pde and len(study.widths) > 1:
        path = out / "width.png"
        save(width_figure(study, reports), path)
        paths.append(path)
    return paths
