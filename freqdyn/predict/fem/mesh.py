"""Interval, triangle and tetrahedron meshes of the problem's box (DOLFINx)."""

from __future__ import annotations

import numpy as np

from freqdyn.predict.fem.grading import axis_nodes
from freqdyn.predict.fem.problem import Problem
from freqdyn.predict.fem.stack import basix, fem, mesh


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
    own zero-flux boundary and û keeps its initial value in between (docs/theory.md §5).
    """
    element = basix.ufl.quadrature_element(msh.basix_cell(), degree=4)
    Q = fem.functionspace(msh, element)
    pts = Q.tabulate_dof_coordinates()[:, :problem.dim]
    n_cells = msh.topology.index_map(msh.topology.dim).size_local
    dofs = Q.dofmap.list[:n_cells]
    with np.errstate(all="ignore"):
        active = (np.abs(problem.damping(pts)) + np.abs(problem.diffusion(pts))) > 0
    return ~np.all(~np.nan_to_num(active, nan=True)[dofs], axis=1)
