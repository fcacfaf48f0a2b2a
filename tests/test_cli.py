"""Command line: derive, kernel-flow, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from freqdyn import cli
from freqdyn.cli import main
from freqdyn.results import read_dataset


def test_derive_json_is_sympifiable(pde_dir, capsys):
    assert main(["derive", str(pde_dir / "gaussian-2d.toml"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    for key in ("ntk", "damping", "diffusion"):
        expr = sp.sympify(payload[key])
        assert isinstance(expr, sp.Expr)
    assert {str(s) for s in sp.sympify(payload["damping"]).free_symbols} == {"xi0", "xi1"}
    assert {str(s) for s in sp.sympify(payload["ntk"]).free_symbols} == {"x0", "x1", "xp0",
                                                                          "xp1"}


def test_kernel_flow_writes_result_and_figure(pde_dir, tmp_path, capsys):
    out = tmp_path / "kf"
    assert main(["kernel-flow", str(pde_dir / "gaussian-1d.toml"), "--out", str(out)]) == 0
    ds = read_dataset(out / "prediction.nc")
    assert ds.attrs["method"] == "kernel-flow"
    assert (out / "prediction.png").stat().st_size > 10_000
    assert "estimated truncation error" in capsys.readouterr().out


def test_bad_case_exits_with_the_field_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[network]\ndim = 1\nsigma_a = 0.5\n[network.rho_w]\nfamily = "gaussian"\n'
                   'scale = 0\n[target]\ng = "exp(-x**2)"\n[frequency]\nbounds = [-4.0, 4.0]\n'
                   'times = [0.0]\n')
    proc = subprocess.run([sys.executable, "-m", "freqdyn", "derive", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "network.rho_w.scale" in proc.stderr and "> 0" in proc.stderr


def test_a_warning_is_one_line_and_given_once(pde_dir, tmp_path):
    """An accuracy warning reaches the user as one line (no echoed source line), once,
    although the figure's fine-time solve meets the same condition again."""
    case = tmp_path / "r3.toml"
    case.write_text((pde_dir / "gaussian-1d.toml").read_text() + "\n[kernel_flow]\nR = 3.0\n")
    proc = subprocess.run([sys.executable, "-m", "freqdyn", "kernel-flow", str(case), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("freqdyn: warning (AccuracyWarning): "
                                                   "kernel-flow of gaussian-1d"), lines


def test_public_predict_stays_a_function_after_its_subpackage_is_imported():
    import freqdyn
    import freqdyn.predict.data_flow  # noqa: F401

    assert callable(freqdyn.predict) and freqdyn.predict.__module__ == "freqdyn"


@pytest.mark.parametrize("command", [
    ["solve", "pde/gaussian-1d.toml", "--method", "kernel-flow"],
    ["train", "pde/gaussian-1d.toml"],
    ["validate", "validation/gaussian-1d.toml"],
    ["design", "--profile", "flat", "--band", "3"],
], ids=["solve", "train", "validate", "design"])
@pytest.mark.parametrize("where", ["file", "under-file", "proc"])
def test_a_bad_out_is_refused_in_one_line_before_any_work(tmp_path, capsys, monkeypatch,
                                                          command, where):
    """--out that is a file, lies under a file, or cannot be made (/proc): exit 2, one
    line naming --out, and the command's work never starts."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {"file": blocker, "under-file": blocker / "sub", "proc": Path("/proc/freqdyn-x")}
    started = []
    monkeypatch.setattr(cli, "_cmd_solve", lambda args: started.append(args))
    monkeypatch.setattr(cli, "_cmd_train", lambda args: started.append(args))
    code = cli.main([*command, "--out", str(out[where])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--out" in err[0], err
    assert not started and blocker.read_text() == "x"


def test_a_size_beyond_the_machine_is_one_line_and_exit_2(tmp_path, capsys):
    """``grok --set width=...`` once ended in torch's allocator traceback with exit 1."""
    exp = Path(__file__).resolve().parents[1] / "validation" / "grokking" / \
        "modular-addition-mlp.toml"
    assert main(["grok", str(exp), "--set", "width=10000000000", "--out",
                 str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # estimated before anything is allocated: the field, the estimate and the budget
    assert len(err) == 1 and "settings.width" in err[0] and "needs about" in err[0], err
    assert " GB" in err[0] and "this machine allows" in err[0]
