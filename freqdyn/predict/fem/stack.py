"""The finite-element stack (DOLFINx, PETSc, SLEPc, MPI), imported once in the right order.

``dolfinx_solver`` must be imported before ``dolfinx`` (it orders MPI first).  The stack
brings its own OpenBLAS; two OpenBLAS thread pools (numpy's and this one) spinning on the
same cores made numpy/scipy LAPACK calls 50-100x slower after the import (a 415 x 415
eigh: 0.03 s -> 3 s on 2 cores), so the stack's copy is loaded single-threaded: the
variable is read when the library loads, then restored.
"""

import os

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

__all__ = ["MPI", "PETSc", "SLEPc", "basix", "dolfinx", "fem", "geometry", "mesh", "ufl"]
