"""The shipped data-scale study (a real EEG recording) at its CI size: its claim holds, and
its wrong-model arm (the frozen-frequency kernel) is the part that fails."""

import json
from pathlib import Path

import numpy as np
import pytest

from freqdyn.errors import InputError
from freqdyn.runs import runner
from freqdyn.runs.experiment import load_experiment

FILE = Path(__file__).parents[2] / "validation" / "data-scale-eeg.toml"


@pytest.mark.slow
def test_eeg_scale_study_holds_at_ci_size(tmp_path):
    exp = load_experiment(FILE)
    result = runner.run_experiment(exp, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    summary = report.get("summary", report)
    assert result.claim_holds, summary
    assert summary["grid_steps_apart"] <= 1 and summary["excess_at_predicted"] <= 0.05
    limit = summary["gap_limit_in_spreads"]
    assert limit == pytest.approx(3.26, abs=0.005)  # 9 scales, family-wise 99 %
    assert summary["max_net_gap_in_spreads"] <= limit < summary["max_frozen_gap_in_spreads"]
    # the bound is the predicted spread of the stored width-m curve
    mean, std = (np.array(summary[k]) for k in ("width_test_mse_mean", "width_test_mse_std"))
    gap = np.abs(np.array(summary["measured_test_mse_mean"]) - mean) / (
        std * np.sqrt(1 / 2 + 1 / summary["spread_draws"]))
    assert summary["max_net_gap_in_spreads"] == pytest.approx(gap.max(), rel=1e-9)
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
