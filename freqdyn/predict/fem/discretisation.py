"""Assembly: the P_k space, the mass and operator matrices, û₀, and point evaluation."""

from __future__ import annotations

import math

import numpy as np

from freqdyn.predict.fem.mesh import build_mesh
from freqdyn.predict.fem.problem import Problem
from freqdyn.predict.fem.stack import MPI, PETSc, basix, dolfinx, fem, geometry, mesh, ufl


class Discretisation:
    """Mesh, P_k space, assembled M and K, and û₀ (Re, Im) as PETSc vectors."""

    def __init__(self, problem: Problem, cells, degree: int, comm=MPI.COMM_WORLD,
                 grading=None):
        self.problem, self.degree, self.comm = problem, int(degree), comm
        self.cells = tuple(int(c) for c in cells)
        self.mesh = build_mesh(comm, problem, cells, grading)
        self.V = fem.functionspace(self.mesh, ("Lagrange", self.degree))
        self.qdeg = 2 * self.degree + 2
        self.dx = ufl.dx(domain=self.mesh, metadata={"quadrature_degree": self.qdeg})
        c = self.quadrature_function(problem.damping)
        D = self.quadrature_function(problem.diffusion)
        self.coef_max = (self._global_max(c), self._global_max(D))
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.M = dolfinx.fem.petsc.assemble_matrix(fem.form(u * v * self.dx))
        self.M.assemble()
        self.K = dolfinx.fem.petsc.assemble_matrix(
            fem.form(D * ufl.inner(ufl.grad(u), ufl.grad(v)) * self.dx + c * u * v * self.dx))
        self.K.assemble()
        coords = self.V.tabulate_dof_coordinates()[:, :problem.dim]
        values = problem.initial(coords)
        self.u0 = []
        for part in (values.real, values.imag):
            f = fem.Function(self.V)
            f.x.array[:] = part
            self.u0.append(f.x.petsc_vec.copy())
        self.dofs = self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs

    def quadrature_function(self, fn) -> fem.Function:
        """A coefficient as its exact values at the quadrature points of every cell."""
        element = basix.ufl.quadrature_element(self.mesh.basix_cell(), degree=self.qdeg)
        Q = fem.functionspace(self.mesh, element)
        q = fem.Function(Q)
        pts = Q.tabulate_dof_coordinates()[:, :self.problem.dim]
        q.x.array[:] = fn(pts) if pts.shape[0] else 0.0
        if not np.all(np.isfinite(q.x.array)):
            raise ValueError("a PDE coefficient is not finite at a quadrature point")
        return q

    def _global_max(self, f: fem.Function) -> float:
        local = float(np.max(f.x.array)) if f.x.array.size else 0.0
        return self.comm.allreduce(local, op=MPI.MAX)

    def norm_M(self, vec: PETSc.Vec) -> float:
        tmp = vec.duplicate()
        self.M.mult(vec, tmp)
        return math.sqrt(max(vec.dot(tmp), 0.0))


#: Relative residual of the iterative solves (3D), far below any time tolerance.
ITERATIVE_RTOL = 1e-12


def spd_solver(A: PETSc.Mat, comm, dim: int) -> PETSc.KSP:
    """A solver for the symmetric positive definite M + γK: sparse LU in 1D and 2D; in 3D,
    where the fill of a direct factorisation grows like N^{4/3} in memory, conjugate
    gradients to a relative residual of 1e-12, preconditioned by incomplete Cholesky on
    one process (measured on 5·10⁵ P2 dofs: 1.3–3.8 s a solve, against 2.9–5.0 s for
    algebraic multigrid, whose set-up alone took 8–10 s) and by GAMG on several."""
    if dim < 3:
        return lu_solver(A, comm)
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType("icc" if comm.size == 1 else "gamg")
    ksp.setTolerances(rtol=ITERATIVE_RTOL, atol=0.0, max_it=2000)
    ksp.setUp()
    return ksp


def lu_solver(A: PETSc.Mat, comm) -> PETSc.KSP:
    """A factored direct solver (MUMPS LU, KSP preonly) for A."""
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("lu")
    pc.setFactorSolverType("mumps")
    ksp.setUp()
    return ksp


class PointEvaluator:
    """Evaluates finite-element functions at fixed points, on any number of processes.

    Every process holds all points; each searches its owned cells, the lowest rank that
    contains a point evaluates it, and the values are gathered and broadcast, so every
    process returns the full array (NaN where no cell contains the point).
    """

    def __init__(self, msh: mesh.Mesh, points: np.ndarray):
        self.comm = msh.comm
        n, d = points.shape
        self.n = n
        pts = np.zeros((n, 3))
        pts[:, :d] = points
        tdim = msh.topology.dim
        owned = np.arange(msh.topology.index_map(tdim).size_local, dtype=np.int32)
        tree = geometry.bb_tree(msh, tdim, entities=owned)
        cand = geometry.compute_collisions_points(tree, pts)
        coll = geometry.compute_colliding_cells(msh, cand, pts)
        offsets = coll.offsets
        has = np.diff(offsets) > 0
        rank, size = self.comm.rank, self.comm.size
        claim = np.where(has, rank, size).astype(np.int32)
        owner = np.empty_like(claim)
        self.comm.Allreduce(claim, owner, op=MPI.MIN)
        self.found = owner < size
        self.mine = np.nonzero(owner == rank)[0]
        self.cells = coll.array[offsets[self.mine]].astype(np.int32)
        self.points = pts[self.mine]

    def __call__(self, f: fem.Function) -> np.ndarray:
        local = f.eval(self.points, self.cells)[:, 0] if self.mine.size else np.zeros(0)
        gathered = self.comm.gather((self.mine, np.asarray(local, dtype=float)), root=0)
        out = None
        if self.comm.rank == 0:
            out = np.full(self.n, np.nan)
            for idx, vals in gathered:
                out[idx] = vals
        return self.comm.bcast(out, root=0)
