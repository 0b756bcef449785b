"""Moving arrays between grids (input, canonical, working and coarse cell grid)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.transform import resize as _sk_resize


def resize(array: np.ndarray, shape: Sequence[int], order: int = 1,
           anti_aliasing: bool = False) -> np.ndarray:
    """Resize a 3D array to ``shape`` (exact), keeping its values' range and dtype kind.

    ``order=0`` for labels (no interpolation, no anti-aliasing); ``order=1`` for
    intensities and probabilities, optionally with Gaussian anti-aliasing when shrinking.
    """
    array = np.asarray(array)
    shape = tuple(int(s) for s in shape)
    if array.shape == shape:
        return array
    if order == 0:
        # nearest neighbour by index lookup: exact for labels, no float round trip
        idx = [np.minimum((np.arange(n) + 0.5) * (s / n), s - 1).astype(np.intp)
               for n, s in zip(shape, array.shape)]
        return array[np.ix_(*idx)]
    out = _sk_resize(array.astype(np.float32, copy=False), shape, order=order, mode="edge",
                     preserve_range=True, anti_aliasing=anti_aliasing)
    return out.astype(np.float32, copy=False)


def shape_for(shape: Sequence[int], voxel_size_um: Sequence[float],
              target_voxel_size_um: Sequence[float]) -> tuple[int, ...]:
    """The shape of the same field of view on a grid of ``target_voxel_size_um``."""
    return tuple(max(1, round(s * v / t))
                 for s, v, t in zip(shape, voxel_size_um, target_voxel_size_um))


def to_grid(array: np.ndarray, voxel_size_um: Sequence[float],
            target_voxel_size_um: Sequence[float], order: int = 1) -> np.ndarray:
    """Resample a volume to another voxel size (anti-aliased when shrinking).

    Raises InputError, before allocating, when the new grid exceeds the voxel limit or the
    available memory (:func:`ri2fl.preprocess.check_grid_budget`).
    """
    from ..preprocess import check_grid_budget

    shape = check_grid_budget(np.shape(array), voxel_size_um, target_voxel_size_um,
                              where="segment", grid_name="the")
    shrink = any(n < s for n, s in zip(shape, np.shape(array)))
    return resize(array, shape, order=order, anti_aliasing=shrink and order > 0)


def normalize_ri(ri: np.ndarray, medium_index: float) -> np.ndarray:
    """RI scaled for the networks: clip((ri - medium) / (1.390 - 1.337), 0, 1)."""
    try:
        from ..preprocess import normalize_ri as shared
    except ImportError:  # the preprocess part may not be installed in a partial checkout
        from ..constants import RI_CLIP

        span = RI_CLIP[1] - RI_CLIP[0]
        return np.clip((np.asarray(ri, np.float32) - medium_index) / span, 0, 1)
    return np.asarray(shared(ri, medium_index=medium_index), np.float32)
