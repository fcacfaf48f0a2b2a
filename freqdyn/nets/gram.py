"""The largest eigenvalue of a network's Gram operator: the one λ_max of every step bound.

Every trainer bounds its learning rate by λ_max of the NTK Gram on its training samples
(lr < 2/λ_max for gradient descent); each network supplies the Gram's matrix-vector
product and this module finds λ_max from it.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh


def top_eigenvalue(product, n: int, tol: float = 1e-3) -> float:
    """The largest eigenvalue of a symmetric n × n operator given by ``product`` (Lanczos;
    a dense eigensolve for n ≤ 2): the Gram's λ_max for every trainer's step bound."""
    if n <= 2:
        dense = np.column_stack([product(col) for col in np.eye(n)])
        return float(np.linalg.eigvalsh(0.5 * (dense + dense.T)).max())
    op = LinearOperator((n, n), matvec=product, dtype=np.float64)
    val = eigsh(op, k=1, which="LA", tol=tol, v0=np.ones(n), ncv=min(n - 1, 20),
                return_eigenvectors=False)
    return float(val[0])
