"""The modal solution: exact in time from the generalised eigenpairs K v = λ M v."""

from __future__ import annotations

import math

import numpy as np

import freqdyn.memory as memory
from freqdyn.predict.fem.discretisation import Discretisation
from freqdyn.predict.fem.stack import MPI, PETSc, SLEPc

#: Systems up to this many dofs get all their eigenpairs by dense LAPACK (modal scheme).
DENSE_MODAL = 600


def _eigenpairs(disc: Discretisation, nev: int):
    """The nev smallest λ of K v = λ M v (SLEPc Krylov–Schur, shift-and-invert near 0).

    Returns λ ascending and the M-normalised v as owned rows, shape (n_owned, nev).
    """
    eps = SLEPc.EPS().create(disc.comm)
    eps.setOperators(disc.K, disc.M)
    eps.setProblemType(SLEPc.EPS.ProblemType.GHEP)
    shift = -1e-4 * max(max(disc.coef_max), 1e-300)  # K may be singular (c = D = 0 parts)
    eps.setType(SLEPc.EPS.Type.KRYLOVSCHUR)
    eps.setWhichEigenpairs(SLEPc.EPS.Which.TARGET_REAL)
    eps.setTarget(shift)
    st = eps.getST()
    st.setType(SLEPc.ST.Type.SINVERT)
    st.setShift(shift)
    ksp = st.getKSP()
    ksp.setType("preonly")
    ksp.getPC().setType("lu")
    ksp.getPC().setFactorSolverType("mumps")
    eps.setDimensions(nev=nev, ncv=min(disc.dofs, max(2 * nev, nev + 32)))
    eps.setTolerances(1e-12, 500)
    eps.solve()
    nconv = eps.getConverged()
    if nconv < nev:
        raise RuntimeError(f"SLEPc converged {nconv} of {nev} eigenpairs")
    lam = np.empty(nev)
    vr = disc.K.createVecRight()
    mv = vr.duplicate()
    vectors = np.empty((vr.getLocalSize(), nev))
    for i in range(nev):
        lam[i] = eps.getEigenpair(i, vr).real
        disc.M.mult(vr, mv)
        vectors[:, i] = vr.getArray() / math.sqrt(vr.dot(mv))
    eps.destroy()
    order = np.argsort(lam)
    return lam[order], vectors[:, order]


def _dense_eigenpairs(disc: Discretisation):
    """All eigenpairs of K v = λ M v by LAPACK on rank 0 (M-orthonormal v), rows scattered
    back to their owners.  For small systems and when most modes are needed."""
    comm = disc.comm
    parts = []
    for A in (disc.K, disc.M):
        lo, hi = A.getOwnershipRange()
        parts.append(comm.gather((lo, hi, *A.getValuesCSR()), root=0))
    blocks = None
    if comm.rank == 0:
        from scipy import linalg, sparse

        dense = []
        for gathered in parts:
            mat = np.zeros((disc.dofs, disc.dofs))
            for lo, hi, indptr, indices, data in gathered:
                mat[lo:hi] = sparse.csr_matrix((data, indices, indptr),
                                               shape=(hi - lo, disc.dofs)).toarray()
            dense.append(0.5 * (mat + mat.T))
        lam, vec = linalg.eigh(dense[0], dense[1])
        blocks = [(lam, vec[lo:hi]) for lo, hi, *_ in parts[0]]
    return comm.scatter(blocks, root=0)


def modes_below(disc: Discretisation, rate: float) -> int:
    """How many eigenvalues of K v = λ M v lie below ``rate``: the negative inertia of
    K − rate·M (Sylvester's law), from one sparse LDLᵀ factorisation (MUMPS), with no
    eigenpair computed."""
    shifted = disc.K.copy()
    shifted.axpy(-rate, disc.M)
    opts = PETSc.Options()
    opts["mat_mumps_icntl_24"] = 1  # null pivots detected: the inertia is defined
    ksp = PETSc.KSP().create(disc.comm)
    ksp.setOperators(shifted)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("cholesky")
    pc.setFactorSolverType("mumps")
    pc.setFromOptions()
    ksp.setUp()
    negative = int(pc.getFactorMatrix().getInertia()[0])
    del opts["mat_mumps_icntl_24"]
    ksp.destroy()
    shifted.destroy()
    return negative


