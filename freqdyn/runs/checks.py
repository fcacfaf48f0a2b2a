"""Named, registered checks: what an experiment file states it must show.

A file lists ``[[check]]`` tables; each names a registered ``kind`` and its parameters.
Every check is validated when the file is read (its kind exists and applies to the
experiment's kind; required keys are there, unknown ones refused; numbers are numbers)
and, for studies, again against the loaded case and arms before anything trains.  After
the run each check returns its numbers and ``pass``; the experiment's ``claim_holds`` is
true when every check passes.  ``[claim] rule = "..."`` is a check of kind ``rule``.
A study's wrong models (``settings.wrong_models``) each add a ``wrong_model`` entry: the
same checks with the wrong prediction in place of the pde must not all pass.

Check kinds (``applies``: the experiment kinds; "any" for all):

============== ======== ===================================================================
kind           applies  passes when
============== ======== ===================================================================
rule           any      the expression ``rule`` over the report's keys is true
                        (:mod:`freqdyn.runs.claims`)
tolerance      study    max_rel_l2_pde_vs_net ≤ ``at_most`` (default: settings.tolerance;
                        "predicted": at every t > 0 the predicted mean + 3 spreads of the
                        seed mean)
peak_order     study    peak ``first`` is learned before peak ``later``: its ratio is smaller
                        at every t > 0, in the pde prediction and in the networks (both
                        needed, as for frozen and equal_decay)
frozen         study    the ratios of ``peaks`` stay above 1 − ``tol`` (never learned)
equal_decay    study    the ratios of ``peaks`` agree: max_t |log r_i − log r_j| ≤ ``tol``
model_fails    study    prediction ``method`` misses the networks by at least ``at_least``
slope          study    the fitted log–log slope of the pde-vs-net error in m lies in
                        ``range`` (at least three widths, for its 95 % interval); the
                        report adds the fit A m^(−1/2) + B m^(−1) with intervals
learning_times study    arm ``arm``: measured learning times vs ``wanted`` (per peak):
                        max |T/T_wanted − 1| ≤ ``within``, or max(T/Tw, Tw/T) ≥ ``miss_by``
                        (a peak not reached by the horizon H fails ``within`` and misses by
                        at least H/Tw)
spread_less    study    the learning-time spread max T/min T of arm ``arm`` (every peak
                        reached) is below that of arm ``than`` (or its lower bound H/min T
                        when a peak was not reached)
error_larger   study    the max error of ``method`` (default: the pde) against the networks
                        in arm ``arm`` is at least ``factor`` (1) times that of
                        ``than_method`` (default: ``method``) in arm ``than`` (default: ``arm``)
============== ======== ===================================================================
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from freqdyn.analysis.compare import largest_width, slope_interval, width_model_fit
from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.runs.claims import check_rule, evaluate_rule, rule_margins


@dataclass(frozen=True)
class CheckKind:
    name: str
    meaning: str
    required: frozenset
    optional: frozenset
    applies: tuple[str, ...] | None  # experiment kinds; None: any
    evaluate: Callable


CHECKS: dict[str, CheckKind] = {}


def register_check(name: str, meaning: str, *, required=(), optional=(), applies=None):
    """Decorator: register ``evaluate(check, outcome, exp) -> dict`` (with ``pass``)."""
    def wrap(function):
        CHECKS[name] = CheckKind(name, meaning, frozenset(required), frozenset(optional),
                                 None if applies is None else tuple(applies), function)
        return function
    return wrap


def checks_from_file(check_list, claim_rule, experiment_kind: str, field: str) -> list[dict]:
    """The checks of a file, validated (see the module text); the claim rule comes first."""

    if not isinstance(check_list, list) or not all(isinstance(c, dict) for c in check_list):
        raise InputError(field, "must be an array of tables ([[check]])")
    checks = []
    if claim_rule is not None:
        if not isinstance(claim_rule, str) or not claim_rule.strip():
            raise InputError("claim.rule", "must be an expression over the report's keys")
        check_rule(claim_rule)
        checks.append({"kind": "rule", "rule": claim_rule.strip()})
    for i, raw in enumerate(check_list):
        where = f"{field}[{i}]"
        table = Table(raw, where)
        kind = table.choice("kind", REQUIRED_KIND, sorted(CHECKS))
        entry = CHECKS[kind]
        if entry.applies is not None and experiment_kind not in entry.applies:
            raise InputError(f"{where}.kind", f"{kind!r} applies to experiments of kind "
                                              f"{', '.join(entry.applies)}, not "
                                              f"{experiment_kind!r}")
        table.refuse_unknown(entry.required | entry.optional | {"kind", "name"})
        for key in sorted(entry.required):
            if key not in table:
                raise InputError(f"{where}.{key}", f"is required by a {kind!r} check")
        _static(kind, table)
        checks.append(dict(raw))
    return checks


REQUIRED_KIND = None  # Table.choice with None default: the key must be one of the kinds


def _static(kind: str, t: Table) -> None:
    """Type checks of a check's parameters that need no case."""
    if kind == "rule":

        check_rule(t.string("rule"))
    for key in ("first", "later"):
        if key in t:
            t.integer(key, low=0)
    if "peaks" in t:
        t.integers("peaks", low=0)
    for key in ("tol", "within", "at_least", "at_most", "factor"):
        if key in t:
            t.number(key, low=0.0)
    if "miss_by" in t:
        t.number("miss_by", low=1.0, low_open=True)
    if "range" in t:
        lo, hi = t.numbers("range", length=2)
        if lo > hi:
            raise InputError(t.field("range"), f"needs lo <= hi, got {[lo, hi]}")
    if "wanted" in t:
        t.numbers("wanted", low=0.0)
    for key in ("arm", "than", "method", "than_method"):
        if key in t:
            t.string(key)


