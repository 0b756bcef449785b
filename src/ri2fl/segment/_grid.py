"""The segmentation's grid convention on the one resampler (:mod:`ri2fl.preprocess.resample`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..preprocess import resample


def to_grid(array: np.ndarray, voxel_size_um: Sequence[float],
            target_voxel_size_um: Sequence[float], order: int = 1) -> np.ndarray:
    """Resample a volume to another voxel size as segmentation does: anti-aliased when shrinking.

    :func:`ri2fl.preprocess.resample` with ``anti_alias=True`` (the segmentation networks and
    voxel classifiers were trained on volumes resampled so; ``order=0`` takes the nearest
    voxel). Raises InputError, before allocating, when the new grid exceeds the voxel limit or
    the available memory (:func:`ri2fl.preprocess.check_grid_budget`).
    """
    return resample(array, voxel_size_um, target_voxel_size_um, order=order, anti_alias=True,
                    where="segment")
