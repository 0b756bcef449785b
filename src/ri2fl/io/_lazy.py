"""Lazy multi-frame arrays: one dask chunk per frame, each read by a picklable loader.

Every loader opens the file, reads one frame and closes it, so a dask graph built from it can
be sent to other processes (``ri2fl.batch``) and indexing one frame reads only that frame.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import dask.array as da


class FrameSource:
    """An array-like of ``n_frames`` frames, each read on demand by ``loader(t)``.

    It is what :func:`dask.array.from_array` wraps: one graph layer however many frames (a
    list of per-frame ``delayed`` calls would cost time quadratic in the frame count).
    """

    def __init__(self, loader: Callable[[int], np.ndarray], n_frames: int,
                 frame_shape: Sequence[int], dtype=np.float32):
        self.loader = loader
        self.shape = (int(n_frames), *(int(s) for s in frame_shape))
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def _frame(self, t: int) -> np.ndarray:
        data = np.asarray(self.loader(t), dtype=self.dtype)
        if data.shape != self.shape[1:]:
            raise InputError(f"time point {t} has shape {data.shape}, the first has "
                             f"{self.shape[1:]}", hint="the file is inconsistent or corrupt")
        return data

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, slice):
            frames = [self._frame(t) for t in range(self.shape[0])[first]]
            stacked = (np.stack(frames) if frames
                       else np.empty((0, *self.shape[1:]), self.dtype))
            return stacked[(slice(None), *rest)]
        return self._frame(range(self.shape[0])[first])[rest]


def lazy_frames(loader: Callable[[int], np.ndarray], n_frames: int,
                frame_shape: Sequence[int], dtype=np.float32) -> da.Array:
    """Stack ``loader(t)`` for ``t`` in ``range(n_frames)`` as a lazy (t, ...) dask array."""
    import dask.array as da

    source = FrameSource(loader, n_frames, frame_shape, dtype)
    return da.from_array(source, chunks=(1, *source.shape[1:]), asarray=False, fancy=False,
                         name=f"frames-{uuid.uuid4().hex}")
