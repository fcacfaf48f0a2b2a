"""Sweeps: a grid of independent runs ("cells") through Dask, resumable cell by cell.

A sweep is a list of cells (dicts of JSON-able settings, e.g. ``{"r": 0.3, "lr": 1e-3,
"wd": 1.0, "seed": 0}``) and a task ``task(cell) -> dict`` run once per cell.  The task
runs on a Dask worker, which writes its result **atomically** (temporary file, then
rename) to ``OUT/cells/<cell-id>.json`` as ``{"cell": ..., "result": ..., "seconds": ...}``
before reporting back.  A cell is finished when its file exists and records the same
cell; a re-run of the sweep loads the finished cells and runs only the missing ones, so
an interrupted sweep (a failed cell, a killed driver, a cancelled cluster job) loses at
most the cells that were running.

The engine is Dask's distributed scheduler; the ``[sweep]`` table of an experiment file
picks where the workers live:

.. code-block:: toml

    [sweep]
    engine = "dask"          # the only engine
    executor = "local"       # "local" (default): a pool of worker processes here;
                             # "slurm": workers as Slurm jobs (dask-jobqueue);
                             # "inprocess": one worker thread in this process (debugging)
    workers = 2              # worker processes, or Slurm jobs of one worker each
    [sweep.slurm]            # keyword arguments of dask_jobqueue.SLURMCluster
    queue = "gpu"
    walltime = "02:00:00"
    memory = "8GB"
    job_extra_directives = ["--gres=gpu:1"]

The environment variable ``FREQDYN_SWEEP_EXECUTOR`` overrides ``executor``, so the same
file runs on a laptop and on a cluster.  Every worker runs one cell at a time with one
thread (Dask sets ``OMP_NUM_THREADS=1`` in its worker processes).
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from freqdyn.errors import InputError
from freqdyn.results import write_json

ENGINES = ("dask",)
EXECUTORS = ("local", "slurm", "inprocess")
EXECUTOR_VARIABLE = "FREQDYN_SWEEP_EXECUTOR"
#: dask_jobqueue.SLURMCluster defaults: one single-threaded worker per job.
SLURM_DEFAULTS = {"cores": 1, "processes": 1, "memory": "4GB", "walltime": "01:00:00"}


class SweepIncomplete(RuntimeError):
    """Some cells failed; the finished ones are on disk and a re-run does only the rest."""

    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        lines = "\n".join(f"  {cid}: {why}" for cid, why in failures.items())
        super().__init__(f"{len(failures)} cell(s) failed (re-run to retry only these):\n"
                         f"{lines}")


@dataclass(frozen=True)
class SweepSettings:
    """Where a sweep's workers run: ``executor``, ``workers`` and Slurm job options."""

    executor: str = "local"
    workers: int = 2
    slurm: Mapping = field(default_factory=dict)


