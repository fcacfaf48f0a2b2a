"""The ``[fem]`` table: degree, scheme, cells, tolerances; defaults chosen from the case."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

import freqdyn.memory as memory
from freqdyn.config import Table
from freqdyn.errors import AccuracyWarning, InputError
from freqdyn.predict.fem.grading import AxisGrading, mesh_grading
from freqdyn.predict.fem.mesh import build_mesh
from freqdyn.predict.fem.problem import Problem
from freqdyn.predict.fem.stack import MPI, basix, fem, ufl
from freqdyn.predict.fem.stepping import default_dt_ratio

SCHEMES = ("exponential", "modal", "cn", "be")
FEM_KEYS = {"cells", "degree", "scheme", "dt", "tol", "startup", "modal_tol", "mesh"}
MESH_KINDS = ("graded", "uniform")
#: Default accuracy target (relative) of the space and of the time discretisation each,
#: per dimension (in d ≥ 2 a looser target keeps the default mesh affordable).
DEFAULT_TOL = {1: 1e-4, 2: 1e-4, 3: 3e-4}
#: Largest number of cells per axis the automatic mesh choice may use, per dimension
#: (in 3D, 64 cells of P2 are 2.1·10⁶ dofs, some minutes of conjugate gradients).
MAX_CELLS = {1: 200_000, 2: 1200, 3: 64}
#: Memory model (bytes), measured in 3D with P2 on one process: the interpreter and
#: libraries, each dof of a solve (M, K, the shifted matrix and its preconditioner, the
#: Krylov vectors; 2.1 kB measured at 5·10⁵ dofs), each simplex of the interpolation check
#: (4.6 kB measured at 3.8·10⁵ tetrahedra).
MEMORY_BASE, MEMORY_PER_DOF, MEMORY_PER_CHECK_CELL = 1.0e9, 2.5e3, 5.0e3


def solve_memory(cells, degree: int) -> tuple[int, float]:
    """(dofs, bytes) of a P_k solve on ``cells`` per axis."""
    dofs = math.prod(degree * n + 1 for n in cells)
    return dofs, MEMORY_BASE + MEMORY_PER_DOF * dofs


def check_memory(cells) -> float:
    """Bytes of the interpolation check on ``cells`` per axis (d! simplices a box cell)."""
    return MEMORY_BASE + MEMORY_PER_CHECK_CELL * math.prod(cells) * math.factorial(len(cells))


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


def read_fem_table(table: dict, dim: int) -> dict:
    """Validate a ``[fem]`` table; returns the keys given (checked), nothing filled in."""
    t = Table(table, "fem", FEM_KEYS)
    out = {}
    if "cells" in t:
        raw = t.get("cells")
        cells = raw if isinstance(raw, list) else [raw] * dim
        if len(cells) != dim or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                                    for c in cells):
            raise InputError("fem.cells", f"must be an integer >= 1 (or {dim} of them), "
                                          f"got {raw!r}")
        out["cells"] = tuple(cells)
    readers = {"degree": lambda k: t.integer(k, low=1, high=3),
               "scheme": lambda k: t.choice(k, None, SCHEMES),
               "mesh": lambda k: t.choice(k, None, MESH_KINDS),
               "dt": lambda k: t.number(k, low=0.0, low_open=True),
               "tol": lambda k: t.number(k, low=0.0, high=0.1, low_open=True),
               "modal_tol": lambda k: t.number(k, low=0.0, high=0.1, low_open=True),
               "startup": lambda k: t.integer(k, low=0, high=100)}
    for key, read in readers.items():
        if key in t:
            out[key] = read(key)
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
    cap = MAX_CELLS[problem.dim] * 2 // max(degree, 2)  # about the same dofs for P3

    def cells_for(n_long):
        return tuple(max(2, int(math.ceil(n_long * L / lengths.max()))) for L in lengths)

    budget = memory.budget_bytes()

    def affordable(n_long):
        cells = cells_for(n_long)
        return max(solve_memory(cells, degree)[1], check_memory(cells)) <= budget

    n, measured = 16, None
    for _ in range(12):
        if not affordable(n):
            largest = 16
            while affordable(largest + 1) and largest < n:
                largest += 1
            dofs, need = solve_memory(cells_for(n), degree)
            need = max(need, check_memory(cells_for(n)))
            reach = (f"; about {measured[1] * (measured[0] / largest) ** (degree + 1):.0e} is "
                     f"within reach ({largest} cells)" if measured else "")
            raise InputError("fem.tol", f"the automatic mesh for fem.tol = {tol:g} needs "
                                        f"about {n} cells on the longest axis ({dofs:.2g} P"
                                        f"{degree} dofs, {memory.gb(need)}), more than the "
                                        f"{memory.gb(budget)} this machine allows "
                                        f"(FREQDYN_MEMORY_GB); raise fem.tol{reach}, or set "
                                        "fem.cells")
        err = relative_interpolation_error(problem, cells_for(n), degree, t_end, grading)
        measured = (n, err)
        if err <= tol:
            return cells_for(n)
        if n >= cap:
            raise InputError("fem.cells", f"the automatic mesh needs more than {cap} cells per "
                                         f"axis for fem.tol = {tol:g} (interpolation error "
                                         f"{err:.1e} at {cap}); set fem.cells or raise fem.tol "
                                         f"above {err:.1e}")
        factor = (err / tol) ** (1.0 / (degree + 1))
        n = min(cap, int(math.ceil(n * min(max(1.15 * factor, 1.25), 8.0))))
    return cells_for(n)


#: A given mesh whose interpolation error of û₀ exceeds this is refused: every number it
#: would print is wrong in the first digit or the second.
REFUSE_INTERPOLATION_ERROR = 0.05


def check_given_cells(problem: Problem, table: dict, settings: FemSettings,
                      t_end: float) -> None:
    """For a case whose ``[fem]`` table gives ``cells``: warn when they resolve û₀ worse than
    ``tol`` (the solution's error is at least its interpolation error), refuse them above
    :data:`REFUSE_INTERPOLATION_ERROR`.  (The automatic mesh meets ``tol`` by
    construction; the convergence tests call :func:`fem_settings` with coarse meshes on
    purpose and do not come here.)"""


    if "cells" not in table:
        return
    cells, degree, tol, grading = settings.cells, settings.degree, settings.tol, settings.grading
    memory.require("fem.cells", check_memory(cells), f"the interpolation check on "
                   f"{list(cells)} cells", "use fewer cells")
    err = relative_interpolation_error(problem, cells, degree, t_end, grading)
    if err > REFUSE_INTERPOLATION_ERROR:
        raise InputError("fem.cells", f"{list(cells)} cells interpolate û₀ with a relative "
                                      f"error of {err:.2g}, so the solution cannot be "
                                      "trusted to that; use more cells, or leave fem.cells "
                                      f"out for a mesh that meets fem.tol = {tol:g}")
    if err > tol:
        warnings.warn(f"fem: the given {list(cells)} cells interpolate û₀ with a relative "
                      f"error of {err:.1e}, above fem.tol = {tol:g}; the solution is no more "
                      "accurate than that (leave fem.cells out for an automatic mesh)",
                      AccuracyWarning, stacklevel=3)


def _automatic_mesh(problem: Problem, tol: float, t_end: float, grading, graded: bool):
    """(degree, cells, grading) of the automatic mesh: P2, or P3 where P2 cannot meet
    ``tol`` within :data:`MAX_CELLS` (its error falls like h⁴ instead of h³, so a 3D case
    that needs 80 cells of P2 needs about 40 of P3, about the same dofs)."""
    try:
        return 2, default_cells(problem, 2, tol, t_end, grading), grading
    except InputError as exc:
        if exc.field != "fem.cells":  # memory, not the cell cap: P3 needs more
            raise
        grading = mesh_grading(problem, 3, t_end) if graded else None
        try:
            return 3, default_cells(problem, 3, tol, t_end, grading), grading
        except InputError as p3:
            raise InputError(p3.field, f"P2 and P3 both: {p3.problem}") from None


def fem_settings(problem: Problem, table: dict, times: np.ndarray,
                 scheme: str | None = None) -> FemSettings:
    """Settings from a ``[fem]`` table, defaults filled in (``scheme`` overrides the table)."""
    given = read_fem_table(table, problem.dim)
    degree = given.get("degree", 2)
    scheme = scheme or given.get("scheme", "exponential")
    tol = given.get("tol", DEFAULT_TOL[problem.dim])
    startup = given.get("startup", 2 if scheme == "cn" else 0)
    t_end = float(times[-1])
    grading = None
    if given.get("mesh", "graded") == "graded":
        grading = mesh_grading(problem, degree, t_end)
    if given.get("cells"):
        cells = given["cells"]
    elif "degree" in given:
        cells = default_cells(problem, degree, tol, t_end, grading)
    else:
        degree, cells, grading = _automatic_mesh(problem, tol, t_end, grading,
                                                 given.get("mesh", "graded") == "graded")
    dofs, need = solve_memory(cells, degree)
    memory.require("fem.cells", need, f"the P{degree} solve on {list(cells)} cells "
                   f"({dofs:.2g} dofs)", "use fewer cells or a lower fem.degree")
    stepping = scheme in ("cn", "be")
    if "dt" in given and not stepping:
        raise InputError("fem.dt", f"applies to the time-stepping schemes cn and be; "
                                   f"{scheme!r} is exact in time")
    dt = given.get("dt") if stepping else None
    ratio = None
    if stepping and dt is None:
        ratio = default_dt_ratio(times, scheme, startup, tol)
    return FemSettings(cells=tuple(cells), degree=degree, scheme=scheme, dt=dt, dt_ratio=ratio,
                       tol=tol, startup=startup, modal_tol=given.get("modal_tol", 1e-8),
                       grading=grading)
