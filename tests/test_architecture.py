"""The layer contract of docs/architecture.md: imports only look down, and sit at the top.

``make lint`` runs import-linter with the contract in pyproject.toml; these tests show that
the contract holds on the package and that an import running back up breaks it.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

#: Modules allowed to import freqdyn modules inside functions (docs/architecture.md): the
#: command line and the package API load a command's stack only when it runs; DOLFINx
#: (freqdyn.predict.fem.stack and the modules built on it) loads only in fem predictors.
LAZY_IMPORTERS = {"freqdyn/cli.py", "freqdyn/__init__.py"}
HEAVY = {"freqdyn.predict.fem." + m for m in
         ("stack", "discretisation", "mesh", "modal", "settings", "solver", "exponential")}

needs_linter = pytest.mark.skipif(not LINT.exists(), reason="import-linter not installed")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


@needs_linter
def test_the_package_keeps_the_layer_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout
    assert "2 kept, 0 broken" in result.stdout


@needs_linter
@pytest.mark.parametrize("module, line", [
    ("inputs/case.py", "import freqdyn.theory.derive"),    # inputs looking up at theory
    ("nets/train.py", "import freqdyn.plots.training"),    # compute importing figures
    ("plots/study.py", "import freqdyn.runs.study"),       # figures importing the runner
])
def test_an_import_that_runs_back_up_breaks_the_contract(tmp_path, module, line):
    shutil.copytree(ROOT / "freqdyn", tmp_path / "freqdyn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "freqdyn" / module
    path.write_text(path.read_text() + f"\n{line}  # an upward import\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "BROKEN" in result.stdout and line.split()[-1] in result.stdout


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names]
    return found


def test_internal_imports_sit_at_the_top_of_modules():
    """Only the command line, the package API and the DOLFINx stack import lazily."""
    hidden = []
    for path in sorted((ROOT / "freqdyn").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in LAZY_IMPORTERS:
            continue
        hidden += [f"{rel}:{line} imports {name}" for line, name in _function_level_imports(path)
                   if name.startswith("freqdyn") and name not in HEAVY]
    assert not hidden, "\n".join(hidden)


def test_the_check_sees_a_hidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from freqdyn.nets.train import train\n    return train\n")
    assert _function_level_imports(module) == [(2, "freqdyn.nets.train")]
