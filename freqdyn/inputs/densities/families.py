"""The closed-form families: Gaussian, uniform, Laplace, Student t and mixtures.

Each gives ρ_w, its even characteristic function k(z) = E cos(2π w·z) (convention B,
docs/theory.md §2) in closed form, and exact sampling from a torch generator.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch
from scipy import special

from freqdyn.inputs.densities.base import Density
from freqdyn.inputs.symbols import axis_symbols


class Gaussian(Density):
    """ρ_w = 𝒩(c, s² I): (2π s²)^{−d/2} exp(−|w − c|²/(2 s²))."""

    family = "gaussian"

    def __init__(self, dim: int, scale: float, center=None):
        super().__init__(dim, center)
        self.scale = float(scale)

    def _symbolic_centered(self, w):
        s = sp.nsimplify(self.scale)
        r2 = sum(wi**2 for wi in w)
        return (2 * sp.pi * s**2) ** sp.Rational(-self.dim, 2) * sp.exp(-r2 / (2 * s**2))

    def _char_symbolic_centered(self, z):
        s = sp.nsimplify(self.scale)
        return sp.exp(-2 * sp.pi**2 * s**2 * sum(zi**2 for zi in z))

    def _density_centered(self, w):
        s = self.scale
        return (2 * np.pi * s * s) ** (-self.dim / 2) * np.exp(-np.sum(w * w, -1) / (2 * s * s))

    def _char_centered(self, z):
        return np.exp(-2 * np.pi**2 * self.scale**2 * np.sum(z * z, -1))

    def _sample_centered(self, n, generator):
        return self.scale * torch.randn(n, self.dim, generator=generator, dtype=torch.float64)

    def extent(self, rtol: float = 1e-12) -> float:
        return float(np.max(np.abs(self.center)) + self.scale * math.sqrt(2 * math.log(1 / rtol)))


class Uniform(Density):
    """ρ_w uniform on the box c + [−B, B]^d, value (2B)^{−d}."""

    family = "uniform"

    def __init__(self, dim: int, bound: float, center=None):
        super().__init__(dim, center)
        self.bound = float(bound)

    def _symbolic_centered(self, w):
        b = sp.nsimplify(self.bound)
        inside = sp.And(*[sp.Abs(wi) <= b for wi in w])
        return sp.Piecewise(((2 * b) ** (-self.dim), inside), (0, True))

    def _char_symbolic_centered(self, z):
        b = sp.nsimplify(self.bound)
        return sp.Mul(*[sp.sinc(2 * sp.pi * b * zi) for zi in z])

    def _density_centered(self, w):
        inside = np.all(np.abs(w) <= self.bound, axis=-1)
        return np.where(inside, (2 * self.bound) ** (-self.dim), 0.0)

    def _char_centered(self, z):
        return np.prod(np.sinc(2 * self.bound * z), axis=-1)

    def _sample_centered(self, n, generator):
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        return self.bound * (2 * u - 1)

    @property
    def support(self):
        return self.center - self.bound, self.center + self.bound


class Laplace(Density):
    """ρ_w = Π_i exp(−|w_i − c_i|/b)/(2b): independent Laplace axes."""

    family = "laplace"

    def __init__(self, dim: int, scale: float, center=None):
        super().__init__(dim, center)
        self.scale = float(scale)

    def _symbolic_centered(self, w):
        b = sp.nsimplify(self.scale)
        return sp.Mul(*[sp.exp(-sp.Abs(wi) / b) / (2 * b) for wi in w])

    def _char_symbolic_centered(self, z):
        b = sp.nsimplify(self.scale)
        return sp.Mul(*[1 / (1 + (2 * sp.pi * b * zi) ** 2) for zi in z])

    def _density_centered(self, w):
        b = self.scale
        return np.prod(np.exp(-np.abs(w) / b) / (2 * b), axis=-1)

    def _char_centered(self, z):
        return np.prod(1.0 / (1.0 + (2 * np.pi * self.scale * z) ** 2), axis=-1)

    def _sample_centered(self, n, generator):
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64) - 0.5
        return -self.scale * torch.sign(u) * torch.log1p(-2 * u.abs())

    def extent(self, rtol: float = 1e-12) -> float:
        return float(np.max(np.abs(self.center)) + self.scale * math.log(1 / rtol))


class StudentT(Density):
    """Isotropic multivariate Student t with scale s and ν degrees of freedom:

    ρ_w = Γ((ν+d)/2) / (Γ(ν/2) (νπ)^{d/2} s^d) · (1 + |w − c|²/(ν s²))^{−(ν+d)/2}.
    """

    family = "student_t"

    def __init__(self, dim: int, scale: float, dof: float, center=None):
        super().__init__(dim, center)
        self.scale = float(scale)
        self.dof = float(dof)

    def _norm(self):
        nu, d, s = self.dof, self.dim, self.scale
        return math.exp(
            math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - (d / 2) * math.log(nu * math.pi)
        ) / s**d

    def _symbolic_centered(self, w):
        nu, s, d = sp.nsimplify(self.dof), sp.nsimplify(self.scale), self.dim
        r2 = sum(wi**2 for wi in w)
        norm = sp.gamma((nu + d) / 2) / (sp.gamma(nu / 2) * (nu * sp.pi) ** sp.Rational(d, 2)
                                          * s**d)
        return norm * (1 + r2 / (nu * s**2)) ** (-(nu + d) / 2)

    def _char_symbolic_centered(self, z):
        nu, s = sp.nsimplify(self.dof), sp.nsimplify(self.scale)
        y = 2 * sp.pi * s * sp.sqrt(nu) * sp.sqrt(sum(zi**2 for zi in z))
        return sp.besselk(nu / 2, y) * y ** (nu / 2) / (sp.gamma(nu / 2) * 2 ** (nu / 2 - 1))

    def _density_centered(self, w):
        nu, d, s = self.dof, self.dim, self.scale
        return self._norm() * (1 + np.sum(w * w, -1) / (nu * s * s)) ** (-(nu + d) / 2)

    def _char_centered(self, z):
        nu = self.dof
        y = 2 * np.pi * self.scale * math.sqrt(nu) * np.sqrt(np.sum(z * z, -1))
        out = np.ones_like(y)
        pos = y > 0
        yp = y[pos]
        # K_{ν/2}(y) y^{ν/2} / (Γ(ν/2) 2^{ν/2-1}), with kve for stability at large y.
        log_val = (np.log(special.kve(nu / 2, yp)) - yp + (nu / 2) * np.log(yp)
                   - math.lgamma(nu / 2) - (nu / 2 - 1) * math.log(2))
        out[pos] = np.exp(log_val)
        return out

    def _sample_centered(self, n, generator):
        normal = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
        # chi2_ν / ν by its inverse survival function: exact, and driven by the generator.
        chi2 = special.chdtri(self.dof, np.clip(u, 1e-300, 1.0)) / self.dof
        return self.scale * normal / torch.from_numpy(np.sqrt(chi2))[:, None]


class Mixture(Density):
    """ρ_w = Σ_k p_k ρ_k with weights p_k > 0 normalised to sum 1."""

    family = "mixture"

    def __init__(self, dim: int, components: list[Density], weights):
        super().__init__(dim, None)
        self.components = components
        weights = np.asarray(weights, dtype=float)
        self.weights = weights / weights.sum()

    def _symbolic_centered(self, w):
        ws = axis_symbols("w", self.dim)
        return sp.Add(*[
            sp.nsimplify(p) * c.symbolic().subs(dict(zip(ws, w, strict=True)))
            for p, c in zip(self.weights, self.components, strict=True)
        ])

    def char_symbolic(self):
        parts = [c.char_symbolic() for c in self.components]
        if any(p is None for p in parts):
            return None
        return sp.Add(*[sp.nsimplify(p) * e for p, e in zip(self.weights, parts, strict=True)])

    def _density_centered(self, w):
        return sum(p * c.density(w) for p, c in zip(self.weights, self.components, strict=True))

    def _char_centered(self, z):
        return sum(p * c.char(z) for p, c in zip(self.weights, self.components, strict=True))

    def _rule_breaks(self) -> list[float]:
        """Every component's kinks, within the mixture's own outer radius."""
        outer = self.extent(rtol=1e-16)
        edges = {0.0, outer}.union(*(c._rule_breaks() for c in self.components))
        return sorted(e for e in edges if e <= outer)

    def _sample_centered(self, n, generator):
        probs = torch.as_tensor(self.weights)
        which = torch.multinomial(probs, n, replacement=True, generator=generator) if n else \
            torch.zeros(0, dtype=torch.long)
        out = torch.empty(n, self.dim, dtype=torch.float64)
        for k, comp in enumerate(self.components):
            idx = torch.nonzero(which == k).flatten()
            if idx.numel():
                out[idx] = comp.sample(idx.numel(), generator)
        return out

    @property
    def support(self):
        boxes = [c.support for c in self.components]
        if any(b is None for b in boxes):
            return None
        return (np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0))

    def extent(self, rtol: float = 1e-12) -> float:
        return max(c.extent(rtol) for c in self.components)
