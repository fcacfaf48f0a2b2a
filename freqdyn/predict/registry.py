"""The one predictor registry: every way freqdyn predicts û(ξ, t), registered once by name.

    >>> import freqdyn
    >>> case = freqdyn.load_case("pde/uniform-1d.toml")
    >>> ds = freqdyn.predict(case, method="uniform-series")   # a schema dataset

Every predictor takes a case (and keyword options) and returns û on the case's ξ grid at
the case's times as a dataset of the shared schema (:mod:`freqdyn.results`).  The
command line (``freqdyn solve --method``), the studies (``predictions = [...]``) and the
public :func:`predict` all read :data:`PREDICTORS`.  Heavy stacks (DOLFINx) are imported
only when their predictor runs.

============== ========================================================================
method         what it computes
============== ========================================================================
kernel-flow    infinite-width kernel gradient flow in x, transformed (docs/theory.md §4)
fem            the error PDE by finite elements, exact in time (Krylov exponential)
modal          the same discretisation, exact in time by its generalised eigenmodes
fd             1D conservative finite differences, exact in time (eigenmodes)
damping        pure damping û₀ e^{−κ²α ρ_w t} (exact for σ_a = 0 or frozen w)
uniform-series the exact Neumann cosine series of a uniform ρ_w (docs/theory.md §6)
lfp-relu       the LFP PDE of a 2-layer ReLU network ([lfp] table), finite elements
lfp-tanh       the LFP PDE of a 2-layer tanh network
lfp-relu-ode   the effective LFP of ReLU: damping only
lfp-tanh-ode   the effective LFP of tanh
relu-ntk-flow  kernel flow with the exact (arc-cosine) ReLU NTK: the LFP's reference
tanh-ntk-flow  kernel flow with the tanh NTK by quadrature (d = 1): the tanh LFP's reference
============== ========================================================================
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass

import xarray as xr

from freqdyn.errors import InputError
from freqdyn.predict.data_flow import data_kernel_flow
from freqdyn.predict.exact import pure_damping, uniform_box_series
from freqdyn.predict.fd import fd_prediction
from freqdyn.predict.kernel_flow import kernel_flow
from freqdyn.predict.lfp import lfp_ode_prediction, ntk_flow_prediction
from freqdyn.results import frequency_dataset


@dataclass(frozen=True)
class Predictor:
    """A registered prediction method."""

    name: str
    description: str
    run: Callable[..., xr.Dataset]
    dims: tuple[int, ...] = (1, 2, 3)
    mpi: bool = False  # runs under mpiexec (every process computes, rank 0 writes)
    #: exact in time and cheap per time: learning times and figures use a fine time grid
    exact_in_time: bool = False
    #: runs on a data case (``[target] data``): samples, not an expression
    data: bool = False
    #: the method of the same model without its diffusion (a study's default wrong model)
    damping_only: str | None = None


PREDICTORS: dict[str, Predictor] = {}


def register(name: str, description: str, *, dims=(1, 2, 3), mpi: bool = False,
             exact_in_time: bool = False, data: bool = False, damping_only: str | None = None):
    """Decorator: register ``function(case, **options) -> Dataset`` as method ``name``."""
    def wrap(function):
        if name in PREDICTORS:
            raise ValueError(f"predictor {name!r} is registered twice")
        PREDICTORS[name] = Predictor(name, description, function, tuple(dims), mpi,
                                     exact_in_time, data, damping_only)
        return function
    return wrap


def methods() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(PREDICTORS)


def predictor(method: str, field: str = "method") -> Predictor:
    """The predictor ``method``; an :class:`InputError` naming ``field`` if unknown."""
    if method not in PREDICTORS:
        raise InputError(field, f"unknown prediction method {method!r}; known: "
                                f"{', '.join(PREDICTORS)}")
    return PREDICTORS[method]


def predict(case, method: str = "modal", **options) -> xr.Dataset:
    """û(ξ, t) of ``case`` by ``method`` (see :data:`PREDICTORS`) as a schema dataset."""
    entry = predictor(method)
    if case.dim not in entry.dims:
        raise InputError("method", f"{method!r} works in d = {entry.dims}, the case has "
                                   f"d = {case.dim}")
    if case.is_data and not entry.data:
        on_data = ", ".join(n for n, p in PREDICTORS.items() if p.data)
        raise InputError("method", f"{method!r} needs an expression target g; the case's "
                                   f"target is data, for which the methods are {on_data}")
    start = _time.perf_counter()
    ds = entry.run(case, **options)
    ds.attrs.setdefault("seconds_total", _time.perf_counter() - start)
    return ds


# ---------------------------------------------------------------------------------------
# The registered methods (imports inside, so that only the stack a method needs loads)
# ---------------------------------------------------------------------------------------


@register("kernel-flow", "infinite-width kernel gradient flow in x (the reference)",
          exact_in_time=True, data=True, damping_only="damping")
def _kernel_flow(case, times=None, settings=None, route: str | None = None):
    if case.is_data:  # the user's samples: the flow on them (predict/data_flow.py)
        return data_kernel_flow(case, times, route or case.section("kernel_flow").get(
            "route", "auto"), continuum=True)
    return kernel_flow(case, settings, times=times)


@register("fem", "the error PDE by finite elements, exact in time by a Krylov "
          "exponential ([fem] scheme = cn or be: time steps)", mpi=True,
          damping_only="damping")
def _fem(case, comm=None, progress: bool = False):
    from freqdyn.predict.fem.solver import solve_case

    return solve_case(case, "fem", comm, progress)


@register("modal", "the FEM discretisation, exact in time by its eigenmodes", mpi=True,
          exact_in_time=True, damping_only="damping")
def _modal(case, comm=None, progress: bool = False):
    from freqdyn.predict.fem.solver import solve_case

    return solve_case(case, "modal", comm, progress)


@register("fd", "1D conservative finite differences, exact in time", dims=(1,), exact_in_time=True,
          damping_only="damping")
def _fd(case, times=None):

    return fd_prediction(case, times)


@register("damping", "pure damping û₀ exp(−κ²α ρ_w t)", exact_in_time=True)
def _damping(case, times=None):

    return frequency_dataset(case, pure_damping(case, times), "damping", times=times,
                             attrs={"model": "pure damping u_hat0 exp(-rho_w t)"})


@register("uniform-series", "the exact Neumann cosine series of a uniform rho_w",
          exact_in_time=True, damping_only="damping")
def _uniform_series(case, times=None):

    return frequency_dataset(case, uniform_box_series(case, times), "uniform-series",
                             times=times)


def _lfp_pde(activation):
    def run(case, comm=None, progress: bool = False):
        from freqdyn.predict.fem.solver import solve_case

        return solve_case(case, f"lfp-{activation}", comm, progress)
    return run


def _lfp_ode(activation):
    def run(case, times=None):

        return lfp_ode_prediction(case, activation, times)
    return run


for _act in ("relu", "tanh"):
    register(f"lfp-{_act}", f"the LFP PDE of a 2-layer {_act} network, finite elements",
             mpi=True, damping_only=f"lfp-{_act}-ode")(_lfp_pde(_act))
    register(f"lfp-{_act}-ode", f"the effective LFP of {_act}: damping only",
             exact_in_time=True)(_lfp_ode(_act))


def _ntk_flow(activation):
    def run(case, times=None):

        return ntk_flow_prediction(case, activation, times)
    return run


register("relu-ntk-flow", "kernel flow with the exact arc-cosine ReLU NTK", dims=(1, 2),
         exact_in_time=True)(_ntk_flow("relu"))
register("tanh-ntk-flow", "kernel flow with the tanh NTK by quadrature", dims=(1,),
         exact_in_time=True)(_ntk_flow("tanh"))


def summary(ds: xr.Dataset) -> str:
    """One line: method, discretisation, cost."""
    a = ds.attrs
    method = a["method"]
    seconds = float(a.get("seconds", a.get("seconds_total", 0.0)))
    if "scheme" not in a:
        return f"{method} on {a['case_name']}: {seconds:.3g} s"
    if "degree" not in a:  # not a finite-element solve (fd: exact in time on its nodes)
        return f"{method} on {a['case_name']}: {a['scheme']}, {a['cells']} cells, {seconds:.3g} s"
    if a["scheme"] == "modal":
        cost = f"{a['modes']} modes ({a['eigensolver']})"
    elif a["scheme"] == "exponential":
        cost = (f"exact in time (Krylov exponential, up to {a['krylov_vectors_max']} vectors, "
                f"{a['factorisations']} factorisations)")
    else:
        cost = f"{a['scheme']} dt = {float(a['dt']):.3g}, {a['steps']} steps"
    return (f"{method} on {a['case_name']}: P{a['degree']}, cells {a['cells']}, "
            f"{a['dofs']} dofs, {cost}, {a['mpi_processes']} process(es), "
            f"{seconds:.3g} s solve + {float(a['seconds_settings']):.3g} s settings")
