"""Finite-element solver (DOLFINx) of the frequency-space error PDE.

Strong form
-----------
Convention B, ξ in cycles per unit of x, t in PDE time.  On a box Ω ⊂ ℝ^d (d = 1, 2, 3)

    ∂_t û(ξ, t) = ∇_ξ·(D(ξ) ∇_ξ û) − c(ξ) û           in Ω × (0, T],
    D ∇_ξ û · n = 0                                    on ∂Ω (natural, zero flux),
    û(ξ, 0) = û₀(ξ) = −ĝ(ξ)                            (f₀ = 0).

For the Fourier-feature network the coefficients come from :func:`freqdyn.theory.derive.derive`
(κ²α included): c = κ²α ρ_w^sym (units 1/time) and D = κ²α σ_a² ρ_w^sym (units
ξ²/time).  The LFP models of :mod:`freqdyn.predict.lfp` use the same machinery with their own
c and D.  The coefficients are real, so Re û and Im û are solved separately (real PETSc).

Weak form
---------
Find û_h(t) ∈ V_h = {Lagrange P_k on a mesh of Ω} such that for every v ∈ V_h

    ∫_Ω ∂_t û_h v dξ + ∫_Ω (D ∇û_h·∇v + c û_h v) dξ = 0,

i.e. M U' + K U = 0 with M_ij = ∫φ_jφ_i and K_ij = ∫(D∇φ_j·∇φ_i + c φ_jφ_i).  The
coefficients enter only at the quadrature points (a quadrature-element function holding
the exact c and D there), so a piecewise-constant ρ_w is integrated exactly on a mesh
whose lines follow its jumps (the mesh lines are placed at the density's breakpoints).
û₀ is interpolated at the Lagrange nodes.

Mesh
----
Tensor-product mesh lines (intervals; triangles in 2D; tetrahedra in 3D) through the
breakpoints of ρ_w.  By default (``[fem] mesh = "graded"``) each axis is graded so
that the P_k interpolation error of û₀ and of û₀e^{−ct_end} is equidistributed (the
spectral peaks of û₀, std 1/(2πℓ) for a window of width ℓ, get the fine cells); the
cell count is then raised until that interpolation error is below ``tol``.
``mesh = "uniform"`` gives equal cells (used by the convergence tests).

Domain
------
* compact supp ρ_w (uniform, compact mixtures, expressions with a support box): Ω is
  the box holding the support of ρ_w^sym, cut at half a width beyond the ξ box (§5.3 of
  the theory: inside, the PDE with zero flux is exact; outside, ∂_t û = 0).  Cells on
  which c = D = 0 (gaps between bands) are left out of the mesh, so each band has its
  own zero-flux wall.  Case-grid points off the mesh keep û₀ exactly.
* otherwise Ω is the case's ξ box, widened (by at most half its width per side) to where
  ρ_w^sym has fallen below 1e-2 of its peak, so that the zero-flux wall sits where the
  flux D∇û is negligible.

Time integration
----------------
θ-scheme on the reported times: backward Euler (M + Δt K) U^{n+1} = M U^n, or
Crank–Nicolson (M + ½Δt K) U^{n+1} = (M − ½Δt K) U^n whose first ``startup`` steps are
each replaced by two backward-Euler half steps (Rannacher start-up: damps the stiff
modes excited by a rough û₀; the half-step matrix is the CN matrix, so one LU
factorisation serves both).  Each interval between reported times is cut into equal
steps ≤ Δt, so the reported times are hit exactly; a factorisation (MUMPS LU, KSP
preonly) is made once per distinct step size, i.e. once when the reported times are
multiples of Δt.  The a-priori bound sup_λ |e^{−λt} − R(λ)| (R the scheme's amplification
over the whole step sequence) bounds the time-discretisation error relative to ‖û₀‖_M;
it is stored per time as ``time_error_bound``.  ``[fem] dt`` gives uniform steps; by
default the steps grow with the reported times, Δt_j = r·t_j on the interval ending at
t_j (one factorisation per interval), with the largest r that keeps the bound ≤ ``tol``.

Modal solution
--------------
The generalised eigenproblem K v = λ M v (SLEPc, shift-and-invert Krylov–Schur near 0,
or dense LAPACK when most modes are needed) gives û_h(t) = Σ_k e^{−λ_k t}(v_k, û₀)_M v_k,
exact in time.  λ_k are the learning rates of the network's frequency modes: the
spectrum is exported (``modal_rate``, ``modal_weight`` over dim ``mode``).  Modes are
added until the discarded part r of û₀ satisfies e^{−λ_N t}‖r‖_M ≤ tol·‖û_h(t)‖_M at
every reported t > 0 (t = 0 reports û₀ itself); that bound is ``modal_truncation_error``.

Output
------
û_h is evaluated at the case-grid points (bounding-box tree search on each process,
the lowest rank holding a point evaluates it, values gathered), so one or several
MPI processes give the same numbers.
"""

