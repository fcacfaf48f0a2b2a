"""Nanda et al.'s protocol (``--paper``): their split, 114 classes, a float64 loss."""

import random

import numpy as np
import pytest
import torch

from freqdyn.errors import InputError
from freqdyn.grok.algorithmic import cross_entropy, table_loss, train_modular
from freqdyn.grok.models import build_model
from freqdyn.grok.modular import modular_dataset
from freqdyn.grok.progress import control_frequencies, falls_in_order, output_map


def test_authors_split_is_their_shuffle_and_floor():
    """The authors' gen_train_test: (i, j) row-major, random.seed(seed), random.shuffle, cut
    at int(frac · N): 3830 of 12 769 at P = 113, where rounding gives 3831."""
    data = modular_dataset(113, "+", 0.3, seed=0, split="authors")
    pairs = [(i, j) for i in range(113) for j in range(113)]
    random.seed(0)
    random.shuffle(pairs)
    cut = int(0.3 * len(pairs))
    assert cut == 3830 == len(data.pairs_train)
    assert [tuple(map(int, q)) for q in data.pairs_train] == pairs[:cut]
    assert [tuple(map(int, q)) for q in data.pairs_val] == pairs[cut:]
    assert torch.equal(data.labels_train, data.pairs_train.sum(dim=1) % 113)
    assert len(modular_dataset(113, "+", 0.3, seed=0).pairs_train) == 3831
    with pytest.raises(InputError, match="split"):
        modular_dataset(11, "+", 0.3, split="theirs")


def test_vocabulary_output_has_the_equals_row_and_the_authors_init():
    data = modular_dataset(113, "+", 0.3, seed=0, split="authors")
    model = build_model({"model": "nanda", "output": "vocabulary"}, data, seed=0)
    assert model.W_E.shape == (114, 128) and model.W_U.shape == (128, 114)
    assert model.eq_token == 113
    assert model(data.pairs_train[:5]).shape == (5, 114)
    assert abs(float(model.W_U.detach().std()) * np.sqrt(114) - 1) < 0.02
    answers = build_model({"model": "nanda"}, data, seed=0)
    assert answers.W_U.shape == (128, 113)
    assert output_map(model, 113).shape == (113, 512)     # W_L = (W_out W_U)ᵀ, answers only
    with pytest.raises(InputError, match="settings.output"):
        build_model({"model": "mlp", "output": "vocabulary"}, data, seed=0)


def test_float64_loss_resolves_what_float32_rounds_away():
    """A confident model's loss of about 1e-9 per sample: float32 log-softmax gives 0 (steps
    of about 1.2e-7), the float64 cast gives the value."""
    logits = torch.zeros(4, 114)
    logits[torch.arange(4), torch.arange(4)] = 25.0
    labels = torch.arange(4)
    exact = float(np.log1p(113 * np.exp(-25.0)))
    assert float(cross_entropy(logits, labels)) == 0.0
    assert float(cross_entropy(logits, labels, torch.float64)) == pytest.approx(exact, rel=1e-9)


def test_float64_precision_trains_and_reports_the_table_loss():
    cfg = {"model": "nanda", "p": 11, "train_fraction": 0.5, "d_model": 16, "n_heads": 2,
           "d_head": 8, "d_mlp": 32, "batch_size": "full", "steps": 20, "eval_every": 10,
           "precision": "float64", "output": "vocabulary", "split": "authors"}
    run = train_modular(cfg, seed=0, progress=False)
    pairs, labels = run.data.all_pairs()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(run.model(pairs).double(), labels)
    assert run.final["table_loss"] == pytest.approx(float(expected), rel=1e-12)
    assert table_loss(run.model, run.data) == run.final["table_loss"]
    with pytest.raises(InputError, match="settings.precision"):
        train_modular({**cfg, "precision": "half"}, seed=0, progress=False)


def test_a_fall_that_did_not_happen_is_never_before_anything():
    assert falls_in_order(100, 200)
    assert not falls_in_order(None, 200) and not falls_in_order(100, None)
    assert not falls_in_order(None, None)
    assert not falls_in_order(100, 200, after=100) and falls_in_order(150, 200, after=100)


def test_control_frequencies_are_the_weakest_non_keys():
    norms = np.array([9.0, 1.0, 5.0, 0.1, 0.2, 4.0])
    assert control_frequencies(norms, [2, 5]) == [3, 4]
    assert control_frequencies(norms, []) == []
