"""Small morphology helpers shared by the segmentation routes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from ..constants import CANONICAL_VOXEL_SIZE_UM


def remove_small(mask: np.ndarray, min_size: int, connectivity: int = 1) -> np.ndarray:
    """Drop connected components of a boolean mask with fewer than ``min_size`` pixels.

    (``skimage.morphology.remove_small_objects`` changed its size semantics in 0.26; this
    keeps one meaning across versions.)
    """
    mask = np.asarray(mask, dtype=bool)
    if min_size <= 1 or not mask.any():
        return mask
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    lab, _ = ndi.label(mask, structure=structure)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[lab]


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Relabel an int array to 1..N (0 stays background), as int32."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lut[labels]


def scaled_voxel_count(n_canonical: float, voxel_size_um: Sequence[float]) -> int:
    """A size given in voxels of the canonical grid, converted to voxels of another grid."""
    canonical = float(np.prod(CANONICAL_VOXEL_SIZE_UM))
    return max(1, round(n_canonical * canonical / float(np.prod(voxel_size_um))))


def ball(radius_um: float, voxel_size_um: Sequence[float]) -> np.ndarray:
    """A boolean ellipsoidal structuring element of physical radius ``radius_um``."""
    r = [max(0, int(np.floor(radius_um / v))) for v in voxel_size_um]
    grids = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    dist = sum((g * v / radius_um) ** 2 for g, v in zip(grids, voxel_size_um))
    return dist <= 1.0