from __future__ import annotations

import math
import os
import sys
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from freqdyn.errors import CaseError
from freqdyn.inputs.densities import Density, Expression, Laplace, Mixture, Uniform
from freqdyn.inputs.fourier import tensor_grid

# The solver stack brings its own OpenBLAS. Two OpenBLAS thread pools (numpy's and this
# one) spinning on the same cores made numpy/scipy LAPACK calls 50-100x slower after the
# import (a 415 x 415 eigh: 0.03 s -> 3 s on 2 cores), so the stack's copy is loaded
# single-threaded: the variable is read when the library loads, then restored.
_BLAS_THREADS = os.environ.get("OPENBLAS_NUM_THREADS")
os.environ["OPENBLAS_NUM_THREADS"] = "1"
# isort: off
import dolfinx_solver  # noqa: E402, F401  (must precede dolfinx: orders MPI first)
# isort: on
import basix.ufl  # noqa: E402
import dolfinx.fem.petsc  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem, geometry, mesh  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402
from slepc4py import SLEPc  # noqa: E402

if _BLAS_THREADS is None:
    del os.environ["OPENBLAS_NUM_THREADS"]
else:
    os.environ["OPENBLAS_NUM_THREADS"] = _BLAS_THREADS


SCHEMES = ("be", "cn", "modal")
FEM_KEYS = {"cells", "degree", "scheme", "dt", "tol", "startup", "modal_tol", "mesh"}
MESH_KINDS = ("graded", "uniform")
#: Default accuracy target (relative) of the space and of the time discretisation each,
#: per dimension (in d ≥ 2 a looser target keeps the default mesh affordable).
DEFAULT_TOL = {1: 1e-4, 2: 3e-4, 3: 3e-4}
#: Largest number of cells per axis the automatic mesh choice may use, per dimension.
MAX_CELLS = {1: 200_000, 2: 1200, 3: 120}
#: Systems up to this many dofs get all their eigenpairs by dense LAPACK (modal scheme).
DENSE_MODAL = 600
#: Relative density level at which the zero-flux wall may sit (non-compact ρ_w); moving
#: it further out changed laplace-1d and a Student-t case by < 2e-6 (the flux D∇û at the
#: wall is negligible where û₀ is).
WALL_LEVEL = 1e-2


