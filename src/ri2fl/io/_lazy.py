"""Lazy multi-frame arrays: one dask chunk per frame, each read by a picklable loader.

Every loader opens the file, reads one frame and closes it, so a dask graph built from it can
be sent to other processes (``ri2fl.batch``) and indexing one frame reads only that frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dask
import dask.array as da
import numpy as np


def lazy_frames(loader: Callable[[int], np.ndarray], n_frames: int,
                frame_shape: Sequence[int], dtype=np.float32) -> da.Array:
    """Stack ``loader(t)`` for ``t`` in ``range(n_frames)`` as a lazy (t, ...) dask array."""
    frames = [da.from_delayed(dask.delayed(loader, pure=True)(t), shape=tuple(frame_shape),
                              dtype=dtype) for t in range(n_frames)]
    return da.stack(frames)
