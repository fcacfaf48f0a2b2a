"""Experiment files, claim rules and the runner that writes result.nc and report.json."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from freqdyn.cli import main
from freqdyn.errors import InputError
from freqdyn.runs import runner
from freqdyn.runs.claims import evaluate_rule, rule_names
from freqdyn.runs.experiment import load_experiment

TEXT = """
[experiment]
name = "toy"
kind = "toy-kind"
description = "a line fitted by least squares"
seeds = [0, 1, 2]
[settings]
points = 20
slope = 2.0
[full]
points = 200
[claim]
text = "the fitted slope is the true one in every seed"
rule = "all(abs(fitted - slope) < 0.1) and mean(fitted) > 1"
"""


def _toy(exp, out, device):
    """A stand-in experiment: fit a line to noisy points, one fit per seed."""
    n, slope = exp.number("points", integer=True, low=2), exp.number("slope")
    fitted, curves = [], []
    for seed in exp.seeds:
        rng = np.random.default_rng(seed)
        x = np.linspace(0, 1, n)
        y = slope * x + 0.01 * rng.standard_normal(n)
        fitted.append(np.polyfit(x, y, 1)[0])
        curves.append(np.cumsum(y))
    ds = xr.Dataset({"curve": (("seed", "step"), np.array(curves))},
                    coords={"seed": list(exp.seeds), "step": np.arange(n)})
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot(ds["curve"].T)
    return runner.Outcome(ds, {"fitted": np.array(fitted), "slope": slope, "points": n},
                          {"curves": fig})


@pytest.fixture
def toy_kind(monkeypatch):
    from freqdyn.runs.kinds import KINDS, Kind

    entry = Kind("toy-kind", "tests:unused", "a toy", frozenset({"points", "slope"}),
                 frozenset({"fitted", "slope", "points"}))
    monkeypatch.setitem(KINDS, "toy-kind", entry)
    monkeypatch.setattr(Kind, "function", lambda self: _toy if self.name == "toy-kind"
                        else Kind.target_function(self))


def test_paper_size_seeds_and_overrides_merge(toy_kind):
    exp = load_experiment("toy", text=TEXT)
    assert exp.settings["points"] == 20 and exp.seeds == (0, 1, 2) and not exp.paper
    paper = load_experiment("toy", text=TEXT, paper=True, seeds=[4])
    assert paper.settings["points"] == 200 and paper.settings["slope"] == 2.0
    assert paper.seeds == (4,)
    assert load_experiment("toy", text=TEXT, overrides={"points": 5}).get("points") == 5


@pytest.mark.parametrize(("edit", "field"), [
    (("kind = \"toy-kind\"", ""), "experiment.kind"),
    (("seeds = [0, 1, 2]", "seeds = [1, 1]"), "experiment.seeds"),
    (("seeds = [0, 1, 2]", "seeds = []"), "experiment.seeds"),
    (("rule = \"all(abs(fitted - slope) < 0.1) and mean(fitted) > 1\"", ""), "claim.rule"),
    (("rule = \"all(abs(fitted - slope) < 0.1) and mean(fitted) > 1\"",
      "rule = \"fitted.__class__\""), "claim.rule"),
    (("[full]", "[extra]"), "extra"),
    (("[full]", "[paper]"), "paper"),
    (("points = 20", "pionts = 20"), "settings.pionts"),
    (("[experiment]", "[experiment]\nseed = [3, 4]"), "experiment.seed"),
])
def test_bad_files_name_the_field(edit, field, toy_kind):
    with pytest.raises(InputError) as info:
        load_experiment("toy", text=TEXT.replace(*edit))
    assert info.value.field == field


def test_settings_are_checked_with_the_field_named(toy_kind):
    exp = load_experiment("toy", text=TEXT, overrides={"points": 1.5, "slope": float("nan")})
    with pytest.raises(InputError, match=r"settings.points: must be an integer"):
        exp.number("points", integer=True)
    with pytest.raises(InputError, match=r"settings.slope: must be a finite number"):
        exp.number("slope")
    with pytest.raises(InputError, match=r"settings.width: required"):
        exp.require("width")


def test_claim_rules_compare_seed_by_seed():
    summary = {"delay": [60, 80, 100], "t2": [10, 10, 25], "grokked": [True, True, False],
               "t4": [100, None, 50]}
    assert evaluate_rule("all(delay > 5 * t2)", summary) is False
    assert evaluate_rule("all(delay[:2] > 5 * t2[:2])", summary) is True
    assert evaluate_rule("sum(grokked) >= 2 and not all(grokked)", summary) is True
    assert evaluate_rule("all(t4 > 0)", summary) is False          # None → NaN fails
    assert evaluate_rule("all(d > 5 * t for d, t in zip(delay, t2[:2]))", summary) is True
    with pytest.raises(InputError, match="unknown name"):
        evaluate_rule("all(missing)", summary)
    with pytest.raises(InputError, match="could not be evaluated.*IndexError"):
        evaluate_rule("delay[5] > 0", summary)
    for rule in ("__import__('os')", "open('x')", "(lambda: 1)()", "delay.sum()"):
        with pytest.raises(InputError, match="claim.rule"):
            evaluate_rule(rule, summary)


def test_runner_writes_result_figures_and_summary(tmp_path, toy_kind):
    exp = load_experiment("toy", text=TEXT)
    result = runner.run_experiment(exp, tmp_path)
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary == result.summary
    assert summary["claim_holds"] is True and summary["seeds"] == [0, 1, 2]
    assert summary["fitted"] == pytest.approx([2.0] * 3, abs=0.05)
    with xr.open_dataset(tmp_path / "result.nc", engine="h5netcdf") as ds:
        assert ds.attrs["experiment_toml"] == TEXT and ds.attrs["kind"] == "toy-kind"
        assert "freqdyn_version" in ds.attrs and "fourier_convention" in ds.attrs
        assert ds["curve"].dims == ("seed", "step")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    # a claim that fails is reported as such, not raised
    failing = load_experiment("toy", text=TEXT, overrides={"slope": 0.5})
    assert runner.run_experiment(failing, tmp_path / "f").summary["claim_holds"] is False


def test_cli_runs_an_experiment_and_reports_errors(tmp_path, toy_kind, capsys):
    path = tmp_path / "toy.toml"
    path.write_text(TEXT)
    assert main(["grok", str(path), "--out", str(tmp_path / "o"), "--paper",
                 "--seeds", "3,4"]) == 0
    printed = capsys.readouterr().out
    assert "claim HOLDS" in printed and "full size" in printed
    assert json.loads((tmp_path / "o" / "report.json").read_text())["points"] == 200
    path.write_text(TEXT.replace('kind = "toy-kind"', 'kind = "nope"'))
    assert main(["grok", str(path), "--out", str(tmp_path / "p")]) == 2
    assert "experiment.kind: unknown kind 'nope'" in capsys.readouterr().err
    path.write_text(TEXT.replace("slope = 2.0", "slope = 0.5"))  # the claim fails: exit 1
    assert main(["run", str(path), "--out", str(tmp_path / "q")]) == 1


def test_every_experiment_file_parses_and_names_a_registered_kind():
    files = sorted((Path(__file__).parents[2] / "validation" / "grokking").glob("*.toml"))
    for path in files:
        exp = load_experiment(path)
        assert exp.kind in runner.KINDS, path.name
        load_experiment(path, paper=True)


def test_every_kind_resolves_to_a_function_and_has_an_experiment_file():
    root = Path(__file__).parents[2] / "validation"
    used = {load_experiment(path).kind for path in root.rglob("*.toml")
            if "[experiment]" in path.read_text()}
    for kind in runner.KINDS:
        assert callable(runner.experiment_function(kind)), kind
    assert used == set(runner.KINDS)


def test_a_rule_naming_an_unreported_key_is_refused_before_running(tmp_path, toy_kind):
    exp = load_experiment("toy", text=TEXT.replace("mean(fitted) > 1", "mean(fitted) > 1 "
                                                   "and rise_tol > 0"))
    with pytest.raises(InputError, match=r"rise_tol.*do not report"):
        runner.run_experiment(exp, tmp_path)
    assert not (tmp_path / "report.json").exists()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, toy_kind):
    from freqdyn.results import FolderLock

    exp = load_experiment("toy", text=TEXT)
    with FolderLock(tmp_path), pytest.raises(InputError, match="another freqdyn run"):
        runner.run_experiment(exp, tmp_path)


def test_transformer_files_build_nandas_model_at_paper_size():
    """``--paper`` gives Nanda's setting (P = 113, 30 % of the pairs, d 128, 4 heads of 32,
    MLP 512) in every transformer file, and one full-batch update runs through it."""
    import torch

    from freqdyn.grok.models import NandaTransformer, build_model
    from freqdyn.grok.modular import modular_dataset

    folder = Path(__file__).parents[2] / "validation" / "grokking"
    names = ("modular-addition-transformer", "progress-measures", "robustness-perturbation",
             "abelian")
    for name in names:
        settings = load_experiment(folder / f"{name}.toml", paper=True).settings
        assert (settings["model"], settings["p"], settings["train_fraction"]) == \
            ("nanda", 113, 0.3), name
        assert settings["steps"] >= 40000 and settings["lr"] == 1e-3, name
        assert settings.get("weight_decay", 1.0) == 1.0, name
    data = modular_dataset(113, "+", 0.3, 0)
    model = build_model(settings, data, seed=0)
    assert isinstance(model, NandaTransformer)
    assert len(data.pairs_train) == round(0.3 * 113**2)
    assert (model.W_E.shape, model.W_in.shape, model.W_U.shape) == \
        ((data.n_tokens, 128), (128, 512), (128, 113))
    loss = torch.nn.functional.cross_entropy(model(data.pairs_train), data.labels_train)
    loss.backward()
    assert torch.isfinite(loss) and abs(loss.item() - math.log(113)) < 1.0


GROK_FILES = sorted((Path(__file__).parents[2] / "validation" / "grokking").glob("*.toml"))


@pytest.mark.parametrize("path", GROK_FILES, ids=[p.stem for p in GROK_FILES])
def test_a_misspelled_setting_of_a_grokking_file_is_refused_when_read(path):
    """``rise_tol`` for ``rise_tolerance``, ``seed`` for ``seeds``: refused before training."""
    text = path.read_text()
    for typo in ("rise_tol", "seed"):
        bad = text.replace("[settings]\n", f"[settings]\n{typo} = 3\n", 1)
        with pytest.raises(InputError, match=rf"settings\.{typo}: unknown key"):
            load_experiment(path, text=bad)
        if "[full]\n" in text:
            bad = text.replace("[full]\n", f"[full]\n{typo} = 3\n", 1)
            with pytest.raises(InputError, match=rf"full\.{typo}: unknown key"):
                load_experiment(path, text=bad, full=True)


def test_every_kind_declares_its_settings_and_the_grokking_code_reads_only_declared_ones():
    """A static cross-check: every key the grokking runners read by name (``exp.get("k")``,
    ``cfg.get("k")``, ``t.integer("k")``, ...) is declared by some kind, so a declared set
    cannot silently lag behind the code."""
    import re

    assert all(k.settings_keys is not None for k in runner.KINDS.values())
    declared = set().union(*(k.settings_keys for k in runner.KINDS.values()))
    pattern = re.compile(r"""(?:exp\.(?:get|number|require)|cfg\.(?:get|pop)|cfg\[|"""
                         r"""_positive_int\(cfg,|\bt\.(?:number|integer))\(?\s*["']([a-z_0-9]+)["']""")
    root = Path(__file__).parents[2] / "freqdyn" / "grok"
    read = {key for path in root.glob("*.py") for key in pattern.findall(path.read_text())}
    assert read, "the pattern found no reads: it no longer matches the code"
    assert read <= declared, sorted(read - declared)


@pytest.mark.parametrize("path", GROK_FILES, ids=[p.stem for p in GROK_FILES])
def test_a_grokking_rule_naming_an_unreported_key_is_refused_before_training(path, tmp_path):
    """Every grokking kind declares what it reports: a rule naming ``t4_meen`` stops the
    run at once (nothing is written), and every shipped rule names reported keys only."""
    exp = load_experiment(path)
    runner.precheck(exp)
    runner.precheck(load_experiment(path, paper=True))
    text = path.read_text()
    rule = next(c["rule"] for c in exp.checks if c["kind"] == "rule")
    bad = load_experiment(path, text=text.replace(rule, f"({rule}) and t4_meen > 0", 1))
    with pytest.raises(InputError, match=r"t4_meen.*do not report"):
        runner.run_experiment(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


#: Report keys that are times of the machine, not of the training (speed lives in benchmarks/).
TIMING_WORDS = ("seconds", "minutes", "wall", "cpu_")


def test_no_shipped_claim_holds_a_wall_or_cpu_time():
    root = Path(__file__).parents[2] / "validation"
    timed = []
    for path in sorted(root.rglob("*.toml")):
        if "[experiment]" not in path.read_text():
            continue
        for full in (False, True):
            exp = load_experiment(path, full=full)
            for check in exp.checks:
                names = rule_names(check["rule"]) if check["kind"] == "rule" else \
                    {str(v) for v in check.values()}
                timed += [f"{path.name}: {n}" for n in names
                          if any(word in n for word in TIMING_WORDS)]
    assert not timed, timed


def test_the_timing_scan_sees_a_timed_rule():
    assert "cpu_seconds_training" in rule_names("all(grokked) and cpu_seconds_training < 600")



@pytest.mark.parametrize(("rule", "expected"), [
    ("all(delay > 5 * t2) and min(t4) >= 100", True),
    ("max(t4) <= 3 or not all(grokked)", False),
    ("0 < mean(t4) < 1e4 <= 2e4", True), ("200 < max(t4) < 300", False),
    ("len([x for x in t4 if x > 150]) == 1", False),
    ("len([a * b for a, b in zip(t4, t2) if a > b]) == 2", True),
    ("t4[1:][0] // 7 % 5 == 2 ** 2 - 4", False),
    ("(1 if any(grokked) else 0) in [1, 2]", True),
    ("abs(-t2)[0] is not None and -t4[0] < +t4[0]", True),
    ("isfinite(nan) or inf > 1e300", True), ("median(t4) == 250.0 and std(t2) == 0", True),
])
def test_a_rule_walked_from_its_tree_has_python_semantics(rule, expected):
    """The claim evaluator walks the checked tree (no eval): precedence, chained
    comparisons, short-circuit and/or, comprehensions with unpacking, slices, IfExp."""
    from freqdyn.runs.claims import evaluate_rule

    summary = {"delay": [700, 900], "t2": [10, 10], "t4": [200, 300], "grokked": [True, True]}
    assert evaluate_rule(rule, summary) is expected
