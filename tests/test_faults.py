"""Fault injection: damaged checkpoints, unwritable or wrong output folders, a full disk,
concurrent runs, SIGINT and kill -9.  Each fault ends in one line on stderr, the exit codes
of docs/errors.md, no lost finished result, and a re-run that resumes to the same numbers."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_case_text

from freqdyn import results
from freqdyn.cli import main
from freqdyn.results import FolderLock, read_dataset, u_hat

TINY = make_case_text('family = "gaussian"\nscale = 1.0', bounds="[-4.0, 4.0]",
                      extra="points = 101\n[train]\nwidth = 256\ncheckpoint_every = 50")
# long enough (about 2900 steps, 3 s) for a signal to arrive between checkpoints
LONG = (TINY.replace("times = [0.0, 1.0, 2.0]", "times = [0.0, 2.0, 6.0]")
        .replace("checkpoint_every = 50", "checkpoint_every = 200"))


@pytest.fixture
def case(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _train(case, out, capsys=None) -> tuple[int, list[str]]:
    code = main(["train", str(case), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines() if capsys else []
    return code, [line for line in err if line.startswith("freqdyn:")]


def _u(out) -> np.ndarray:
    return u_hat(read_dataset(Path(out) / "measured.nc")).values


def test_a_damaged_checkpoint_is_named_and_resume_falls_back(case, tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.setenv("FREQDYN_NO_PROGRESS", "0")  # the notices go where progress goes
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert _train(case, ref)[0] == 0
    assert _train(case, out)[0] == 0
    newest = sorted((out / "checkpoints").glob("step-*.pt"))
    for damage in (b"", b"garbage", newest[-1].read_bytes()[:100]):  # empty, flipped, cut
        newest[-1].write_bytes(damage)
        (out / "measured.nc").unlink()
        capsys.readouterr()
        assert main(["train", str(case), "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert f"checkpoint {newest[-1]} is damaged" in err and "resumed from step" in err
        np.testing.assert_array_equal(_u(out), _u(ref))


@pytest.mark.parametrize("kind", ["file", "under-file"])
def test_an_output_folder_that_is_a_file_is_refused_in_one_line(case, tmp_path, capsys, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if kind == "file" else blocker / "sub"
    code, lines = _train(case, out, capsys)
    assert code == 2 and len(lines) == 1 and "--out" in lines[0]
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EACCES])
def test_a_full_disk_or_a_refused_write_is_one_line_and_leaves_no_partial_file(
        case, tmp_path, capsys, monkeypatch, fault):
    monkeypatch.setenv("FREQDYN_NO_PROGRESS", "1")
    original = results.atomic_write

    def failing(path, write):
        if Path(path).name == "measured.nc":
            def broken(tmp):
                Path(tmp).write_bytes(b"partial")
                raise OSError(fault, os.strerror(fault), str(path))
            return original(path, broken)
        return original(path, write)

    monkeypatch.setattr(results, "atomic_write", failing)
    out = tmp_path / "out"
    code, lines = _train(case, out, capsys)
    assert code == 2 and len(lines) == 1
    assert ("no space left" in lines[0]) if fault == errno.ENOSPC else ("cannot write" in lines[0])
    assert not (out / "measured.nc").exists() and not list(out.glob(".*.tmp*"))
    monkeypatch.setattr(results, "atomic_write", original)
    assert _train(case, out)[0] == 0  # the checkpoints were kept: the re-run finishes


def test_a_second_run_into_a_folder_in_use_is_refused(case, tmp_path, capsys):
    out = tmp_path / "out"
    with FolderLock(out):
        code, lines = _train(case, out, capsys)
    assert code == 2 and len(lines) == 1 and "another freqdyn run" in lines[0]
    assert not (out / "measured.nc").exists()


def test_stale_temporaries_of_a_killed_write_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    stale = [out / ".measured.nc.abc123.tmp.nc", out / "checkpoints" / ".step-1.pt.x.tmp.pt"]
    for path in stale:
        path.write_bytes(b"")
    (out / "keep.nc").write_bytes(b"result")
    with FolderLock(out):
        pass
    assert not any(p.exists() for p in stale) and (out / "keep.nc").exists()


def _start(case, out) -> subprocess.Popen:
    env = dict(os.environ, FREQDYN_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "freqdyn.cli", "train", str(case),
                             "--out", str(out)], stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_checkpoint(out, proc, timeout=120.0):
    start = time.time()
    while time.time() - start < timeout:
        if list((out / "checkpoints").glob("step-*.pt")) if (out / "checkpoints").exists() \
                else False:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no checkpoint appeared")


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory):
    """(the long case, its uninterrupted run's folder), trained once for both signals."""
    folder = tmp_path_factory.mktemp("long")
    case, ref = folder / "long.toml", folder / "ref"
    case.write_text(LONG)
    assert subprocess.run([sys.executable, "-m", "freqdyn.cli", "train", str(case), "--out",
                           str(ref)], capture_output=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1")).returncode == 0
    return case, ref


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "kill-9"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_numbers(tmp_path, long_reference,
                                                                 sig):
    case, ref = long_reference
    out = tmp_path / "out"
    proc = _start(case, out)
    _wait_for_checkpoint(out, proc)
    time.sleep(0.2)  # mid-step: a Ctrl-C inside a FINUFFT call once ended in a traceback
    proc.send_signal(sig)
    err = proc.stderr.read()
    code = proc.wait(timeout=60)
    if code == 0:
        pytest.skip("the run finished before the signal arrived")
    if sig == signal.SIGINT:
        lines = [line for line in err.strip().splitlines() if line.startswith("freqdyn:")]
        assert code == 130 and len(lines) == 1 and "resumes" in lines[0], err
        assert "Traceback" not in err
    else:
        assert code == -signal.SIGKILL
    again = subprocess.run([sys.executable, "-m", "freqdyn.cli", "train", str(case), "--out",
                            str(out)], capture_output=True, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert again.returncode == 0 and "resumed from step" in again.stdout + again.stderr
    np.testing.assert_array_equal(_u(out), _u(ref))
    assert not list(out.glob(".*.tmp*")) and not list(out.glob("*/.*.tmp*"))


STUDY = """
[experiment]
name = "interrupted"
kind = "study"
seeds = [0, 1]
[settings]
case = "long.toml"
predictions = ["modal"]
tolerance = 5.0
tolerance_reason = "this study checks the resume, not the claim"
spread_draws = 0
wrong_models = []
widths = [256]
[claim]
text = "an interrupted study resumes"
[[check]]
kind = "tolerance"
"""


@pytest.mark.slow
def test_an_interrupted_study_resumes_its_unfinished_network_to_the_same_numbers(tmp_path):
    """Ctrl-C while a study trains its first network: one line, exit 130; the same command
    again resumes that network (its checkpoints are not a reason to refuse the folder),
    trains the rest, and reports what an uninterrupted study reports."""
    (tmp_path / "long.toml").write_text(LONG)
    study = tmp_path / "study.toml"
    study.write_text(STUDY)
    env = dict(os.environ, FREQDYN_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "freqdyn.cli", "validate", str(study), "--out"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert subprocess.run(command + [str(ref)], capture_output=True, env=env).returncode == 0
    proc = subprocess.Popen(command + [str(out)], stderr=subprocess.PIPE, text=True, env=env)
    first = out / "runs" / "test-m256-s0"  # <arm = case name>-m<width>-s<seed>
    _wait_for_checkpoint(first, proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    code = proc.wait(timeout=60)
    if code == 0:
        pytest.skip("the study finished before the signal arrived")
    lines = [line for line in err.strip().splitlines() if line.startswith("freqdyn:")]
    assert code == 130 and len(lines) == 1 and "Traceback" not in err, err
    assert not (first / "measured.nc").exists()
    env.pop("FREQDYN_NO_PROGRESS")  # the per-network status lines say what was resumed
    again = subprocess.run(command + [str(out)], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    assert "(test, m = 256, seed 0) trained in" in again.stderr
    assert "(resumed from step" in again.stderr.split("seed 0) trained in")[1].splitlines()[0]
    for seed in (0, 1):
        name = f"test-m256-s{seed}"
        np.testing.assert_array_equal(_u(out / "runs" / name), _u(ref / "runs" / name))
