"""The progress measures of Nanda et al. 2023 for modular addition: freqdyn's frequency view
applied to algorithmic data.

Fourier basis over Z_p (p odd): the orthonormal functions of x ∈ {0, …, p − 1}

    1/√p,   √(2/p) cos(2πkx/p),   √(2/p) sin(2πkx/p),   k = 1 … (p − 1)/2,

with frequency k, i.e. angular frequency w_k = 2πk/p.  The *Fourier norm* of a map W
(p, F) whose rows are indexed by a token x is, per frequency, the Euclidean norm of its
cos and sin coefficients over all F columns: n_k = (‖c_k‖² + ‖s_k‖²)^½, with n_0 = ‖c_0‖;
Σ_k n_k² = ‖W‖_F² (Parseval).

Measures:

* **embedding Fourier norms**: of the token embedding W_E[:p] (transformers) or, for the
  pair MLP, of both operands' first-layer weights W[:, :p]ᵀ and W[:, p:]ᵀ, combined as
  n_k² = n_k(x)² + n_k(y)²;
* **key frequencies**: the k ≥ 1 whose n_k² is at least ``key_factor`` (default 4) times
  the median of n_j² over j ≥ 1, i.e. the frequencies that stand out of the embedding's
  floor (freqdyn's rule; Nanda et al. read them off the plot), and the share
  Σ_key n_k² / Σ_j n_j² they carry together.  The rule does not depend on p: a random
  embedding (all n_k² near their common mean) has no key frequency, where a fixed share
  such as 5 % would flag most frequencies at p = 31 (the uniform share is 1/16);
* **restricted loss**: cross-entropy over the whole table of the logits projected onto the
  functions 1, cos(w_k(a + b)), sin(w_k(a + b)) of the key frequencies (for every output
  class c); **excluded loss**: cross-entropy on the training pairs of the logits with the
  key-frequency cos/sin(w_k(a + b)) components removed;
* **Gini coefficient** of the Fourier norms (k ≥ 0) of the embedding W_E and of the output map
  (the neuron-logit map W_L = (W_out W_U)ᵀ for Nanda's model, as the paper; the tied
  embedding for Power's; the output layer for the MLP), and the **sum of squared weights**
  Σ θ²;
* **key frequencies by the neurons** (the authors' rule): each MLP neuron's dominant
  frequency (:func:`neuron_frequency_fractions`); the key frequencies are the dominant
  frequencies of the neurons with more than ``neuron_threshold`` (0.85, the paper's
  figure) of their variance in one frequency.  The embedding rule above is reported next
  to it: W_E carries about one frequency more than the neurons use (the paper: 6 against 5).

The projection onto functions of a + b is exact and cheap: the mean of the logits over the p
pairs with a + b ≡ s (mod p) is the projection onto functions of s, and the DFT over s then
splits it by frequency.  Losses are in nats.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from freqdyn.analysis.stats import mean_std
from freqdyn.errors import InputError
from freqdyn.grok.algorithmic import (
    ModularRun,
    runs_dataset,
    runs_summary,
    train_modular,
)
from freqdyn.grok.export import export_seed_models
from freqdyn.grok.models import NandaTransformer, PairMLP, PowerDecoder
from freqdyn.grok.modular import ModularData
from freqdyn.runs.runner import Outcome, seed_checkpoints


def fourier_basis(p: int) -> np.ndarray:
    """The (p, p) orthonormal Fourier basis of Z_p (rows: constant, cos k, sin k, …; p odd)."""
    if p < 3 or p % 2 == 0:
        raise InputError("p", f"the Fourier measures need an odd modulus ≥ 3, got {p}")
    x = np.arange(p)
    rows = [np.full(p, 1 / math.sqrt(p))]
    for k in range(1, (p - 1) // 2 + 1):
        rows += [math.sqrt(2 / p) * np.cos(2 * np.pi * k * x / p),
                 math.sqrt(2 / p) * np.sin(2 * np.pi * k * x / p)]
    return np.array(rows)


def fourier_norms(weights: np.ndarray) -> np.ndarray:
    """Per-frequency norms n_k, k = 0 … (p − 1)/2, of a map (p, F) over its token axis."""
    weights = np.asarray(weights, dtype=float)
    coefficients = fourier_basis(weights.shape[0]) @ weights
    energy = (coefficients**2).sum(axis=1)
    return np.sqrt(np.concatenate([energy[:1], energy[1::2] + energy[2::2]]))


def input_maps(model: torch.nn.Module, p: int) -> list[np.ndarray]:
    """The token-indexed input maps (p, F): W_E[:p], or both operand blocks of the MLP."""
    if isinstance(model, NandaTransformer):
        maps = [model.W_E[:p]]
    elif isinstance(model, PowerDecoder):
        maps = [model.embedding.weight[:p]]
    elif isinstance(model, PairMLP):
        maps = [model.W_E[:p], model.W_E[p: 2 * p]]
    else:
        raise InputError("settings.model", f"no Fourier maps for {type(model).__name__}")
    return [m.detach().cpu().double().numpy() for m in maps]


def output_map(model: torch.nn.Module, p: int) -> np.ndarray:
    """The answer-indexed output map (p, F): Nanda's neuron-logit map W_L = (W_out W_U)ᵀ,
    (p, d_mlp), the tied embedding, or the output layer."""
    if isinstance(model, NandaTransformer):
        weights = (model.W_out @ model.W_U).T[:p]
    elif isinstance(model, PowerDecoder):
        weights = model.embedding.weight[: model.n_classes]
    elif isinstance(model, PairMLP):
        weights = model.output.weight
    else:
        raise InputError("settings.model", f"no Fourier maps for {type(model).__name__}")
    return weights.detach().cpu().double().numpy()


def embedding_fourier_norms(model: torch.nn.Module, p: int) -> np.ndarray:
    """n_k of the embedding (operands combined in quadrature for the MLP), k = 0 … (p−1)/2."""
    return np.sqrt(sum(fourier_norms(m) ** 2 for m in input_maps(model, p)))


def key_frequencies(norms: np.ndarray, key_factor: float = 4.0) -> list[int]:
    """Frequencies k ≥ 1 with n_k² ≥ ``key_factor`` × median_{j ≥ 1} n_j², strongest first."""
    if not key_factor > 1:
        raise InputError("settings.key_factor", f"must be > 1 (a multiple of the median), "
                                               f"got {key_factor}")
    energy = np.asarray(norms, dtype=float) ** 2
    if not energy[1:].sum() > 0:
        return []
    # a floor of rounding noise (an exactly sparse map) counts as zero
    floor = max(np.median(energy[1:]), 1e-12 * energy.sum())
    keys = [k for k in np.argsort(-energy) if k >= 1 and energy[k] >= key_factor * floor]
    return [int(k) for k in keys]


def key_share(norms: np.ndarray, keys) -> float:
    """Σ_{k ∈ keys} n_k² / Σ_k n_k²: the part of the squared Fourier norm the keys carry."""
    energy = np.asarray(norms) ** 2
    return float(energy[list(keys)].sum() / energy.sum()) if len(keys) else 0.0


def gini(values) -> float:
    """Gini coefficient Σ_i Σ_j |x_i − x_j| / (2 n Σ_i x_i) of non-negative values (0: equal)."""
    x = np.asarray(values, dtype=float)
    if np.any(x < 0) or x.sum() == 0:
        raise InputError("values", "the Gini coefficient needs non-negative values, not all 0")
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) * x.sum()))


def sum_squared_weights(model: torch.nn.Module) -> float:
    """Σ θ² over every parameter."""
    return float(sum((q.detach().double() ** 2).sum() for q in model.parameters()))


def logits_table(model: torch.nn.Module, data: ModularData) -> torch.Tensor:
    """Logits (p, p, n_classes) of every pair (a, b), in double precision; a model with an
    extra "=" class (``output = "vocabulary"``) has it left out, as the authors do."""
    p = data.p
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(pairs.to(device)).double().cpu()
    return logits.reshape(p, p, -1)[..., :data.n_classes]


def sum_frequency_components(logits: torch.Tensor, keys) -> tuple[torch.Tensor, torch.Tensor]:
    """(constant, key part) of the logits' projection onto functions of a + b mod p.

    ``logits`` (p, p, C).  Returns the (a, b)-mean per class (C,) and the projection onto
    span{cos w_k(a+b), sin w_k(a+b) : k ∈ keys}, as a (p, p, C) tensor.
    """
    p = logits.shape[0]
    a = torch.arange(p)
    s = torch.arange(p)
    # g[s, c] = mean over a of logits[a, (s − a) mod p, c]
    g = logits[a[None, :], (s[:, None] - a[None, :]) % p].mean(dim=1)
    spectrum = torch.fft.rfft(g, dim=0)
    mask = torch.zeros(spectrum.shape[0], 1, dtype=spectrum.dtype)
    mask[list(keys)] = 1
    key_part = torch.fft.irfft(spectrum * mask, n=p, dim=0)
    sums = (a[:, None] + a[None, :]) % p
    return g.mean(dim=0), key_part[sums]


def restricted_and_excluded_loss(model: torch.nn.Module, data: ModularData,
                                 keys) -> tuple[float, float]:
    """(restricted loss over the whole table, excluded loss on the training pairs), nats."""
    if data.operation != "+":
        raise InputError("settings.operation", "the progress measures are defined for '+'")
    logits = logits_table(model, data)
    constant, key_part = sum_frequency_components(logits, keys)
    p = data.p
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    labels = (a + b) % p
    restricted = (constant + key_part).reshape(p * p, -1)
    restricted_loss = torch.nn.functional.cross_entropy(restricted, labels.reshape(-1))
    excluded = logits - key_part
    ta, tb = data.pairs_train[:, 0], data.pairs_train[:, 1]
    excluded_loss = torch.nn.functional.cross_entropy(excluded[ta, tb], data.labels_train)
    return float(restricted_loss), float(excluded_loss)


@dataclass
class ProgressRecorder:
    """``evaluate_extra`` for :func:`train_modular`: Gini coefficients and Σθ² at every
    evaluation; embedding Fourier norms and a copy of the weights every ``measure_every``
    updates, for the restricted/excluded losses once the key frequencies are known."""

    measure_every: int
    steps: list[int] = field(default_factory=list)
    norms: list[np.ndarray] = field(default_factory=list)
    states: list[dict] = field(default_factory=list)

    def __call__(self, model, data: ModularData, step: int) -> dict[str, float]:
        embedding = embedding_fourier_norms(model, data.p)
        if step % self.measure_every == 0:
            self.steps.append(step)
            self.norms.append(embedding)
            self.states.append(copy.deepcopy(model.state_dict()))
        return {"gini_embedding": gini(embedding),
                "gini_output": gini(fourier_norms(output_map(model, data.p))),
                "sum_squared_weights": sum_squared_weights(model)}

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "norms": list(self.norms), "states": list(self.states)}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.norms, self.states = (list(state[k]) for k in ("steps", "norms",
                                                                          "states"))


def neuron_frequency_fractions(model: torch.nn.Module, data: ModularData) -> np.ndarray:
    """Per MLP neuron and frequency k = 1 … (p−1)/2, the fraction of the neuron's variance
    over the whole table explained by frequency k (Nanda et al.'s neuron clustering).

    The activations A(a, b) at "=" (mean over the table removed) are expanded in the 2D
    Fourier basis of Z_p × Z_p; frequency k owns the coefficients whose indices in a and in b
    both lie in {constant, cos k, sin k} (the terms in a alone, in b alone and the products),
    minus the constant-constant one.  Returns (d_mlp, K); a neuron that never fires has
    fraction 0 everywhere.
    """
    if not hasattr(model, "mlp_activations"):
        raise InputError("settings.model", f"no MLP neurons to cluster in {type(model).__name__}")
    p = data.p
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    device = next(model.parameters()).device
    with torch.no_grad():
        acts = model.mlp_activations(pairs.to(device)).double().cpu().numpy()
    acts = acts.reshape(p, p, -1)
    acts = acts - acts.mean(axis=(0, 1))
    basis = fourier_basis(p)
    coeff2 = np.einsum("jb,ibn->ijn", basis, np.tensordot(basis, acts, axes=(1, 0)),
                       optimize=True) ** 2
    total = coeff2.sum(axis=(0, 1))
    fractions = []
    for k in range(1, (p - 1) // 2 + 1):
        idx = [0, 2 * k - 1, 2 * k]
        fractions.append(coeff2[np.ix_(idx, idx)].sum(axis=(0, 1)) / np.where(total > 0, total,
                                                                               np.inf))
    return np.array(fractions).T


@dataclass
class ProgressMeasures:
    """The measures of one run, over the measured steps."""

    run: ModularRun
    steps: np.ndarray
    norms: np.ndarray                  # (steps, k): embedding Fourier norms
    keys: list[int]                    # key frequencies of the final model
    key_share_final: float
    restricted_loss: np.ndarray
    excluded_loss: np.ndarray
    test_loss: np.ndarray
    neuron_fractions: np.ndarray | None = None  # (d_mlp, K), final model; None without MLP
    control: list[int] = field(default_factory=list)  # as many of the weakest frequencies
    control_restricted_loss: np.ndarray | None = None
    control_excluded_loss: np.ndarray | None = None


def control_frequencies(norms: np.ndarray, keys) -> list[int]:
    """The wrong-model arm of the key frequencies: as many frequencies k ≥ 1, none of them
    key, with the smallest embedding norm (weakest first).  A loss that "falls" or "rises"
    as much with these as with the keys measures the loss, not the circuit."""
    order = [int(k) for k in np.argsort(np.asarray(norms)) if k >= 1 and k not in set(keys)]
    return order[: len(keys)]


def fall_step(steps, loss, level: float) -> int | None:
    """First step from which ``loss`` stays below ``level`` for the rest of the record."""
    above = np.flatnonzero(np.asarray(loss) >= level)
    if not len(above):
        return int(steps[0])
    return int(steps[above[-1] + 1]) if above[-1] + 1 < len(steps) else None


def progress_measures(cfg: dict, seed: int, device: str = "cpu", *,
                      measure_every: int | None = None, key_factor: float = 4.0,
                      label: str = "", checkpoint_dir=None, resume: bool = False,
                      fingerprint: str | None = None) -> ProgressMeasures:
    """Train ``cfg`` (see :func:`train_modular`) and compute Nanda's measures over the run.

    Key frequencies come from the final model's embedding; restricted and excluded losses
    are then evaluated on the weights saved every ``measure_every`` updates (default: every
    evaluation).  ``checkpoint_dir``/``resume``/``fingerprint``: see :func:`train_modular`;
    the weight copies are part of the checkpoint.
    """
    eval_every = cfg.get("eval_every", 10)
    measure_every = measure_every or eval_every
    if measure_every % eval_every:
        raise InputError("settings.measure_every",
                        f"must be a multiple of eval_every = {eval_every}, got {measure_every}")
    recorder = ProgressRecorder(measure_every)
    run = train_modular(cfg, seed, device, evaluate_extra=recorder, label=label,
                        checkpoint_dir=checkpoint_dir, resume=resume, stateful=[recorder],
                        fingerprint=fingerprint)
    final_norms = embedding_fourier_norms(run.model, run.data.p)
    keys = key_frequencies(final_norms, key_factor)
    control = control_frequencies(final_norms, keys)
    model = copy.deepcopy(run.model)
    losses = []
    for state in recorder.states:
        model.load_state_dict(state)
        losses.append([*restricted_and_excluded_loss(model, run.data, keys),
                       *restricted_and_excluded_loss(model, run.data, control)])
    eval_index = {s: i for i, s in enumerate(run.log.eval_steps)}
    test_loss = np.array([run.log.evals("val_loss")[eval_index[s]] for s in recorder.steps])
    losses = np.array(losses).reshape(-1, 4)
    neurons = neuron_frequency_fractions(run.model, run.data) \
        if hasattr(run.model, "mlp_activations") else None
    return ProgressMeasures(run=run, steps=np.array(recorder.steps), norms=np.array(recorder.norms),
                            keys=keys, key_share_final=key_share(final_norms, keys),
                            restricted_loss=losses[:, 0], excluded_loss=losses[:, 1],
                            test_loss=test_loss, neuron_fractions=neurons, control=control,
                            control_restricted_loss=losses[:, 2],
                            control_excluded_loss=losses[:, 3])


def excluded_rise_factor(m: ProgressMeasures, excluded: np.ndarray | None = None) -> float | None:
    """max of the excluded loss over the measured steps in [t2, t4] over its value at the
    first measured step ≥ t2 (memorisation); None when t2 or t4 was not reached.
    ``excluded``: another excluded-loss record over the same steps (the control's)."""
    excluded = m.excluded_loss if excluded is None else excluded
    t2, t4 = m.run.phase_times["t2"], m.run.phase_times["t4"]
    if t2 is None or t4 is None:
        return None
    inside = np.flatnonzero((m.steps >= t2) & (m.steps <= t4))
    if not len(inside):
        return None
    return float(excluded[inside].max() / max(excluded[inside[0]], 1e-300))


def falls_in_order(first: int | None, second: int | None, after: int | None = None) -> bool:
    """True when both events happened and ``first`` < ``second`` (and ``first`` > ``after``
    when given): a fall that was not reached is never "before" anything."""
    if first is None or second is None or (after is not None and first <= after):
        return False
    return first < second


def _padded(rows: list[np.ndarray], length: int) -> np.ndarray:
    out = np.full((len(rows), length, *rows[0].shape[1:]), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def progress_dataset(measures: list[ProgressMeasures]) -> xr.Dataset:
    """The runs' curves plus the measures over ("seed", "measure_step"[, "k"])."""
    ds = runs_dataset([m.run for m in measures],
                      extra_evals=("gini_embedding", "gini_output", "sum_squared_weights"))
    longest = max(measures, key=lambda m: len(m.steps))
    n = len(longest.steps)
    ds = ds.assign_coords(measure_step=longest.steps, k=np.arange(longest.norms.shape[1]))
    ds["embedding_fourier_norm"] = (("seed", "measure_step", "k"),
                                    _padded([m.norms for m in measures], n),
                                    {"long_name": "Fourier norm n_k of the embedding"})
    for key, meaning in (("restricted_loss", "restricted loss, whole table (nats)"),
                         ("excluded_loss", "excluded loss, training pairs (nats)"),
                         ("control_restricted_loss", "restricted loss on the control "
                          "(weakest) frequencies, whole table (nats)"),
                         ("control_excluded_loss", "excluded loss with the control "
                          "frequencies removed, training pairs (nats)"),
                         ("test_loss", "validation loss (nats)")):
        ds[f"measure_{key}"] = (("seed", "measure_step"),
                                _padded([getattr(m, key) for m in measures], n),
                                {"long_name": meaning})
    key_mask = np.zeros((len(measures), ds.sizes["k"]))
    for i, m in enumerate(measures):
        key_mask[i, m.keys] = 1
    ds["is_key_frequency"] = (("seed", "k"), key_mask,
                              {"long_name": "1 where k is a key frequency of the final model"})
    return ds


def _loss_measures(measures: list[ProgressMeasures]) -> dict:
    """Key frequencies (embedding rule), restricted/excluded losses and their control arm."""
    level = 0.5 * math.log(measures[0].run.data.n_classes)
    restricted = [fall_step(m.steps, m.restricted_loss, level) for m in measures]
    control = [fall_step(m.steps, m.control_restricted_loss, level) for m in measures]
    test = [fall_step(m.steps, m.test_loss, level) for m in measures]
    t2 = [m.run.phase_times["t2"] for m in measures]
    return {
        "key_frequencies": [m.keys for m in measures],
        "n_key_frequencies": [len(m.keys) for m in measures],
        "key_share": [m.key_share_final for m in measures],
        # rule-free companion: the share of the 5 strongest frequencies k ≥ 1
        "top5_share": [key_share(m.norms[-1], 1 + np.argsort(-m.norms[-1][1:])[:5])
                       for m in measures],
        "fall_level": level,
        "restricted_fall_step": restricted, "test_fall_step": test,
        "restricted_before_test": [falls_in_order(r, t) for r, t in zip(restricted, test,
                                                                         strict=True)],
        "restricted_after_memorising": [falls_in_order(r, t, after=a) for r, t, a in
                                        zip(restricted, test, t2, strict=True)],
        "control_frequencies": [m.control for m in measures],
        "control_restricted_fall_step": control,
        "control_restricted_falls": [c is not None for c in control],
        "final_restricted_loss": [float(m.restricted_loss[-1]) for m in measures],
        "final_excluded_loss": [float(m.excluded_loss[-1]) for m in measures],
        "final_gini_embedding": [m.run.log.last("gini_embedding") for m in measures],
        "final_gini_output": [m.run.log.last("gini_output") for m in measures],
        "final_sum_squared_weights": [m.run.log.last("sum_squared_weights") for m in measures],
        "excluded_rise_factor": [excluded_rise_factor(m) for m in measures],
        "control_excluded_rise_factor": [excluded_rise_factor(m, m.control_excluded_loss)
                                         for m in measures],
    }


def _neuron_measures(measures: list[ProgressMeasures], threshold: float) -> dict:
    """The authors' rule: neurons clustered by their dominant frequency, and the key
    frequencies they name (see the module text)."""
    best = [m.neuron_fractions.max(axis=1) for m in measures]
    frequencies = [sorted({int(k) + 1 for k in m.neuron_fractions.argmax(axis=1)[b > threshold]})
                   for m, b in zip(measures, best, strict=True)]
    sizes = [[int(np.sum((m.neuron_fractions.argmax(axis=1) + 1 == k) & (b > threshold)))
              for k in f] for m, b, f in zip(measures, best, frequencies, strict=True)]
    return {"neuron_threshold": threshold,
            "neuron_clustered_share": [float(np.mean(b > threshold)) for b in best],
            "neuron_dead": [int(np.sum(m.neuron_fractions.sum(axis=1) == 0)) for m in measures],
            "neuron_key_frequencies": frequencies,
            "neuron_cluster_sizes": sizes,
            "n_neuron_key_frequencies": [len(f) for f in frequencies]}


def run_progress_measures(exp, out: Path, device: str):
    """Experiment kind "progress-measures": Nanda's measures over grokking runs, per seed.

    Settings: those of :func:`train_modular`, plus ``measure_every`` (updates between the
    weight copies used for restricted/excluded loss; default eval_every) and ``key_factor``
    (4, see :func:`key_frequencies`).  Fall steps: the first update from which a loss stays
    below ½ ln(n_classes).
    """

    cfg = dict(exp.settings)
    if cfg.get("operation", "+") != "+":
        raise InputError("settings.operation", "the progress measures are defined for '+'")
    measure_every = cfg.pop("measure_every", None)
    key_factor = exp.number("key_factor", 4.0, low=1.0)
    cfg.pop("key_factor", None)
    cfg.pop("neuron_threshold", None)

    measures = []
    for seed in exp.seeds:
        folder, resume = seed_checkpoints(out, seed)
        measures.append(progress_measures(cfg, seed, device, measure_every=measure_every,
                                          key_factor=key_factor, label=f"{exp.name} seed {seed}",
                                          checkpoint_dir=folder, resume=resume,
                                          fingerprint=exp.fingerprint(seed)))
    summary = runs_summary([m.run for m in measures])
    summary.update(model=cfg.get("model", "mlp"), p=measures[0].run.data.p,
                   train_fraction=measures[0].run.data.train_fraction,
                   hooked_transformer_files=export_seed_models([m.run for m in measures], out))
    summary.update(_loss_measures(measures))
    if all(m.neuron_fractions is not None for m in measures):
        summary.update(_neuron_measures(measures, exp.number("neuron_threshold", 0.85,
                                                             low=0.0, high=1.0)))
    for key in ("n_key_frequencies", "key_share"):
        summary[f"{key}_mean"], summary[f"{key}_std"] = (float(v) for v in
                                                          mean_std(summary[key]))
    data = measures[0].run.data
    title = f"{cfg.get('model', 'mlp')} on x + y mod {data.p}, r = {data.train_fraction:g}"
    return Outcome(dataset=progress_dataset(measures), summary=summary,
                   figure_set="grok.progress", figure_data={"measures": measures, "title": title})