# ---------------------------------------------------------------------------------------
# The problem: coefficients, initial datum and domain
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A PDE ∂_t û = ∇·(D∇û) − c û with zero flux on the box ``domain``.

    ``damping``/``diffusion`` map points (..., d) to values (...); ``initial`` maps
    points (n, d) to the complex û₀ there.
    ``breakpoints`` are mesh lines per axis (jumps or kinks of the coefficients);
    ``hole`` > 0 removes the cells inside the ball |ξ| < hole (LFP: singular at 0).
    ``outside`` says what the solution is at grid points off the mesh: "initial"
    (frozen at û₀, exact outside supp ρ_w) or "nan" (not modelled).
    """

    dim: int
    domain: np.ndarray
    damping: Callable[[np.ndarray], np.ndarray]
    diffusion: Callable[[np.ndarray], np.ndarray]
    initial: Callable[[np.ndarray], np.ndarray]
    breakpoints: tuple[np.ndarray, ...]
    hole: float = 0.0
    outside: str = "initial"
    notes: dict = field(default_factory=dict)


def density_breakpoints(rho: Density) -> list[np.ndarray]:
    """Per-axis ξ values where ρ_w^sym jumps or has a kink (mesh lines go there)."""
    points: list[list[float]] = [[] for _ in range(rho.dim)]

    def collect(dens: Density):
        if isinstance(dens, Mixture):
            for comp in dens.components:
                collect(comp)
            return
        box = dens.support if isinstance(dens, Uniform | Expression) else None
        for i in range(rho.dim):
            if box is not None:
                points[i] += [box[0][i], box[1][i]]
            if isinstance(dens, Laplace):
                points[i].append(dens.center[i])
            points[i].append(0.0)  # the origin: where expression densities usually kink

    collect(rho)
    # ρ_w^sym(ξ) = ½(ρ_w(ξ) + ρ_w(−ξ)): mirror every breakpoint
    return [np.unique(np.concatenate([np.asarray(p), -np.asarray(p)])) for p in points]


def fourier_feature_domain(case) -> tuple[np.ndarray, str]:
    """The meshed box Ω for a case and a sentence saying how it was chosen."""
    rho = case.rho_w
    bounds = np.array(case.bounds, dtype=float)
    width = bounds[:, 1] - bounds[:, 0]
    support = rho.support
    if support is not None:
        # ρ_w^sym lives on the support box and its mirror image; mesh their hull, cut
        # at half a width beyond the frequency box
        lo = np.maximum(np.minimum(support[0], -support[1]), bounds[:, 0] - 0.5 * width)
        hi = np.minimum(np.maximum(support[1], -support[0]), bounds[:, 1] + 0.5 * width)
        if np.any(lo >= hi):
            raise CaseError("network.rho_w", "its support does not meet the frequency box")
        return np.stack([lo, hi], axis=1), (
            "support box of rho_w: outside it u_hat stays at its initial value "
            "(frequencies outside supp rho_w are never learned)")
    reach = rho.extent(WALL_LEVEL)
    lo = np.minimum(bounds[:, 0], np.maximum(-reach, bounds[:, 0] - 0.5 * width))
    hi = np.maximum(bounds[:, 1], np.minimum(reach, bounds[:, 1] + 0.5 * width))
    return np.stack([lo, hi], axis=1), (
        f"frequency box widened to where rho_w^sym < {WALL_LEVEL:g} of its peak "
        "(at most half a width per side); zero-flux walls")


def fourier_feature_problem(case) -> Problem:
    """The error PDE of a Fourier-feature case, coefficients from :func:`derive`."""
    from freqdyn.theory.derive import derive

    der = derive(case)
    domain, note = fourier_feature_domain(case)
    return Problem(
        dim=case.dim, domain=domain, damping=der.numeric("damping"),
        diffusion=der.numeric("diffusion"),
        initial=target_initial(case.target),
        breakpoints=tuple(density_breakpoints(case.rho_w)),
        outside="initial", notes={"domain_choice": note, "damping": str(der.damping),
                                  "diffusion": str(der.diffusion)})


# ---------------------------------------------------------------------------------------
# Mesh and discretisation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisGrading:
    """A mesh density along one axis, as its normalised cumulative integral G (0 → 1).

    Nodes are placed at equal increments of G, so the local cell size is ∝ 1/monitor.
    """

    x: np.ndarray
    mass: np.ndarray

    def __call__(self, t) -> np.ndarray:
        return np.interp(t, self.x, self.mass)

    def inverse(self, m) -> np.ndarray:
        return np.interp(m, self.mass, self.x)


def axis_nodes(lo: float, hi: float, n: int, breakpoints,
               grading: AxisGrading | None = None) -> np.ndarray:
    """n + 1 nodes on [lo, hi] that contain the breakpoints inside (lo, hi).

    The cells are shared out between the segments between breakpoints in proportion to
    their length, or their grading mass (at least one each), and are spaced uniformly,
    or at equal increments of the grading, inside a segment.
    """
    inner = [b for b in np.unique(np.asarray(breakpoints, dtype=float))
             if lo + 1e-9 * (hi - lo) < b < hi - 1e-9 * (hi - lo)]
    edges = np.array([lo, *inner, hi])
    weight = np.diff(edges if grading is None else grading(edges))
    if n < weight.size or not np.all(weight > 0):
        return np.linspace(lo, hi, n + 1)
    counts = np.maximum(1, np.floor(n * weight / weight.sum()).astype(int))
    while counts.sum() < n:  # hand out the remainder to the coarsest segments
        counts[np.argmax(weight / counts)] += 1
    while counts.sum() > n:
        counts[np.argmin(np.where(counts > 1, weight / counts, np.inf))] -= 1
    parts = []
    for a, b, m in zip(edges[:-1], edges[1:], counts, strict=True):
        if grading is None:
            seg = np.linspace(a, b, m + 1)
        else:
            seg = grading.inverse(np.linspace(grading(a), grading(b), m + 1))
            seg[0], seg[-1] = a, b
        parts.append(seg[:-1])
    return np.concatenate([*parts, [hi]])


def mesh_grading(problem: Problem, degree: int, t_end: float,
                 floor: float = 0.2) -> tuple[AxisGrading, ...]:
    """Per-axis mesh densities equidistributing the P_k interpolation error of the solution.

    The local P_k interpolation error is ~ h^{k+1}|∂^{k+1}u|, so along axis i the cell
    size should be ∝ m_i^{-1}, m_i(s) = max over the other axes of |∂_i^{k+1}u|^{1/(k+1)}
    for u = û₀ and û₀ e^{−c t_end} (the structure the damping imprints), measured by
    finite differences on a sample grid.  ``floor`` (relative to the largest m_i) bounds
    the ratio of the largest to the smallest cell by 1/floor, so regions where û₀ is
    negligible now stay resolved for what diffuses into them later.
    """
    d = problem.dim
    samples = {1: 8193, 2: 401, 3: 81}[d]
    axes = [np.linspace(lo, hi, samples) for lo, hi in problem.domain]
    hole = [-problem.hole, problem.hole] if problem.hole > 0 else []
    pts = tensor_grid(axes).reshape(-1, d)
    u0 = problem.initial(pts).reshape((samples,) * d)
    with np.errstate(over="ignore", invalid="ignore"):
        u1 = u0 * np.exp(-problem.damping(pts).reshape(u0.shape) * t_end)
    scale = max(float(np.max(np.abs(u0))), 1e-300)
    out = []
    for i in range(d):
        step = axes[i][1] - axes[i][0]
        profile = np.zeros(samples - degree - 1)
        for u in (u0, np.nan_to_num(u1)):
            deriv = np.abs(np.diff(u / scale, n=degree + 1, axis=i)) / step ** (degree + 1)
            other = tuple(a for a in range(d) if a != i)
            profile = np.maximum(profile, np.max(deriv, axis=other) if other else deriv)
        # stencils across a breakpoint see a jump of c, not smoothness: leave them out
        lo_x, hi_x = axes[i][:profile.size], axes[i][degree + 1:]
        for b in [*problem.breakpoints[i], *hole]:
            profile[(lo_x <= b + 1e-12) & (hi_x >= b - 1e-12)] = 0.0
        monitor = profile ** (1.0 / (degree + 1))
        monitor = np.maximum(monitor, floor * max(float(monitor.max()), 1e-300))
        centres = axes[i][(degree + 1) // 2: (degree + 1) // 2 + monitor.size] + \
            0.5 * ((degree + 1) % 2) * step
        x = np.concatenate([[axes[i][0]], centres, [axes[i][-1]]])
        m = np.concatenate([[monitor[0]], monitor, [monitor[-1]]])
        mass = np.concatenate([[0.0], np.cumsum(0.5 * (m[1:] + m[:-1]) * np.diff(x))])
        out.append(AxisGrading(x=x, mass=mass / mass[-1]))
    return tuple(out)


def build_mesh(comm, problem: Problem, cells, grading=None) -> mesh.Mesh:
    """Interval / rectangle (triangles) / box (tetrahedra) mesh of Ω, lines at breakpoints.

    ``grading`` (one :class:`AxisGrading` per axis, or None for uniform cells) spaces
    the mesh lines; every process computes the same nodes.
    """
    d = problem.dim
    cells = tuple(int(c) for c in cells)
    grading = grading or (None,) * d
    nodes = [axis_nodes(lo, hi, n, list(bp) + ([-problem.hole, problem.hole]
                                               if problem.hole > 0 else []), g)
             for (lo, hi), n, bp, g in zip(problem.domain, cells, problem.breakpoints, grading,
                                           strict=True)]
    if d == 1:
        msh = mesh.create_interval(comm, cells[0], [0.0, float(cells[0])])
    elif d == 2:
        msh = mesh.create_rectangle(comm, [np.zeros(2), np.array(cells, dtype=float)],
                                    list(cells), mesh.CellType.triangle)
    else:
        msh = mesh.create_box(comm, [np.zeros(3), np.array(cells, dtype=float)],
                              list(cells), mesh.CellType.tetrahedron)
    x = msh.geometry.x
    for i in range(d):  # the vertices sit at integer indices: map them to the nodes exactly
        x[:, i] = nodes[i][np.rint(x[:, i]).astype(np.int64)]
    tdim = msh.topology.dim
    n_cells = msh.topology.index_map(tdim).size_local
    keep = np.ones(n_cells, dtype=bool)
    if problem.hole > 0:
        c2v = msh.geometry.dofmaps[0][:n_cells]
        radius = np.linalg.norm(x[c2v][..., :d], axis=-1).min(axis=1)
        keep &= radius >= problem.hole * (1 - 1e-12)
    keep &= _live_cells(msh, problem)
    if comm.allreduce(int(keep.sum())) == 0:
        raise ValueError("the PDE coefficients vanish on the whole domain")
    if comm.allreduce(int((~keep).sum())):
        msh = mesh.create_submesh(msh, tdim, np.nonzero(keep)[0].astype(np.int32))[0]
    return msh


def _live_cells(msh: mesh.Mesh, problem: Problem) -> np.ndarray:
    """Owned cells on which c or D is nonzero at some quadrature point.

    Where ρ_w^sym = 0 (gaps of a compactly supported density) c = D = 0 and ∂_t û = 0:
    such cells are left out of the mesh, so each part of the support evolves with its
    own zero-flux boundary and û keeps its initial value in between (§5.3 of the theory).
    """
    element = basix.ufl.quadrature_element(msh.basix_cell(), degree=4)
    Q = fem.functionspace(msh, element)
    pts = Q.tabulate_dof_coordinates()[:, :problem.dim]
    n_cells = msh.topology.index_map(msh.topology.dim).size_local
    dofs = Q.dofmap.list[:n_cells]
    with np.errstate(all="ignore"):
        active = (np.abs(problem.damping(pts)) + np.abs(problem.diffusion(pts))) > 0
    return ~np.all(~np.nan_to_num(active, nan=True)[dofs], axis=1)


def _grid_values(points: np.ndarray, grid_fn, dim: int) -> np.ndarray:
    """grid_fn (on tensor-grid axes) at scattered points, via their per-axis unique values.

    The Lagrange nodes of the structured meshes lie on a tensor grid, so one grid
    evaluation covers them all; other point sets fall back to one point at a time.
    """
    if points.shape[0] == 0:
        return np.zeros(0, dtype=complex)
    uniq, index = zip(*(np.unique(points[:, i], return_inverse=True) for i in range(dim)),
                      strict=True)
    if math.prod(u.size for u in uniq) <= 8 * points.shape[0] + 4096:
        return np.asarray(grid_fn(list(uniq)))[tuple(index)]
    return np.array([np.asarray(grid_fn([np.array([c]) for c in p])).ravel()[0]
                     for p in points])


def target_initial(target) -> Callable[[np.ndarray], np.ndarray]:
    """û₀ = −ĝ at points (n, d): the closed form when there is one, else the target's
    quadrature on the tensor grid of the points' coordinates."""
    def initial(points):
        if target.hat_expr is not None:
            return -target.transform(points) if points.shape[0] else np.zeros(0, complex)
        return -_grid_values(points, target.transform_on_grid, target.dim)

    return initial


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


