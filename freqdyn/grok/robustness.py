"""The robustness view of grokking (Tan & Huang, arXiv 2311.06597): metrics and experiments.

Perturbation schedule (Sec. 4.3 of the paper)
    Gaussian noise Δ ~ N(0, σ²I) is added at every training step to the token
    embeddings (freqdyn's default) or to the one-hot inputs (option), with
    σ = max(λ1 (1 − train acc), λ2): λ1 at the start, decaying with the training
    accuracy to the floor λ2.  Spec values: (λ1, λ2) = (0.5, 0.4) for modular addition,
    (0.06, 0.03) for MNIST.

Abelian tests (commutativity a∘b = b∘a)
    * argmax agreement: the fraction of training pairs (a, b) with
      argmax z(a, b) = argmax z(b, a), z the logits; also over the *symmetric* training
      pairs only (both (a, b) and (b, a) in the training split);
    * logit distance: the batch mean of ‖z(a, b) − z(b, a)‖₂² (logit units²);
    * abelian penalty: coefficient × MSE(z(a, b), z(b, a)), added to the training loss
      (coefficient 100 in the paper).  The paper's "MSE" is unspecified; the default is
      torch's element-mean ``mse_loss``, the option ``"sum"`` the spec's reconstruction
      (the logit distance above, summed over the classes: p times larger).

Matrix information quantities (Def. 2.1, 2.2, 5.1, 5.2; natural logarithms, nats)
    For ℓ2-normalised feature rows z_i, R = Z Zᵀ has unit diagonal; with A = R / tr R
    (= R/n) and its eigenvalues μ_i,

        H_α(R) = log(Σ μ_i^α) / (1 − α),        H_1(R) = −Σ μ_i log μ_i (von Neumann),
        I_α(R1; R2) = H_α(R1) + H_α(R2) − H_α(R1 ⊙ R2)   (⊙: Hadamard product).

    PE = H_1(R̃) and PMI = I_1(R; R̃) with R̃ the Gram matrix of the features of the
    perturbed inputs; the candidate ED = |H_1(R̃) − H_1(R)| and MID = I_1(R; R) − I_1(R; R̃).
    The forms of PMI, PE, ED and MID are freqdyn's reconstruction (the paper's
    definitions were not available).  They are computed per batch with a single noise
    draw and averaged over batches.

Perturbation error and sharpness (Lemma 3.1)
    perturbation error E_{x, Δ} ‖f(x + Δ) − f(x)‖₂² of the logits over the training set
    (logit units²); sharpness = λ_max of the training-loss Hessian
    (:func:`freqdyn.grok.landscape.hessian_extremes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from freqdyn.errors import InputError
from freqdyn.grok.algorithmic import ModularRun, evaluate_split, runs_dataset, train_modular
from freqdyn.grok.landscape import (
    HessianExtremes,
    flat_parameters,
    hessian_extremes,
    trainable_parameters,
    trajectory_pca,
)


def perturbation_sigma(train_accuracy: float, lambda1: float, lambda2: float) -> float:
    """σ = max(λ1 (1 − train acc), λ2), with the accuracy as a fraction in [0, 1]."""
    if not 0.0 <= train_accuracy <= 1.0:
        raise InputError("train_accuracy", f"must be a fraction in [0, 1], got {train_accuracy}")
    if lambda1 < 0 or lambda2 < 0:
        raise InputError("settings.noise_lambda", f"must be >= 0, got ({lambda1}, {lambda2})")
    return max(lambda1 * (1.0 - train_accuracy), lambda2)


def normalized_gram(features: torch.Tensor) -> torch.Tensor:
    """R = Z Zᵀ of the ℓ2-normalised rows of ``features`` (n, width), in float64."""
    if features.dim() != 2:
        raise InputError("features", f"need a (n, width) matrix, got shape {tuple(features.shape)}")
    z = features.detach().to(torch.float64)
    z = z / z.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    return z @ z.T


def matrix_renyi_entropy(gram: torch.Tensor, alpha: float = 1.0) -> float:
    """H_α of a PSD matrix after trace normalisation A = R / tr R (nats).

    α = 1 is the von Neumann entropy −Σ μ log μ; any other α > 0 is
    log(Σ μ^α)/(1 − α).  The eigenvalues come from ``eigh``; those below the round-off
    level n·ε·μ_max (as in a numerical rank) count as zero, which matters for α < 1.
    """
    if alpha <= 0:
        raise InputError("settings.renyi_alpha", f"must be > 0, got {alpha}")
    gram = gram.detach().to(torch.float64)
    trace = torch.trace(gram)
    if not trace > 0:
        raise InputError("gram", "trace must be positive")
    mu = torch.linalg.eigvalsh(gram / trace)
    cutoff = mu.numel() * torch.finfo(torch.float64).eps * mu.max()
    mu = torch.where(mu > cutoff, mu, torch.zeros_like(mu))
    if alpha == 1.0:
        positive = mu[mu > 0]
        return float(-(positive * positive.log()).sum())
    return float(torch.log((mu**alpha).sum()) / (1.0 - alpha))


def matrix_mutual_information(gram1: torch.Tensor, gram2: torch.Tensor,
                              alpha: float = 1.0) -> float:
    """I_α(R1; R2) = H_α(R1) + H_α(R2) − H_α(R1 ⊙ R2) (nats)."""
    if gram1.shape != gram2.shape:
        raise InputError("gram", f"shapes differ: {tuple(gram1.shape)} vs {tuple(gram2.shape)}")
    joint = gram1.detach().to(torch.float64) * gram2.detach().to(torch.float64)
    return (matrix_renyi_entropy(gram1, alpha) + matrix_renyi_entropy(gram2, alpha)
            - matrix_renyi_entropy(joint, alpha))


def information_metrics(clean: torch.Tensor, perturbed: torch.Tensor,
                        alpha: float = 1.0) -> dict[str, float]:
    """Entropy H(R), PE, PMI and the candidate ED, MID of one batch of features (nats).

    ``clean`` and ``perturbed`` are the (n, width) features of the same inputs without
    and with the perturbation.
    """
    gram = normalized_gram(clean)
    gram_perturbed = normalized_gram(perturbed)
    entropy = matrix_renyi_entropy(gram, alpha)
    perturbed_entropy = matrix_renyi_entropy(gram_perturbed, alpha)
    mutual = matrix_mutual_information(gram, gram_perturbed, alpha)
    self_information = matrix_mutual_information(gram, gram, alpha)
    return {"entropy": entropy, "pe": perturbed_entropy, "pmi": mutual,
            "ed": abs(perturbed_entropy - entropy), "mid": self_information - mutual}



NOISE_TARGETS = ("embedding", "one-hot")


def noise_in_embedding_space(model: torch.nn.Module, emb: torch.Tensor, sigma: float,
                             target: str, generator: torch.Generator) -> torch.Tensor:
    """A draw of σ-scaled Gaussian noise, expressed in the space of ``model.embed``'s output.

    ``target = "embedding"`` adds Δ ~ N(0, σ²I) to the embeddings themselves;
    ``"one-hot"`` adds it to the one-hot token inputs, which reaches the embeddings as
    Δ W_E (W_E the token-embedding matrix; position embeddings are not perturbed).  For
    the pair MLP the embedding is the first-layer pre-activation W[:, x] + W[:, p + y] + b
    and W_E the (2p, width) first-layer map, so one-hot noise is Δ W_E with Δ over the
    2p one-hot entries.  Models without a token matrix get embedding noise.
    """
    if target not in NOISE_TARGETS:
        raise InputError("settings.noise_on", f"unknown target {target!r}; choose {NOISE_TARGETS}")
    token_matrix = token_embedding_matrix(model)
    if target == "embedding" or token_matrix is None:
        return sigma * torch.randn(emb.shape, generator=generator, dtype=emb.dtype,
                                   device="cpu").to(emb.device)
    one_hot_shape = (*emb.shape[:-1], token_matrix.shape[0])
    delta = torch.randn(one_hot_shape, generator=generator, dtype=emb.dtype, device="cpu")
    return sigma * delta.to(emb.device) @ token_matrix


def token_embedding_matrix(model: torch.nn.Module) -> torch.Tensor | None:
    """The token-embedding matrix W_E (one-hot input → embedding); ``None`` if there is none."""
    if hasattr(model, "W_E"):
        return model.W_E
    if hasattr(model, "embedding"):
        return model.embedding.weight
    return None


def swapped_pairs(pairs: torch.Tensor) -> torch.Tensor:
    """(b, a) for every row (a, b)."""
    return pairs.flip(1)


def symmetric_pairs_mask(pairs: torch.Tensor) -> torch.Tensor:
    """True where the swapped pair (b, a) is also among ``pairs`` (a = b included)."""
    base = int(pairs.max()) + 1
    codes = pairs[:, 0] * base + pairs[:, 1]
    return torch.isin(pairs[:, 1] * base + pairs[:, 0], codes)


def logit_distance(logits: torch.Tensor, logits_swapped: torch.Tensor) -> torch.Tensor:
    """Batch mean of ‖z(a, b) − z(b, a)‖₂² (logit units², summed over the classes)."""
    return ((logits - logits_swapped) ** 2).sum(dim=1).mean()


PENALTY_REDUCTIONS = ("mean", "sum")


def abelian_penalty(model: torch.nn.Module, pairs: torch.Tensor, coefficient: float = 100.0,
                    reduction: str = "mean") -> torch.Tensor:
    """The G4 regulariser, differentiable: coefficient × MSE(z(a, b), z(b, a)).

    ``reduction = "mean"``: torch's element-mean MSE, (1/(B·C)) Σ (z(a,b) − z(b,a))², the
    paper's word "MSE" taken literally; ``"sum"``: the batch mean of ‖z(a,b) − z(b,a)‖₂²
    (summed over the C classes, the spec's reconstruction), C times larger.
    """
    if reduction not in PENALTY_REDUCTIONS:
        raise InputError("settings.penalty_reduction",
                        f"unknown reduction {reduction!r}; choose {PENALTY_REDUCTIONS}")
    logits = model(pairs)
    distance = logit_distance(logits, model(swapped_pairs(pairs)))
    return coefficient * (distance / logits.shape[1] if reduction == "mean" else distance)


@torch.no_grad()
def abelian_tests(model: torch.nn.Module, pairs: torch.Tensor) -> dict[str, float]:
    """The abelian tests over ``pairs`` (usually the training pairs).

    ``abelian_acc``: fraction with argmax z(a, b) = argmax z(b, a);
    ``abelian_acc_symmetric``: the same over the pairs whose swap is also in ``pairs``
    (NaN if there are none); ``logit_distance``: mean ‖z(a, b) − z(b, a)‖₂².
    """
    logits, logits_swapped = model(pairs), model(swapped_pairs(pairs))
    agree = (logits.argmax(dim=1) == logits_swapped.argmax(dim=1)).double()
    symmetric = symmetric_pairs_mask(pairs)
    return {"abelian_acc": float(agree.mean()),
            "abelian_acc_symmetric": (float(agree[symmetric].mean()) if symmetric.any()
                                      else float("nan")),
            "logit_distance": float(logit_distance(logits, logits_swapped))}


@torch.no_grad()
def perturbation_error(model: torch.nn.Module, pairs: torch.Tensor, sigma: float, *,
                       target: str = "embedding", draws: int = 1,
                       generator: torch.Generator) -> float:
    """E_{x, Δ} ‖f(x + Δ) − f(x)‖₂² of the logits over ``pairs`` (logit units²).

    The expectation over Δ is a Monte-Carlo mean over ``draws`` noise draws.
    """
    emb = model.embed(pairs)
    clean = model.head(emb)
    total = 0.0
    for _ in range(draws):
        noisy = model.head(emb + noise_in_embedding_space(model, emb, sigma, target, generator))
        total += float(((noisy - clean) ** 2).sum(dim=1).mean())
    return total / draws


@torch.no_grad()
def perturbed_information(model: torch.nn.Module, pairs: torch.Tensor, sigma: float, *,
                          batch_size: int, alpha: float = 1.0, target: str = "embedding",
                          max_batches: int | None = None,
                          generator: torch.Generator) -> dict[str, float]:
    """PE, PMI, entropy and the candidate ED/MID, batch-wise and averaged over batches.

    The pairs are shuffled with ``generator`` and cut into batches of ``batch_size``
    (a last, shorter batch is dropped unless it is the only one); each batch gets one
    noise draw.  Features come from ``model.features`` (the layer the output reads).
    """
    order = torch.randperm(len(pairs), generator=generator).to(pairs.device)
    n_batches = max(1, len(pairs) // batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    sums: dict[str, float] = {}
    for index in range(n_batches):
        batch = pairs[order[index * batch_size:(index + 1) * batch_size]]
        emb = model.embed(batch)
        noise = noise_in_embedding_space(model, emb, sigma, target, generator)
        values = information_metrics(model.features(emb), model.features(emb + noise), alpha)
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value
    return {key: value / n_batches for key, value in sums.items()}


# --------------------------------------------------------------------------------------
# Experiments: perturbed vs standard training, and the abelian tests over training.
# --------------------------------------------------------------------------------------

MODES = ("standard", "perturbed", "penalty")
#: Offsets of the noise and metric generators from the experiment seed (the seed itself
#: drives the split, the initialisation and the batches in ``train_modular``).
NOISE_SEED_OFFSET = 1_000
METRIC_SEED_OFFSET = 2_000
INFORMATION_KEYS = ("entropy", "pe", "pmi", "ed", "mid", "perturbation_error")
ABELIAN_KEYS = ("abelian_acc", "abelian_acc_symmetric", "logit_distance")
LONG_NAMES = {
    "entropy": "matrix entropy H_1(R) of clean features, batch mean (nats)",
    "pe": "perturbed entropy PE = H_1(R~) (nats; freqdyn's form)",
    "pmi": "perturbed mutual information PMI = I_1(R; R~) (nats; freqdyn's form)",
    "ed": "candidate ED = |H_1(R~) - H_1(R)| (nats; freqdyn's form)",
    "mid": "candidate MID = I_1(R; R) - I_1(R; R~) (nats; freqdyn's form)",
    "perturbation_error": "E ||f(x + Delta) - f(x)||^2 of the logits on the training set",
    "sharpness": "lambda_max of the training-loss Hessian (Lanczos)",
    "abelian_acc": "fraction of training pairs with argmax z(a,b) = argmax z(b,a)",
    "abelian_acc_symmetric": "abelian_acc over training pairs whose swap is also in training",
    "logit_distance": "batch mean of ||z(a,b) - z(b,a)||^2 over training pairs (logit^2)",
}


@dataclass
class RobustRun:
    """One modular run of a mode, with the measurements the robustness view adds."""

    mode: str
    run: ModularRun
    snapshot_steps: list[int]
    snapshots: list[np.ndarray]
    landscape: dict[str, float]


def _robust_settings(exp) -> dict:
    """The robustness settings of ``exp``, checked (keys and defaults in the docs page)."""
    lambdas = exp.get("noise_lambda", [0.5, 0.4])
    if len(lambdas) != 2 or not all(isinstance(v, int | float) and v >= 0 for v in lambdas):
        raise InputError("settings.noise_lambda", f"must be [lambda1, lambda2] >= 0, got {lambdas}")
    noise_on = exp.get("noise_on", "embedding")
    if noise_on not in NOISE_TARGETS:
        raise InputError("settings.noise_on",
                         f"unknown target {noise_on!r}; choose {NOISE_TARGETS}")
    eval_every = exp.number("eval_every", 10, low=1, integer=True)
    measured = {}
    for key, default in (("info_every", 10 * eval_every), ("snapshot_every", 10 * eval_every),
                         ("sharpness_every", 0)):
        value = exp.number(key, default, low=0, integer=True)
        if value % eval_every:
            raise InputError(f"settings.{key}", f"must be a multiple of eval_every = {eval_every}")
        measured[key] = value
    return {"lambdas": (float(lambdas[0]), float(lambdas[1])), "noise_on": noise_on,
            "metric_sigma": exp.number("metric_sigma", 0.4, low=0),
            "renyi_alpha": exp.number("renyi_alpha", 1.0, low=1e-9),
            "info_batch_size": exp.number("info_batch_size", 512, low=2, integer=True),
            "info_batches": exp.number("info_batches", 2, low=1, integer=True),
            "penalty": exp.number("penalty_coefficient", 100.0, low=0),
            "penalty_reduction": exp.get("penalty_reduction", "mean"),
            "hessian_tol": exp.number("hessian_tol", 1e-3, low=0),
            **measured}


def _training_loss(model, pairs, labels):
    return lambda: torch.nn.functional.cross_entropy(model(pairs), labels)


def _hessian(model, pairs, labels, tol: float, smallest: bool = True) -> HessianExtremes:
    with torch.enable_grad():
        return hessian_extremes(_training_loss(model, pairs, labels),
                                trainable_parameters(model), tol=tol, smallest=smallest)


def train_robust(cfg: dict, settings: dict, seed: int, device: str, mode: str, *,
                 information: bool, landscape: bool, label: str = "") -> RobustRun:
    """Train ``cfg``'s modular model in ``mode`` and measure it along the way.

    ``mode``: ``"standard"``; ``"perturbed"`` (Gaussian noise with the σ schedule on the
    training embeddings or one-hot inputs); ``"penalty"`` (the abelian penalty added).
    Every evaluation records the abelian tests on the training pairs; every
    ``info_every`` updates (with ``information``) PE, PMI, ED, MID and the perturbation
    error at σ = ``metric_sigma``; every ``snapshot_every`` updates a parameter snapshot.
    With ``landscape``: the sharpness λ_max every ``sharpness_every`` updates (0: never)
    and λ_max, λ_min at memorisation (first train accuracy = 1) and at the end.
    """
    if mode not in MODES:
        raise InputError("mode", f"unknown mode {mode!r}; choose {MODES}")
    noise_generator = torch.Generator().manual_seed(seed + NOISE_SEED_OFFSET)
    metric_generator = torch.Generator().manual_seed(seed + METRIC_SEED_OFFSET)
    lambda1, lambda2 = settings["lambdas"]
    # The hook needs the model (for one-hot noise, W_E); train_modular builds it and
    # evaluates at step 0 before the first update, which is where it is picked up.
    current: dict = {}
    snapshot_steps: list[int] = []
    snapshots: list[np.ndarray] = []
    found: dict[str, float] = {}

    def add_noise(emb, step, state):
        sigma = perturbation_sigma(state["train_acc"], lambda1, lambda2)
        return emb + noise_in_embedding_space(current["model"], emb, sigma,
                                              settings["noise_on"], noise_generator)

    def penalty(model, pairs, labels, step):
        return abelian_penalty(model, pairs, settings["penalty"], settings["penalty_reduction"])

    def measure(model, data, step):
        current["model"] = model
        pairs, labels = data.pairs_train.to(device), data.labels_train.to(device)
        values = abelian_tests(model, pairs)
        if information:
            due = step % settings["info_every"] == 0
            values.update({key: math.nan for key in INFORMATION_KEYS})
            if due:
                values.update(perturbed_information(
                    model, pairs, settings["metric_sigma"], batch_size=settings["info_batch_size"],
                    alpha=settings["renyi_alpha"], target=settings["noise_on"],
                    max_batches=settings["info_batches"], generator=metric_generator))
                values["perturbation_error"] = perturbation_error(
                    model, pairs, settings["metric_sigma"], target=settings["noise_on"],
                    generator=metric_generator)
        if landscape:
            every = settings["sharpness_every"]
            values["sharpness"] = math.nan
            if every and step % every == 0:
                values["sharpness"] = _hessian(model, pairs, labels, 1e-2,
                                               smallest=False).lambda_max
            if "memorised_step" not in found and evaluate_split(model, pairs, labels)[1] >= 1.0:
                extremes = _hessian(model, pairs, labels, settings["hessian_tol"])
                found.update(memorised_step=step, lambda_max_memorised=extremes.lambda_max,
                             lambda_min_memorised=extremes.lambda_min)
        if settings["snapshot_every"] and step % settings["snapshot_every"] == 0:
            snapshot_steps.append(step)
            snapshots.append(flat_parameters(model).astype(np.float32))
        return values

    run = train_modular(cfg, seed, device,
                        embedding_hook=add_noise if mode == "perturbed" else None,
                        extra_loss=penalty if mode == "penalty" else None,
                        evaluate_extra=measure, progress=False, label=label)
    if landscape:
        pairs, labels = run.data.pairs_train.to(device), run.data.labels_train.to(device)
        extremes = _hessian(run.model, pairs, labels, settings["hessian_tol"])
        found.update(final_step=int(run.log.eval_steps[-1]), lambda_max_final=extremes.lambda_max,
                     lambda_min_final=extremes.lambda_min)
    if settings["snapshot_every"] and snapshot_steps[-1] != run.log.eval_steps[-1]:
        snapshot_steps.append(int(run.log.eval_steps[-1]))
        snapshots.append(flat_parameters(run.model).astype(np.float32))
    return RobustRun(mode=mode, run=run, snapshot_steps=snapshot_steps, snapshots=snapshots,
                     landscape=found)


def steps_to(run: ModularRun, threshold: float, key: str = "val_acc") -> int | None:
    """First evaluated step with ``key`` ≥ ``threshold``; ``None`` if never."""
    hits = np.flatnonzero(run.log.evals(key) >= threshold)
    return int(run.log.eval_steps[hits[0]]) if len(hits) else None


def steepest_change_step(run: ModularRun, key: str, after: int | None = None) -> int | None:
    """The step ending the interval of largest |Δkey/Δt| between finite evaluations, among
    the evaluations at steps ≥ ``after`` (all if ``None``); ``None`` if ``key`` never
    changes there."""
    values = run.log.evals(key)
    steps = np.asarray(run.log.eval_steps, dtype=float)
    finite = np.isfinite(values) & (steps >= (after or 0))
    if finite.sum() < 2:
        return None
    rate = np.abs(np.diff(values[finite]) / np.diff(steps[finite]))
    if not rate.max() > 0:
        return None
    return int(steps[finite][1:][np.argmax(rate)])


def _ratio(numerator, denominator) -> float:
    if numerator is None or denominator is None or denominator == 0:
        return math.nan
    return numerator / denominator


def _mean_std(values) -> tuple[float, float]:
    array = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    array = array[np.isfinite(array)]
    if not len(array):
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def _mode_dataset(runs: list[RobustRun], extra: tuple[str, ...]) -> xr.Dataset:
    dataset = runs_dataset([r.run for r in runs], extra_evals=extra)
    for key in extra:
        dataset[key].attrs["long_name"] = LONG_NAMES[key]
    return dataset


def _modes_dataset(by_mode: dict[str, list[RobustRun]], extra: dict[str, tuple]) -> xr.Dataset:
    """One dataset with a ``mode`` dimension (shorter runs padded with NaN)."""
    parts = [_mode_dataset(runs, extra[mode]) for mode, runs in by_mode.items()]
    return xr.concat(parts, dim=xr.DataArray(list(by_mode), dims="mode", name="mode"),
                     join="outer", data_vars="all", coords="different", compat="equals")


def _pca_summary(runs: list[RobustRun]) -> list[float]:
    shares = []
    for r in runs:
        if len(r.snapshots) >= 3:
            shares.append(trajectory_pca(np.asarray(r.snapshots, dtype=np.float64)).top2_share)
        else:
            shares.append(math.nan)
    return shares


def run_perturbation(exp, out: Path, device: str):
    """Experiment kind "robustness-perturbation": standard vs perturbed training per seed.

    Summary: steps to 95 % / 99 % validation accuracy per mode and seed, speed-up factors
    (standard steps / perturbed steps) with mean and spread, whether the perturbed run is
    faster in every seed; weight-norm peak vs the validation jump (steepest rise of the
    validation accuracy); the steps after memorisation (t2) where PE and PMI change most
    steeply, and their lag to the jump; landscape numbers of the standard runs (λ_max, λ_min at
    memorisation and at the end, the trajectory PCA's top-2 variance share).
    """
    from freqdyn.runs.runner import Outcome

    cfg = dict(exp.settings)
    settings = _robust_settings(exp)
    by_mode = {mode: [train_robust(cfg, settings, seed, device, mode, information=True,
                                   landscape=(mode == "standard"),
                                   label=f"{exp.name} {mode} seed {seed}")
                      for seed in exp.seeds]
               for mode in ("standard", "perturbed")}
    summary: dict = {"seeds": list(exp.seeds), "noise_lambda": list(settings["lambdas"]),
                     "noise_on": settings["noise_on"], "metric_sigma": settings["metric_sigma"]}
    for mode, runs in by_mode.items():
        summary[f"{mode}_t2"] = [r.run.phase_times["t2"] for r in runs]
        for threshold in (95, 99):
            summary[f"{mode}_steps_to_{threshold}"] = [steps_to(r.run, threshold / 100)
                                                       for r in runs]
        summary[f"{mode}_final_val_acc"] = [r.run.final["val_acc"] for r in runs]
        summary[f"{mode}_seconds"] = [round(r.run.seconds, 2) for r in runs]
        jump = [steepest_change_step(r.run, "val_acc") for r in runs]
        norm_peak = [int(np.argmax(r.run.log.every("param_norm"))) for r in runs]
        summary[f"{mode}_val_jump_step"] = jump
        summary[f"{mode}_norm_peak_step"] = norm_peak
        summary[f"{mode}_norm_peaks_before_jump"] = [
            j is not None and n < j for n, j in zip(norm_peak, jump, strict=True)]
        for key in ("pe", "pmi"):
            steep = [steepest_change_step(r.run, key, after=r.run.phase_times["t2"])
                     for r in runs]
            summary[f"{mode}_{key}_steepest_step"] = steep
            summary[f"{mode}_{key}_lag_to_jump"] = [
                None if s is None or j is None else s - j for s, j in zip(steep, jump, strict=True)]
    for threshold in (95, 99):
        standard = summary[f"standard_steps_to_{threshold}"]
        perturbed = summary[f"perturbed_steps_to_{threshold}"]
        speedup = [_ratio(s, p) for s, p in zip(standard, perturbed, strict=True)]
        summary[f"speedup_{threshold}"] = speedup
        summary[f"speedup_{threshold}_mean"], summary[f"speedup_{threshold}_std"] = \
            _mean_std(speedup)
        summary[f"perturbed_faster_{threshold}"] = [
            p is not None and (s is None or p < s)
            for s, p in zip(standard, perturbed, strict=True)]
    summary["n_perturbed_faster_95"] = int(sum(summary["perturbed_faster_95"]))
    standard_runs = by_mode["standard"]
    for key in ("lambda_max_memorised", "lambda_min_memorised", "lambda_max_final",
                "lambda_min_final", "memorised_step", "final_step"):
        summary[f"standard_{key}"] = [r.landscape.get(key, math.nan) for r in standard_runs]
    summary["standard_sharpness_drop"] = [
        _ratio(r.landscape.get("lambda_max_memorised"), r.landscape.get("lambda_max_final"))
        for r in standard_runs]
    for mode, runs in by_mode.items():
        summary[f"{mode}_pca_top2_share"] = _pca_summary(runs)
    extra = {"standard": (*ABELIAN_KEYS, *INFORMATION_KEYS, "sharpness"),
             "perturbed": (*ABELIAN_KEYS, *INFORMATION_KEYS)}
    dataset = _modes_dataset(by_mode, extra)
    figures = {"accuracy": _accuracy_figure(by_mode, exp.name),
               "weight_norm": _weight_norm_figure(by_mode),
               "information": _information_figure(by_mode),
               "robustness": _robustness_figure(by_mode["standard"]),
               "landscape": _landscape_figure(standard_runs)}
    return Outcome(dataset=dataset, summary=summary, figures=figures)


def run_abelian(exp, out: Path, device: str):
    """Experiment kind "abelian": the abelian tests over training, standard vs perturbed vs
    penalty, per seed.

    Summary per mode and seed: t2 (memorisation), steps to 95 % / 99 % validation accuracy,
    the abelian accuracy at memorisation, the first step with abelian accuracy ≥
    ``abelian_threshold`` (0.99), and the paper's three statements checked one by one:
    standard training's abelian accuracy stays low until grokking (below the threshold at
    t2 and reaching it no earlier than the validation jump), perturbed training's reaches
    it before the validation jump, and the penalty reaches 95 % validation accuracy
    before perturbed training.
    """
    from freqdyn.runs.runner import Outcome

    cfg = dict(exp.settings)
    settings = _robust_settings(exp)
    threshold = exp.number("abelian_threshold", 0.99, low=0, high=1)
    by_mode = {mode: [train_robust(cfg, settings, seed, device, mode, information=False,
                                   landscape=False, label=f"{exp.name} {mode} seed {seed}")
                      for seed in exp.seeds]
               for mode in MODES}
    summary: dict = {"seeds": list(exp.seeds), "noise_lambda": list(settings["lambdas"]),
                     "noise_on": settings["noise_on"],
                     "penalty_coefficient": settings["penalty"], "abelian_threshold": threshold}
    for mode, runs in by_mode.items():
        t2 = [r.run.phase_times["t2"] for r in runs]
        summary[f"{mode}_t2"] = t2
        for level in (95, 99):
            summary[f"{mode}_steps_to_{level}"] = [steps_to(r.run, level / 100) for r in runs]
        summary[f"{mode}_val_jump_step"] = [steepest_change_step(r.run, "val_acc") for r in runs]
        summary[f"{mode}_abelian_at_t2"] = [
            None if t is None else float(r.run.log.evals("abelian_acc")[
                r.run.log.eval_steps.index(t)]) for r, t in zip(runs, t2, strict=True)]
        summary[f"{mode}_abelian_step"] = [steps_to(r.run, threshold, "abelian_acc")
                                           for r in runs]
        summary[f"{mode}_final_abelian_acc"] = [r.run.log.last("abelian_acc") for r in runs]
        summary[f"{mode}_final_logit_distance"] = [r.run.log.last("logit_distance")
                                                   for r in runs]
        summary[f"{mode}_max_logit_distance"] = [float(np.max(r.run.log.evals("logit_distance")))
                                                 for r in runs]
        summary[f"{mode}_final_val_acc"] = [r.run.final["val_acc"] for r in runs]
    summary["standard_low_until_grokking"] = [
        a is not None and a < threshold and s is not None and j is not None and s >= j
        for a, s, j in zip(summary["standard_abelian_at_t2"], summary["standard_abelian_step"],
                           summary["standard_val_jump_step"], strict=True)]
    summary["perturbed_abelian_before_grokking"] = [
        s is not None and j is not None and s < j
        for s, j in zip(summary["perturbed_abelian_step"], summary["perturbed_val_jump_step"],
                        strict=True)]
    summary["perturbed_abelian_steps_after_t2"] = [
        None if s is None or t is None else s - t
        for s, t in zip(summary["perturbed_abelian_step"], summary["perturbed_t2"], strict=True)]
    summary["penalty_faster_than_perturbed"] = [
        p is not None and (q is None or p < q)
        for p, q in zip(summary["penalty_steps_to_95"], summary["perturbed_steps_to_95"],
                        strict=True)]
    summary["penalty_faster_than_standard"] = [
        p is not None and (q is None or p < q)
        for p, q in zip(summary["penalty_steps_to_95"], summary["standard_steps_to_95"],
                        strict=True)]
    statements = {"standard_low_until_grokking": "standard: abelian accuracy low until grokking",
                  "perturbed_abelian_before_grokking":
                      "perturbed: abelian accuracy reaches the threshold before grokking",
                  "penalty_faster_than_perturbed": "penalty: faster than perturbed training"}
    summary["holds"] = [text for key, text in statements.items() if all(summary[key])]
    summary["does_not_hold"] = [text for key, text in statements.items() if not all(summary[key])]
    dataset = _modes_dataset(by_mode, {mode: ABELIAN_KEYS for mode in MODES})
    figures = {"abelian_test": _abelian_figure(by_mode, threshold),
               "logit_distance": _logit_distance_figure(by_mode)}
    return Outcome(dataset=dataset, summary=summary, figures=figures)


# --------------------------------------------------------------------------------------
# Figures (paper style: log-step axes, one colour per mode, seeds as thin lines)
# --------------------------------------------------------------------------------------

MODE_COLORS = {"standard": "C0", "perturbed": "C3", "penalty": "C2"}


def _eval_axis(run: ModularRun) -> np.ndarray:
    return np.maximum(np.asarray(run.log.eval_steps, dtype=float), 1.0)


def _accuracy_figure(by_mode: dict[str, list[RobustRun]], name: str):
    """Fig 4 analogue: train (dashed) and validation (solid) accuracy, per mode and seed."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for mode, runs in by_mode.items():
        for i, r in enumerate(runs):
            steps = _eval_axis(r.run)
            ax.plot(steps, r.run.log.evals("val_acc"), color=MODE_COLORS[mode], lw=1.2,
                    label=f"{mode}: validation" if i == 0 else None)
            ax.plot(steps, r.run.log.evals("train_acc"), color=MODE_COLORS[mode], lw=0.8,
                    ls="--", label=f"{mode}: train" if i == 0 else None)
    ax.axhline(0.95, color="0.6", lw=0.6, ls=":")
    ax.set(xscale="log", xlabel="update", ylabel="accuracy", title=f"{name}: perturbed vs standard")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _weight_norm_figure(by_mode: dict[str, list[RobustRun]]):
    """Fig 1 analogue: accuracies and ‖θ‖₂ with the norm peak and the validation jump."""
    fig, axes = plt.subplots(1, len(by_mode), figsize=(5.2 * len(by_mode), 3.8), squeeze=False)
    for ax, (mode, runs) in zip(axes[0], by_mode.items(), strict=True):
        twin = ax.twinx()
        for i, r in enumerate(runs):
            color = f"C{i}"
            ax.plot(_eval_axis(r.run), r.run.log.evals("val_acc"), color=color,
                    label=f"seed {r.run.seed}")
            ax.plot(_eval_axis(r.run), r.run.log.evals("train_acc"), color=color, ls="--", lw=0.8)
            norm = r.run.log.every("param_norm")
            twin.plot(np.maximum(r.run.log.steps, 1), norm, color=color, ls=":", lw=1.0)
            peak = int(np.argmax(norm))
            twin.plot(max(peak, 1), norm[peak], "s", color=color, ms=5)
            jump = steepest_change_step(r.run, "val_acc")
            if jump is not None:
                ax.axvline(jump, color=color, lw=0.6, ls="-.")
        ax.set(xscale="log", xlabel="update", ylabel="accuracy (train dashed, val solid)",
               title=f"{mode}: ‖θ‖₂ dotted (peak ■), val jump dash-dot")
        twin.set_ylabel("‖θ‖₂")
        ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return fig


def _information_figure(by_mode: dict[str, list[RobustRun]]):
    """Figs 8–9 analogue: PMI and PE on the training set, with validation accuracy."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key in zip(axes, ("pmi", "pe"), strict=True):
        twin = ax.twinx()
        for mode, runs in by_mode.items():
            for i, r in enumerate(runs):
                values = r.run.log.evals(key)
                finite = np.isfinite(values)
                ax.plot(_eval_axis(r.run)[finite], values[finite], color=MODE_COLORS[mode],
                        label=mode if i == 0 else None)
                twin.plot(_eval_axis(r.run), r.run.log.evals("val_acc"),
                          color=MODE_COLORS[mode], lw=0.6, ls=":")
        ax.set(xscale="log", xlabel="update", ylabel=f"{key.upper()} (nats)",
               title=f"{key.upper()} on the training set (val acc dotted)")
        twin.set_ylabel("validation accuracy")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _robustness_figure(runs: list[RobustRun]):
    """Fig 2 analogue: perturbation error and sharpness λ_max under standard training."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, r in enumerate(runs):
        for ax, key in zip(axes, ("perturbation_error", "sharpness"), strict=True):
            values = r.run.log.evals(key)
            finite = np.isfinite(values)
            ax.plot(_eval_axis(r.run)[finite], values[finite], "o-", ms=3, color=f"C{i}",
                    label=f"seed {r.run.seed}")
            if r.run.phase_times["t2"] is not None:
                ax.axvline(max(r.run.phase_times["t2"], 1), color=f"C{i}", lw=0.6, ls=":")
    axes[0].set(xscale="log", yscale="log", xlabel="update", ylabel="E‖f(x+Δ) − f(x)‖²",
                title="perturbation error (t2 dotted)")
    axes[1].set(xscale="log", yscale="log", xlabel="update", ylabel="λ_max(∇²L_train)",
                title="sharpness")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _landscape_figure(runs: list[RobustRun]):
    """The standard runs' trajectories in the plane of their two leading PCA directions."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for i, r in enumerate(runs):
        if len(r.snapshots) < 3:
            continue
        pca = trajectory_pca(np.asarray(r.snapshots, dtype=np.float64))
        ax.plot(pca.projections[:, 0], pca.projections[:, 1], ".-", ms=3, color=f"C{i}",
                label=f"seed {r.run.seed}: PC1+2 = {100 * pca.top2_share:.1f} %")
    ax.plot(0, 0, "k*", ms=9, label="θ_T")
    ax.set(xlabel="PC 1", ylabel="PC 2", title="weight trajectory (standard training)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _abelian_figure(by_mode: dict[str, list[RobustRun]], threshold: float):
    """Figs 5–6 analogue: abelian accuracy on the training set with train/val accuracy."""
    fig, axes = plt.subplots(1, len(by_mode), figsize=(5 * len(by_mode), 3.8), squeeze=False,
                             sharey=True)
    for ax, (mode, runs) in zip(axes[0], by_mode.items(), strict=True):
        for i, r in enumerate(runs):
            steps = _eval_axis(r.run)
            ax.plot(steps, r.run.log.evals("abelian_acc"), color=f"C{i}", lw=1.4,
                    label=f"abelian, seed {r.run.seed}")
            ax.plot(steps, r.run.log.evals("train_acc"), color=f"C{i}", lw=0.7, ls="--")
            ax.plot(steps, r.run.log.evals("val_acc"), color=f"C{i}", lw=0.7, ls=":")
        ax.axhline(threshold, color="0.6", lw=0.6)
        ax.set(xscale="log", xlabel="update", title=f"{mode}: abelian test (train --, val ··)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("fraction")
    fig.tight_layout()
    return fig


def _logit_distance_figure(by_mode: dict[str, list[RobustRun]]):
    """Fig 7 analogue: ‖z(a, b) − z(b, a)‖² over training, per mode."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for mode, runs in by_mode.items():
        for i, r in enumerate(runs):
            ax.plot(_eval_axis(r.run), r.run.log.evals("logit_distance"), color=MODE_COLORS[mode],
                    lw=1.0, label=mode if i == 0 else None)
    ax.set(xscale="log", yscale="log", xlabel="update", ylabel="mean ‖z(a,b) − z(b,a)‖²",
           title="logit-distance abelian test (training pairs)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
