"""Resampling read region by region, so that large volumes change grid without being loaded.

:class:`LazyResampled` is an array-like view of a (z, y, x) array on another grid of the same
physical extent; indexing it reads only the source region under the requested one. It is the
one resampler's linear interpolation (:func:`ri2fl.preprocess.resample_to_shape`,
``order=1``) evaluated on that region: the same taps and the same float32 arithmetic, so a
region of the view equals that region of the whole resampled array bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..progress import progress as _progress
from .resample import _axis_taps, _interpolate_taps

__all__ = ["LazyResampled", "resample_blockwise"]


def _normalize_key(key: Any, shape: Sequence[int]) -> list[tuple[int, int]]:
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1:]
    key = key + (slice(None),) * (len(shape) - len(key))
    spans = []
    for k, n in zip(key, shape):
        if not isinstance(k, slice) or k.step not in (None, 1):
            raise IndexError("LazyResampled supports only contiguous slices")
        start, stop, _ = k.indices(n)
        spans.append((start, max(start, stop)))
    return spans


class LazyResampled:
    """A (z, y, x) array-like on a new grid of ``shape``, read from ``source`` on demand.

    Parameters
    ----------
    source : array-like
        (Z, Y, X) NumPy, zarr, h5py or dask array.
    shape : (z, y, x)
        Shape of the new grid (same physical extent).

    Examples
    --------
    >>> a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    >>> LazyResampled(a, (4, 6, 8))[:, :2, :].shape
    (4, 2, 8)
    """

    def __init__(self, source: Any, shape: Sequence[int]):
        if source.ndim != 3:
            raise ValueError(f"source must be (z, y, x), got shape {source.shape}")
        self.source = source
        self.shape = tuple(int(s) for s in shape)
        self.ndim = 3
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: Any) -> np.ndarray:
        spans = _normalize_key(key, self.shape)
        taps = [_axis_taps(n_in, n_out, lo, hi)
                for n_in, n_out, (lo, hi) in zip(self.source.shape, self.shape, spans)]
        if any(len(left) == 0 for left, _, _ in taps):
            return np.zeros([hi - lo for lo, hi in spans], dtype=np.float32)
        region = tuple(slice(int(left.min()), int(right.max()) + 1) for left, right, _ in taps)
        block = np.asarray(self.source[region], dtype=np.float32)
        return _interpolate_taps(block, taps, [sl.start for sl in region])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype)


def resample_blockwise(source: Any, out: Any, block: Sequence[int] | None = None,
                       progress: bool | None = None) -> Any:
    """Resample every channel of ``source`` (C, z, y, x) into ``out`` (C, Z, Y, X) block by block.

    Both may be zarr/h5py arrays; at most one block of ``out`` and the source region under it
    are in memory. ``block`` (z, y) defaults to ``out``'s chunks (x is taken whole).
    """
    n_c, *shape = out.shape
    chunks = getattr(out, "chunks", None)
    bz, by = block or ((chunks[1], chunks[2]) if chunks else (16, 512))
    jobs = [(c, z, y) for c in range(n_c) for z in range(0, shape[0], bz)
            for y in range(0, shape[1], by)]
    views = [LazyResampled(_Channel(source, c), shape) for c in range(n_c)]
    disable = None if progress is None else not progress
    for c, z, y in _progress(jobs, desc="resample", disable=disable):
        out[c, z:z + bz, y:y + by, :] = views[c][z:z + bz, y:y + by, :]
    return out


class _Channel:
    """Channel ``c`` of a (C, z, y, x) array-like, as a (z, y, x) array-like."""

    def __init__(self, array: Any, c: int):
        self.array, self.c = array, c
        self.shape = tuple(array.shape[1:])
        self.ndim = 3

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        return self.array[(self.c, *key)]