# ---------------------------------------------------------------------------------------
# Point evaluation on the case grid (parallel-safe)
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Time stepping
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    """Steps between reported times: per interval (step size, number of steps)."""

    times: np.ndarray
    intervals: tuple[tuple[float, int], ...]
    scheme: str
    startup: int  # CN steps replaced by two backward-Euler half steps each

    @property
    def steps(self) -> int:
        return sum(n for _, n in self.intervals)

    def amplification(self, lam: np.ndarray) -> np.ndarray:
        """R(λ) of the whole sequence up to each reported time, shape (time, λ)."""
        out = np.empty((self.times.size, lam.size))
        total = np.ones_like(lam)
        first = True
        for j, (dt, n) in enumerate(self.intervals):
            z = lam * dt
            if self.scheme == "be":
                total = total / (1 + z) ** n
            else:
                m = min(self.startup, n) if first else 0
                cn = (1 - z / 2) / (1 + z / 2)
                total = total * (1 + z / 2) ** (-2.0 * m) * cn ** (n - m)
            if n:
                first = False
            out[j] = total
        return out

    def error_bound(self) -> np.ndarray:
        """sup_λ≥0 |e^{−λt} − R(λ)| at each reported time: the time error / ‖û₀‖_M."""
        dts = [dt for dt, n in self.intervals if n]
        if not dts:
            return np.zeros(self.times.size)
        lam = np.concatenate([[0.0], np.geomspace(1e-3 / max(self.times[-1], 1e-300),
                                                  1e4 / min(dts), 4000)])
        exact = np.exp(-np.outer(self.times, lam))
        return np.max(np.abs(exact - self.amplification(lam)), axis=1)


