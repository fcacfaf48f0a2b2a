"""Robustness metrics against closed forms and direct sums; abelian tests on hand-made models."""

import math

import numpy as np
import pytest
import torch

from freqdyn.errors import InputError
from freqdyn.grok.robustness import (
    abelian_penalty,
    abelian_tests,
    information_metrics,
    matrix_mutual_information,
    matrix_renyi_entropy,
    noise_in_embedding_space,
    normalized_gram,
    perturbation_error,
    perturbation_sigma,
    perturbed_information,
    symmetric_pairs_mask,
)


def test_sigma_schedule_follows_the_max_rule():
    assert perturbation_sigma(0.0, 0.5, 0.4) == 0.5
    assert perturbation_sigma(0.1, 0.5, 0.4) == pytest.approx(0.45)
    assert perturbation_sigma(0.5, 0.5, 0.4) == 0.4
    assert perturbation_sigma(1.0, 0.06, 0.03) == 0.03
    with pytest.raises(InputError, match="train_accuracy"):
        perturbation_sigma(1.5, 0.5, 0.4)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
def test_identity_gram_has_entropy_log_n(alpha):
    assert matrix_renyi_entropy(torch.eye(7, dtype=torch.float64), alpha) \
        == pytest.approx(math.log(7), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_rank_one_gram_has_zero_entropy(alpha):
    features = torch.tensor([[1.0, 2.0, -1.0]]).repeat(5, 1) * torch.arange(1, 6)[:, None]
    gram = normalized_gram(features)
    np.testing.assert_allclose(gram.numpy(), 1.0, rtol=1e-14)
    assert abs(matrix_renyi_entropy(gram, alpha)) < 1e-12


def random_gram(seed, n=12, width=5):
    generator = torch.Generator().manual_seed(seed)
    return normalized_gram(torch.randn(n, width, generator=generator, dtype=torch.float64))


def test_renyi_order_two_is_the_frobenius_closed_form():
    gram = random_gram(0)
    n = gram.shape[0]
    expected = -math.log(float((gram**2).sum()) / n**2)
    assert matrix_renyi_entropy(gram, 2.0) == pytest.approx(expected, rel=1e-12)


def test_von_neumann_is_the_alpha_to_one_limit():
    gram = random_gram(1)
    von_neumann = matrix_renyi_entropy(gram, 1.0)
    # Direct: −tr(A log A) through scipy's matrix logarithm.
    from scipy.linalg import logm
    a = gram.numpy() / gram.shape[0]
    eigen = np.linalg.eigvalsh(a)
    kept = eigen > 1e-14
    direct = -np.sum(eigen[kept] * np.log(eigen[kept]))
    assert von_neumann == pytest.approx(direct, rel=1e-10)
    full_rank = random_gram(1, n=4, width=6).numpy() / 4
    assert matrix_renyi_entropy(torch.from_numpy(full_rank * 4), 1.0) \
        == pytest.approx(float(-np.trace(full_rank @ logm(full_rank)).real), rel=1e-8)
    for epsilon in (1e-3, -1e-3):
        near = matrix_renyi_entropy(gram, 1.0 + epsilon)
        assert near == pytest.approx(von_neumann, abs=5e-3 * abs(von_neumann) + 1e-6)
    # The error is first order in ε, with opposite signs on either side of 1.
    assert (matrix_renyi_entropy(gram, 1.001) - von_neumann) \
        * (matrix_renyi_entropy(gram, 0.999) - von_neumann) < 0


def test_mutual_information_closed_forms():
    n = 6
    identity = torch.eye(n, dtype=torch.float64)
    ones = torch.ones(n, n, dtype=torch.float64)
    gram = random_gram(2, n=n)
    # Hadamard with all-ones is R itself: I(R; 11ᵀ) = H(R) + 0 − H(R) = 0.
    assert abs(matrix_mutual_information(gram, ones)) < 1e-12
    # I(1; 1) = log n + log n − log n.
    assert matrix_mutual_information(identity, identity) == pytest.approx(math.log(n), rel=1e-12)
    # Symmetric in its arguments, for any α.
    other = random_gram(3, n=n)
    for alpha in (1.0, 2.0):
        assert matrix_mutual_information(gram, other, alpha) \
            == pytest.approx(matrix_mutual_information(other, gram, alpha), rel=1e-12)


def test_information_metrics_of_an_unperturbed_batch():
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    same = information_metrics(features, features)
    assert same["ed"] < 1e-12 and abs(same["mid"]) < 1e-12
    assert same["pe"] == pytest.approx(same["entropy"], rel=1e-12)
    noisy = features + 0.5 * torch.randn(10, 4, generator=generator, dtype=torch.float64)
    moved = information_metrics(features, noisy)
    gram, gram_noisy = normalized_gram(features), normalized_gram(noisy)
    assert moved["pe"] == pytest.approx(matrix_renyi_entropy(gram_noisy), rel=1e-12)
    assert moved["ed"] == pytest.approx(abs(matrix_renyi_entropy(gram_noisy)
                                            - matrix_renyi_entropy(gram)), rel=1e-12)
    assert moved["mid"] == pytest.approx(
        matrix_mutual_information(gram, gram) - matrix_mutual_information(gram, gram_noisy),
        rel=1e-12)


def test_entropy_rejects_bad_order():
    with pytest.raises(InputError, match="renyi_alpha"):
        matrix_renyi_entropy(torch.eye(3), 0.0)


class FirstOperandModel(torch.nn.Module):
    """logits(a, b) = scale·e_a + bias·e_b: commutative only when a = b."""

    def __init__(self, p, scale=5.0, bias=1.0):
        super().__init__()
        self.p = p
        self.weight = torch.nn.Parameter(torch.tensor([scale, bias], dtype=torch.float64))

    def embed(self, pairs):
        return torch.cat([torch.nn.functional.one_hot(pairs[:, 0], self.p),
                          torch.nn.functional.one_hot(pairs[:, 1], self.p)], 1).double()

    def features(self, emb):
        return emb

    def head(self, emb):
        return self.weight[0] * emb[:, :self.p] + self.weight[1] * emb[:, self.p:]

    def forward(self, pairs):
        return self.head(self.embed(pairs))


def some_pairs(p=7, n=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, p, (n, 2), generator=generator)


def test_abelian_tests_on_a_first_operand_model():
    p = 7
    pairs = some_pairs(p)
    model = FirstOperandModel(p)
    values = abelian_tests(model, pairs)
    diagonal = (pairs[:, 0] == pairs[:, 1]).double()
    assert values["abelian_acc"] == pytest.approx(float(diagonal.mean()))
    # Off the diagonal ‖z(a,b) − z(b,a)‖² = 2 (scale − bias)² = 32.
    assert values["logit_distance"] == pytest.approx(32.0 * float(1 - diagonal.mean()))
    codes = {(int(a), int(b)) for a, b in pairs}
    expected_mask = [(int(b), int(a)) in codes for a, b in pairs]
    assert symmetric_pairs_mask(pairs).tolist() == expected_mask
    symmetric = torch.tensor(expected_mask)
    assert values["abelian_acc_symmetric"] == pytest.approx(float(diagonal[symmetric].mean()))
    commutative = FirstOperandModel(p, scale=2.0, bias=2.0)
    assert abelian_tests(commutative, pairs) == {"abelian_acc": 1.0,
                                                 "abelian_acc_symmetric": 1.0,
                                                 "logit_distance": 0.0}


def test_abelian_penalty_value_and_gradient():
    p = 7
    pairs = some_pairs(p, seed=1)
    model = FirstOperandModel(p, scale=3.0, bias=1.0)
    penalty = abelian_penalty(model, pairs, coefficient=100.0, reduction="sum")
    mean = abelian_penalty(model, pairs, coefficient=100.0)  # torch's element-mean MSE
    swapped = model(pairs.flip(1)).detach()
    assert float(mean.detach()) == pytest.approx(
        100 * float(torch.nn.functional.mse_loss(model(pairs).detach(), swapped)), rel=1e-12)
    assert float(mean.detach()) == pytest.approx(float(penalty.detach()) / p, rel=1e-12)
    off_diagonal = float((pairs[:, 0] != pairs[:, 1]).double().mean())
    # 100 · 2 (s − b)² · off-diagonal share; d/ds = 100 · 4 (s − b) · share.
    assert float(penalty.detach()) == pytest.approx(100 * 2 * 4.0 * off_diagonal)
    penalty.backward()
    assert float(model.weight.grad[0]) == pytest.approx(100 * 4 * 2.0 * off_diagonal)
    assert float(model.weight.grad[1]) == pytest.approx(-100 * 4 * 2.0 * off_diagonal)


class LinearHead(torch.nn.Module):
    """embed = one-hot pair, head = linear map W (2p → c): f(x + Δ) − f(x) = ΔW."""

    def __init__(self, p, classes, seed):
        super().__init__()
        self.p = p
        generator = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(torch.randn(2 * p, classes, generator=generator,
                                                dtype=torch.float64))

    embed = FirstOperandModel.embed

    def features(self, emb):
        return emb @ self.W

    def head(self, emb):
        return self.features(emb)

    def forward(self, pairs):
        return self.head(self.embed(pairs))


def test_perturbation_error_matches_sigma_squared_frobenius_norm():
    model = LinearHead(5, 3, seed=2)
    pairs = some_pairs(5, n=50, seed=3)
    sigma = 0.3
    generator = torch.Generator().manual_seed(4)
    measured = perturbation_error(model, pairs, sigma, draws=400, generator=generator)
    expected = sigma**2 * float((model.W.detach()**2).sum())
    # 2·10⁴ samples of a sum of 3 weighted χ² terms: a few per cent of spread.
    assert measured == pytest.approx(expected, rel=0.03)


def test_one_hot_noise_reaches_the_embeddings_through_the_token_matrix():
    class TokenModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W_E = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [1.0, 2.0], [0.0, 3.0]],
                                                       dtype=torch.float64))

    model = TokenModel()
    emb = torch.zeros(20000, 2, dtype=torch.float64)
    generator = torch.Generator().manual_seed(5)
    noise = noise_in_embedding_space(model, emb, 0.5, "one-hot", generator).detach()
    covariance = noise.T @ noise / len(noise)
    expected = 0.25 * model.W_E.detach().T @ model.W_E.detach()
    np.testing.assert_allclose(covariance.numpy(), expected.numpy(), atol=0.06)
    plain = noise_in_embedding_space(model, emb, 0.5, "embedding", generator)
    np.testing.assert_allclose((plain.T @ plain / len(plain)).numpy(),
                               0.25 * np.eye(2), atol=0.02)
    with pytest.raises(InputError, match="noise_on"):
        noise_in_embedding_space(model, emb, 0.5, "weights", generator)


