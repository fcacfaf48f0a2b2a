"""The sweep engine: settings, cell files, resuming an interrupted sweep, Slurm scripts."""

import json
import os
import uuid
from pathlib import Path

import pytest

from freqdyn.errors import InputError
from freqdyn.runs import sweep


def square(cell: dict) -> dict:
    """Test task: leaves a marker file per call; fails while a poison file names the cell."""
    markers = Path(cell["markers"])
    (markers / f"{cell['x']}-{uuid.uuid4().hex}").touch()
    if (markers / f"poison-{cell['x']}").exists():
        raise ValueError(f"poisoned cell {cell['x']}")
    return {"square": cell["x"] ** 2, "pid": os.getpid(), "nan": float("nan")}


def calls(markers: Path, x=None) -> int:
    names = [p.name for p in markers.iterdir() if not p.name.startswith("poison")]
    return sum(1 for n in names if x is None or n.startswith(f"{x}-"))


def make_cells(markers: Path, n: int) -> list[dict]:
    return [{"x": x, "markers": str(markers)} for x in range(n)]


def test_settings_defaults_file_and_environment_override():
    assert sweep.sweep_settings("", environ={}) == sweep.SweepSettings("local", 2, {})
    text = """
[sweep]
engine = "dask"
executor = "inprocess"
workers = 3
[sweep.slurm]
queue = "short"
"""
    settings = sweep.sweep_settings(text, environ={})
    assert (settings.executor, settings.workers, settings.slurm) == ("inprocess", 3,
                                                                     {"queue": "short"})
    override = sweep.sweep_settings(text, environ={sweep.EXECUTOR_VARIABLE: "slurm"})
    assert override.executor == "slurm"


@pytest.mark.parametrize(("text", "field"), [
    ('[sweep]\nexecutor = "mpi"', "sweep.executor"),
    ("[sweep]\nworkers = 0", "sweep.workers"),
    ('[sweep]\nengine = "ray"', "sweep.engine"),
    ("[sweep]\npool = 2", "sweep.pool"),
])
def test_bad_sweep_settings_name_the_field(text, field):
    with pytest.raises(InputError, match=field):
        sweep.sweep_settings(text, environ={})


def test_cell_ids_name_every_setting():
    assert sweep.cell_id({"r": 0.3, "lr": 1e-3, "wd": 1.0, "seed": 0}) == \
        "r0.3_lr0.001_wd1_seed0"


def test_interrupted_sweep_resumes_without_rerunning_finished_cells(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    (markers / "poison-2").touch()
    cells = make_cells(markers, 5)
    settings = sweep.SweepSettings(executor="inprocess")
    with pytest.raises(sweep.SweepIncomplete) as failed:
        sweep.run_sweep(square, cells, tmp_path / "out", settings)
    assert list(failed.value.failures) == [sweep.cell_id(cells[2])]
    assert "poisoned cell 2" in str(failed.value)
    files = sorted(p.name for p in (tmp_path / "out" / "cells").iterdir())
    assert files == sorted(f"{sweep.cell_id(c)}.json" for i, c in enumerate(cells) if i != 2)
    assert calls(markers) == 5

    (markers / "poison-2").unlink()
    records = sweep.run_sweep(square, cells, tmp_path / "out", settings)
    assert calls(markers) == 6 and calls(markers, 2) == 2
    assert [r["result"]["square"] for r in records] == [0, 1, 4, 9, 16]
    assert records[0]["result"]["nan"] is None  # strict JSON on disk

    sweep.run_sweep(square, cells, tmp_path / "out", settings)  # all finished: no call
    assert calls(markers) == 6


def test_a_cell_file_for_other_settings_is_not_taken_as_finished(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    cell = make_cells(markers, 1)[0]
    path = sweep.cell_path(tmp_path, cell)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"cell": {**cell, "x": 99}, "result": {}}))
    assert sweep.load_cell(tmp_path, cell) is None
    (record,) = sweep.run_sweep(square, [cell], tmp_path, sweep.SweepSettings("inprocess"))
    assert record["cell"] == cell and calls(markers) == 1


def test_local_executor_runs_cells_in_a_pool_of_worker_processes(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    cells = make_cells(markers, 4)
    seen = []
    records = sweep.run_sweep(square, cells, tmp_path / "out",
                              sweep.SweepSettings(executor="local", workers=2),
                              on_done=lambda name, done, total: seen.append((done, total)))
    assert [r["result"]["square"] for r in records] == [0, 1, 4, 9]
    pids = {r["result"]["pid"] for r in records}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert sorted(seen) == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert calls(markers) == 4


def test_slurm_executor_writes_the_file_options_into_the_job_script():
    settings = sweep.sweep_settings("""
[sweep]
executor = "slurm"
workers = 4
[sweep.slurm]
queue = "gpu"
walltime = "02:30:00"
job_extra_directives = ["--gres=gpu:1"]
scheduler_options = {dashboard_address = ":0"}
""", environ={})
    with sweep.slurm_cluster(settings) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p gpu" in script
    assert "#SBATCH -t 02:30:00" in script
    assert "#SBATCH --gres=gpu:1" in script
    assert "--nthreads 1" in script or "--nworkers 1" in script
    with pytest.raises(InputError, match="sweep.slurm"):
        sweep.slurm_cluster(sweep.SweepSettings("slurm", 1, {"no_such_option": 1}))
