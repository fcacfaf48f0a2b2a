"""Validation studies: parsing, checks, and one tiny end-to-end run with trained networks."""

import json
from pathlib import Path

import numpy as np
import pytest

from freqdyn.cli import main
from freqdyn.errors import InputError
from freqdyn.inputs.case import case_from_dict
from freqdyn.inputs.fourier import relative_l2
from freqdyn.results import read_dataset, u_hat
from freqdyn.runs.checks import evaluate_checks
from freqdyn.runs.experiment import load_experiment
from freqdyn.runs.runner import Outcome
from freqdyn.runs.study import plan_study

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted(p for p in (ROOT / "validation").glob("*.toml")
                 if not p.stem.endswith("-case") and 'kind = "study"' in p.read_text())

#: For the tests of a study's mechanics (sweeps, rebuilt results), not of its claim: no
#: predicted spread and no wrong model (the claim tests above run both).
MECHANICS_ONLY = "spread_draws = 0\nwrong_models = []\n"

TINY = """
[experiment]
name = "tiny"
kind = "study"
seeds = [0, 1]
[settings]
predictions = ["modal", "damping"]
tolerance = 0.1
tolerance_reason = "kernel draws predict 0.048 +- 0.009 at t = 1, two seeds measure 0.072"
widths = [256, 1024, 4096]
train = { lr_fraction = 0.9, f0 = "centered" }
[settings.case]
name = "tiny"
[settings.case.network]
dim = 1
sigma_a = 0.7
[settings.case.network.rho_w]
family = "gaussian"
scale = 1.0
[settings.case.target]
g = "exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*cos(2*pi*2*x))"
[settings.case.frequency]
bounds = [-6.0, 6.0]
times = [0.0, 0.5, 1.0]
points = 121
[claim]
text = "a tiny study: networks of three widths against the PDE, damping as the wrong model"
[[check]]
kind = "tolerance"
[[check]]
kind = "peak_order"
first = 0
later = 1
[[check]]
kind = "slope"
range = [-0.8, -0.3]
"""


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_study_parses_at_both_sizes(path):
    ci, full = (plan_study(load_experiment(path, full=f)) for f in (False, True))
    assert load_experiment(path).claim_text and full.widths and ci.widths
    assert max(full.widths) >= max(ci.widths)
    for arm in full.arms:
        assert arm.case.peaks.size


def test_a_written_case_round_trips():
    import tomllib

    import tomli_w

    data = {"name": "x", "network": {"dim": 1, "sigma_a": 0.5,
                                     "rho_w": {"family": "uniform", "bound": 2.0}},
            "target": {"g": "exp(-x**2/2)*cos(2*pi*x)"},
            "frequency": {"bounds": [-4.0, 4.0], "times": [0.0, 1.0]}}
    assert tomllib.loads(tomli_w.dumps(data)) == data
    case_from_dict(data, text=tomli_w.dumps(data))


