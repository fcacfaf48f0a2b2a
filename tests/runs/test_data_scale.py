"""The shipped data-scale study (a real EEG recording) at its CI size: its claim holds, and
its wrong-model arm (the frozen-frequency kernel) is the part that fails."""

import json
from pathlib import Path

import pytest

from freqdyn.errors import InputError
from freqdyn.runs import runner
from freqdyn.runs.experiment import load_experiment

FILE = Path(__file__).parents[2] / "validation" / "data-scale-eeg.toml"


def test_eeg_scale_study_holds_at_ci_size(tmp_path):
    exp = load_experiment(FILE)
    result = runner.run_experiment(exp, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    summary = report.get("summary", report)
    assert result.claim_holds, summary
    assert summary["grid_steps_apart"] <= 1 and summary["excess_at_predicted"] <= 0.05
    assert summary["max_rel_diff_pred_vs_net"] <= 0.12 < summary["max_rel_diff_frozen_vs_net"]
    assert (tmp_path / "out" / "scales.png").is_file()
    # one network per scale and seed
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    assert len(runs) == 9 * 2


def test_a_data_scale_study_refuses_an_expression_case(tmp_path):
    text = FILE.read_text().replace('case = "data/eeg-case.toml"',
                                    f'case = "{Path.cwd() / "pde" / "gaussian-1d.toml"}"')
    exp = load_experiment(tmp_path / "x.toml", text=text)
    with pytest.raises(InputError, match="must be a data case"):
        runner.run_experiment(exp, tmp_path / "out")


@pytest.mark.parametrize("name", ["data-scale-eeg", "data-scale-camera"])
def test_the_study_parses_at_both_sizes_and_its_rule_names_reported_keys(name):
    path = FILE.parent / f"{name}.toml"
    ci, full = (load_experiment(path, full=f) for f in (False, True))
    assert full.settings["width"] > ci.settings["width"] and len(full.seeds) > len(ci.seeds)
    runner.precheck(ci)
    runner.precheck(full)