def sweep_settings(text: str = "", *, environ: Mapping | None = None) -> SweepSettings:
    """The ``[sweep]`` table of an experiment file's TOML ``text`` (defaults without one)."""
    environ = os.environ if environ is None else environ
    table = tomllib.loads(text).get("sweep", {}) if text else {}
    if not isinstance(table, dict):
        raise InputError("sweep", "must be a table")
    known = {"engine", "executor", "workers", "slurm"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(f"sweep.{unknown[0]}", f"unknown key; known: {sorted(known)}")
    engine = table.get("engine", "dask")
    if engine not in ENGINES:
        raise InputError("sweep.engine", f"must be one of {ENGINES}, got {engine!r}")
    executor = environ.get(EXECUTOR_VARIABLE) or table.get("executor", "local")
    if executor not in EXECUTORS:
        field_name = EXECUTOR_VARIABLE if environ.get(EXECUTOR_VARIABLE) else "sweep.executor"
        raise InputError(field_name, f"must be one of {EXECUTORS}, got {executor!r}")
    workers = table.get("workers", 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError("sweep.workers", f"must be an integer ≥ 1, got {workers!r}")
    slurm = table.get("slurm", {})
    if not isinstance(slurm, dict):
        raise InputError("sweep.slurm", "must be a table of SLURMCluster options")
    return SweepSettings(executor=executor, workers=workers, slurm=dict(slurm))


def cell_id(cell: Mapping) -> str:
    """A file-name-safe id naming every entry of the cell, e.g. ``r0.3_lr0.001_wd1_seed0``."""
    parts = []
    for key, value in cell.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{key}{text}")
    name = "_".join(parts).replace("/", "-").replace(" ", "")
    if not name:
        raise InputError("sweep", "a cell needs at least one setting")
    return name


def cell_path(out: str | Path, cell: Mapping) -> Path:
    """Where the result of ``cell`` lives: ``out/cells/<cell-id>.json``."""
    return Path(out) / "cells" / f"{cell_id(cell)}.json"


def load_cell(out: str | Path, cell: Mapping) -> dict | None:
    """The stored record of a finished ``cell``, or None if missing or made for other settings."""
    path = cell_path(out, cell)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("cell") == json.loads(json.dumps(dict(cell))) else None


def run_cell(task: Callable[[dict], dict], cell: dict, out: str) -> str:
    """Run ``task(cell)`` and store its result atomically; returns the cell file's path."""
    start = time.perf_counter()
    result = task(dict(cell))
    record = {"cell": cell, "result": result,
              "seconds": round(time.perf_counter() - start, 3)}
    path = cell_path(out, cell)
    write_json(path, record)
    return str(path)


def _distributed():
    try:
        import distributed
    except ImportError:
        raise InputError("sweep", "a [sweep] needs Dask: pip install 'freqdyn[sweep]'") from None
    return distributed


def _client(settings: SweepSettings, stack: ExitStack):
    distributed = _distributed()
    Client, LocalCluster = distributed.Client, distributed.LocalCluster

    # ":0": the scheduler's HTTP server takes a free port, so that sweeps side by side on
    # one machine do not collide on Dask's default 8787
    if settings.executor == "local":
        cluster = LocalCluster(n_workers=settings.workers, threads_per_worker=1,
                               processes=True, dashboard_address=":0")
    elif settings.executor == "inprocess":
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                               dashboard_address=":0")
    else:
        cluster = slurm_cluster(settings)
        cluster.scale(jobs=settings.workers)
    stack.enter_context(cluster)
    return stack.enter_context(Client(cluster))


def slurm_cluster(settings: SweepSettings):
    """A ``dask_jobqueue.SLURMCluster`` from ``[sweep.slurm]`` over :data:`SLURM_DEFAULTS`.

    Nothing is submitted until the cluster is scaled; ``cluster.job_script()`` shows the
    batch script every worker job gets.
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise InputError("sweep.executor", "slurm needs dask-jobqueue: pip install "
                                           "'freqdyn[sweep]'") from err
    options = {**SLURM_DEFAULTS, **settings.slurm}
    try:
        return SLURMCluster(**options)
    except (TypeError, ValueError) as err:  # dask-jobqueue re-raises a bad keyword as ValueError
        raise InputError("sweep.slurm", f"not a SLURMCluster option: {err}") from err


def run_sweep(task: Callable[[dict], dict], cells: Sequence[Mapping], out: str | Path,
              settings: SweepSettings | None = None, *,
              on_done: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """Run ``task`` on every unfinished cell; return the records of all cells, in order.

    ``task`` must be importable by the workers (a module-level function).  Finished cells
    (see :func:`load_cell`) are not run again.  A failing cell does not stop the others;
    after all have ended, :class:`SweepIncomplete` names the failures.  ``on_done(cell_id,
    finished, total)`` is called in the driver as cells finish.
    """
    settings = settings or SweepSettings()
    cells = [dict(cell) for cell in cells]
    ids = [cell_id(cell) for cell in cells]
    if len(set(ids)) != len(ids):
        raise InputError("sweep", "two cells have the same settings")
    missing = [cell for cell in cells if load_cell(out, cell) is None]
    failures: dict[str, str] = {}
    if missing:
        as_completed = _distributed().as_completed

        with ExitStack() as stack:
            client = _client(settings, stack)
            futures = {client.submit(run_cell, task, cell, str(out), pure=False,
                                     key=f"cell-{cell_id(cell)}-{time.time_ns()}"):
                       cell_id(cell) for cell in missing}
            finished = len(cells) - len(missing)
            for future in as_completed(futures):
                name = futures[future]
                if future.status == "finished":
                    finished += 1
                    if on_done is not None:
                        on_done(name, finished, len(cells))
                else:
                    error = future.exception()
                    failures[name] = f"{type(error).__name__}: {error}"
    if failures:
        raise SweepIncomplete(failures)
    return [load_cell(out, cell) for cell in cells]
