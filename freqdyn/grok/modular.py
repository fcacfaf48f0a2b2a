"""Binary-operation tables for algorithmic grokking: Power et al.'s operations mod p and on S5.

A data set is the full table {(x, y, x ∘ y)} of a binary operation on a finite set of
elements, split at random into a training and a validation part (Power et al. 2022,
App. A.1.1; Notsawo et al. 2023, G3.1).  Every element is an opaque token:

* modular operations act on Z_p = {0, …, p − 1}; the answer is a residue mod p;
* S5 operations act on the 120 permutations of {0, …, 4}, numbered by their rank in
  lexicographic order (index 0 is the identity (0, 1, 2, 3, 4)); composition is
  (x ∘ y)(i) = x(y(i)).

Token numbering, shared by every model: tokens 0 … n − 1 are the elements, token n is the
operation symbol "∘" and token n + 1 is "=", so ``n_tokens = n + 2``; the answer classes are
the n elements (``n_classes = n``).  A model may ignore tokens it does not use (the Nanda
transformer reads "x y =", the Power decoder "x ∘ y =").

``dedupe_symmetric`` keeps one of (x, y) and (y, x) for symmetric operations, so that the
table has n(n + 1)/2 equations instead of n² (whether G3 did this for addition is unknown;
freqdyn's default is ordered pairs).

Two splits (``split``):

* ``"random"`` (default): a numpy permutation of the row-major table from ``seed``, with
  round(r·N) training equations;
* ``"authors"``: Nanda et al.'s split, exactly: the row-major list of (x, y) shuffled by
  Python's ``random.Random(seed).shuffle`` and cut after ⌊r·N⌋ equations (3830 of the
  12 769 pairs at P = 113, r = 0.3; seed 0 gives the authors' own training set).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from freqdyn.errors import InputError

S5_ORDER = 120


@dataclass(frozen=True)
class Operation:
    """One binary operation: its formula, the set it acts on, and its symmetry."""

    symbol: str
    formula: str
    group: str                 # "mod" (Z_p) or "s5" (permutations of 5 objects)
    symmetric: bool            # x ∘ y = y ∘ x for all x, y
    nonzero_y: bool            # y ranges over the non-zero residues only (division)
    apply: Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def _modular_inverse(y: np.ndarray, p: int) -> np.ndarray:
    """y^(p−2) mod p, the inverse of y ≠ 0 in the field Z_p (p prime)."""
    return np.array([pow(int(v), p - 2, p) for v in y.ravel()], dtype=np.int64).reshape(y.shape)


@dataclass(frozen=True)
class _Permutations:
    """The 120 permutations of S5 in lexicographic order, with composition and inverse tables."""

    perms: np.ndarray          # (120, 5)
    compose: np.ndarray        # (120, 120): index of perms[x] ∘ perms[y]
    inverse: np.ndarray        # (120,): index of perms[x]⁻¹


def _s5() -> _Permutations:
    perms = np.array(list(itertools.permutations(range(5))), dtype=np.int64)
    index = {tuple(p): i for i, p in enumerate(perms)}
    compose = np.array([[index[tuple(perms[x][perms[y]])] for y in range(S5_ORDER)]
                        for x in range(S5_ORDER)], dtype=np.int64)
    inverse = np.array([index[tuple(np.argsort(perms[x]))] for x in range(S5_ORDER)],
                       dtype=np.int64)
    return _Permutations(perms, compose, inverse)


S5 = _s5()


def _s5_conjugate(x, y, _n):
    return S5.compose[S5.compose[x, y], S5.inverse[x]]


def _s5_sandwich(x, y, _n):
    return S5.compose[S5.compose[x, y], x]


OPERATIONS: dict[str, Operation] = {op.symbol: op for op in [
    Operation("+", "x + y mod p", "mod", True, False, lambda x, y, p: (x + y) % p),
    Operation("-", "x − y mod p", "mod", False, False, lambda x, y, p: (x - y) % p),
    Operation("*", "x · y mod p", "mod", True, False, lambda x, y, p: (x * y) % p),
    Operation("/", "x · y⁻¹ mod p (y ≠ 0)", "mod", False, True,
              lambda x, y, p: (x * _modular_inverse(y, p)) % p),
    Operation("x^2+y^2", "x² + y² mod p", "mod", True, False,
              lambda x, y, p: (x * x + y * y) % p),
    Operation("x^2+xy+y^2", "x² + xy + y² mod p", "mod", True, False,
              lambda x, y, p: (x * x + x * y + y * y) % p),
    Operation("x^2+xy+y^2+x", "x² + xy + y² + x mod p", "mod", False, False,
              lambda x, y, p: (x * x + x * y + y * y + x) % p),
    Operation("x^3+xy", "x³ + xy mod p", "mod", False, False,
              lambda x, y, p: (x * x * x + x * y) % p),
    Operation("x^3+xy^2+y", "x³ + xy² + y mod p", "mod", False, False,
              lambda x, y, p: (x * x * x + x * y * y + y) % p),
    Operation("s5", "x ∘ y in S5", "s5", False, False, lambda x, y, _n: S5.compose[x, y]),
    Operation("s5-conjugate", "x ∘ y ∘ x⁻¹ in S5", "s5", False, False, _s5_conjugate),
    Operation("s5-sandwich", "x ∘ y ∘ x in S5", "s5", False, False, _s5_sandwich),
]}


@dataclass(frozen=True)
class ModularData:
    """A split operation table.

    ``pairs_*`` are (n, 2) long tensors of operands (x, y), ``labels_*`` the answers x ∘ y
    (long, in 0 … n_classes − 1).  ``p`` is the number of elements (the modulus, or 120 for
    S5).  ``op_token`` and ``eq_token`` are the token ids of "∘" and "=".
    """

    pairs_train: torch.Tensor
    labels_train: torch.Tensor
    pairs_val: torch.Tensor
    labels_val: torch.Tensor
    n_tokens: int
    n_classes: int
    p: int
    operation: str
    train_fraction: float
    seed: int
    dedupe_symmetric: bool

    @property
    def op_token(self) -> int:
        return self.p

    @property
    def eq_token(self) -> int:
        return self.p + 1

    def all_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Training and validation pairs together (training first), with their labels."""
        return (torch.cat([self.pairs_train, self.pairs_val]),
                torch.cat([self.labels_train, self.labels_val]))


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def operation_table(p: int, operation: str) -> tuple[np.ndarray, np.ndarray]:
    """All equations of ``operation``: operand pairs (N, 2) and answers (N,), row-major in (x, y).

    Division leaves out y = 0, so it has p(p − 1) equations; every other operation has n².
    """
    op = OPERATIONS[operation]
    y_start = 1 if op.nonzero_y else 0
    x, y = np.meshgrid(np.arange(p), np.arange(y_start, p), indexing="ij")
    x, y = x.ravel(), y.ravel()
    return np.stack([x, y], axis=1), np.asarray(op.apply(x, y, p), dtype=np.int64)


