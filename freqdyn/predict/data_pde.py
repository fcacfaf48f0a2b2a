"""The continuum error PDE beside the kernel flow of a 1D data case (docs/theory.md §13).

The kernel flow on the samples (:mod:`freqdyn.predict.data_flow`) is exact for the
sampled problem.  The error PDE ∂_t û = ∇·(D ∇û) − c û (docs/theory.md §5) is its
continuum model: the loss integrated over every x, no window, no sampling.  Here it is
solved between the data's lowest and highest DFT frequencies ξ_k (spacing 1/L), from
û₀ = the transform of −y over every sample (the flow's own û at t = 0 at the ξ_k),
by the conservative finite differences of :mod:`freqdyn.predict.fd` (exact in time by
a Krylov exponential of the tridiagonal operator, zero flux at ±Nyquist) on
:data:`REFINE` nodes per DFT spacing, from the windowed data's transform there (the DFT
values are every REFINE-th node).  Reported per time:

* ``pde_difference``: rel L²(ξ) of the PDE against the sampled flow over every ξ_k;
* ``pde_difference_resolved``: the same over |ξ| ≤ ν_train/2, half the training grid's
  Nyquist frequency ν_train = 1/(2 × the training spacing);
* ``pde_discretisation_error``: the PDE on half the nodes against all of them (an upper
  estimate of the error of the coarse run, so of the fine one's).

The continuum model leaves out what sampling does: frequencies above ν_train alias onto
lower ones (the training grid cannot tell them apart), the held-out samples are not
trained, and the box edges window the signal.  So it is a good model of the sampled
problem where ρ_w carries little mass beyond ν_train and the error is read in the
resolved band; the two numbers above say how good, case by case.  In 2D and 3D it is not
computed (the 1D scheme only).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from freqdyn.inputs.fourier import nudft, relative_l2
from freqdyn.predict.fd import symmetric_operator
from freqdyn.predict.kernel_flow import lanczos_exponential
from freqdyn.theory.derive import derive

#: Nodes per DFT spacing 1/L: the windowed data's transform varies on the scale 1/L (a
#: signal on [x₀, x₀ + L] carries the phase e^{−2πiξx₀}), which the DFT grid only samples.
REFINE = 4
#: Most finite-difference nodes (a Krylov basis of a few hundred vectors of this length).
MAX_NODES = 1 << 20


def continuum_pde(case, u_hat: np.ndarray, times) -> tuple[dict, dict]:
    """(variables, attrs) of the PDE beside the sampled flow's ``u_hat`` (T, K), module
    text; empty for d > 1 or more than :data:`MAX_NODES` nodes."""
    target = case.target
    if case.dim != 1:
        return {}, {"continuum_pde": "not computed in d > 1 (the 1D scheme only)"}
    xi = target.dft_axes()[0]
    if REFINE * (xi.size - 1) + 1 > MAX_NODES:
        return {}, {"continuum_pde": f"not computed: {xi.size} DFT frequencies need more "
                                     f"than {MAX_NODES} nodes"}
    der = derive(case)
    damping, diffusion = der.numeric("damping"), der.numeric("diffusion")
    x, y = target.points()[:, 0], target.values.ravel()

    def solve(refine):
        nodes = np.linspace(xi[0], xi[-1], refine * (xi.size - 1) + 1)
        u0 = nudft(-y, x, target.sample_volume, nodes)  # the windowed data's transform
        diag, off, scale = symmetric_operator(nodes, damping(nodes[:, None]),
                                              diffusion(nodes[:, None]))
        op = sparse.diags([off, diag, off], [-1, 0, 1], format="csr")
        # û(t) = M^{−½} exp(−tS) M^{½} û₀, S symmetric: one Krylov exponential per part
        parts = [lanczos_exponential(op.dot, part / scale, times)[0] * scale
                 if np.any(part) else np.zeros((len(times), nodes.size))
                 for part in (u0.real, u0.imag)]
        return (parts[0] + 1j * parts[1])[:, ::refine]  # on the DFT frequencies

    fine, coarse = solve(REFINE), solve(REFINE // 2)
    resolved = np.abs(xi) <= target.training_nyquist / 2
    unit = {"units": "1"}
    variables = {
        "pde_difference": (("time",), relative_l2(fine, u_hat, axes=1), {
            "long_name": "rel L2 over the DFT frequencies of the continuum PDE against the "
                         "sampled kernel flow", **unit}),
        "pde_difference_resolved": (("time",), relative_l2(
            fine[:, resolved], u_hat[:, resolved], axes=1), {
            "long_name": "the same over |xi| <= half the training grid's Nyquist frequency",
            **unit}),
        "pde_discretisation_error": (("time",), relative_l2(coarse, fine, axes=1), {
            "long_name": f"the PDE at {REFINE // 2} against {REFINE} nodes per DFT spacing",
            **unit}),
    }
    attrs = {"continuum_pde": f"the error PDE by conservative finite differences on {REFINE} "
                              "nodes per DFT spacing (exact in time, zero flux at the "
                              "Nyquist frequency) from the windowed data's transform",
             "training_nyquist": target.training_nyquist}
    return variables, attrs
