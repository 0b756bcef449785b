"""Resampling between voxel grids (linear or nearest, in grid mode).

Grid mode aligns the outer edges of the first and last voxels, so a volume keeps its physical
extent and :func:`resample_to_shape` maps a resampled volume back onto the input grid exactly
(same shape, same extent). The output of :func:`resample` therefore has ``round(n * v / t)``
voxels per axis; its true voxel size is ``n * v / round(n * v / t)``, within half a voxel over
the whole extent of the target ``t`` (see :func:`resampled_voxel_size`).

This is the one resampler of ri2fl: training data (:mod:`ri2fl.data`), inference (through
its region-by-region view :class:`ri2fl.preprocess.LazyResampled`, the same numbers),
segmentation and evaluation all call it, so they see the same voxels. Intensities are
interpolated linearly (``order=1``: what ``scipy.ndimage.zoom(order=1, mode="nearest",
grid_mode=True)`` computes, in float32, one axis after the other); labels and masks take the
nearest voxel (``order=0``, exact, any dtype). ``anti_alias=True`` first smooths each
shrinking axis with a Gaussian of sigma ``(n_in / n_out - 1) / 2`` voxels (scikit-image's
``resize`` convention); the segmentation networks and their training data are resampled so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..constants import CANONICAL_VOXEL_SIZE_UM
from ..io import voxel_size_from

#: Relative difference below which two voxel sizes count as the same grid (no resampling).
SAME_GRID_RTOL = 1e-3


def same_grid(voxel_size_um, target_voxel_size_um) -> bool:
    """Whether two voxel sizes (z, y, x) are one grid, within :data:`SAME_GRID_RTOL`."""
    return bool(np.allclose(voxel_size_um, target_voxel_size_um, rtol=SAME_GRID_RTOL, atol=0))


def resampled_shape(shape: Sequence[int], voxel_size_um,
                    target_voxel_size_um=CANONICAL_VOXEL_SIZE_UM) -> tuple[int, int, int]:
    """(z, y, x) shape of ``shape`` (last three axes) after resampling to the target voxel.

    ``shape`` itself on the same grid (:func:`same_grid`): such a volume is not resampled.
    """
    src = voxel_size_from(voxel_size_um, "voxel_size_um")
    dst = voxel_size_from(target_voxel_size_um, "target_voxel_size_um")
    if same_grid(src, dst):
        return tuple(int(n) for n in shape[-3:])
    return tuple(max(1, round(n * s / d)) for n, s, d in zip(shape[-3:], src, dst))


def resampled_voxel_size(shape: Sequence[int], voxel_size_um,
                         target_voxel_size_um=CANONICAL_VOXEL_SIZE_UM
                         ) -> tuple[float, float, float]:
    """True voxel size (z, y, x) of the grid :func:`resample` produces (same extent)."""
    src = voxel_size_from(voxel_size_um, "voxel_size_um")
    out = resampled_shape(shape, src, target_voxel_size_um)
    return tuple(n * s / m for n, s, m in zip(shape[-3:], src, out))


def _nearest3(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Nearest voxel in grid mode by index lookup: what ``zoom(order=0, grid_mode=True)``
    computes, for any dtype (bool, labels) and without a float round trip."""
    idx = [np.minimum((np.arange(m) + 0.5) * (n / m), n - 1).astype(np.intp)
           for m, n in zip(shape, array.shape)]
    return array[np.ix_(*idx)]


