"""freqdyn: frequency dynamics of neural-network training.

Theory (the frequency-space error PDE of 2-layer Fourier-feature networks in the NTK
regime, docs/theory.md) and experiment (trained PyTorch networks) on one grid, in one file
format.  Fourier convention B throughout: features cos(2π w·x), sin(2π w·x) and
û(ξ) = ∫ u(x) exp(−2πi ξ·x) dx.

The five-line API::

    import freqdyn
    case = freqdyn.load_case("pde/gaussian-1d.toml")
    pred = freqdyn.predict(case, method="modal")     # xarray Dataset, shared schema
    meas = freqdyn.train(case, out="out/run")        # a TrainResult; meas.dataset
    report = freqdyn.compare(pred, meas)             # {"max_rel_l2": ..., "rel_l2": ...}

Your own samples (a file in ``[target] data``, or an array)::

    case = freqdyn.data_case(y, extent=[[0, 1]], holdout={"stride": 2}, sigma_a=0.1,
                             rho_w={"family": "gaussian", "scale": 10.0}, times=[0, 100])
    pred = freqdyn.predict(case, method="kernel-flow")   # pred.train_mse, pred.test_mse

The layers (docs/architecture.md; each imports only from those below it, checked by
``make lint``): :mod:`freqdyn.inputs` (case, densities, target) → :mod:`freqdyn.results`
(one schema) → :mod:`freqdyn.theory` (derive, NTK, LFP) → :mod:`freqdyn.predict` (one
registry) → :mod:`freqdyn.nets` (models, the one training loop, measurement) →
:mod:`freqdyn.analysis` (compare, finite width, design) → :mod:`freqdyn.plots` →
:mod:`freqdyn.runs` (experiment files, the commands' drivers) → :mod:`freqdyn.grok`.
"""

import warnings

# torch.func's jvp/vjp script a helper with torch.jit.script, which warns on every use from
# torch 2.9 on; the warning is about torch's own code, not freqdyn's, and would only be noise
warnings.filterwarnings("ignore", message=".*torch.jit.script. is deprecated",
                        category=FutureWarning)

# The subpackage freqdyn.predict is loaded here, before the function predict below is
# defined: loading it later (any `import freqdyn.predict.…`) would otherwise replace the
# function with the module on this package.
import freqdyn.predict  # noqa: E402, F401, I001
from freqdyn._version import __version__  # noqa: E402
from freqdyn.errors import InputError, TrainingDiverged  # noqa: E402
from freqdyn.inputs.case import Case, data_case, load_case  # noqa: E402


def predict(case, method: str = "modal", **options):
    """û(ξ, t) of ``case`` by a registered method (:mod:`freqdyn.predict.registry`)."""
    from freqdyn.predict.registry import predict as _predict

    return _predict(case, method, **options)


def train(case, out, **options):
    """Train the case's network into ``out`` (:func:`freqdyn.nets.train.train`)."""
    from freqdyn.runs.training import train_to as _train

    return _train(case, out, **options)


def compare(prediction, measurement, **options) -> dict:
    """Relative L²(ξ) errors per time and their maximum (:func:`.analysis.compare.compare`)."""
    from freqdyn.analysis.compare import compare as _compare

    return _compare(prediction, measurement, **options)


__all__ = ["Case", "InputError", "TrainingDiverged", "__version__", "compare", "data_case",
           "load_case", "predict", "train"]