def step_plan(times: np.ndarray, dt, scheme: str, startup: int) -> StepPlan:
    """Equal steps ≤ dt on each interval between 0 and the reported times.

    ``dt`` is one step size, or one per interval (the interval ending at times[j]).
    """
    times = np.asarray(times, dtype=float)
    starts = np.concatenate([[0.0], times[:-1]])
    limits = np.broadcast_to(np.asarray(dt, dtype=float), times.shape)
    intervals = []
    for a, b, h in zip(starts, times, limits, strict=True):
        length = b - a
        n = int(math.ceil(length / h - 1e-9)) if length > 0 else 0
        intervals.append((length / n if n else 0.0, n))
    return StepPlan(times=times, intervals=tuple(intervals), scheme=scheme, startup=startup)


def default_dt_ratio(times: np.ndarray, scheme: str, startup: int, tol: float) -> float:
    """The largest r such that steps Δt_j = r·t_j (graded with the reported times t_j)
    keep the a-priori time-error bound ≤ tol at every reported time."""
    times = np.asarray(times, dtype=float)

    def ok(ratio):
        return step_plan(times, ratio * np.maximum(times, 1e-300), scheme,
                         startup).error_bound().max() <= tol

    hi = 1.0
    if ok(hi):
        return hi
    lo = 1e-8
    for _ in range(40):  # bisection in log r
        mid = math.sqrt(lo * hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def progress_bar(total: int, desc: str, comm):
    """A tqdm bar on rank 0 of a terminal; silent otherwise or with FREQDYN_NO_PROGRESS=1."""
    from tqdm import tqdm

    enabled = (comm.rank == 0 and sys.stderr.isatty()
               and os.environ.get("FREQDYN_NO_PROGRESS", "0") != "1")
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def integrate_theta(disc: Discretisation, plan: StepPlan, observe, progress: bool = True):
    """March Re and Im of û₀ through ``plan``; ``observe(j, re, im)`` at each reported time."""
    comm = disc.comm
    state = [u.copy() for u in disc.u0]
    rhs = state[0].duplicate()
    solvers: dict[float, tuple[PETSc.KSP, PETSc.Mat]] = {}

    def operators(dt):
        key = float(f"{dt:.12e}")
        if key not in solvers:
            theta = 1.0 if plan.scheme == "be" else 0.5
            A = disc.M.copy()
            A.axpy(theta * dt, disc.K)
            B = disc.M.copy()
            if plan.scheme == "cn":
                B.axpy(-0.5 * dt, disc.K)
            solvers[key] = (lu_solver(A, comm), B)
        return solvers[key]

    bar = progress_bar(plan.steps, f"{plan.scheme} steps", comm) if progress else None
    first = True
    for j, (dt, n) in enumerate(plan.intervals):
        if n:
            ksp, B = operators(dt)
            half = min(plan.startup, n) if (first and plan.scheme == "cn") else 0
            for k in range(n):
                for u in state:
                    if k < half:  # two backward-Euler half steps: (M + ½Δt K) U' = M U
                        for _ in range(2):
                            disc.M.mult(u, rhs)
                            ksp.solve(rhs, u)
                    else:
                        B.mult(u, rhs)
                        ksp.solve(rhs, u)
                if bar is not None:
                    bar.update(1)
            first = False
        observe(j, state[0], state[1])
    if bar is not None:
        bar.close()
    return {"factorisations": len(solvers)}


# ---------------------------------------------------------------------------------------
# Modal solution
# ---------------------------------------------------------------------------------------


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
    while True:
        dense = nev >= disc.dofs // 3 or disc.dofs <= DENSE_MODAL
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


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FemSettings:
    cells: tuple[int, ...]
    degree: int
    scheme: str
    dt: float | None  # uniform step (given in [fem]); None: graded default
    dt_ratio: float | None  # graded default: steps Δt_j = dt_ratio · t_j
    tol: float
    startup: int
    modal_tol: float
    grading: tuple[AxisGrading, ...] | None = None  # None: uniform cells


def _read_number(table, key, lo, hi, default, integer=False):
    if key not in table:
        return default
    val = table[key]
    kind = int if integer else int | float
    if isinstance(val, bool) or not isinstance(val, kind) or not math.isfinite(val):
        raise CaseError(f"fem.{key}", f"must be {'an integer' if integer else 'a number'}, "
                                      f"got {val!r}")
    if not lo < val <= hi if not integer else not lo <= val <= hi:
        rel = f"in [{lo}, {hi}]" if integer else f"> {lo:g}" + (f" and <= {hi:g}"
                                                                if hi < math.inf else "")
        raise CaseError(f"fem.{key}", f"must be {rel}, got {val!r}")
    return val


def read_fem_table(table: dict, dim: int) -> dict:
    """Validate a ``[fem]`` table; returns the keys given (checked), nothing filled in."""
    unknown = set(table) - FEM_KEYS
    if unknown:
        raise CaseError("fem", f"unknown key(s) {sorted(unknown)}; known: {sorted(FEM_KEYS)}")
    out = {}
    if "cells" in table:
        raw = table["cells"]
        cells = raw if isinstance(raw, list) else [raw] * dim
        if len(cells) != dim or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                                    for c in cells):
            raise CaseError("fem.cells", f"must be an integer >= 1 (or {dim} of them), "
                                         f"got {raw!r}")
        out["cells"] = tuple(cells)
    if "degree" in table:
        out["degree"] = _read_number(table, "degree", 1, 3, None, integer=True)
    if "scheme" in table:
        if table["scheme"] not in SCHEMES:
            raise CaseError("fem.scheme", f"must be one of {', '.join(SCHEMES)}, "
                                          f"got {table['scheme']!r}")
        out["scheme"] = table["scheme"]
    if "mesh" in table:
        if table["mesh"] not in MESH_KINDS:
            raise CaseError("fem.mesh", f"must be one of {', '.join(MESH_KINDS)}, "
                                        f"got {table['mesh']!r}")
        out["mesh"] = table["mesh"]
    if "dt" in table:
        out["dt"] = float(_read_number(table, "dt", 0.0, math.inf, None))
    if "tol" in table:
        out["tol"] = float(_read_number(table, "tol", 0.0, 0.1, None))
    if "modal_tol" in table:
        out["modal_tol"] = float(_read_number(table, "modal_tol", 0.0, 0.1, None))
    if "startup" in table:
        out["startup"] = _read_number(table, "startup", 0, 100, None, integer=True)
    return out


