"""The literate examples in docs/examples run as they are (small sizes passed in)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_five_line_api_example_runs_and_reports_per_time_errors(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "five_lines.py"),
                             str(tmp_path / "run"), "256"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={"FREQDYN_NO_PROGRESS": "1",
                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("max relative L2(xi) error, PDE vs network (m = 256): ")
    errors = [float(line.split()[-1]) for line in lines[1:]]
    assert len(errors) == 5 and errors[0] == 0.0            # t = 0: both are -ĝ
    assert float(lines[0].split()[-1]) == max(errors) < 1.0   # m = 256: finite width
    assert (tmp_path / "run" / "measured.nc").is_file()