def _modal_memory(dofs: int, modes: int) -> tuple[float, bool]:
    """(bytes, dense?) of a modal solution with ``modes`` eigenpairs of ``dofs`` dofs."""
    dense = modes >= dofs // 3 or dofs <= DENSE_MODAL
    return 3 * 8.0 * (dofs**2 if dense else dofs * modes), dense


def _require_modal_memory(disc: Discretisation, modes: int, what: str) -> bool:
    need, dense = _modal_memory(disc.dofs, modes)
    memory.require("fem.scheme", need,
                   f"the modal solution ({modes} modes of {disc.dofs} dofs{what}"
                   + (", by a dense eigendecomposition)" if dense else ")"),
                   "use the default scheme 'exponential' (exact in time, no eigenpairs)")
    return dense


def modal_solution(disc: Discretisation, times: np.ndarray, tol: float, observe):
    """Exact-in-time û_h(t) from the smallest modes; ``observe(j, re, im)`` per time.

    Returns (λ, weights |(v_k, û₀)_M|, truncation bound per time, info).
    """
    comm = disc.comm
    Mu = [disc.u0[0].duplicate(), disc.u0[1].duplicate()]
    for u, m in zip(disc.u0, Mu, strict=True):
        disc.M.mult(u, m)
    norms0 = math.hypot(disc.norm_M(disc.u0[0]), disc.norm_M(disc.u0[1]))
    positive = times[times > 0]
    nev = min(disc.dofs, 64)
    if positive.size and disc.dofs > DENSE_MODAL:
        # before any eigenpair: every mode with λ < log(1/tol)/t_min is needed (a lower
        # bound, since ‖û(t)‖ ≤ ‖û₀‖), counted exactly by inertia
        at_least = modes_below(disc, math.log(1 / tol) / float(positive.min()))
        _require_modal_memory(disc, max(at_least, nev), ", at least, counted by inertia")
    while True:
        dense = _require_modal_memory(disc, nev, "")
        lam, vecs = _dense_eigenpairs(disc) if dense else _eigenpairs(disc, nev)
        coeff = np.stack([comm.allreduce(vecs.T @ m.getArray(), op=MPI.SUM) for m in Mu])
        resid = 0.0
        tmp = disc.u0[0].duplicate()
        for part in range(2):
            tmp.setArray(disc.u0[part].getArray() - vecs @ coeff[part])
            resid += disc.norm_M(tmp) ** 2
        resid = math.sqrt(resid)
        kept = np.sqrt(np.sum(coeff**2, axis=0))
        norm_t = np.array([np.sqrt(np.sum((kept * np.exp(-lam * t)) ** 2)) for t in positive])
        bound = resid * np.exp(-lam[-1] * positive) / np.maximum(norm_t, 1e-300 * norms0)
        if dense or np.all(bound <= tol):
            break
        # the largest rate needed, and Weyl's law λ_n ∝ n^{2/d} for the count
        need = float(np.max(np.log(np.maximum(resid / (tol * np.maximum(norm_t, 1e-300)), 1.0))
                            / positive))
        grow = (max(need, lam[-1]) / max(lam[-1], 1e-300)) ** (disc.problem.dim / 2)
        nev = min(disc.dofs, max(2 * nev, int(math.ceil(1.2 * nev * grow))))
    truncation = np.zeros(times.size)
    if not dense:
        truncation[times > 0] = bound
    work = [disc.u0[0].duplicate(), disc.u0[1].duplicate()]
    for j, t in enumerate(times):
        if t == 0:
            observe(j, disc.u0[0], disc.u0[1])
            continue
        decay = np.exp(-lam * t)
        for part in range(2):
            work[part].setArray(vecs @ (decay * coeff[part]))
        observe(j, work[0], work[1])
    info = {"modes": int(lam.size), "eigensolver": "lapack" if dense else "krylovschur",
            "discarded_norm": float(resid / max(norms0, 1e-300))}
    return lam, kept, truncation, info