def relative_interpolation_error(problem: Problem, cells, degree: int, t_end: float,
                                 grading=None, comm=MPI.COMM_SELF) -> float:
    """Largest relative L² error of the P_k interpolant of û₀ and of û₀ e^{−c t_end}.

    The second function carries the structure the damping imprints on the solution.
    Both are compared with their exact values at the quadrature points.  The interpolant
    is taken cell by cell (discontinuous P_k, nodes nudged 1e-9 of the way to the cell
    centre), so a jump of c at a mesh line, which the PDE solution smooths into a kink,
    is measured from each side rather than as an O(1) interpolation error.
    """
    disc_mesh = build_mesh(comm, problem, cells, grading)
    V = fem.functionspace(disc_mesh, ("Discontinuous Lagrange", degree))
    q = 2 * degree + 4
    dx = ufl.dx(domain=disc_mesh, metadata={"quadrature_degree": q})
    Q = fem.functionspace(disc_mesh, basix.ufl.quadrature_element(disc_mesh.basix_cell(),
                                                                  degree=q))
    xq = Q.tabulate_dof_coordinates()[:, :problem.dim]
    xv = V.tabulate_dof_coordinates()[:, :problem.dim]
    cell_dofs = V.dofmap.list
    centre = np.empty_like(xv)
    centre[cell_dofs.ravel()] = np.repeat(xv[cell_dofs].mean(axis=1), cell_dofs.shape[1], axis=0)
    xv = xv + 1e-9 * (centre - xv)
    u_q, u_v = problem.initial(xq), problem.initial(xv)
    decay_q, decay_v = np.exp(-problem.damping(xq) * t_end), np.exp(-problem.damping(xv) * t_end)
    worst = 0.0
    for exact_q, interp_v in ((u_q, u_v), (u_q * decay_q, u_v * decay_v)):
        num = den = 0.0
        for part in (np.real, np.imag):
            fq, fv = fem.Function(Q), fem.Function(V)
            fq.x.array[:] = part(exact_q)
            fv.x.array[:] = part(interp_v)
            num += fem.assemble_scalar(fem.form((fv - fq) ** 2 * dx))
            den += fem.assemble_scalar(fem.form(fq**2 * dx))
        num, den = comm.allreduce(num), comm.allreduce(den)
        worst = max(worst, math.sqrt(num / den) if den > 0 else 0.0)
    return worst


