"""freqdyn: frequency dynamics of neural-network training.

Theory (the frequency-space error PDE of 2-layer Fourier-feature networks in the NTK
regime) and experiment (trained PyTorch networks) on one grid, in one file format.
Fourier convention B throughout: features cos(2π w·x), sin(2π w·x) and
û(ξ) = ∫ u(x) exp(−2πi ξ·x) dx.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("freqdyn")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from freqdyn.errors import InputError  # noqa: E402
from freqdyn.inputs.case import Case, load_case  # noqa: E402

__all__ = ["Case", "InputError", "load_case", "__version__"]