def test_perturbed_information_without_noise_is_the_plain_entropy():
    model = LinearHead(6, 4, seed=6)
    pairs = some_pairs(6, n=30, seed=7)
    values = perturbed_information(model, pairs, 0.0, batch_size=30,
                                   generator=torch.Generator().manual_seed(0))
    direct = matrix_renyi_entropy(normalized_gram(model.features(model.embed(pairs))))
    assert values["entropy"] == pytest.approx(direct, rel=1e-12)
    assert values["pe"] == pytest.approx(direct, rel=1e-12)
    assert values["ed"] < 1e-12 and abs(values["mid"]) < 1e-10
    noisy = perturbed_information(model, pairs, 1.0, batch_size=10,
                                  generator=torch.Generator().manual_seed(0))
    assert noisy["mid"] > 0.0  # noise destroys information shared with the clean features


TINY = dict(p=11, train_fraction=0.6, width=32, steps=120, eval_every=10, info_every=50,
            snapshot_every=20, sharpness_every=60, info_batch_size=16, info_batches=1,
            after_t4=20, lr=1e-2, hessian_tol=1e-2)


def first_step(steps, values, threshold):
    hits = [s for s, v in zip(steps, values, strict=True) if v >= threshold]
    return hits[0] if hits else None


def test_perturbation_experiment_end_to_end(tmp_path):
    import xarray as xr

    from freqdyn.runs.experiment import load_experiment
    from freqdyn.runs.runner import run_experiment

    exp = load_experiment("validation/grokking/robustness-perturbation.toml", seeds=[0],
                          overrides=TINY)
    result = run_experiment(exp, tmp_path, device="cpu")
    summary = result.summary
    with xr.open_dataset(result.result) as dataset:
        data = dataset.load()
    # our tuned noise differs from the paper's, so the paper's runs beside it
    assert list(data["mode"].values) == ["standard", "perturbed", "paper"]
    assert summary["noise_setting"].startswith("ours") and summary["paper_noise_lambda"] == [
        0.5, 0.4]
    assert summary["paper_faster_95"][0] == (summary["paper_steps_to_95"][0] is not None and (
        summary["standard_steps_to_95"][0] is None
        or summary["paper_steps_to_95"][0] < summary["standard_steps_to_95"][0]))
    for mode in ("standard", "perturbed", "paper"):
        curve = data["val_acc"].sel(mode=mode, seed=0)
        steps = [int(s) for s, v in zip(data["eval_step"].values, curve.values, strict=True)
                 if np.isfinite(v)]
        values = [float(v) for v in curve.values if np.isfinite(v)]
        assert summary[f"{mode}_steps_to_95"][0] == first_step(steps, values, 0.95)
        # PE is measured exactly at the multiples of info_every.
        pe = data["pe"].sel(mode=mode, seed=0).values
        measured = {int(s) for s, v in zip(data["eval_step"].values, pe, strict=True)
                    if np.isfinite(v)}
        assert measured == {s for s in steps if s % 50 == 0}
    # The noise changes the run: memorisation happens at a different step or not at all.
    train = data["train_acc"].sel(seed=0)
    assert not np.array_equal(train.sel(mode="standard").values,
                              train.sel(mode="perturbed").values, equal_nan=True)
    # Landscape numbers of the standard run: ordered extremes, a PCA share in (0, 1].
    assert summary["standard_lambda_max_final"][0] > 0 > summary["standard_lambda_min_final"][0]
    assert summary["standard_lambda_max_memorised"][0] > summary["standard_lambda_min_memorised"][0]
    assert 0 < summary["standard_pca_top2_share"][0] <= 1
    sharpness = data["sharpness"].sel(mode="standard", seed=0).values
    assert np.isfinite(sharpness[[0, 6, 12]]).all() and np.isnan(sharpness[1])
    assert summary["claim_holds"] == all(summary["perturbed_faster_95"])
    assert {"accuracy", "weight_norm", "information", "robustness", "landscape"} \
        <= {path.stem for path in result.figures}


