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
      torch's element-mean ``mse_loss``, the option ``"sum"`` freqdyn's reconstruction
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

import torch

from freqdyn.errors import InputError


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
    (summed over the C classes, freqdyn's reconstruction), C times larger.
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