def evaluate_checks(exp, outcome) -> list[dict]:
    """Every check of ``exp`` on the outcome, in file order, each with its numbers; then,
    for each wrong model of a study, a ``wrong_model`` entry that passes only when the same
    checks, with the wrong model's prediction in place of the pde, do not all pass."""
    results = []
    for check in exp.checks:
        entry = CHECKS[check["kind"]]
        res = {"kind": entry.name, "meaning": entry.meaning,
               **{k: v for k, v in check.items() if k != "kind"}}
        res.update(entry.evaluate(check, outcome, exp))
        res["pass"] = bool(res["pass"])
        results.append(res)
    summary = outcome.summary if isinstance(outcome.summary, dict) else {}
    for wrong in summary.get("wrong_models", []):
        results.append(_wrong_model_check(exp, outcome, wrong))
    return results


def _wrong_model_check(exp, outcome, wrong: dict) -> dict:
    """The file's checks on the outcome with ``wrong``'s prediction as the pde."""
    shadow = _with_prediction(outcome, wrong)
    failed = [check["kind"] for check in exp.checks
              if not CHECKS[check["kind"]].evaluate(check, shadow, exp)["pass"]]
    true = outcome.summary.get("max_rel_l2_pde_vs_net")
    ratio = (wrong["max_rel_l2_vs_net"] / true) if true else None
    return {"kind": "wrong_model", "name": wrong["name"], "method": wrong["method"],
            "meaning": "the wrong model must fail at least one of the checks the pde passes",
            "why": wrong["why"], "max_rel_l2_vs_net": wrong["max_rel_l2_vs_net"],
            "true_max_rel_l2_pde_vs_net": true, "wrong_over_true_error": ratio,
            "failed_checks": failed, "pass": bool(failed)}


def _with_prediction(outcome, wrong: dict):
    """A copy of a study's outcome in which the wrong model's numbers replace the pde's."""
    pde = outcome.summary["pde"]
    details = copy.deepcopy(outcome.details)
    for name, arm in wrong["arms"].items():
        rep = details[name]
        rep["predictions"][pde] = {k: arm[k] for k in ("peak_ratios", "learning_times",
                                                       "not_reached_by")}
        for width, err in arm["rel_l2_vs_net"].items():
            rep["widths"][width][f"rel_l2_{pde}_vs_net"] = {"mean": err["mean"]}
            rep["widths"][width].pop(f"error_split_{pde}", None)
    summary = dict(outcome.summary, max_rel_l2_pde_vs_net=wrong["max_rel_l2_vs_net"])
    return dataclasses.replace(outcome, summary=summary, details=details)


# ---------------------------------------------------------------------------------------
# rule (any kind)
# ---------------------------------------------------------------------------------------


@register_check("rule", "the expression over the report's keys is true", required={"rule"})
def _rule(check, outcome, exp):

    holds = evaluate_rule(check["rule"], outcome.summary)
    margins = rule_margins(check["rule"], outcome.summary)
    reached = [m for m in margins if m["relative"] is not None]
    tightest = min(reached, key=lambda m: m["relative"]) if reached else None
    return {"pass": holds, "margins": margins, "tightest": tightest}


# ---------------------------------------------------------------------------------------
# studies: against the per-arm reports (outcome.details)
# ---------------------------------------------------------------------------------------


def _arm(check, outcome, key="arm") -> dict:
    reports = outcome.details
    return reports[check.get(key, next(iter(reports)))]


