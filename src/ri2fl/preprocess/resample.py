"""Resampling between voxel grids (scipy.ndimage.zoom in grid mode).

Grid mode aligns the outer edges of the first and last voxels, so a volume keeps its physical
extent and :func:`resample_to_shape` maps a resampled volume back onto the input grid exactly
(same shape, same extent). The output of :func:`resample` therefore has ``round(n * v / t)``
voxels per axis; its true voxel size is ``n * v / round(n * v / t)``, within half a voxel over
the whole extent of the target ``t`` (see :func:`resampled_voxel_size`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..constants import CANONICAL_VOXEL_SIZE_UM
from ..io._checks import voxel_size_from


def resampled_shape(shape: Sequence[int], voxel_size_um,
                    target_voxel_size_um=CANONICAL_VOXEL_SIZE_UM) -> tuple[int, int, int]:
    """(z, y, x) shape of ``shape`` (last three axes) after resampling to the target voxel."""
    src = voxel_size_from(voxel_size_um, "voxel_size_um")
    dst = voxel_size_from(target_voxel_size_um, "target_voxel_size_um")
    return tuple(max(1, round(n * s / d)) for n, s, d in zip(shape[-3:], src, dst))


def resampled_voxel_size(shape: Sequence[int], voxel_size_um,
                         target_voxel_size_um=CANONICAL_VOXEL_SIZE_UM
                         ) -> tuple[float, float, float]:
    """True voxel size (z, y, x) of the grid :func:`resample` produces (same extent)."""
    src = voxel_size_from(voxel_size_um, "voxel_size_um")
    out = resampled_shape(shape, src, target_voxel_size_um)
    return tuple(n * s / m for n, s, m in zip(shape[-3:], src, out))


def _zoom3(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    if tuple(array.shape) == tuple(shape):
        return array.copy()
    factors = [m / n for m, n in zip(shape, array.shape)]
    return ndimage.zoom(array, factors, order=order, mode="nearest", grid_mode=True,
                        prefilter=order > 1)


def resample_to_shape(array: np.ndarray, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resample the last three axes of ``array`` to ``shape`` (z, y, x), same physical extent.

    Parameters
    ----------
    array : ndarray
        (..., z, y, x) volume(s); leading axes (channels, time) are resampled one by one.
    shape : sequence of 3 int
        Output (z, y, x) shape, e.g. the shape of the original input grid.
    order : int
        Spline order: 1 (linear, default) for intensities, 0 (nearest) for labels/masks.

    Returns
    -------
    ndarray
        float32 for float input; the input's dtype when ``order == 0``.
    """
    array = np.asarray(array)
    shape = tuple(int(s) for s in shape[-3:])
    if array.ndim < 3:
        raise ValueError(f"need at least 3 dimensions (z, y, x), got shape {array.shape}")
    if order != 0 and not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32, copy=False)
    lead = array.shape[:-3]
    flat = array.reshape((-1, *array.shape[-3:]))
    out = np.empty((flat.shape[0], *shape), dtype=array.dtype)
    for i in range(flat.shape[0]):
        out[i] = _zoom3(flat[i], shape, order)
    return out.reshape((*lead, *shape))


def resample(array: np.ndarray, voxel_size_um,
             target_voxel_size_um=CANONICAL_VOXEL_SIZE_UM, order: int = 1) -> np.ndarray:
    """Resample a volume from its voxel size to ``target_voxel_size_um`` (default canonical).

    Parameters
    ----------
    array : ndarray
        (..., z, y, x) volume(s).
    voxel_size_um : float or (z, y, x)
        Voxel size of ``array`` in µm.
    target_voxel_size_um : float or (z, y, x)
        Wanted voxel size, default :data:`ri2fl.constants.CANONICAL_VOXEL_SIZE_UM`.
    order : int
        Spline order (1 linear, 0 nearest for labels).

    Returns
    -------
    ndarray
        Resampled volume of shape :func:`resampled_shape`; map it back with
        ``resample_to_shape(out, array.shape[-3:])``.

    Examples
    --------
    >>> ri = np.full((140, 140, 140), 1.337, np.float32)
    >>> resample(ri, 0.139).shape
    (97, 130, 130)

    Raises
    ------
    InputError
        When the resampled grid would exceed the voxel limit or the available memory
        (:func:`ri2fl.preprocess.check_grid_budget`).
    """
    from .budget import check_grid_budget  # budget builds on this module

    shape = np.shape(array)
    grid = check_grid_budget(shape, voxel_size_um, target_voxel_size_um,
                             channels=int(np.prod(shape[:-3])), grid_name="the")
    return resample_to_shape(array, grid, order)