@pytest.mark.parametrize(("edit", "field"), [
    (("tolerance = 0.1", "tolerence = 5.0"), "settings.tolerence"),
    (('predictions = ["modal", "damping"]', 'predictions = ["magic"]'),
     "settings.predictions"),
    (("widths = [256, 1024, 4096]", "widths = []"), "check[0]"),     # a tolerance needs nets
    (("later = 1", "later = 7"), "check[1]"),                     # only 2 peaks
    (("first = 0\nlater = 1", "first = 0"), "check[1].later"),     # required key
    (("first = 0", 'first = 0\narm = "designed"'), "check[1].arm"),  # no such arm
    (("kind = \"slope\"", "kind = \"slop\""), "check[2].kind"),
    (("lr_fraction = 0.9", "lr_fraktion = 0.9"), "train.lr_fraktion"),
    (("tolerance = 0.1", "tolerance = -1.0"), "settings.tolerance"),
    (("tolerance = 0.1", "tolerance = nan"), "settings.tolerance"),
    (("tolerance_reason = ", "tolerance_reasons = "), "settings.tolerance_reasons"),
    (("tolerance_reason = ", "# tolerance_reason = "), "settings.tolerance_reason"),
    (("tolerance = 0.1", 'tolerance = "guessed"'), "settings.tolerance"),
    (("times = [0.0, 0.5, 1.0]", "times = [0.0]"), "settings.times"),  # no t > 0
    (("tolerance = 0.1", 'wrong_models = [{ name = "w", method = "magic" }]'),
     "settings.wrong_models[0].method"),
    (("tolerance = 0.1", 'wrong_models = [{ name = "w", colour = 1 }]'),
     "settings.wrong_models[0].colour"),
])
def test_a_bad_study_is_refused_before_training(tmp_path, edit, field):
    """Every class of bad study input is refused when the study is planned, naming the
    field: nothing trains first."""
    path = tmp_path / "s.toml"
    path.write_text(TINY.replace(*edit))
    with pytest.raises(InputError) as info:
        plan_study(load_experiment(path))
    assert info.value.field == field
    assert not (tmp_path / "out").exists()


def _uniform_outcome(net_ratios, pde_ratios, error=0.9, bound=0.02):
    rep = {"times": [0.0, 1.0], "tolerance_bound": [None, bound],
           "widths": {"8": {"peak_ratios_net": {"mean": net_ratios},
                            "rel_l2_modal_vs_net": {"mean": [0.0, error]}}},
           "predictions": {} if pde_ratios is None else {"modal": {"peak_ratios": pde_ratios}}}
    summary = {"max_rel_l2_pde_vs_net": error, "tolerance": "predicted", "pde": "modal"}
    return Outcome(None, summary, details={"uniform-1d": rep})


def test_checks_fail_when_the_claim_is_false():
    exp = load_experiment(ROOT / "validation" / "uniform-1d.toml")
    outcome = _uniform_outcome([[1.0, 0.3], [1.0, 0.9], [1.0, 0.5]],
                               [[1.0, 0.3], [1.0, 0.31], [1.0, 1.0]])
    tolerance, frozen, equal = evaluate_checks(exp, outcome)
    assert not tolerance["pass"] and tolerance["error_over_bound"] == pytest.approx(45.0)
    assert not frozen["pass"] and frozen["min_ratio"]["net"] == 0.5
    assert not equal["pass"] and equal["max_log_spread"]["net"] == pytest.approx(np.log(3))
    # true numbers pass; the same checks with one of the two sources missing do not
    good = [[1.0, 0.5], [1.0, 0.51], [1.0, 1.0]]
    assert all(c["pass"] for c in evaluate_checks(exp, _uniform_outcome(good, good, 0.01)))
    assert not any(c["pass"] for c in evaluate_checks(exp, _uniform_outcome(good, None, 0.01))
                   if c["kind"] != "tolerance")


