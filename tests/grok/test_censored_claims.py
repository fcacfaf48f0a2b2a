"""An event that did not happen is "not reached": it never passes a claim as a time, a 0 or
the run length (one test per rule that used to let it through)."""

from pathlib import Path

import numpy as np
import pytest

from freqdyn.grok.lazy_rich import _phase_summary, _plateau_margin
from freqdyn.grok.loss_spectrum_grid import _evaluation_summary
from freqdyn.runs.claims import evaluate_rule, rule_margins
from freqdyn.runs.experiment import load_experiment

VALIDATION = Path(__file__).resolve().parents[2] / "validation" / "grokking"


def _rule(name: str, full: bool = False) -> str:
    exp = load_experiment(VALIDATION / name, full=full)
    return next(c["rule"] for c in exp.checks if c["kind"] == "rule")


def test_phase_diagram_censored_cell_has_no_amount_and_fails_the_claim():
    amounts = np.array([[[10.0, 5.0], [40.0, 20.0]]])       # (seed, α, ε), rich corner [0, 1]
    censored = np.zeros_like(amounts, dtype=bool)
    ok = _phase_summary(amounts, censored, [1.0, 2.0], [0.1, 0.2])
    censored[0, 0, 1] = True                                # rich, aligned corner never passes
    cut = _phase_summary(amounts, censored, [1.0, 2.0], [0.1, 0.2])
    assert ok["cells_reached"] == 4 and cut["cells_reached"] == 3
    assert ok["rich_aligned_corner"] == 5.0 and np.isnan(cut["rich_aligned_corner"])
    assert cut["grok_amount_mean"][0][1] is None            # not reached, never 0
    assert cut["grok_amount_lower_bound"][0][0][1] == 5.0
    rule = _rule("lazy-rich-phase.toml")
    full = {**cut, "spearman_amount_alpha": 1.0, "spearman_amount_eps": -1.0}
    assert not evaluate_rule(rule, full)
    assert evaluate_rule(rule, {**full, "cells_reached": 4, "rich_aligned_corner": 5.0})


def test_loss_spectrum_predictor_needs_both_outcomes():
    rng = np.random.default_rng(0)
    activity = rng.uniform(size=(1, 4, 4, 1))
    signature = {"groks_at": 0.99, "n_boot": 200, "min_abs_rho": 0.5}
    never = 0.2 + 0.5 * activity                            # perfectly ranked, nobody groks
    summary = _evaluation_summary(activity, never, activity, [0.3], signature, rng)
    assert summary["n_groks"] == [0] and summary["spearman_rho"][0] == pytest.approx(1.0)
    assert summary["both_outcomes"] == [False] and summary["predicts"] == [False]
    some = np.where(activity > 0.5, 1.0, never)
    summary = _evaluation_summary(activity, some, activity, [0.3], signature, rng)
    assert summary["both_outcomes"] == [True] and summary["predicts"] == [True]


def test_parity_claim_cannot_take_a_fall_that_never_happened_as_a_time():
    rule = _rule("parity.toml")
    summary = {"train_low_freq_amplitude_by_fraction": [0.06, 0.02, 0.01],
               "full_low_freq_amplitude": 0.0003, "f20_test_fell": [False] * 3,
               "f50_test_fell": [True] * 3, "f80_test_fell": [True] * 3,
               "f50_test_fall_step": [500, 460, 480], "f80_test_fall_step": [420, 400, 380],
               "f50_output_low_freq_rise_peak": [0.02] * 3, "f50_output_low_freq_dip": [0.01] * 3,
               "f50_output_low_freq_final": [0.01] * 3, "f50_final_test_acc": [0.99] * 3}
    assert evaluate_rule(rule, summary)
    # one 0.5 seed that never falls (None) is not a late fall
    assert not evaluate_rule(rule, {**summary, "f50_test_fell": [True, True, False],
                                    "f50_test_fall_step": [500, 460, None]})


def test_progress_claims_need_reached_falls_and_a_failing_control():
    rule = _rule("progress-measures.toml", full=True)
    good = {"grokked": [True] * 3, "t4": [6000, 7000, 8000], "n_neuron_key_frequencies": [5] * 3,
            "restricted_after_memorising": [True] * 3, "control_restricted_falls": [False] * 3,
            "excluded_rise_factor": [400.0, 900.0, 50.0],
            "control_excluded_rise_factor": [1.0, 1.2, 1.1],
            "neuron_clustered_share": [0.9] * 3, "final_table_loss": [3e-7] * 3}
    assert evaluate_rule(rule, good)
    assert not evaluate_rule(rule, {**good, "control_restricted_falls": [False, True, False]})
    assert not evaluate_rule(rule, {**good, "control_excluded_rise_factor": [1.0, 10.0, 1.0]})
    assert not evaluate_rule(rule, {**good, "t4": [6000, None, 8000]})


def test_margins_name_the_tightest_term_and_keep_not_reached():
    summary = {"ratio": [1.2987, 0.91, 1.02], "tol": 0.3, "t": [None, 5.0]}
    margins = rule_margins("max(abs(ratio - 1)) < tol and all(t < 9)", summary)
    assert margins[0]["margin"] == pytest.approx(0.0013, abs=1e-6)
    assert margins[1]["margin"] is None                   # a NaN time has no margin
    plateau = _plateau_margin(summary["ratio"], 0.3)
    assert plateau["plateau_margin"] == pytest.approx(0.0013, abs=1e-6)
    assert plateau["plateau_margin_below_spread"] is True


def test_alpha_sweep_increase_reads_censored_amounts_as_lower_bounds():
    from freqdyn.grok.lazy_rich import increases_when_censored

    assert increases_when_censored([10.0, 20.0, 40.0], [False, False, False])
    # the last amount is only ≥ 50, which already exceeds 20: the increase is known
    assert increases_when_censored([10.0, 20.0, 50.0], [False, False, True])
    # a censored amount in the middle bounds nothing above it
    assert not increases_when_censored([10.0, 60.0, 70.0], [False, True, False])
    assert not increases_when_censored([10.0, float("nan"), 70.0], [False, False, False])
    assert not increases_when_censored([10.0, 5.0, 70.0], [False, False, False])