#: The two sources a peak check compares: the pde prediction and the trained networks.
BOTH = {"pde", "net"}


def _later(rep) -> np.ndarray:
    return np.asarray(rep["times"]) > 0


def _sources(rep, outcome) -> dict[str, np.ndarray]:
    """Peak ratios of the pde prediction and of the networks (seed mean), (peaks, times).
    A check on them passes only when both are there (:data:`BOTH`)."""

    out = {}
    pde = outcome.summary.get("pde")
    if pde and pde in rep["predictions"]:
        out["pde"] = np.asarray(rep["predictions"][pde]["peak_ratios"])
    net = largest_width(rep)
    if net is not None:
        out["net"] = np.asarray(net["peak_ratios_net"]["mean"])
    return out


@register_check("tolerance", "the pde's error against the networks (largest width, seed "
                             "mean, t > 0) is at most at_most, settings.tolerance, or the "
                             "predicted bound (mean + 3 spreads of the seed mean)",
                optional={"at_most"}, applies=("study",))
def _tolerance(check, outcome, exp):
    bound = check.get("at_most", outcome.summary.get("tolerance"))
    value = outcome.summary.get("max_rel_l2_pde_vs_net")
    if bound is None:
        return {"pass": False, "note": "no at_most and no settings.tolerance"}
    if value is None:
        return {"pass": False, "at_most": bound,
                "note": "no networks were trained, or no reported time t > 0"}
    if bound != "predicted":
        return {"pass": value <= bound, "at_most": bound, "max_rel_l2_pde_vs_net": value,
                "error_over_bound": value / bound}
    return _predicted_tolerance(outcome, value)


def _predicted_tolerance(outcome, value: float) -> dict:
    """Per arm and time t > 0: the seed-mean error against its predicted bound."""
    pde = outcome.summary["pde"]
    worst, bounds, notes = 0.0, {}, []
    for name, rep in outcome.details.items():
        net = largest_width(rep)
        bound = rep.get("tolerance_bound")
        if net is None or bound is None:
            notes.append(f"arm {name!r}: no predicted spread "
                         f"({rep.get('finite_width', {}).get('not_predicted', 'no networks')})")
            continue
        later = _later(rep)
        err = np.asarray(net[f"rel_l2_{pde}_vs_net"]["mean"], dtype=float)[later]
        bound = np.asarray(bound, dtype=float)[later]
        bounds[name] = bound
        worst = max(worst, float(np.max(err / bound)))
    res = {"at_most": "predicted", "predicted_bound": bounds, "max_rel_l2_pde_vs_net": value,
           "error_over_bound": worst, "pass": not notes and worst <= 1.0}
    if notes:
        res["note"] = "; ".join(notes)
    return res


@register_check("peak_order", "peak first is learned before peak later: its ratio is smaller "
                              "at every t > 0, in the pde prediction and in the networks",
                required={"first", "later"}, optional={"arm"}, applies=("study",))
def _peak_order(check, outcome, exp):
    rep = _arm(check, outcome)
    later = _later(rep)
    res, ok = {}, True
    sources = _sources(rep, outcome)
    for src, r in sources.items():
        ok &= bool(np.all(r[check["first"], later] < r[check["later"], later]))
        res[f"{src}_ratios_first"] = r[check["first"]]
        res[f"{src}_ratios_later"] = r[check["later"]]
    res["pass"] = ok and set(sources) == BOTH
    return res


@register_check("frozen", "the ratios of peaks stay above 1 - tol at every time (never "
                          "learned)", required={"peaks", "tol"}, optional={"arm"},
                applies=("study",))
def _frozen(check, outcome, exp):
    sources = _sources(_arm(check, outcome), outcome)
    mins = {src: float(np.min(r[check["peaks"]])) for src, r in sources.items()}
    return {"min_ratio": mins,
            "pass": set(mins) == BOTH and all(v >= 1 - check["tol"] for v in mins.values())}


@register_check("equal_decay", "the ratios of peaks agree: max_t |log r_i - log r_j| <= tol",
                required={"peaks", "tol"}, optional={"arm"}, applies=("study",))
def _equal_decay(check, outcome, exp):
    spread = {}
    for src, r in _sources(_arm(check, outcome), outcome).items():
        logs = np.log(np.maximum(r[check["peaks"]], 1e-300))
        spread[src] = float(np.max(logs.max(axis=0) - logs.min(axis=0)))
    return {"max_log_spread": spread,
            "pass": set(spread) == BOTH and all(v <= check["tol"] for v in spread.values())}