def test_an_event_not_reached_is_never_a_time_nor_averaged_away():
    """mean_std keeps NaN; a peak some seed did not learn fails ``within``, misses only by
    its lower bound horizon/T_wanted, and makes a spread a lower bound."""
    from freqdyn.analysis.compare import learning_times
    from freqdyn.analysis.stats import event_statistics, mean_std
    from freqdyn.runs.checks import CHECKS

    assert np.isnan(mean_std([1.0, np.nan])[0]) and np.isnan(mean_std([1.0, np.inf])[1])
    assert learning_times([0.0, 1.0], [[1.0, 0.5]])[0] != learning_times([0.0, 1.0],
                                                                         [[1.0, 0.5]])[0]
    assert np.isnan(learning_times([0.0, 1.0], [[np.nan, np.nan]])[0])  # zero amplitude
    events = event_statistics([[0.9, np.nan], [1.1, 2.0]], horizon=3.0)
    assert events["mean"][0] == pytest.approx(1.0) and np.isnan(events["mean"][1])
    assert events["reached"].tolist() == [2, 1] and events["not_reached_by"] == 3.0

    def outcome(per_seed, horizon=3.0):
        rep = {"times": [0.0, horizon], "predictions": {},
               "widths": {"8": {"learning_times_net": event_statistics(per_seed, horizon)}}}
        return Outcome(None, {}, details={"a": rep, "b": rep})

    lt = CHECKS["learning_times"].evaluate
    assert not lt({"wanted": [1.0, 2.0], "within": 0.5}, outcome([[1.0, np.nan]]), None)["pass"]
    miss = lt({"wanted": [1.0, 2.0], "miss_by": 2.0}, outcome([[1.0, np.nan]]), None)
    assert miss["max_miss_factor"] == pytest.approx(1.5) and not miss["pass"]  # 3/2 only
    spread = CHECKS["spread_less"].evaluate
    res = spread({"arm": "a", "than": "b"}, outcome([[1.0, np.nan]]), None)
    assert not res["pass"] and res["spread"] is None  # arm a did not learn every peak


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path, capsys):
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    out = tmp_path / "out"
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["claim_holds"]
    kinds = [c["kind"] for c in report["checks"]]
    assert kinds == ["tolerance", "peak_order", "slope", "wrong_model"]
    assert all(c["pass"] for c in report["checks"])
    tolerance, wrong = report["checks"][0], report["checks"][3]
    # untrained networks (their û stays at −ĝ) lie far beyond the tolerance
    modal = read_dataset(out / "predictions" / "tiny-modal.nc")
    untrained = relative_l2(u_hat(modal).values, u_hat(modal).values[:1], axes=(1,))
    assert np.all(untrained[1:] > 2 * tolerance["at_most"]), untrained
    assert report["arms"]["tiny"]["tolerance_bound"][0] is None  # no bound at t = 0
    assert wrong["name"] == "damping-only" and "tolerance" in wrong["failed_checks"]
    assert wrong["max_rel_l2_vs_net"] > 2 * tolerance["max_rel_l2_pde_vs_net"]
    assert report["experiment_toml"] == TINY and "freqdyn_version" in report
    entry = report["arms"]["tiny"]["widths"]["4096"]
    # Parseval: at t = 0 the measured loss equals (α/2V)∫|û₀|²dξ up to quadrature error.
    assert entry["loss_parseval_rel_diff"][0] < 1e-4
    assert entry["drift"][0] == 0.0 and entry["drift"][-1] > 0
    assert len(entry["rel_l2_damping_vs_net"]["mean"]) == 3
    # The bar's estimator is the seed mean of per-network errors; the error of the
    # seed-mean û is a separate diagnostic.  Both recomputed here from the stored files.
    pred = u_hat(read_dataset(out / "predictions" / "tiny-damping.nc")).values
    nets = [u_hat(read_dataset(out / "runs" / f"tiny-m4096-s{s}" / "measured.nc")).values
            for s in (0, 1)]
    per_seed = [relative_l2(pred, u, axes=(1,)) for u in nets]
    np.testing.assert_allclose(entry["rel_l2_damping_vs_net"]["per_seed"], per_seed,
                               rtol=1e-12)
    np.testing.assert_allclose(entry["rel_l2_damping_vs_net"]["mean"],
                               np.mean(per_seed, axis=0), rtol=1e-12)
    np.testing.assert_allclose(entry["rel_l2_damping_vs_net"]["std"],  # sample std, ddof 1
                               np.std(per_seed, axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(entry["rel_l2_damping_vs_seed_mean_net"],
                               relative_l2(pred, (nets[0] + nets[1]) / 2, axes=(1,)),
                               rtol=1e-12)
    # The split of the pde's error: common² + per_network² is the seeds' mean square
    # error (exactly, with S = 2: (e₁² + e₂²)/2 = ‖ē‖² + ‖e₁ − e₂‖²/4 = common² + per²).
    pred = u_hat(modal).values
    split = entry["error_split_modal"]
    common, per = np.asarray(split["common"]), np.asarray(split["per_network"])
    norm = np.linalg.norm((nets[0] + nets[1]) / 2, axis=1)
    ms = np.mean([np.linalg.norm(pred - u, axis=1) ** 2 for u in nets], axis=0) / norm**2
    kept = common > 0  # (common is clipped at 0 where its estimate is negative)
    np.testing.assert_allclose((common**2 + per**2)[kept], ms[kept], rtol=1e-10)
    assert np.all(common[~kept] ** 2 + per[~kept] ** 2 >= ms[~kept] - 1e-15)
    slope = report["checks"][2]
    assert slope["widths"] == [256, 1024, 4096] and -0.8 <= slope["slope"] <= -0.3
    assert slope["slope_interval"][0] < slope["slope"] < slope["slope_interval"][1]
    assert set(slope["width_model"]) >= {"A", "B", "A_interval", "B_interval"}
    assert len(slope["common"]) == len(slope["per_network"]) == 3
    for name in ("heatmaps-tiny.png", "loss-tiny.png", "peaks.png", "width.png"):
        assert (out / name).is_file()
    assert "tiny (study, ci size" in capsys.readouterr().out
    # A second run reuses the stored networks.
    stamp = (out / "runs" / "tiny-m4096-s0" / "measured.nc").stat().st_mtime_ns
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 0
    assert (out / "runs" / "tiny-m4096-s0" / "measured.nc").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_a_study_sweeps_its_networks_through_dask_with_the_same_report(tmp_path):
    """[sweep] sends the (arm, width, seed) networks to Dask workers (here one in-process
    worker); the report equals the sequential one, and a second run reuses the cells."""
    plain = tmp_path / "plain.toml"
    swept = tmp_path / "swept.toml"
    swept.write_text(TINY.replace("widths = [256, 1024, 4096]", "widths = [4096]")
                     .replace('kind = "slope"\nrange = [-0.8, -0.3]', 'kind = "peak_order"\n'
                              'first = 0\nlater = 1')
                     .replace("widths = [4096]", MECHANICS_ONLY + "widths = [4096]")
                     + '\n[sweep]\nexecutor = "inprocess"\n')
    plain.write_text(swept.read_text().split("[sweep]")[0])
    assert main(["run", str(plain), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["run", str(swept), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert a["arms"]["tiny"]["widths"]["4096"]["rel_l2_damping_vs_net"] == \
        b["arms"]["tiny"]["widths"]["4096"]["rel_l2_damping_vs_net"]
    cells = sorted((tmp_path / "b" / "sweep" / "cells").glob("*.json"))
    assert [c.name for c in cells] == ["armtiny_m4096_seed0.json", "armtiny_m4096_seed1.json"]


LFP_TINY = """
[experiment]
name = "lfp-tiny"
kind = "study"
seeds = [0]
[settings]
predictions = ["lfp-relu", "lfp-relu-ode", "relu-ntk-flow"]
pde = "lfp-relu"
tolerance = 0.5
tolerance_reason = "m = 512 ReLU units: no spread is predicted for them"
widths = [512]
train = { model = "lfp-relu", f0 = "centered", lr_fraction = 0.9, momentum = 0.9 }
[[arm]]
name = "sb5"
lfp = { sigma_b = 5.0 }
[[arm]]
name = "sb2"
lfp = { sigma_b = 2.0 }
[settings.case]
name = "lfp-tiny"
[settings.case.network]
dim = 1
sigma_a = 1.0
[settings.case.network.rho_w]
family = "gaussian"
scale = 1.0
[settings.case.target]
g = "exp(-x**2/2)*cos(2*pi*0.5*x)"
[settings.case.frequency]
bounds = [-2.0, 2.0]
times = [0.0, 5.0, 10.0]
points = 81
[settings.case.lfp]
sigma_b = 10.0
[claim]
text = "tiny ReLU networks against the LFP, two sigma_b"
[[check]]
kind = "tolerance"
"""


def test_lfp_study_end_to_end(tmp_path):
    """An LFP study: ReLU networks, the three LFP predictions, the excluded ball, arms that
    change sigma_b, and the same report as for Fourier features; at this width its wrong
    model is not refuted, and the claim fails."""
    from freqdyn.analysis import compare
    from freqdyn.results import read_dataset

    study = tmp_path / "lfp.toml"
    study.write_text(LFP_TINY)
    out = tmp_path / "out"
    # at m = 512 the damping-only LFP lies as close to the networks as the LFP PDE: the
    # tolerance holds for both, the wrong model passes too, and the claim fails (exit 1)
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 1
    report = json.loads((out / "report.json").read_text())
    assert [(c["kind"], c["pass"]) for c in report["checks"]] == [("tolerance", True),
                                                                  ("wrong_model", False)]
    assert report["checks"][1]["name"] == "damping-only" and not report["claim_holds"]
    for arm, sigma_b in (("sb5", 5.0), ("sb2", 2.0)):
        rep = report["arms"][arm]
        assert rep["excluded_ball"]["epsilon"] == pytest.approx(min(0.1, 1 / sigma_b))
        entry = rep["widths"]["512"]
        errs = entry["rel_l2_lfp-relu_vs_net"]["mean"]
        assert all(e is not None and np.isfinite(e) for e in errs)
        assert "loss_parseval_pde" not in entry  # the ball is left out: no Parseval loss
        # recomputed from the stored files, over |xi| >= epsilon
        net = read_dataset(next((out / "runs").glob(f"{arm}-m512-s0/measured.nc")))
        pred = read_dataset(out / "predictions" / f"{arm}-lfp-relu.nc")
        assert json.loads(net.attrs["train"])["model"] == "lfp-relu"
        assert np.allclose(compare.rel_l2_by_time(pred, net), errs, rtol=1e-9)
        assert rep["finite_width"]["not_predicted"].startswith("train.model")
        # the heatmaps leave the ball blank and show everything else
        from freqdyn.plots.study import heatmap_figure

        fig = heatmap_figure(pred, [net], arm)
        panels = fig.axes[:3]  # predicted, measured, difference
        for mesh in (c for ax in panels for c in ax.collections):
            assert np.all(np.isfinite(mesh.get_clim()))
        magnitude = np.concatenate([np.ma.filled(c.get_array().astype(float), np.nan).ravel()
                                    for c in panels[1].collections])
        assert 0.5 < np.isfinite(magnitude).mean() < 1.0  # all but the ball
    assert (out / "peaks.png").is_file()


def test_lfp_peak_inside_the_ball_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(LFP_TINY.replace('g = "exp(-x**2/2)*cos(2*pi*0.5*x)"',
                                     'g = "exp(-x**2/2)*cos(2*pi*0.5*x)"\npeaks = [0.05]'))
    with pytest.raises(InputError) as info:
        plan_study(load_experiment(path))
    assert info.value.field == "target.peaks"



def _bound_without_networks(plan, arm) -> float:
    """The study's tolerance B for an arm, without training: the number, or the predicted
    linear bound (mean + 3 spreads of the seed mean) at its largest t > 0 at the largest
    width.  The networks add their twins' beyond-linear part (O(1/m); ≤ 0.02 measured at
    the CI widths of these studies), which needs training and is left out here."""
    from freqdyn.analysis.finite_width import first_order_spread
    from freqdyn.runs.study import linear_bound

    if plan.tolerance != "predicted":
        return plan.tolerance
    # first order with 1000 unit draws (its mean to about 2 %, enough for a bound): these
    # 1D cases have at most a few thousand samples
    fw = first_order_spread(arm.case, dict(plan.train, width=max(plan.widths)),
                            arm.case.times, None, units=1000)
    later = arm.case.times > 0
    bound = linear_bound(fw.mean_error, fw.spread, len(plan.seeds))[later]
    return float(np.max(bound))


#: 1D studies with a pde and wrong models (the 2D and 3D ones, whose predicted bound takes
#: kernel draws of minutes, show their wrong models failing in their own CI runs).
WRONG_MODEL_STUDIES = ["gaussian-1d", "uniform-1d", "diffusion-matters", "design-flat",
                       "design-power", "width-scaling", "lfp-relu-1d", "lfp-tanh-1d"]


@pytest.mark.parametrize("name", WRONG_MODEL_STUDIES)
def test_every_wrong_model_lies_beyond_twice_the_tolerance(name):
    """Without training: each wrong model's prediction is farther than 2B from the pde at
    some t > 0 (B the study's tolerance).  Networks that pass the tolerance lie within B of
    the pde, so (triangle inequality) farther than B from the wrong model, which then fails
    the same tolerance: every shipped wrong model must fail, whatever the networks do."""
    from freqdyn.analysis import compare
    from freqdyn.predict.registry import predict

    plan = plan_study(load_experiment(ROOT / "validation" / f"{name}.toml"))
    assert plan.wrong_models, f"{name} declares no wrong model"
    for arm in plan.arms:
        bound = _bound_without_networks(plan, arm)
        pde = predict(arm.case, plan.pde)
        later = arm.case.times > 0
        for wrong in plan.wrong_models:
            gap = compare.rel_l2_by_time(predict(wrong.cases[arm.name], wrong.method), pde)
            assert np.max(gap[later]) > 2 * bound, (arm.name, wrong.name, gap, bound)


def test_every_shipped_study_with_a_pde_names_its_wrong_models_or_says_why():
    for path in STUDIES:
        plan = plan_study(load_experiment(path))
        text = path.read_text()
        if plan.pde and plan.widths:
            assert plan.wrong_models or "wrong_models = []" in text, path.name
            if "wrong_models = []" in text:
                assert "# no wrong model:" in text, path.name


def test_a_damaged_network_result_is_named_and_rebuilt_from_its_checkpoints(tmp_path, capsys):
    """A truncated runs/<run>/measured.nc is named on stderr and rebuilt (from the run's
    checkpoints): the rerun exits 0 with the same numbers, not with a traceback."""
    study = tmp_path / "tiny.toml"
    study.write_text(TINY.replace("widths = [256, 1024, 4096]", MECHANICS_ONLY + "widths = [4096]")
                     .replace("seeds = [0, 1]", "seeds = [0]")
                     .replace('kind = "slope"\nrange = [-0.8, -0.3]', 'kind = "peak_order"\n'
                              'first = 0\nlater = 1'))
    out = tmp_path / "out"
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 0
    first = json.loads((out / "report.json").read_text())["max_rel_l2_pde_vs_net"]
    measured = out / "runs" / "tiny-m4096-s0" / "measured.nc"
    measured.write_bytes(measured.read_bytes()[:2000])
    capsys.readouterr()
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 0
    assert f"{measured} is damaged" in capsys.readouterr().err
    assert json.loads((out / "report.json").read_text())["max_rel_l2_pde_vs_net"] == first


def test_study_times_beyond_the_case_horizon_are_said(tmp_path):
    """TINY's case runs to t = 1; a study to t = 3 is planned, with a warning naming
    settings.times and both horizons; a study within it is silent."""
    import warnings

    from freqdyn.errors import AccuracyWarning

    study = tmp_path / "tiny.toml"
    study.write_text(TINY.replace("widths = [256, 1024, 4096]",
                                  MECHANICS_ONLY + "widths = [256]\ntimes = [0.0, 1.0, 3.0]"))
    with pytest.warns(AccuracyWarning, match=r"settings.times reach t = 3, beyond the case's "
                                             r"last time 1"):
        plan_study(load_experiment(study))
    study.write_text(TINY.replace("widths = [256, 1024, 4096]",
                                  MECHANICS_ONLY + "widths = [256]\ntimes = [0.0, 0.5]"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        plan_study(load_experiment(study))