def default_cells(problem: Problem, degree: int, tol: float, t_end: float,
                  grading=None) -> tuple[int, ...]:
    """Cells per axis (in proportion to the axis lengths) whose interpolation error is ≤ tol.

    Starts from 16 cells on the longest axis and uses the P_k rate h^{k+1} to predict the
    count, re-measuring until the error is below ``tol`` (a resolution of the spectral
    peaks of û₀: for a Gaussian window of width ℓ they have std 1/(2πℓ) in ξ).
    """
    lengths = problem.domain[:, 1] - problem.domain[:, 0]
    cap = MAX_CELLS[problem.dim]

    def cells_for(n_long):
        return tuple(max(2, int(math.ceil(n_long * L / lengths.max()))) for L in lengths)

    n = 16
    for _ in range(12):
        err = relative_interpolation_error(problem, cells_for(n), degree, t_end, grading)
        if err <= tol:
            return cells_for(n)
        if n >= cap:
            raise CaseError("fem.cells", f"the automatic mesh needs more than {cap} cells per "
                                         f"axis for fem.tol = {tol:g}; set fem.cells or raise "
                                         "fem.tol")
        factor = (err / tol) ** (1.0 / (degree + 1))
        n = min(cap, int(math.ceil(n * min(max(1.15 * factor, 1.25), 8.0))))
    return cells_for(n)


def fem_settings(problem: Problem, table: dict, times: np.ndarray,
                 scheme: str | None = None) -> FemSettings:
    """Settings from a ``[fem]`` table, defaults filled in (``scheme`` overrides the table)."""
    given = read_fem_table(table, problem.dim)
    degree = given.get("degree", 2)
    scheme = scheme or given.get("scheme", "cn")
    tol = given.get("tol", DEFAULT_TOL[problem.dim])
    startup = given.get("startup", 2 if scheme == "cn" else 0)
    t_end = float(times[-1])
    grading = None
    if given.get("mesh", "graded") == "graded":
        grading = mesh_grading(problem, degree, t_end)
    cells = given.get("cells") or default_cells(problem, degree, tol, t_end, grading)
    dt = given.get("dt") if scheme != "modal" else None
    ratio = None
    if scheme != "modal" and dt is None:
        ratio = default_dt_ratio(times, scheme, startup, tol)
    return FemSettings(cells=tuple(cells), degree=degree, scheme=scheme, dt=dt, dt_ratio=ratio,
                       tol=tol, startup=startup, modal_tol=given.get("modal_tol", 1e-8),
                       grading=grading)


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------