@register_check("model_fails", "prediction method misses the networks: its max error >= "
                               "at_least", required={"method", "at_least"}, optional={"arm"},
                applies=("study",))
def _model_fails(check, outcome, exp):

    rep = _arm(check, outcome)
    net = largest_width(rep)
    if net is None:
        return {"pass": False, "note": "no networks were trained"}
    err = np.asarray(net[f"rel_l2_{check['method']}_vs_net"]["mean"])
    value = float(np.max(err[_later(rep)]))
    return {"max_error": value, "pass": value >= check["at_least"]}


@register_check("slope", "fitted log-log slope of the pde-vs-net error against m lies in "
                         "range", required={"range"}, optional={"arm"}, applies=("study",))
def _slope(check, outcome, exp):
    """The slope of the max_{t>0} seed-mean error against m, with its 95 % interval, and
    (from two seeds on) the slopes of its common and per-network parts at the time of the
    largest error of the largest width."""

    rep = _arm(check, outcome)
    later = _later(rep)
    pde = outcome.summary.get("pde")
    widths = sorted(int(w) for w in rep["widths"])
    if len(widths) < 2:
        return {"note": "needs at least two widths", "widths": widths, "pass": False}
    entries = [rep["widths"][str(w)] for w in widths]
    errs = [float(np.max(np.asarray(e[f"rel_l2_{pde}_vs_net"]["mean"])[later]))
            for e in entries]
    # every seed is a point of the fit (its interval has n·seeds − 2 degrees of freedom)
    points = [(w, float(np.max(np.asarray(run)[later]))) for w, e in zip(widths, entries,
                                                                         strict=True)
              for run in e[f"rel_l2_{pde}_vs_net"].get("per_seed", [e[f"rel_l2_{pde}_vs_net"]
                                                                   ["mean"]])]
    fit = slope_interval(*zip(*points, strict=True))
    slope, lo, hi = fit["slope"], *check["range"]
    interval = fit["interval"]
    out = {"widths": widths, "errors": errs, "slope": slope, "slope_interval": interval,
           "minus_half_in_interval": (bool(interval[0] <= -0.5 <= interval[1])
                                      if np.all(np.isfinite(interval)) else None),
           "width_model": width_model_fit(widths, errs),
           "pass": lo <= slope <= hi and len(widths) >= 3}
    if len(widths) < 3:
        out["note"] = "a slope with an interval needs at least three widths"
    split = f"error_split_{pde}"
    if all(split in e for e in entries):
        last = np.asarray(entries[-1][f"rel_l2_{pde}_vs_net"]["mean"])
        at = int(np.flatnonzero(later)[np.argmax(last[later])])
        for part in ("common", "per_network"):
            values = [float(np.asarray(e[split][part])[at]) for e in entries]
            out[part] = values
            # the common part is 0 where its estimate falls below the seeds' noise: the
            # fit uses the widths where it is resolved (and says which)
            kept = [(w, v) for w, v in zip(widths, values, strict=True) if v > 0]
            if len(kept) >= 3:
                fit = slope_interval(*zip(*kept, strict=True))
                out[f"{part}_slope"], out[f"{part}_slope_interval"] = fit["slope"], fit["interval"]
                if len(kept) < len(widths):
                    out[f"{part}_slope_widths"] = [w for w, _ in kept]
        out["split_time"] = float(np.asarray(rep["times"])[at])
    return out


@register_check("learning_times", "arm: measured learning times vs wanted (per peak): "
                                  "max |T/T_wanted - 1| <= within, or max(T/Tw, Tw/T) >= "
                                  "miss_by", required={"wanted"},
                optional={"arm", "within", "miss_by"}, applies=("study",))
def _learning_times(check, outcome, exp):
    """A peak some seed did not learn within the run is "not reached": it fails ``within``,
    and for ``miss_by`` it counts only by its lower bound, horizon / T_wanted."""

    rep = _arm(check, outcome)
    net = largest_width(rep)
    if net is None:
        return {"pass": False, "note": "no networks were trained"}
    wanted = np.asarray(check["wanted"], dtype=float)
    events = net["learning_times_net"]
    got = np.asarray(events["mean"], dtype=float)
    reached = np.isfinite(got)
    horizon = float(events["not_reached_by"])
    res = {"measured": got, "ratio": got / wanted, "reached": events["reached"],
           "seeds": events["seeds"], "not_reached_by": horizon}
    pde = outcome.summary.get("pde")
    if pde and pde in rep["predictions"]:
        res["pde"] = rep["predictions"][pde]["learning_times"]
    if "within" in check:
        res["max_rel_dev"] = (float(np.max(np.abs(got / wanted - 1))) if reached.all()
                              else None)
        res["pass"] = res["max_rel_dev"] is not None and res["max_rel_dev"] <= check["within"]
        if not reached.all():
            missing = np.flatnonzero(~reached).tolist()
            res["note"] = f"peaks {missing} not reached by t = {horizon:g}"
    else:
        safe = np.where(reached, got, 1.0)
        at_least = np.where(reached, np.maximum(safe / wanted, wanted / safe), horizon / wanted)
        res["miss_factor_at_least"] = at_least
        res["max_miss_factor"] = float(np.max(at_least))
        res["pass"] = res["max_miss_factor"] >= check["miss_by"]
    return res