def _axis_taps(n_in: int, n_out: int, lo: int = 0, hi: int | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (left, right) and right weights of output voxels ``lo..hi-1``.

    Grid mode aligns the outer voxel edges: output voxel ``o`` sits at source coordinate
    ``(o + 0.5) * n_in / n_out - 0.5``; clamping it to the volume is ``mode="nearest"``.
    """
    coord = (np.arange(lo, n_out if hi is None else hi) + 0.5) * (n_in / n_out) - 0.5
    coord = np.clip(coord, 0, n_in - 1)
    left = np.floor(coord).astype(np.int64)
    right = np.minimum(left + 1, n_in - 1)
    return left, right, (coord - left).astype(np.float32)


def _interpolate_taps(block: np.ndarray, taps: Sequence[tuple], starts: Sequence[int]
                     ) -> np.ndarray:
    """Linear interpolation of a float32 (z, y, x) ``block`` at :func:`_axis_taps`, one axis
    after the other; ``starts`` is the block's offset in the indices of ``taps``.

    The block itself is never written to; an axis already on its grid is left as is.
    """
    for axis, ((left, right, w), start) in enumerate(zip(taps, starts)):
        if block.shape[axis] == len(left) and not w.any() and \
                np.array_equal(left - start, np.arange(len(left))):
            continue  # same grid along this axis
        shape = [1, 1, 1]
        shape[axis] = -1
        a = np.take(block, left - start, axis=axis)
        block = np.take(block, right - start, axis=axis)
        block -= a  # a + w * (b - a), in place on b
        block *= w.reshape(shape)
        block += a
    return block


def _resample3(array: np.ndarray, shape: Sequence[int], order: int,
               anti_alias: bool = False) -> np.ndarray:
    if order == 0:
        return _nearest3(array, shape)
    if anti_alias:
        sigma = [max(0.0, (n / m - 1) / 2) for m, n in zip(shape, array.shape)]
        array = ndimage.gaussian_filter(array, sigma, mode="nearest")
    taps = [_axis_taps(n, m) for n, m in zip(array.shape, shape)]
    return _interpolate_taps(array, taps, (0, 0, 0))


def _sampled_dtype(array: np.ndarray, order: int) -> np.ndarray:
    """``array`` as the resampler returns it: float32, or its own dtype for ``order == 0``."""
    array = np.asarray(array)
    if order != 0 and not np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    return array


def resample_to_shape(array: np.ndarray, shape: Sequence[int], order: int = 1,
                      anti_alias: bool = False) -> np.ndarray:
    """Resample the last three axes of ``array`` to ``shape`` (z, y, x), same physical extent.

    Parameters
    ----------
    array : ndarray
        (..., z, y, x) volume(s); leading axes (channels, time) are resampled one by one.
    shape : sequence of 3 int
        Output (z, y, x) shape, e.g. the shape of the original input grid.
    order : {1, 0}
        1 (linear, default) for intensities, 0 (nearest) for labels/masks.
    anti_alias : bool
        Gaussian pre-filter on the axes that shrink (see the module); ignored for
        ``order == 0``.

    Returns
    -------
    ndarray
        float32 for float input; the input's dtype when ``order == 0``. When ``shape`` is
        the input's, the input itself (in that dtype): nothing is interpolated.
    """
    array = _sampled_dtype(array, order)
    shape = tuple(int(s) for s in shape[-3:])
    if array.ndim < 3:
        raise ValueError(f"need at least 3 dimensions (z, y, x), got shape {array.shape}")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (nearest) or 1 (linear), got {order}")
    if array.shape[-3:] == shape:
        return array
    lead = array.shape[:-3]
    flat = array.reshape((-1, *array.shape[-3:]))
    out = np.empty((flat.shape[0], *shape), dtype=array.dtype)
    for i in range(flat.shape[0]):
        out[i] = _resample3(flat[i], shape, order, anti_alias)
    return out.reshape((*lead, *shape))


def resample(array: np.ndarray, voxel_size_um,
             target_voxel_size_um=CANONICAL_VOXEL_SIZE_UM, order: int = 1,
             anti_alias: bool = False, where: str = "voxel_size_um") -> np.ndarray:
    """Resample a volume from its voxel size to ``target_voxel_size_um`` (default canonical).

    Parameters
    ----------
    array : ndarray
        (..., z, y, x) volume(s).
    voxel_size_um : float or (z, y, x)
        Voxel size of ``array`` in µm.
    target_voxel_size_um : float or (z, y, x)
        Wanted voxel size, default :data:`ri2fl.constants.CANONICAL_VOXEL_SIZE_UM`.
    order : {1, 0}
        1 linear (default), 0 nearest for labels and masks.
    anti_alias : bool
        Gaussian pre-filter on the axes that shrink (see :func:`resample_to_shape`).
    where : str
        What the budget's error names as the source of the voxel size.

    Returns
    -------
    ndarray
        Resampled volume of shape :func:`resampled_shape`; map it back with
        ``resample_to_shape(out, array.shape[-3:])``. When the grid keeps the input's shape
        (e.g. :func:`same_grid`), the input itself, in the dtype of the other results.

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
                             channels=int(np.prod(shape[:-3])), where=where,
                             grid_name="the")
    return resample_to_shape(array, grid, order, anti_alias)
