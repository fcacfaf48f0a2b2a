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

TINY = """
[experiment]
name = "tiny"
kind = "study"
seeds = [0, 1]
[settings]
predictions = ["damping"]
tolerance = 5.0
widths = [32, 64]
train = { lr_fraction = 0.9, f0 = "centered" }
[settings.case]
name = "tiny"
[settings.case.network]
dim = 1
sigma_a = 0.3
[settings.case.network.rho_w]
family = "gaussian"
scale = 1.0
[settings.case.target]
g = "exp(-x**2/2)*(cos(2*pi*0.5*x) + 0.5*cos(2*pi*2*x))"
[settings.case.frequency]
bounds = [-6.0, 6.0]
times = [0.0, 0.05, 0.1]
points = 121
[claim]
text = "a tiny study: networks of width 64 against pure damping"
[[check]]
kind = "tolerance"
[[check]]
kind = "peak_order"
first = 0
later = 1
[[check]]
kind = "slope"
range = [-10.0, 10.0]
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
    (("tolerance = 5.0", "tolerence = 5.0"), "settings.tolerence"),
    (('predictions = ["damping"]', 'predictions = ["magic"]'), "settings.predictions"),
    (("widths = [32, 64]", "widths = []"), "check[0]"),          # a tolerance needs nets
    (("later = 1", "later = 7"), "check[1]"),                     # only 2 peaks
    (("first = 0\nlater = 1", "first = 0"), "check[1].later"),     # required key
    (("first = 0", 'first = 0\narm = "designed"'), "check[1].arm"),  # no such arm
    (("kind = \"slope\"", "kind = \"slop\""), "check[2].kind"),
    (("lr_fraction = 0.9", "lr_fraktion = 0.9"), "train.lr_fraktion"),
    (("tolerance = 5.0", "tolerance = -1.0"), "settings.tolerance"),  # trained 47 s first
    (("tolerance = 5.0", "tolerance = nan"), "settings.tolerance"),
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


def test_checks_fail_when_the_claim_is_false():
    exp = load_experiment(ROOT / "validation" / "uniform-1d.toml")
    rep = {"times": [0.0, 1.0], "widths": {"8": {
        "peak_ratios_net": {"mean": [[1.0, 0.3], [1.0, 0.9], [1.0, 0.5]]}}},
        "predictions": {"modal": {"peak_ratios": [[1.0, 0.3], [1.0, 0.31], [1.0, 1.0]]}}}
    outcome = Outcome(None, {"max_rel_l2_pde_vs_net": 0.9}, details={"uniform-1d": rep})
    tolerance, frozen, equal = evaluate_checks(exp, outcome)
    assert not tolerance["pass"] and tolerance["at_most"] == exp.settings["tolerance"]
    assert not frozen["pass"] and frozen["min_ratio"]["net"] == 0.5
    assert not equal["pass"] and equal["max_log_spread"]["net"] == pytest.approx(np.log(3))


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path, capsys):
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    out = tmp_path / "out"
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["claim_holds"] and report["max_rel_l2_pde_vs_net"] < 5.0
    assert [c["pass"] for c in report["checks"]] == [True, True, True]
    assert report["experiment_toml"] == TINY and "freqdyn_version" in report
    entry = report["arms"]["tiny"]["widths"]["64"]
    # Parseval: at t = 0 the measured loss equals (α/2V)∫|û₀|²dξ up to quadrature error.
    assert entry["loss_parseval_rel_diff"][0] < 1e-4
    assert entry["drift"][0] == 0.0 and entry["drift"][-1] > 0
    assert len(entry["rel_l2_damping_vs_net"]["mean"]) == 3
    # The bar's estimator is the seed mean of per-network errors; the error of the
    # seed-mean û is a separate diagnostic.  Both recomputed here from the stored files.
    pred = u_hat(read_dataset(out / "predictions" / "tiny-damping.nc")).values
    nets = [u_hat(read_dataset(out / "runs" / f"tiny-m64-s{s}" / "measured.nc")).values
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
    split = entry["error_split_damping"]
    common, per = np.asarray(split["common"]), np.asarray(split["per_network"])
    norm = np.linalg.norm((nets[0] + nets[1]) / 2, axis=1)
    ms = np.mean([np.linalg.norm(pred - u, axis=1) ** 2 for u in nets], axis=0) / norm**2
    kept = common > 0  # (common is clipped at 0 where its estimate is negative)
    np.testing.assert_allclose((common**2 + per**2)[kept], ms[kept], rtol=1e-10)
    assert np.all(common[~kept] ** 2 + per[~kept] ** 2 >= ms[~kept] - 1e-15)
    slope = report["checks"][2]
    assert slope["widths"] == [32, 64] and slope["slope_interval"] == [None, None]
    assert len(slope["common"]) == len(slope["per_network"]) == 2
    for name in ("heatmaps-tiny.png", "loss-tiny.png", "peaks.png", "width.png"):
        assert (out / name).is_file()
    assert "tiny (study, ci size" in capsys.readouterr().out
    # A second run reuses the stored networks.
    stamp = (out / "runs" / "tiny-m64-s0" / "measured.nc").stat().st_mtime_ns
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 0
    assert (out / "runs" / "tiny-m64-s0" / "measured.nc").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_a_study_sweeps_its_networks_through_dask_with_the_same_report(tmp_path):
    """[sweep] sends the (arm, width, seed) networks to Dask workers (here one in-process
    worker); the report equals the sequential one, and a second run reuses the cells."""
    plain = tmp_path / "plain.toml"
    plain.write_text(TINY.replace("widths = [32, 64]", "widths = [32]"))
    swept = tmp_path / "swept.toml"
    swept.write_text(TINY.replace("widths = [32, 64]", "widths = [32]")
                     .replace('kind = "slope"\nrange = [-10.0, 10.0]', 'kind = "peak_order"\n'
                              'first = 0\nlater = 1')
                     + '\n[sweep]\nexecutor = "inprocess"\n')
    plain.write_text(swept.read_text().split("[sweep]")[0])
    assert main(["run", str(plain), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["run", str(swept), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert a["arms"]["tiny"]["widths"]["32"]["rel_l2_damping_vs_net"] == \
        b["arms"]["tiny"]["widths"]["32"]["rel_l2_damping_vs_net"]
    cells = sorted((tmp_path / "b" / "sweep" / "cells").glob("*.json"))
    assert [c.name for c in cells] == ["armtiny_m32_seed0.json", "armtiny_m32_seed1.json"]


LFP_TINY = """
[experiment]
name = "lfp-tiny"
kind = "study"
seeds = [0]
[settings]
predictions = ["lfp-relu", "lfp-relu-ode", "relu-ntk-flow"]
pde = "lfp-relu"
tolerance = 0.5
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
[[check]]
kind = "error_larger"
method = "lfp-relu-ode"
than_method = "lfp-relu"
factor = 0.0
"""


def test_lfp_study_end_to_end(tmp_path):
    """An LFP study: ReLU networks, the three LFP predictions, the excluded ball, arms that
    change sigma_b, and the same report as for Fourier features."""
    from freqdyn.analysis import compare
    from freqdyn.results import read_dataset

    study = tmp_path / "lfp.toml"
    study.write_text(LFP_TINY)
    out = tmp_path / "out"
    assert main(["validate", str(study), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [c["pass"] for c in report["checks"]] == [True, True]
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


def test_a_peak_no_seed_learned_has_infinite_mean_time():
    """A peak never learned within the reported times in any seed has mean time inf, so a
    check of kind learning_times with miss_by sees the miss (it read NaN and failed)."""
    from freqdyn.runs.study import mean_learning_times

    lt = [[0.9, np.inf, np.inf], [1.1, 2.0, np.inf]]
    mean = mean_learning_times(lt)
    assert mean[0] == pytest.approx(1.0) and mean[1] == pytest.approx(2.0)
    assert np.isposinf(mean[2])
