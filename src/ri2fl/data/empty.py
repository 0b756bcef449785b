"""Patches of bare medium: the training examples of "no cell, no fluorescence".

A network with instance normalisation scales whatever it is given to unit variance, so a
tile of pure medium (a sparse field, the corners around a rounded cell) reaches it as
amplified tomograph noise. Fields crowded with cells hardly contain such tiles, and a network
trained on them paints cells into the noise. :class:`EmptyMediumPatches` draws medium as the
simulated tomograph records it (noise limited to the tomograph's frequency support, missing
cone filled; on the 0.3 µm training grid it is nearly white in-plane), at a range of noise
levels and with a small medium-index error, for :class:`PatchDataset` to mix in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..constants import MEDIUM_INDEX
from .dataset import normalize_input

__all__ = ["EmptyMediumPatches"]


@dataclass(frozen=True)
class EmptyMediumPatches:
    """Callable ``(shape, rng) -> (1, Z, Y, X)`` normalised RI input of bare medium.

    Parameters
    ----------
    voxel_size_um : (z, y, x)
        Grid of the patches (the training grid); sets the tomograph's band limit in voxels.
    noise_std : (low, high)
        RI noise s.d., drawn log-uniformly per patch (the simulator's nominal 6e-4 inside).
    medium_offset : float
        Largest error of the assumed medium index, drawn uniformly in ±``medium_offset``.
    """

    voxel_size_um: Sequence[float]
    noise_std: tuple[float, float] = (2e-4, 2e-3)
    medium_offset: float = 1e-3

    def __call__(self, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        from ..simulate.optics import reconstruct_fast  # the simulator only when used

        low, high = np.log(self.noise_std[0]), np.log(self.noise_std[1])
        noise = float(np.exp(rng.uniform(low, high)))
        offset = float(rng.uniform(-self.medium_offset, self.medium_offset))
        voxel = tuple(float(v) for v in self.voxel_size_um)
        dn = reconstruct_fast(np.zeros(tuple(int(s) for s in shape), np.float32), voxel,
                              MEDIUM_INDEX, noise, rng)
        return normalize_input(MEDIUM_INDEX + offset + dn, "ri", MEDIUM_INDEX)[None]
