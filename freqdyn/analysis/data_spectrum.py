"""Which frequencies of a data case are learned when: the error's power per |ξ| band.

For the error transform û(ξ, t) of a data case (on the data's DFT frequencies), the
band-averaged power ratio

    r_b(t) = Σ_{ξ ∈ band b} |û(ξ, t)|² / Σ_{ξ ∈ band b} |û(ξ, 0)|²

is the fraction of band b's initial error left at time t (1: nothing learned, 0: all).
Bands are equal-width shells in |ξ| from 0 to the largest |ξ| of the grid; a band whose
initial power is below 1e-12 of the strongest band's is NaN (no signal there to learn).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from freqdyn.results import u_hat, xi_dims

#: Bands of power below this fraction of the strongest band hold no signal (NaN).
EMPTY_BAND = 1e-12


def band_power_ratio(ds: xr.Dataset, bands: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(band centres in cycles per unit x (B,), r_b(t) of shape (T, B)); see the module."""
    u = u_hat(ds)
    dims = [d for d in u.dims if d != "time"]
    grids = np.meshgrid(*(ds[d].values for d in xi_dims(len(dims))), indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids)).ravel()
    power = (np.abs(u.values) ** 2).reshape(u.shape[0], -1)
    edges = np.linspace(0.0, radius.max() * (1 + 1e-12), bands + 1)
    which = np.clip(np.digitize(radius, edges) - 1, 0, bands - 1)
    per_band = np.stack([np.bincount(which, weights=p, minlength=bands) for p in power])
    initial = per_band[0]
    empty = initial <= EMPTY_BAND * initial.max()
    ratio = per_band / np.where(empty, 1.0, initial)
    ratio[:, empty] = np.nan
    return 0.5 * (edges[1:] + edges[:-1]), ratio
