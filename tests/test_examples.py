"""The literate examples in docs/examples run as they are (small sizes passed in)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # each runs an example in a fresh interpreter


def _run_example(name: str, *args: str) -> list[str]:
    """Run docs/examples/NAME with ``args`` in a bare environment; its stdout lines."""
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / name), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={"FREQDYN_NO_PROGRESS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.slow
def test_five_line_api_example_runs_and_reports_per_time_errors(tmp_path):
    lines = _run_example("five_lines.py", str(tmp_path / "run"), "4096")
    assert lines[0].startswith("max relative L2(xi) error, PDE vs network (m = 4096): ")
    errors = [float(line.split()[-1]) for line in lines[1:]]
    assert len(errors) == 5 and errors[0] == 0.0            # t = 0: both are -ĝ
    assert float(lines[0].split()[-1]) == max(errors)
    # an untrained network keeps û(0) = −ĝ: its error is the PDE's own change; m = 4096
    # lands well inside it at every t > 0 (m = 256: 0.23-0.65 against 0.60-0.89)
    import freqdyn
    from freqdyn.inputs.fourier import relative_l2
    from freqdyn.results import u_hat

    pde = u_hat(freqdyn.predict(freqdyn.load_case(ROOT / "pde" / "gaussian-1d.toml"),
                                method="modal")).values
    untrained = relative_l2(pde, np.broadcast_to(pde[:1], pde.shape), axes=(1,))
    assert np.all(np.asarray(errors[1:]) < 0.25 * untrained[1:]), (errors, untrained)
    assert (tmp_path / "run" / "measured.nc").is_file()


def test_your_signal_example_runs_theory_next_to_networks(tmp_path):
    """m = 4096 on the EEG channel: the networks' test MSE is within 15 % of the theory's
    at every time (measured 0.6 %, 3 %, 9 %: the finite-width spread grows as the error
    falls), and equal at t = 0 (both are the mean square of the held-out samples)."""
    lines = _run_example("your_signal.py", str(tmp_path / "run"), "4096")
    pairs = [(float(line.split()[6].rstrip(",")), float(line.split()[-1])) for line in lines[:4]]
    assert pairs[0][0] == pairs[0][1]
    assert all(abs(net / theory - 1) < 0.15 for theory, net in pairs)
    assert pairs[-1][0] < 0.1 * pairs[0][0]  # the networks did learn most of it
    assert lines[-1].startswith("best Gaussian scale at t = 1000: ")


@pytest.mark.slow
def test_image_scale_example_finds_an_interior_best_sigma():
    """scikit-image's text image at T = 1e4: under- and over-fitting on either side of the
    best σ (measured 16, 28.1 dB; 6.4 dB at σ = 64 where it interpolates noise-like
    high frequencies)."""
    lines = _run_example("image_scale.py", "text", "1e4")
    psnr = [float(line.split()[-2]) for line in lines[:-1]]
    best = int(np.argmax(psnr))
    assert 0 < best < len(psnr) - 1 and psnr[best] > psnr[0] + 3 and psnr[best] > psnr[-1] + 3
    assert lines[-1] == "best sigma at T = 10000: 16"
