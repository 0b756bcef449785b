"""RI normalisation for the networks."""

from __future__ import annotations

import numpy as np

from ..constants import MEDIUM_INDEX, RI_CLIP


def normalize_ri(ri: np.ndarray, medium_index: float = MEDIUM_INDEX) -> np.ndarray:
    """Map RI to the network input range: ``clip((ri - n_m) / (1.390 - 1.337), 0, 1)``.

    The width of the window is fixed (``RI_CLIP``) so that intensities mean the same in every
    volume; only its lower edge moves with the medium index (1.337 culture medium, 1.335 PBS).

    Parameters
    ----------
    ri : array-like
        Absolute refractive index.
    medium_index : float
        Refractive index of the medium, mapped to 0.

    Returns
    -------
    ndarray
        float32 in [0, 1].

    Examples
    --------
    >>> normalize_ri(np.array([1.3, 1.337, 1.3635, 1.5]))
    array([0. , 0. , 0.5, 1. ], dtype=float32)
    """
    width = RI_CLIP[1] - RI_CLIP[0]
    out = (np.asarray(ri, dtype=np.float32) - np.float32(medium_index)) / np.float32(width)
    return np.clip(out, 0.0, 1.0, out=out)