SPLITS = ("random", "authors")


def _split_order(n: int, train_fraction: float, seed: int, split: str) -> tuple[np.ndarray, int]:
    """(order of the table's rows, number of training rows) of ``split``."""
    if split == "authors":
        order = list(range(n))
        random.Random(seed).shuffle(order)
        return np.array(order, dtype=np.int64), math.floor(train_fraction * n)
    return np.random.default_rng(seed).permutation(n), round(train_fraction * n)


def modular_dataset(p: int | None, operation: str = "+", train_fraction: float = 0.3,
                    seed: int = 0, dedupe_symmetric: bool = False,
                    split: str = "random") -> ModularData:
    """The table of ``operation`` on p elements, split from ``seed`` (``split``: see the module).

    ``train_fraction`` r = |train|/|table| becomes a whole number of equations; both
    parts must be non-empty.  For the S5 operations ``p`` must be 120 (or None).  Modular
    operations need p ≥ 2, and p prime for division.
    """
    if operation not in OPERATIONS:
        raise InputError("operation", f"unknown operation {operation!r}; choose one of "
                        f"{', '.join(OPERATIONS)}")
    op = OPERATIONS[operation]
    if op.group == "s5":
        if p not in (None, S5_ORDER):
            raise InputError("p", f"S5 operations act on {S5_ORDER} elements, got p = {p}")
        p = S5_ORDER
    elif not isinstance(p, int | np.integer) or p < 2:
        raise InputError("p", f"the modulus must be an integer ≥ 2, got {p!r}")
    elif op.nonzero_y and not _is_prime(int(p)):
        raise InputError("p", f"division mod p needs a prime modulus, got {p}")
    p = int(p)
    if not 0.0 < train_fraction < 1.0:
        raise InputError("train_fraction", f"must lie in (0, 1), got {train_fraction}")
    if dedupe_symmetric and not op.symmetric:
        raise InputError("dedupe_symmetric", f"operation {operation!r} is not symmetric")

    if split not in SPLITS:
        raise InputError("split", f"unknown split {split!r}; choose one of {SPLITS}")
    pairs, labels = operation_table(p, operation)
    if dedupe_symmetric:
        keep = pairs[:, 0] <= pairs[:, 1]
        pairs, labels = pairs[keep], labels[keep]
    order, n_train = _split_order(len(pairs), train_fraction, seed, split)
    if not 0 < n_train < len(pairs):
        raise InputError("train_fraction", f"{train_fraction} of {len(pairs)} equations leaves "
                        "an empty training or validation set")
    train, val = order[:n_train], order[n_train:]

    def tensor(a):
        return torch.as_tensor(a, dtype=torch.long)

    return ModularData(
        pairs_train=tensor(pairs[train]), labels_train=tensor(labels[train]),
        pairs_val=tensor(pairs[val]), labels_val=tensor(labels[val]),
        n_tokens=p + 2, n_classes=p, p=p, operation=operation,
        train_fraction=float(train_fraction), seed=int(seed),
        dedupe_symmetric=bool(dedupe_symmetric))
