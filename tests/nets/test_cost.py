"""The cost said before a run, and ``--max-minutes`` (freqdyn.time_budget, freqdyn.nets.cost)."""

import warnings
from dataclasses import replace

import numpy as np
import pytest

from freqdyn import time_budget
from freqdyn.cli import main
from freqdyn.errors import InputError


def test_a_budget_refuses_what_does_not_fit_and_is_restored_after():
    with time_budget.time_limit(2.0):
        time_budget.require_time(60.0, "a run", "advice")  # fits
        with pytest.raises(InputError) as info:
            time_budget.require_time(300.0, "a run", "lower it")
        assert info.value.field == "--max-minutes"
        assert "a run needs about 5 min, more than the 2 min allowed" in str(info.value)
        assert "\n" not in str(info.value)
    assert time_budget.seconds_left() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        time_budget.require_time(60.0, "a run", "advice")  # short: silent
        with pytest.raises(time_budget.LongRunWarning):
            time_budget.require_time(2 * time_budget.LONG_SECONDS, "a run", "advice")


@pytest.mark.parametrize("minutes", [0.0, -1.0, float("nan"), float("inf")])
def test_a_budget_must_be_a_positive_number_of_minutes(minutes):
    with pytest.raises(InputError) as info, time_budget.time_limit(minutes):
        pass
    assert info.value.field == "--max-minutes"


def _case(times=(0.0, 0.5)):
    from freqdyn.inputs.case import load_case

    return replace(load_case("pde/gaussian-1d.toml"), times=np.array(times))


def _cost_line(capsys) -> str:
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ": cost: " in ln]
    assert len(lines) == 1, lines
    return lines[0]


def test_the_gradient_count_said_before_gd_is_the_count_it_takes(tmp_path, capsys):
    from freqdyn.nets.train import train

    ds = train(_case(), tmp_path / "gd", progress=True,
               overrides={"width": 256, "twin": False}).dataset
    line = _cost_line(capsys)
    assert f", {int(ds.attrs['gradient_evaluations'])} gradient evaluations at " in line


def test_rkc_takes_a_count_within_the_range_said_before(tmp_path, capsys):
    import re

    from freqdyn.nets.train import train

    ds = train(_case((0.0, 2.0)), tmp_path / "rkc", progress=True,
               overrides={"width": 256, "integrator": "rkc", "R": 8.0}).dataset
    low, high = map(int, re.search(r", (\d+) \(rkc's stability bound\) to (\d+) \(gd's",
                                   _cost_line(capsys)).groups())
    assert low <= int(ds.attrs["gradient_evaluations"]) <= high, (low, high)


def test_train_refuses_a_run_over_max_minutes_before_training(tmp_path, capsys):
    """Exit 2, one line with the estimate, and no result; the same run without the limit
    is not refused."""
    case = tmp_path / "case.toml"
    text = open("pde/gaussian-1d.toml").read()
    case.write_text(text + "\n[train]\nwidth = 512\n" if "[train]" not in text else text)
    rc = main(["train", str(case), "--out", str(tmp_path / "out"), "--max-minutes", "1e-4"])
    err = capsys.readouterr().err
    assert rc == 2
    refusal = [ln for ln in err.splitlines() if ln.startswith("freqdyn: error")]
    assert len(refusal) == 1 and "--max-minutes" in refusal[0] and "needs about" in refusal[0]
    assert not (tmp_path / "out" / "measured.nc").exists()


def test_an_experiment_over_max_minutes_is_refused_after_its_first_updates(tmp_path, capsys):
    """A grok training times its own first updates (no extra draws), says the cost and
    refuses what does not fit: exit 2 after 3 of its updates."""
    rc = main(["grok", "validation/grokking/progress-measures.toml", "--out",
               str(tmp_path / "g"), "--max-minutes", "1e-4", "--set", "steps=400"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "--max-minutes: progress-measures seed 0 needs about" in err.splitlines()[-1]
    assert not (tmp_path / "g" / "report.json").exists()


def test_a_study_over_max_minutes_is_refused_before_its_first_network(tmp_path, capsys):
    """Six networks, each estimated once per width: the total is refused before any of
    them trains (no run folder is left with a result); with room for them it runs."""
    from tests.runs.test_study import MECHANICS_ONLY, TINY

    study = tmp_path / "tiny.toml"
    study.write_text(TINY.replace("widths = [256, 1024, 4096]",
                                  MECHANICS_ONLY + "widths = [256, 1024, 4096]"))
    rc = main(["validate", str(study), "--out", str(tmp_path / "out"), "--quiet",
               "--max-minutes", "1e-3"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2
    assert "--max-minutes: training the 6 networks of tiny needs about" in err[-1], err[-1]
    assert not list((tmp_path / "out").glob("runs/*/measured.nc"))
