"""What each experiment kind reads and reports, declared so that a file is checked when it
is read, before anything trains.

* ``SETTINGS[kind]``: the ``[settings]`` / ``[full]`` keys the kind's runner reads; any
  other key is refused (a misspelled ``rise_tol`` would otherwise be ignored).
* ``REPORTS[kind]``: the summary keys the kind reports, which a claim rule may name; a
  ``*`` matches any run of characters (parity reports one ``f<NN>_…`` family per training
  fraction).  A rule naming anything else is refused before training.

The test suite holds both to the code: every key a grokking runner reads by name is
declared, and every summary a test run produces is covered by its kind's ``REPORTS``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase


def _each(prefixes, suffixes) -> set[str]:
    """``{p_s}`` for every prefix p and suffix s."""
    return {f"{p}_{s}" for p in prefixes for s in suffixes}


# --------------------------------------------------------------------------- settings
MODULAR_TRAIN = {  # freqdyn.grok.algorithmic.train_modular and models.build_model
    "p", "operation", "train_fraction", "dedupe_symmetric", "batch_size", "lr",
    "weight_decay", "betas", "warmup", "clip", "power_law", "stop_margin", "steps",
    "eval_every", "after_t4", "model", "init_scale", "activation", "d_model", "n_heads",
    "d_head", "d_mlp", "n_layers", "width", "depth", "split", "output", "precision",
    "checkpoint_every", "loss", "gradient_filter", "grokfast_alpha", "grokfast_lambda"}
ROBUST = {  # freqdyn.grok.robustness_runs._robust_settings
    "noise_lambda", "noise_on", "metric_sigma", "hessian_tol", "info_batch_size",
    "info_batches", "info_every", "renyi_alpha", "sharpness_every", "snapshot_every",
    "penalty_coefficient", "penalty_reduction", "paper_noise_lambda"}
COMMITTEE = {  # freqdyn.grok.lazy_rich._committee_settings
    "dim", "n_train", "n_test", "width", "eta0", "steps", "log_every", "threshold",
    "target_scale", "centered", "relative_threshold"}

SETTINGS: dict[str, set[str]] = {
    "data-scale": {"case", "time", "scales", "width", "train", "spread_draws"},
    "study": {"case", "predictions", "pde", "tolerance", "tolerance_reason", "widths",
              "times", "times_reason", "train", "spread_draws", "wrong_models"},
    "aliasing": {"steps", "eval_every", "n_sparse", "n_dense", "n_test", "k_max", "width",
                 "depth", "init_scale", "lr", "rise_tolerance", "extras", "activation",
                 "snapshot_steps"},
    "parity": {"steps", "eval_every", "bits", "fractions", "width", "lr", "init_scale",
               "low_band", "rise_tolerance", "fall_level", "k_top", "n_k", "direction",
               "focus_fraction"},
    "image": {"steps", "eval_every", "dataset", "mnist_dir", "n_train", "width", "depth",
              "batch_size", "k_top", "n_k", "low_band", "snapshot_steps", "train_acc_level",
              *_each(("large", "default"), ("alpha", "optimizer", "lr", "weight_decay"))},
    "lazy-rich-toy": COMMITTEE | {"alpha", "eps", "plateau_tolerance"},
    "lazy-rich-alpha-sweep": COMMITTEE | {"alphas", "eps", "lazy_alpha"},
    "lazy-rich-phase": COMMITTEE | {"alphas", "epsilons"},
    "modular-mlp-lazy-rich": {"p", "train_fraction", "width", "scale", "lr", "steps",
                              "eval_every"},
    "modular": MODULAR_TRAIN,
    "progress-measures": MODULAR_TRAIN | {"measure_every", "key_factor", "neuron_threshold"},
    "loss-spectrum-grid": MODULAR_TRAIN | {  # freqdyn.grok.loss_spectrum_grid._grid_settings
        "train_fractions", "learning_rates", "weight_decays", "t0", "bands", "detrend",
        "detrend_window", "detrend_polyorder", "highpass_cutoff", "groks_at", "n_boot",
        "min_abs_rho"},
    "robustness-perturbation": MODULAR_TRAIN | ROBUST,
    "abelian": MODULAR_TRAIN | ROBUST | {"abelian_threshold"},
}

# ---------------------------------------------------------------------------- reports
_MODULAR_RUNS = {  # freqdyn.grok.algorithmic.runs_summary
    "seeds", "t1", "t2", "t3", "t4", "delay", "delay_ratio", "memorised", "grokked",
    "final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc", "max_val_acc",
    "steps_run", "seconds_per_seed", "seconds_training", "cpu_seconds_per_seed",
    "cpu_seconds_training", "t2_mean", "t2_std", "t4_mean", "t4_std", "delay_ratio_mean",
    "delay_ratio_std", "final_val_acc_mean", "final_val_acc_std", "n_grokked",
    "final_table_loss"}
_ALIASING_PER_CONDITION = {
    "delay", "final_test_loss", "final_train_loss", "grokked", "max_gap", "mismatch",
    "test_fall_step", "test_fell", "test_peak_step", "test_rise", "train_fall_step",
    "train_k1", "delay_mean", "delay_std", "final_test_loss_mean", "final_test_loss_std",
    "max_gap_mean", "max_gap_std", "test_fall_step_mean", "test_fall_step_std",
    "test_peak_step_mean", "test_peak_step_std", "test_rise_mean", "test_rise_std"}
_PARITY_PER_FRACTION = {
    "final_relative_error_at_peak", "final_test_acc", "final_test_acc_mean",
    "final_test_acc_std", "final_test_loss", "final_train_acc", "grokked",
    "output_low_freq_dip", "output_low_freq_final", "output_low_freq_rise_peak",
    "output_low_freq_rise_peak_step", "test_fall_step", "test_fall_step_mean",
    "test_fall_step_std", "test_fell", "test_peak_step", "test_rise",
    "train_low_freq_amplitude", "train_low_freq_amplitude_mean",
    "train_low_freq_amplitude_std", "train_mismatch"}
_IMAGE_PER_ARM = {
    "early_high_band_error", "early_low_band_error", "final_test_acc", "final_test_acc_mean",
    "final_test_acc_std", "final_train_acc", "init_amplitude_ratio", "max_acc_gap",
    "max_acc_gap_mean", "max_acc_gap_std", "max_acc_gap_step",
    "spectral_distance_full_at_gap", "spectral_distance_full_final",
    "spectral_distance_train_at_gap", "train_acc_step", "train_acc_step_mean",
    "train_acc_step_std"}
_ROBUST_PER_MODE = {
    "final_val_acc", "steps_to_95", "steps_to_99", "t2", "val_jump_step"}
_COMMITTEE_COMMON = {"settings", "grok_amount", "grok_censored", "k0_regression_test_loss"}

REPORTS: dict[str, set[str]] = {
    "data-scale": {  # freqdyn.runs.data_scale.run_data_scale
        "time", "width", "scale_key", "scales", "predicted_best_scale", "networks_best_scale",
        "frozen_best_scale", "grid_steps_apart", "excess_at_predicted", "predicted_test_mse",
        "frozen_test_mse", "measured_test_mse_mean", "measured_test_mse_std",
        "max_rel_diff_pred_vs_net", "max_rel_diff_frozen_vs_net",
        "predicted_best_at_grid_end", "spread_draws", "width_test_mse_mean",
        "width_test_mse_std", "width_best_scale", "max_rel_diff_width_vs_net",
        "max_net_gap_in_spreads", "max_infinite_gap_in_spreads",
        "max_frozen_gap_in_spreads", "gap_limit_in_spreads"},
    "aliasing": _each(("sparse", "dense", "uniform"), _ALIASING_PER_CONDITION) | {
        "conditions", "final_test_relative_error_k6", "output_test_k1_at_peak",
        "output_test_k1_final", "output_train_k1_at_peak", "output_train_k1_final",
        "test_k1", "test_k6", "test_mismatch", "train_k1_spurious"},
    "parity": _each(("f*",), _PARITY_PER_FRACTION) | {
        "deviations", "exact_peak_k", "fractions", "full_low_freq_amplitude", "grid_peak_k",
        "test_fall_step_by_fraction", "train_low_freq_amplitude_by_fraction"},
    "image": _each(("large_init", "default_init"), _IMAGE_PER_ARM) | {
        "arms", "dataset", "deviations", "early_step", "target_peak_k"},
    "lazy-rich-toy": _COMMITTEE_COMMON | {
        "alignment_at_peak", "alignment_final", "alignment_final_stats", "alignment_initial",
        "alignment_rises", "alignment_test_spearman", "both_fall",
        "decomposition_max_rel_error", "decomposition_terms_sum_max_rel_error",
        "grok_amount_stats", "k0_descent_test_final", "k0_task_difficulty", "norm_rises",
        "param_norm_final", "param_norm_initial", "plateau_near_k0", "plateau_ratio",
        "plateau_ratio_stats", "t_test", "t_train", "test_final", "test_final_stats",
        "test_initial", "test_peak", "test_peak_stats", "test_peak_step", "test_rises",
        "test_set_vs_population_rel", "train_final", "train_plateau", "twin_test_final",
        "plateau_tolerance", "plateau_margin", "plateau_ratio_spread",
        "plateau_margin_below_spread"},
    "lazy-rich-alpha-sweep": _COMMITTEE_COMMON | {
        "alphas", "empirical_kernel_descent_final_test_loss", "final_test_increasing_in_alpha",
        "final_test_loss", "grok_amount_mean", "grok_amount_std", "increasing_in_alpha",
        "k0_descent_final_test_loss", "lazy_alpha", "lazy_final_test_loss",
        "lazy_vs_empirical_kernel_max_abs_rel", "lazy_vs_empirical_kernel_rel",
        "lazy_vs_k0_descent_max_abs_rel", "lazy_vs_k0_descent_rel",
        "lazy_vs_k0_regression_rel", "grok_amount_absolute_*"},
    "lazy-rich-phase": {
        "settings", "alphas", "epsilons", "censored_fraction", "grok_amount", "cells",
        "cells_reached",
        "grok_amount_lower_bound", "grok_amount_mean", "lazy_misaligned_corner", "max_cell",
        "rich_aligned_corner", "spearman_amount_alpha", "spearman_amount_eps"},
    "modular-mlp-lazy-rich": {
        "delay", "delay_stats", "final_val_accuracy", "grokked", "norm_rises", "t_train_acc",
        "t_val_acc", "weight_norm_at_grok", "weight_norm_final", "weight_norm_initial"},
    "modular": _MODULAR_RUNS | {"model", "p", "operation", "train_fraction", "n_train",
                                "hooked_transformer_files"},
    "progress-measures": _MODULAR_RUNS | {  # freqdyn.grok.progress.run_progress_measures
        "model", "p", "train_fraction", "fall_level", "test_fall_step", "key_frequencies",
        "hooked_transformer_files",
        "n_key_frequencies", "n_key_frequencies_mean", "n_key_frequencies_std", "key_share",
        "key_share_mean", "key_share_std", "top5_share", "restricted_fall_step",
        "restricted_before_test", "final_restricted_loss", "final_excluded_loss",
        "final_gini_embedding", "final_sum_squared_weights", "excluded_rise_factor",
        "restricted_after_memorising", "control_frequencies", "control_restricted_fall_step",
        "control_restricted_falls", "final_gini_output", "control_excluded_rise_factor",
        # with MLP neurons (the transformer): Nanda et al.'s neuron clustering
        "neuron_threshold", "neuron_clustered_share", "neuron_dead", "neuron_key_frequencies",
        "neuron_cluster_sizes", "n_neuron_key_frequencies"},
    "loss-spectrum-grid": {
        "both_outcomes", "auroc", "auroc_by_variant", "cells", "cv_accuracy", "cv_majority",
        "detrend",
        "fraction_grokked", "groks_at", "learning_rates", "n_groks", "n_runs",
        "pooled_auroc", "pooled_cv_accuracy", "pooled_cv_majority", "pooled_high",
        "pooled_low", "pooled_rho", "pooled_sign_certain", "predicts", "r", "rho_by_variant",
        "rho_learning_rate", "rho_mobility", "seconds_per_cell", "sign_certain",
        "spearman_high", "spearman_low", "spearman_p", "spearman_rho", "spearman_sign", "t0",
        "weight_decays"},
    "robustness-perturbation": _each(("standard", "perturbed", "paper"), _ROBUST_PER_MODE | {
        "norm_peak_step", "norm_peaks_before_jump", "pca_top2_share", "pe_lag_to_jump",
        "pe_steepest_step", "pmi_lag_to_jump", "pmi_steepest_step", "seconds"}) | {
        "standard_final_step", "standard_lambda_max_final", "standard_lambda_max_memorised",
        "standard_lambda_min_final", "standard_lambda_min_memorised",
        "standard_memorised_step", "standard_sharpness_drop", "perturbed_faster_95",
        "perturbed_faster_99", "metric_sigma", "n_perturbed_faster_95", "noise_lambda",
        "noise_on", "seeds", "speedup_95", "speedup_95_mean", "speedup_95_std", "speedup_99",
        "speedup_99_mean", "speedup_99_std", "noise_setting", "paper_noise_lambda",
        "paper_noise_on", "paper_faster_95", "paper_faster_99", "paper_speedup_95",
        "paper_speedup_95_mean", "paper_speedup_95_std", "paper_speedup_99",
        "paper_speedup_99_mean", "paper_speedup_99_std"},
    "abelian": _each(("standard", "perturbed", "penalty"), _ROBUST_PER_MODE | {
        "abelian_at_t2", "abelian_step", "final_abelian_acc", "final_logit_distance",
        "max_logit_distance"}) | {
        "standard_low_until_grokking", "perturbed_abelian_before_grokking",
        "perturbed_abelian_steps_after_t2", "penalty_coefficient",
        "penalty_faster_than_perturbed", "penalty_faster_than_standard",
        "abelian_threshold", "does_not_hold", "holds", "noise_lambda", "noise_on", "seeds"},
}


def reported(name: str, keys) -> bool:
    """Whether a summary key ``name`` is among ``keys`` (``*`` in a key matches anything)."""
    return name in keys or any("*" in k and fnmatchcase(name, k) for k in keys)
