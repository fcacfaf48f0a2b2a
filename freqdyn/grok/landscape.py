"""Loss-landscape tools: Hessian extreme eigenvalues and trajectory PCA.

These are the curvature and geometry measurements of Notsawo et al. (arXiv 2306.13253,
Sec. 4 and App. B), usable on any torch model whose loss is a closure of its parameters.

Hessian extremes
    λ_max and λ_min of the Hessian H = ∇²_θ L(θ) of a scalar loss, found by Lanczos
    iteration (``scipy.sparse.linalg.eigsh``, ARPACK) on a ``LinearOperator`` whose
    matrix-vector product is the exact Hessian-vector product Hv = ∇_θ(∇_θL · v) from
    double back-propagation.  H is never formed.  The eigenvalues carry the units of the
    loss per squared parameter unit.  The paper calls the ratio λ_min/λ_max the
    "condition number"; that is the inverse of the usual definition, so freqdyn reports
    it under the name ``inverted_condition``.

Trajectory PCA
    For parameter snapshots θ_0 … θ_T, the matrix M = [θ_t − θ_T]_{t<T} is centred over
    its rows and decomposed by SVD, M_c = U S Vᵀ.  The variance share of component i is
    s_i² / Σ_j s_j² (dimensionless); the paper's claim is that the first two share more
    than 98 %.  The projections α(t), β(t) = (θ_t − θ_T)·v_{1,2} locate the trajectory in
    the plane of the two leading directions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from freqdyn.errors import InputError


def trainable_parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    """The parameters of ``model`` that require gradients, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def flat_parameters(model: torch.nn.Module) -> np.ndarray:
    """θ as one float64 numpy vector (trainable parameters, concatenated in order)."""
    params = trainable_parameters(model)
    return torch.cat([p.detach().reshape(-1) for p in params]).double().cpu().numpy()


@dataclass(frozen=True)
class HessianExtremes:
    """Extreme eigenvalues of the loss Hessian at one point θ (loss units per param unit²)."""

    lambda_max: float
    lambda_min: float

    @property
    def inverted_condition(self) -> float:
        """λ_min/λ_max: what Notsawo et al. call the "condition number" (inverted)."""
        return self.lambda_min / self.lambda_max


def hessian_operator(loss_fn: Callable[[], torch.Tensor],
                     params: Sequence[torch.Tensor]) -> LinearOperator:
    """The Hessian of ``loss_fn()`` with respect to ``params`` as a scipy LinearOperator.

    The gradient graph is built once; each product Hv is one extra backward pass
    through it.  Vectors are float64 numpy arrays in the parameters' concatenated order.
    """
    params = list(params)
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])
    size = flat_grad.numel()
    dtype, device = flat_grad.dtype, flat_grad.device

    def matvec(vector: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(np.ascontiguousarray(vector).reshape(-1), dtype=dtype, device=device)
        hv = torch.autograd.grad(flat_grad, params, grad_outputs=v, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).double().cpu().numpy()

    return LinearOperator((size, size), matvec=matvec, rmatvec=matvec, dtype=np.float64)


def hessian_extremes(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], *,
                     seed: int = 0, tol: float = 0.0, maxiter: int | None = None,
                     smallest: bool = True) -> HessianExtremes:
    """λ_max and λ_min of ∇²L by Lanczos (ARPACK ``eigsh``, which ``"LA"`` and ``"SA"``).

    ``loss_fn`` evaluates the loss from the current parameter values (full batch or a
    fixed batch: the Hessian must be of one deterministic function).  ``tol`` is ARPACK's
    relative accuracy (0: machine precision); ``seed`` fixes the Lanczos start vector.
    ``smallest=False`` skips λ_min (NaN), e.g. for a sharpness curve.
    """
    operator = hessian_operator(loss_fn, params)
    size = operator.shape[0]
    if size < 2:
        raise InputError("params", f"need at least 2 parameters for Lanczos, got {size}")
    start = np.random.default_rng(seed).standard_normal(size)
    values = {"SA": float("nan")}
    for which in ("LA", "SA") if smallest else ("LA",):
        values[which] = float(eigsh(operator, k=1, which=which, v0=start, tol=tol,
                                    maxiter=maxiter, return_eigenvectors=False)[0])
    return HessianExtremes(lambda_max=values["LA"], lambda_min=values["SA"])


@dataclass(frozen=True)
class TrajectoryPCA:
    """PCA of a weight trajectory: shares (dimensionless), directions, projections."""

    variance_share: np.ndarray    # share of each component, descending, sums to 1
    components: np.ndarray        # (n_components, d) orthonormal rows v_i
    projections: np.ndarray       # (T, n_components): (θ_t − θ_T)·v_i for t < T

    @property
    def top2_share(self) -> float:
        """Variance share of the first two principal components."""
        return float(self.variance_share[:2].sum())


def trajectory_pca(snapshots: Sequence[np.ndarray] | np.ndarray,
                   n_components: int = 2) -> TrajectoryPCA:
    """PCA of M = [θ_t − θ_T]_{t<T} (rows centred) for snapshots θ_0 … θ_T.

    ``snapshots`` is a sequence of flattened parameter vectors (e.g. from
    :func:`flat_parameters`), the last one being the reference θ_T.
    """
    theta = np.asarray(snapshots, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[0] < 3:
        raise InputError("snapshots", f"need >= 3 flattened snapshots, got shape {theta.shape}")
    moves = theta[:-1] - theta[-1]
    centred = moves - moves.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    energy = singular**2
    total = energy.sum()
    if total == 0.0:
        raise InputError("snapshots", "the trajectory does not move")
    keep = min(n_components, vt.shape[0])
    return TrajectoryPCA(variance_share=energy / total, components=vt[:keep],
                         projections=moves @ vt[:keep].T)