def test_abelian_experiment_end_to_end(tmp_path):
    from freqdyn.runs.experiment import load_experiment
    from freqdyn.runs.runner import run_experiment

    exp = load_experiment("validation/grokking/abelian.toml", seeds=[0], overrides=TINY)
    summary = run_experiment(exp, tmp_path, device="cpu").summary
    # The penalty (coefficient 100) makes the logits nearly commutative; standard training
    # does not.
    assert summary["penalty_final_logit_distance"][0] \
        < 0.1 * summary["standard_final_logit_distance"][0]
    assert summary["penalty_final_abelian_acc"][0] > summary["standard_final_abelian_acc"][0]
    statements = len(summary["holds"]) + len(summary["does_not_hold"])
    assert statements == 3
    assert summary["claim_holds"] == (not summary["does_not_hold"])


def test_one_hot_noise_on_the_pair_mlp_is_a_one_hot_perturbation_of_its_first_layer():
    from freqdyn.grok.models import build_model
    from freqdyn.grok.modular import modular_dataset

    data = modular_dataset(7, "+", 0.5, 0)
    model = build_model({"model": "mlp", "width": 8}, data, 0).double()
    pairs = data.pairs_train[:5]
    emb = model.embed(pairs)
    noise = noise_in_embedding_space(model, emb, 0.3, "one-hot",
                                     torch.Generator().manual_seed(1))
    delta = 0.3 * torch.randn((5, 14), generator=torch.Generator().manual_seed(1),
                              dtype=torch.float64)
    one_hot = torch.cat([torch.nn.functional.one_hot(pairs[:, 0], 7),
                         torch.nn.functional.one_hot(pairs[:, 1], 7)], 1).double()
    # The first layer applied to the perturbed one-hot pair, minus its clean output.
    expected = model.first(one_hot + delta) - model.first(one_hot)
    np.testing.assert_allclose((emb + noise).detach().numpy() - emb.detach().numpy(),
                               expected.detach().numpy(), atol=1e-12)