@register_check("spread_less", "measured learning-time spread max T/min T of arm is below "
                               "that of arm than", required={"arm", "than"},
                applies=("study",))
def _spread_less(check, outcome, exp):
    """A peak not reached by the horizon H makes an arm's spread only a lower bound,
    H / min T: ``arm`` must have reached every peak, and its spread must lie below
    ``than``'s (or below that lower bound)."""

    def spread(rep):
        events = largest_width(rep)["learning_times_net"]
        lt = np.asarray(events["mean"], dtype=float)
        reached = np.isfinite(lt)
        if not reached.any():
            return None, False
        low = float(lt[reached].min())
        if reached.all():
            return float(lt.max() / low), True
        return float(events["not_reached_by"]) / low, False

    (a, a_exact), (b, b_exact) = spread(_arm(check, outcome)), spread(_arm(check, outcome, "than"))
    res = {"spread": a if a_exact else None, "spread_than": b if b_exact else None}
    if not b_exact and b is not None:
        res["spread_than_at_least"] = b
    if not a_exact:
        res["note"] = f"arm {check['arm']!r} did not learn every peak within the run"
    res["pass"] = a_exact and b is not None and a < b
    return res


@register_check("error_larger", "the max error of method (default: the pde) against the "
                                "networks in arm is at least factor times that of than_method "
                                "(default: method) in arm than (default: arm)",
                optional={"arm", "than", "method", "than_method", "factor"},
                applies=("study",))
def _error_larger(check, outcome, exp):

    method = check.get("method", outcome.summary.get("pde"))
    than_method = check.get("than_method", method)

    def worst(rep, name):
        net = largest_width(rep)
        if net is None:
            return None
        return float(np.max(np.asarray(net[f"rel_l2_{name}_vs_net"]["mean"])[_later(rep)]))

    first = _arm(check, outcome)
    a = worst(first, method)
    b = worst(outcome.details[check["than"]] if "than" in check else first, than_method)
    if a is None or b is None:
        return {"pass": False, "note": "no networks were trained"}
    factor = check.get("factor", 1.0)
    return {"method": method, "than_method": than_method, "max_error": a,
            "max_error_than": b, "factor": factor, "pass": a >= factor * b}


def validate_against_study(checks, arms: dict, n_peaks: dict, predictions, has_widths: int):
    """Before training: arm names exist, peak indices exist, methods are predicted."""
    for i, check in enumerate(checks):
        where = f"check[{i}]"
        for key in ("arm", "than"):
            if key in check and check[key] not in arms:
                raise InputError(f"{where}.{key}", f"no arm named {check[key]!r}; the arms are "
                                                   f"{', '.join(arms)}")
        arm = check.get("arm", next(iter(arms)))
        peaks = n_peaks[arm]
        indices = [check[k] for k in ("first", "later") if k in check] + \
            list(check.get("peaks", []))
        for index in indices:
            if index >= peaks:
                raise InputError(where, f"peak index {index} out of range: arm {arm!r} has "
                                        f"{peaks} target peaks (indices 0 … {peaks - 1})")
        if "wanted" in check and len(check["wanted"]) != peaks:
            raise InputError(f"{where}.wanted", f"needs one time per peak ({peaks}), got "
                                                f"{len(check['wanted'])}")
        for key in ("method", "than_method"):
            if key in check and check[key] not in predictions:
                raise InputError(f"{where}.{key}", f"{check[key]!r} is not among the "
                                                   f"predictions {list(predictions)}")
        if check["kind"] in ("peak_order", "frozen", "equal_decay") and (
                not predictions or not has_widths):
            raise InputError(where, f"a {check['kind']!r} check compares the pde prediction "
                                    "with trained networks; give settings.predictions and "
                                    "settings.widths")
        if check["kind"] in ("model_fails", "slope", "learning_times", "spread_less",
                             "tolerance", "error_larger") and not has_widths:
            raise InputError(where, f"a {check['kind']!r} check needs trained networks; "
                                    "give settings.widths")
