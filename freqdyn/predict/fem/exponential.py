"""Exact in time: û_h(t) = e^{−tM⁻¹K} û₀ by shift-and-invert (rational) Krylov.

The semi-discrete PDE M û′ = −K û has a time-independent operator, so each reported time
is one matrix exponential applied to û₀; no time steps.  For each t > 0, with the shift
γ = t/10 (van den Eshof & Hochbruck 2006), the Krylov space of (I + γA)⁻¹ = (M + γK)⁻¹M,
A = M⁻¹K, is built by Arnoldi in the M inner product (one sparse LU of M + γK, one
solve per vector), (M + γK)⁻¹M V_k = V_{k+1} H_k, and

    e^{−tA} û₀ ≈ ‖û₀‖_M V_k exp(−t (H_k⁻¹ − I)/γ) e₁.

Convergence does not depend on the stiffness of K (λ_max ∝ h⁻² costs nothing): some
tens of vectors at any mesh.  The iteration stops when two successive approximations
differ by less than ``tol`` relative to the current one, i.e. relative to ‖û_h(t)‖_M,
the solution at that time; that difference is reported per time as the time error
estimate.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg

from freqdyn.predict.fem.discretisation import Discretisation, lu_solver

#: Most Krylov vectors per time and part before giving up.
MAX_VECTORS = 300
#: Shift γ = t · SHIFT_FACTOR.
SHIFT_FACTOR = 0.1


def _m_dot(disc: Discretisation, a, b, work) -> float:
    disc.M.mult(b, work)
    return a.dot(work)


def _krylov_exponential(disc: Discretisation, ksp, b, t: float, gamma: float, tol: float):
    """(e^{−tA} b as a PETSc vector, iterations, the final relative change)."""
    beta = disc.norm_M(b)
    out = b.duplicate()
    out.set(0.0)
    if beta == 0.0:
        return out, 0, 0.0
    work, mv = b.duplicate(), b.duplicate()
    basis = [b.copy()]
    basis[0].scale(1.0 / beta)
    H = np.zeros((MAX_VECTORS + 1, MAX_VECTORS))
    previous, change = None, math.inf
    for k in range(MAX_VECTORS):
        disc.M.mult(basis[k], mv)
        w = b.duplicate()
        ksp.solve(mv, w)
        for _ in range(2):  # Gram–Schmidt in the M inner product, twice
            disc.M.mult(w, work)
            coeffs = np.array([v.dot(work) for v in basis])
            H[: k + 1, k] += coeffs
            for c, v in zip(coeffs, basis, strict=True):
                w.axpy(-c, v)
        h_next = disc.norm_M(w)
        H[k + 1, k] = h_next
        Hk = H[: k + 1, : k + 1]
        try:
            Ak = (linalg.inv(Hk) - np.eye(k + 1)) / gamma
        except linalg.LinAlgError:
            Ak = None
        if Ak is not None:
            y = beta * linalg.expm(-t * Ak)[:, 0]
            if previous is not None:
                pad = np.zeros_like(y)
                pad[: previous.size] = previous
                change = float(np.linalg.norm(y - pad) / max(np.linalg.norm(y), 1e-300))
            previous = y
            if (change <= tol and k >= 2) or h_next <= 1e-14 * beta:
                break
        w.scale(1.0 / h_next)
        basis.append(w)
    else:
        raise RuntimeError(f"exponential integrator: no convergence in {MAX_VECTORS} Krylov "
                           f"vectors at t = {t:g}; use fem.scheme = 'modal' or 'cn'")
    for c, v in zip(previous, basis, strict=False):
        out.axpy(float(c), v)
    return out, k + 1, change


def exponential_solution(disc: Discretisation, times: np.ndarray, tol: float, observe):
    """û_h at each time exactly in time (module text); ``observe(j, re, im)`` per time.

    Returns (time error estimate per time, info).
    """
    estimate = np.zeros(times.size)
    iterations = []
    for j, t in enumerate(times):
        if t == 0:
            observe(j, disc.u0[0], disc.u0[1])
            continue
        gamma = SHIFT_FACTOR * float(t)
        shifted = disc.M.copy()
        shifted.axpy(gamma, disc.K)
        ksp = lu_solver(shifted, disc.comm)
        parts = []
        for b in disc.u0:
            vec, its, change = _krylov_exponential(disc, ksp, b, float(t), gamma, tol)
            parts.append(vec)
            iterations.append(its)
            estimate[j] = max(estimate[j], change)
        observe(j, parts[0], parts[1])
        ksp.destroy()
        shifted.destroy()
    return estimate, {"krylov_vectors_max": max(iterations, default=0),
                      "factorisations": int(np.count_nonzero(times > 0))}
