"""Exact in time: û_h(t) = e^{−tM⁻¹K} û₀ by shift-and-invert (rational) Krylov.

The semi-discrete PDE M û′ = −K û has a time-independent operator, so each reported time
is one matrix exponential applied to û₀; no time steps.  The times are grouped (a factor
of at most 100 within a group); for each group, with the shift γ = t̄/10 at its geometric
mean time t̄ (van den Eshof & Hochbruck 2006), the Krylov space of (I + γA)⁻¹ =
(M + γK)⁻¹M, A = M⁻¹K, is built by Arnoldi in the M inner product (one factorisation of
M + γK, sparse LU in 1D and 2D, conjugate gradients with algebraic multigrid in 3D; one
solve per vector), (M + γK)⁻¹M V_k = V_{k+1} H_k, and every time of the group is read off
the same space:

    e^{−tA} û₀ ≈ ‖û₀‖_M V_k exp(−t (H_k⁻¹ − I)/γ) e₁.

Convergence does not depend on the stiffness of K (λ_max ∝ h⁻² costs nothing): some
tens of vectors at any mesh.  The iteration stops when two successive approximations
differ by less than ``tol`` relative to the current one, i.e. relative to ‖û_h(t)‖_M,
the solution at that time; that difference is reported per time as the time error
estimate.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import linalg

from freqdyn.errors import InputError
from freqdyn.predict.fem.discretisation import Discretisation, spd_solver

#: Most Krylov vectors per time and part before giving up.
MAX_VECTORS = 300
#: Shift γ = SHIFT_FACTOR · t (the geometric mean t of a group of times).
SHIFT_FACTOR = 0.1
#: Largest ratio t_max/t_min of the times that share one shift.
GROUP_SPAN = 100.0
#: Vectors without a new smallest change after which the iteration has stagnated (the
#: shifted operator's condition number beyond double precision: a very stiff PDE).
STAGNATION = 40


def _krylov_exponential(disc: Discretisation, ksp, b, times, gamma: float, tol: float):
    """(e^{−tA} b for each t as PETSc vectors, iterations, the final relative changes)."""
    beta = disc.norm_M(b)
    if beta == 0.0:
        out = []
        for _ in times:
            out.append(b.duplicate())
            out[-1].set(0.0)
        return out, 0, np.zeros(len(times))
    work, mv = b.duplicate(), b.duplicate()
    basis = [b.copy()]
    basis[0].scale(1.0 / beta)
    H = np.zeros((MAX_VECTORS + 1, MAX_VECTORS))
    previous, change = None, np.full(len(times), math.inf)
    best = (math.inf, 0)  # (smallest largest change so far, at which vector)
    for k in range(MAX_VECTORS):
        disc.M.mult(basis[k], mv)
        w = b.duplicate()
        ksp.solve(mv, w)
        if ksp.getConvergedReason() < 0:
            raise InputError("fem.scheme", f"the exponential integrator's shifted solve "
                                           f"failed (PETSc reason "
                                           f"{ksp.getConvergedReason()}); use fem.scheme = "
                                           "'modal' or 'cn'")
        for _ in range(2):  # Gram–Schmidt in the M inner product, twice
            disc.M.mult(w, work)
            coeffs = np.array([v.dot(work) for v in basis])
            H[: k + 1, k] += coeffs
            for c, v in zip(coeffs, basis, strict=True):
                w.axpy(-c, v)
        h_next = disc.norm_M(w)
        H[k + 1, k] = h_next
        Hk = H[: k + 1, : k + 1]
        try:  # H_k is ill-conditioned where modes have decayed: expected, and checked below
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", linalg.LinAlgWarning)
                Ak = (linalg.inv(Hk) - np.eye(k + 1)) / gamma
        except linalg.LinAlgError:
            Ak = None
        if Ak is not None:
            y = np.stack([beta * linalg.expm(-t * Ak)[:, 0] for t in times])
            if previous is not None:
                pad = np.zeros_like(y)
                pad[:, : previous.shape[1]] = previous
                change = (np.linalg.norm(y - pad, axis=1)
                          / np.maximum(np.linalg.norm(y, axis=1), 1e-300))
            previous = y
            if (np.all(change <= tol) and k >= 2) or h_next <= 1e-14 * beta:
                break
            worst = float(np.max(change))
            if worst < best[0]:
                best = (worst, k)
            elif k - best[1] > STAGNATION:
                raise InputError("fem.scheme", _stagnated(times, best[0], tol))
        w.scale(1.0 / h_next)
        basis.append(w)
    else:
        raise InputError("fem.scheme", f"the exponential integrator did not converge in "
                                       f"{MAX_VECTORS} Krylov vectors at t = {times}; use "
                                       "fem.scheme = 'modal' or 'cn'")
    out = []
    for coeffs in previous:
        vec = b.duplicate()
        vec.set(0.0)
        for c, v in zip(coeffs, basis, strict=False):
            vec.axpy(float(c), v)
        out.append(vec)
    return out, k + 1, np.where(np.isfinite(change), change, 0.0)


def _stagnated(times, reached: float, tol: float) -> str:
    return (f"the exponential integrator stagnated at a relative change {reached:.1e} > tol "
            f"{tol:g} at t = {np.asarray(times).tolist()} (the PDE is too stiff for double "
            "precision: sigma_a^2 rho_w t over the cell size squared is huge); lower "
            "network.sigma_a or the times, or use fem.scheme = 'modal'")


def time_groups(times: np.ndarray) -> list[np.ndarray]:
    """Indices of the t > 0 in groups spanning at most a factor :data:`GROUP_SPAN` each:
    one shift (one factorisation) serves a group."""
    positive = np.flatnonzero(times > 0)
    groups: list[list[int]] = []
    for j in positive[np.argsort(times[positive])]:
        if groups and times[j] <= GROUP_SPAN * times[groups[-1][0]]:
            groups[-1].append(int(j))
        else:
            groups.append([int(j)])
    return [np.array(g) for g in groups]


def exponential_solution(disc: Discretisation, times: np.ndarray, tol: float, observe):
    """û_h at each time exactly in time (module text); ``observe(j, re, im)`` per time.

    Returns (time error estimate per time, info).
    """
    estimate = np.zeros(times.size)
    iterations = []
    for j in np.flatnonzero(times == 0):
        observe(int(j), disc.u0[0], disc.u0[1])
    groups = time_groups(times)
    for group in groups:
        t_group = times[group]
        gamma = SHIFT_FACTOR * float(np.sqrt(t_group.min() * t_group.max()))
        shifted = disc.M.copy()
        shifted.axpy(gamma, disc.K)
        ksp = spd_solver(shifted, disc.comm, disc.problem.dim)
        parts = []
        for b in disc.u0:
            vecs, its, change = _krylov_exponential(disc, ksp, b, t_group, gamma, tol)
            parts.append(vecs)
            iterations.append(its)
            estimate[group] = np.maximum(estimate[group], change)
        for i, j in enumerate(group):
            observe(int(j), parts[0][i], parts[1][i])
        ksp.destroy()
        shifted.destroy()
    return estimate, {"krylov_vectors_max": max(iterations, default=0),
                      "factorisations": len(groups)}
