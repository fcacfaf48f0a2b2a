"""Initialization densities ρ_w of the first-layer frequencies w ∈ ℝ^d.

One object per density serves theory, finite elements and the trainer alike:

* ``symbolic()`` — the density as a sympy expression in ``w`` (d = 1) or ``w0, w1, w2``;
* ``density(w)`` — vectorised numeric density, ``w`` of shape ``(..., d)``;
* ``even_density(w)`` — ρ_w^sym(w) = ½(ρ_w(w) + ρ_w(−w)), the only part the NTK sees;
* ``char(z)`` — the even characteristic function k(z) = E[cos 2π w·z] (convention B),
  in closed form where one exists and by accurate quadrature otherwise;
* ``sample(n, generator)`` — n i.i.d. draws as a float64 torch tensor of shape (n, d),
  reproducible from the torch generator alone.

Units: w and ξ are frequencies in cycles per unit of x (convention B, features
cos 2π w·x), so the density has units of (unit of x)^d.

Families (case key ``network.rho_w.family``):

========== ================================ ==========================================
family     parameters                       k(z) = E cos(2π w·z)
========== ================================ ==========================================
gaussian   scale s                          exp(−2π² s² |z|²)
uniform    bound B (box [−B, B]^d)          Π_i sin(2πB z_i)/(2πB z_i)
laplace    scale b (independent axes)       Π_i 1/(1 + (2πb z_i)²)
student_t  scale s, dof ν (isotropic)       K_{ν/2}(y) y^{ν/2} / (Γ(ν/2) 2^{ν/2−1}),
                                            y = 2π s √ν |z|
mixture    components (each with weight)    Σ_k weight_k k_k(z)
expression density (sympy text), support    quadrature
========== ================================ ==========================================

Every base family also takes an optional ``center`` (scalar or list of d numbers):
the density is shifted to c and k(z) gains the factor cos(2π c·z).
"""

from freqdyn.inputs.densities.base import Density
from freqdyn.inputs.densities.config import FAMILIES, density_from_config
from freqdyn.inputs.densities.expression import Expression
from freqdyn.inputs.densities.families import Gaussian, Laplace, Mixture, StudentT, Uniform

__all__ = ["FAMILIES", "Density", "Expression", "Gaussian", "Laplace", "Mixture", "StudentT",
           "Uniform", "density_from_config"]
