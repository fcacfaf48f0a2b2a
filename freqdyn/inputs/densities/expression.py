"""Densities given as sympy text (``family = "expression"``), normalised numerically."""

from __future__ import annotations

import warnings

import numpy as np
import sympy as sp
import torch
from scipy import integrate

from freqdyn.errors import InputError
from freqdyn.inputs.densities.base import Density, cosine_sum, shell_directions
from freqdyn.inputs.symbols import axis_symbols, parse_expression


class Expression(Density):
    """A density given as sympy text, normalised automatically.

    ``support`` (optional box ``[lo, hi]``, the same for every axis, or per-axis
    ``[[lo0, hi0], ...]``) restricts the density to a box; without it the density
    lives on ℝ^d and must decay.  In d = 1 normalisation uses adaptive quadrature on the
    (possibly infinite) line; k(z) of a density with a bounded (or effective) box uses
    composite Gauss–Legendre panels for all lags at once, that of a heavy-tailed one
    QUADPACK QAWF per lag; sampling uses the numeric inverse CDF on a fine grid.
    In d = 2, 3 they use a tensor grid over the effective box and exact rejection
    sampling from a piecewise-constant envelope.
    """

    family = "expression"

    def __init__(self, dim: int, text: str, support=None, field: str = "network.rho_w"):
        super().__init__(dim, None)
        self.text = text
        self.field = field
        try:
            self.raw = parse_expression(text, "w", dim)
        except ValueError as exc:
            raise InputError(f"{field}.density", str(exc)) from None
        self._box = None if support is None else _parse_box(support, dim, f"{field}.support")
        w = axis_symbols("w", dim)
        raw_fn = sp.lambdify(w, self.raw, modules="numpy")

        def raw_numeric(pts):
            with np.errstate(all="ignore"):
                vals = np.asarray(raw_fn(*np.moveaxis(pts, -1, 0)), dtype=float)
            vals = np.broadcast_to(vals, pts.shape[:-1]).copy()
            if self._box is not None:
                lo, hi = self._box
                vals[~np.all((pts >= lo) & (pts <= hi), axis=-1)] = 0.0
            return vals

        self._raw_numeric = raw_numeric
        self._box_eff = self._effective_box()
        self._check_values()
        self.mass = self._total_mass()
        if not np.isfinite(self.mass) or self.mass <= 0:
            raise InputError(f"{field}.density", f"is not normalisable (integral = {self.mass})")
        self._build_sampler()

    # -- set-up ---------------------------------------------------------------------
    def _effective_box(self):
        """The box holding all but a negligible part of the density."""
        if self._box is not None:
            return self._box
        shell = shell_directions(self.dim)
        peak = np.max(self._raw_numeric(np.linspace(-1, 1, 41)[:, None] * np.ones(self.dim)))
        radii = np.geomspace(0.5, 1e6, 200)
        shells = []
        for r in radii:
            vals = self._raw_numeric(r * shell)
            shells.append(np.max(np.abs(vals)) if np.all(np.isfinite(vals)) else np.nan)
        shells = np.array(shells)  # NaN: not finite there (reported by _check_values)
        peak = max(peak, float(np.nanmax(shells, initial=0.0)))
        if peak <= 0:
            raise InputError(
                f"{self.field}.density",
                "is zero at every point sampled (w in [-1, 1] and on shells out to "
                f"|w| = 1e6); if it is a bump narrower than that, give {self.field}.support "
                "= [lo, hi] around it")
        with np.errstate(invalid="ignore"):
            above = np.flatnonzero(shells >= 1e-13 * peak)  # the bump may sit off the origin
        if above.size == 0 or above[-1] < radii.size - 1:
            r = radii[0] if above.size == 0 else radii[above[-1] + 1]
            return -r * np.ones(self.dim), r * np.ones(self.dim)
        if self.dim == 1:
            return None  # heavy tails: 1-D quadrature works on the infinite line
        raise InputError(
            f"{self.field}.density",
            "is not normalisable or has too heavy tails for d > 1: it is still "
            f"{np.max(self._raw_numeric(radii[-1] * shell)):.3g} at |w| = {radii[-1]:.0e}; "
            f"give {self.field}.support = [lo, hi] to restrict it to a box",
        )

    def _check_grid(self, per_axis: int):
        box = self._box_eff if self._box_eff is not None else (-50 * np.ones(1), 50 * np.ones(1))
        axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(*box, strict=True)]
        grids = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=-1)

    def _check_values(self):
        pts = self._check_grid({1: 4001, 2: 201, 3: 61}[self.dim])
        vals = self._raw_numeric(pts)
        bad = ~np.isfinite(vals)
        if bad.any():
            at = pts[np.argmax(bad)]
            raise InputError(f"{self.field}.density", f"is NaN or infinite at w = {at.tolist()}")
        if vals.min() < 0:
            at = pts[np.argmin(vals)]
            raise InputError(
                f"{self.field}.density",
                f"takes negative values (min {vals.min():.3g} at w = {at.tolist()})",
            )
        if vals.max() <= 0:
            raise InputError(f"{self.field}.density", "is zero at every point of its check "
                                                      f"grid; if it is a narrow bump, give "
                                                      f"{self.field}.support = [lo, hi] "
                                                      "around it")

    def _grid(self, per_axis: int):
        """Midpoint grid over the effective box: (points, cell volume, axes)."""
        lo, hi = self._box_eff
        axes = [lo[i] + (np.arange(per_axis) + 0.5) * (hi[i] - lo[i]) / per_axis
                for i in range(self.dim)]
        grids = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([g.ravel() for g in grids], axis=-1)
        vol = float(np.prod((hi - lo) / per_axis))
        return pts, vol, axes

    def _total_mass(self) -> float:
        if self.dim == 1:
            f = lambda t: float(self._raw_numeric(np.array([[t]]))[0])  # noqa: E731
            if self._box_eff is None:
                return self._mass_on_line(f)
            lo, hi = self._box_eff[0][0], self._box_eff[1][0]
            val, _ = integrate.quad(f, lo, hi, limit=500, points=[0.0] if lo < 0 < hi else None)
            return val
        pts, vol, _ = self._grid({2: 400, 3: 120}[self.dim])
        return float(self._raw_numeric(pts).sum() * vol)

    def _mass_on_line(self, f) -> float:
        """∫_ℝ f with a divergence check: the mass on [−R, R] must converge as R grows."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            masses, radii = [], np.geomspace(1.0, 1e8, 17)
            prev = 0.0
            for r_lo, r_hi in zip(np.concatenate([[0.0], radii[:-1]]), radii, strict=True):
                seg = integrate.quad(f, r_lo, r_hi, limit=500)[0] + \
                    integrate.quad(f, -r_hi, -r_lo, limit=500)[0]
                prev += seg
                masses.append(prev)
            increments = np.diff(masses)
            if increments[-1] > 1e-6 * masses[-1]:
                raise InputError(
                    f"{self.field}.density",
                    f"is not normalisable: its integral over [-R, R] keeps growing "
                    f"({masses[-5]:.4g} at R = {radii[-5]:.0e}, {masses[-1]:.4g} at "
                    f"R = {radii[-1]:.0e})",
                )
            tail = (integrate.quad(f, radii[-1], np.inf)[0]
                    + integrate.quad(f, -np.inf, -radii[-1])[0])
        return masses[-1] + tail

    def _build_sampler(self):
        if self.dim == 1:
            if self._box_eff is None:
                # sinh-mapped grid: fine near the bulk, reaching |w| ~ 1e8 in the tails.
                u = np.linspace(-20.0, 20.0, 200_001)
                grid = np.sinh(u) * 1e-1
            else:
                grid = np.linspace(self._box_eff[0][0], self._box_eff[1][0], 200_001)
            dens = self._raw_numeric(grid[:, None]) / self.mass
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
            cdf /= cdf[-1]
            keep = np.concatenate([[True], np.diff(cdf) > 0])
            self._cdf, self._cdf_grid = cdf[keep], grid[keep]
        else:
            per_axis = {2: 128, 3: 40}[self.dim]
            pts, vol, axes = self._grid(per_axis)
            self._cell = np.array([(a[1] - a[0]) for a in axes])
            sub = np.stack(np.meshgrid(*([np.array([-0.5, 0.0, 0.5])] * self.dim),
                                       indexing="ij"), -1).reshape(-1, self.dim)
            corner_vals = np.stack([self._raw_numeric(pts + s * self._cell) for s in sub], -1)
            self._cell_centers = pts
            self._envelope = 1.5 * corner_vals.max(-1) + 1e-14 * corner_vals.max()

    # -- interface ------------------------------------------------------------------
    def _symbolic_centered(self, w):
        expr = self.raw / sp.Float(self.mass, 17)
        if self._box is not None:
            lo, hi = self._box
            inside = sp.And(*[(wi >= sp.Float(a)) & (wi <= sp.Float(b))
                              for wi, a, b in zip(w, lo, hi, strict=True)])
            expr = sp.Piecewise((expr, inside), (0, True))
        return expr

    def _density_centered(self, w):
        return self._raw_numeric(w) / self.mass

    def _char_centered(self, z):
        z = np.asarray(z, dtype=float)
        flat = z.reshape(-1, self.dim)
        if self.dim == 1:
            # one value per distinct |z|; differences of grid points that agree to 1e-12
            # (rounding of x_i − x_j) share one, far below the quadratures' error
            key = np.round(np.abs(flat[:, 0]), 12)
            uniq, inverse = np.unique(key, return_inverse=True)
            vals = self._char_panels(uniq) if self._box_eff is not None else None
            if vals is None:
                vals = np.array([self._char_1d(float(t)) for t in uniq])
            return vals[inverse].reshape(z.shape[:-1])
        pts, vol, _ = self._grid({2: 400, 3: 100}[self.dim])
        dens = self.even_density(pts) * vol
        out = np.empty(flat.shape[0])
        for start in range(0, flat.shape[0], 512):
            block = flat[start:start + 512]
            out[start:start + 512] = np.cos(2 * np.pi * block @ pts.T) @ dens
        return out.reshape(z.shape[:-1])

    def _rule_breaks(self) -> list[float]:
        lo, hi = float(self._box_eff[0][0]), float(self._box_eff[1][0])
        return sorted({0.0, abs(lo), abs(hi)})

    def _char_panels(self, t: np.ndarray, tol: float = 1e-12) -> np.ndarray | None:
        """k(t) for all t at once on a bounded density, by the converged cosine rule
        (:meth:`~freqdyn.inputs.densities.base.Density.cosine_rule`): one matrix product
        instead of one QUADPACK call per lag.  None when the rule does not converge
        (features too sharp for panels; QUADPACK per lag then)."""
        rule = self.cosine_rule(float(t.max(initial=0.0)), tol)
        return None if rule is None else cosine_sum(*rule, t)

    def _char_1d(self, t: float) -> float:
        """E cos(2π w t) = ∫ ρ_sym(w) cos(2π t w) dw by QUADPACK (QAWO/QAWF)."""
        f = lambda w: float(self.even_density(np.array([[w]]))[0])  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            if self._box_eff is None:
                if t == 0:
                    return 1.0
                val = integrate.quad(f, 0, np.inf, weight="cos", wvar=2 * np.pi * t, limlst=200)[0]
                return 2.0 * val
            r = float(max(abs(self._box_eff[0][0]), abs(self._box_eff[1][0])))
            if t == 0:
                return 2.0 * integrate.quad(f, 0, r, limit=500)[0]
            return 2.0 * integrate.quad(f, 0, r, weight="cos", wvar=2 * np.pi * t, limit=1000)[0]

    def _sample_centered(self, n, generator):
        if self.dim == 1:
            u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
            return torch.from_numpy(np.interp(u, self._cdf, self._cdf_grid))[:, None]
        out = []
        probs = torch.as_tensor(self._envelope / self._envelope.sum())
        need = n
        while need > 0:
            batch = max(2 * need, 64)
            cells = torch.multinomial(probs, batch, replacement=True, generator=generator).numpy()
            jitter = torch.rand(batch, self.dim, generator=generator, dtype=torch.float64).numpy()
            accept_u = torch.rand(batch, generator=generator, dtype=torch.float64).numpy()
            w = self._cell_centers[cells] + (jitter - 0.5) * self._cell
            env = self._envelope[cells]
            dens = self._raw_numeric(w)
            if np.any(dens > env):
                raise RuntimeError("rejection envelope below the density; refine the grid")
            keep = w[accept_u * env < dens][:need]
            out.append(keep)
            need -= keep.shape[0]
        return torch.from_numpy(np.concatenate(out))

    @property
    def support(self):
        return self._box

    def extent(self, rtol: float = 1e-12) -> float:
        if self._box is not None:
            return float(np.max(np.abs(np.concatenate(self._box))))
        return self._tail_radius(rtol)


def _parse_box(value, dim: int, field: str):
    arr = np.asarray(value, dtype=float)
    if arr.shape == (2,):
        arr = np.tile(arr, (dim, 1))
    if arr.shape != (dim, 2):
        raise InputError(field, f"must be [lo, hi] or {dim} pairs [[lo, hi], ...], got {value!r}")
    if not np.all(arr[:, 0] < arr[:, 1]):
        raise InputError(field, f"needs lo < hi on every axis, got {value!r}")
    return arr[:, 0].copy(), arr[:, 1].copy()
