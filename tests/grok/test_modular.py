"""Operation tables against brute-force Python arithmetic; splits, dedupe and errors."""

import itertools

import pytest
import torch

from freqdyn.errors import InputError
from freqdyn.grok.modular import OPERATIONS, S5, modular_dataset

P = 11

BRUTE = {
    "+": lambda x, y: (x + y) % P,
    "-": lambda x, y: (x - y) % P,
    "*": lambda x, y: (x * y) % P,
    "/": lambda x, y: next(c for c in range(P) if (c * y) % P == x),
    "x^2+y^2": lambda x, y: (x**2 + y**2) % P,
    "x^2+xy+y^2": lambda x, y: (x**2 + x * y + y**2) % P,
    "x^2+xy+y^2+x": lambda x, y: (x**2 + x * y + y**2 + x) % P,
    "x^3+xy": lambda x, y: (x**3 + x * y) % P,
    "x^3+xy^2+y": lambda x, y: (x**3 + x * y**2 + y) % P,
}


def _whole_table(data):
    pairs, labels = data.all_pairs()
    return {(int(a), int(b)): int(c) for (a, b), c in zip(pairs, labels, strict=True)}


@pytest.mark.parametrize("op", sorted(BRUTE))
def test_modular_operations_match_brute_force(op):
    data = modular_dataset(P, op, train_fraction=0.5, seed=3)
    table = _whole_table(data)
    y_values = range(1, P) if op == "/" else range(P)
    assert set(table) == {(x, y) for x in range(P) for y in y_values}
    assert all(c == BRUTE[op](x, y) for (x, y), c in table.items())
    assert OPERATIONS[op].symmetric == all(BRUTE[op](x, y) == BRUTE[op](y, x)
                                           for x in range(1, P) for y in range(1, P))


def _compose(u, v):
    return tuple(u[v[i]] for i in range(5))


def _inverse(u):
    return tuple(sorted(range(5), key=lambda i: u[i]))


@pytest.mark.parametrize("op,rule", [
    ("s5", lambda u, v: _compose(u, v)),
    ("s5-conjugate", lambda u, v: _compose(_compose(u, v), _inverse(u))),
    ("s5-sandwich", lambda u, v: _compose(_compose(u, v), u)),
])
def test_s5_operations_match_permutation_composition(op, rule):
    perms = list(itertools.permutations(range(5)))
    data = modular_dataset(None, op, train_fraction=0.3, seed=0)
    assert data.p == data.n_classes == 120 and data.n_tokens == 122
    table = _whole_table(data)
    assert len(table) == 120**2
    assert perms[0] == (0, 1, 2, 3, 4) and tuple(S5.perms[0]) == perms[0]
    for (x, y), c in itertools.islice(table.items(), 0, None, 37):
        assert perms[c] == rule(perms[x], perms[y])


def test_split_is_seeded_disjoint_and_of_the_asked_size():
    a = modular_dataset(13, "+", train_fraction=0.3, seed=5)
    b = modular_dataset(13, "+", train_fraction=0.3, seed=5)
    c = modular_dataset(13, "+", train_fraction=0.3, seed=6)
    assert torch.equal(a.pairs_train, b.pairs_train)
    assert not torch.equal(a.pairs_train, c.pairs_train)
    assert len(a.pairs_train) == round(0.3 * 169) and len(a.pairs_val) == 169 - 51
    train = {tuple(v) for v in a.pairs_train.tolist()}
    val = {tuple(v) for v in a.pairs_val.tolist()}
    assert not train & val and len(train | val) == 169
    assert a.pairs_train.dtype == torch.long and a.pairs_train.shape[1] == 2
    assert (a.op_token, a.eq_token, a.n_tokens) == (13, 14, 15)


def test_symmetric_dedupe_keeps_one_of_each_unordered_pair():
    data = modular_dataset(13, "+", train_fraction=0.5, seed=0, dedupe_symmetric=True)
    pairs, _ = data.all_pairs()
    assert len(pairs) == 13 * 14 // 2
    assert len({frozenset(v) for v in pairs.tolist()}) == len(pairs)
    assert bool((pairs[:, 0] <= pairs[:, 1]).all())


@pytest.mark.parametrize("kwargs,field", [
    (dict(p=12, operation="/"), "p"),
    (dict(p=1, operation="+"), "p"),
    (dict(p=97, operation="s5"), "p"),
    (dict(p=7, operation="%"), "operation"),
    (dict(p=7, operation="+", train_fraction=1.0), "train_fraction"),
    (dict(p=7, operation="+", train_fraction=0.001), "train_fraction"),
    (dict(p=7, operation="-", dedupe_symmetric=True), "dedupe_symmetric"),
])
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(InputError) as err:
        modular_dataset(**kwargs)
    assert err.value.field == field