def _snap(grid_axes, problem: Problem, tol) -> list[np.ndarray]:
    """Grid coordinates within ``tol`` of a mesh line (box edge, breakpoint, ball radius)
    moved onto it, so a point on a jump of ρ_w is located the same way on every mesh."""
    out = []
    for i, axis in enumerate(grid_axes):
        lines = np.concatenate([problem.domain[i], problem.breakpoints[i],
                                [-problem.hole, problem.hole] if problem.hole > 0 else []])
        axis = np.array(axis, dtype=float)
        near = np.abs(axis[:, None] - lines[None, :])
        hit = near.min(axis=1) <= tol[i]
        axis[hit] = lines[near.argmin(axis=1)[hit]]
        out.append(axis)
    return out


@dataclass
class FemResult:
    """û on the requested grid, shape (time, *xi), with metadata for the result file."""

    u_hat: np.ndarray
    attrs: dict
    variables: dict


def solve_problem(problem: Problem, times, grid_axes: list[np.ndarray],
                  settings: FemSettings, comm=MPI.COMM_WORLD, progress: bool = True
                  ) -> FemResult:
    """Solve ``problem`` and evaluate û_h at the tensor grid ``grid_axes`` at ``times``."""
    start = _time.perf_counter()
    times = np.asarray(times, dtype=float)
    disc = Discretisation(problem, settings.cells, settings.degree, comm, settings.grading)
    box = problem.domain
    span = box[:, 1] - box[:, 0]
    grid = tensor_grid(_snap(grid_axes, problem, 1e-9 * span)).reshape(-1, problem.dim)
    in_box = np.all((grid >= box[:, 0] - 1e-12 * span) & (grid <= box[:, 1] + 1e-12 * span),
                    axis=1)
    evaluator = PointEvaluator(disc.mesh, np.clip(grid, box[:, 0], box[:, 1]))
    on_mesh = in_box & evaluator.found
    fill = np.full(grid.shape[0], np.nan, dtype=complex)
    if problem.outside == "initial" and not np.all(on_mesh):
        off = grid[~on_mesh]
        inside = in_box[~on_mesh]
        if np.any(problem.damping(off[inside]) + problem.diffusion(off[inside]) > 0):
            raise RuntimeError("grid points where the PDE is active were not located")
        fill[~on_mesh] = problem.initial(off)
    shape = tuple(a.size for a in grid_axes)
    out = np.empty((times.size, *shape), dtype=complex)
    f = fem.Function(disc.V)

    def observe(j, re, im):
        vals = fill.copy()
        parts = []
        for vec in (re, im):
            vec.copy(f.x.petsc_vec)
            f.x.scatter_forward()
            parts.append(evaluator(f))
        vals[on_mesh] = parts[0][on_mesh] + 1j * parts[1][on_mesh]
        out[j] = vals.reshape(shape)

    setup = _time.perf_counter() - start
    attrs = {"cells": list(settings.cells), "degree": settings.degree, "dofs": int(disc.dofs),
             "mesh": "uniform" if settings.grading is None else
             "graded (per-axis equidistribution of the interpolation error)",
             "domain": problem.domain.tolist(), "mpi_processes": comm.size,
             "scheme": settings.scheme, "tol": settings.tol}
    attrs.update({k: v for k, v in problem.notes.items()})
    if not np.all(on_mesh):
        attrs["outside_domain"] = (
            f"u_hat keeps its initial value at {int((~on_mesh).sum())} grid points where "
            "the coefficients vanish (outside the meshed support of rho_w: never learned); "
            "those values are exact, not computed" if problem.outside == "initial" else
            f"u_hat is NaN at {int((~on_mesh).sum())} grid points off the mesh (not modelled)")
    variables = {}
    if settings.scheme == "modal":
        lam, weight, trunc, info = modal_solution(disc, times, settings.modal_tol, observe)
        attrs.update(modes=info["modes"], eigensolver=info["eigensolver"],
                     modal_tol=settings.modal_tol)
        variables["modal_rate"] = (("mode",), lam)
        variables["modal_weight"] = (("mode",), weight)
        variables["modal_truncation_error"] = (("time",), trunc)
    else:
        limit = settings.dt if settings.dt is not None else settings.dt_ratio * times
        plan = step_plan(times, limit, settings.scheme, settings.startup)
        info = integrate_theta(disc, plan, observe, progress)
        steps = [h for h, n in plan.intervals if n]
        attrs.update(dt=max(steps, default=0.0), dt_per_interval=[h for h, _ in plan.intervals],
                     dt_rule="uniform (fem.dt)" if settings.dt is not None else
                     f"graded: dt_j <= {settings.dt_ratio:.4g} t_j (a-priori bound <= tol)",
                     steps=plan.steps, startup=settings.startup,
                     factorisations=info["factorisations"])
        variables["time_error_bound"] = (("time",), plan.error_bound())
    attrs["seconds_setup"] = setup
    attrs["seconds"] = _time.perf_counter() - start
    return FemResult(u_hat=out, attrs=attrs, variables=variables)
