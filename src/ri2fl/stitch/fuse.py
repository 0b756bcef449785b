"""Blending placed tiles into one volume, block by block, so that any field size streams.

Each output block is the weighted mean of the tiles covering it. Tile weights fall linearly
from 1 inside the tile to near 0 at its edges over the blending width (feathering), so seams
disappear where neighbouring tiles differ slightly (illumination, reconstruction) and the
result is exactly the tiles' value where they agree. Memory: one output block plus the tile
regions that cover it; the output can be a Zarr array or an OME-Zarr writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations, product

import numpy as np

from ..errors import ConfigError
from ..progress import progress

BLENDS = ("linear", "average")
#: Default lateral size of output blocks (voxels); rounded up to whole chunks of the output.
BLOCK_YX = 512


def placement(offsets: np.ndarray) -> np.ndarray:
    """Integer tile origins (rounded, smallest at 0): tiles are placed without resampling,
    which keeps the data sharp at the cost of at most half a voxel of placement error."""
    pos = np.round(np.asarray(offsets, dtype=float)).astype(int)
    return pos - pos.min(axis=0)


def fused_shape(tile_shapes: Sequence[Sequence[int]], offsets: np.ndarray) -> tuple[int, ...]:
    """Shape (z, y, x) of the volume covering every placed tile."""
    pos = placement(offsets)
    return tuple(int(v) for v in (pos + np.asarray(tile_shapes)).max(axis=0))


def ramp(length: int, width: float) -> np.ndarray:
    """1D weights: 1 in the middle, falling linearly to ``0.5 / width`` at the ends.

    Never exactly 0, so every voxel covered by a tile gets a defined value.
    """
    if width <= 0:
        return np.ones(length, np.float32)
    k = np.arange(length, dtype=np.float32)
    edge = np.minimum(k, length - 1 - k) + 0.5
    return np.clip(edge / np.float32(width), 0.0, 1.0)


def blend_widths(tile_shapes: Sequence[Sequence[int]], offsets: np.ndarray) -> np.ndarray:
    """Per-axis feathering width (z, y, x): the widest overlap of neighbours along y and x.

    Tiles of a large field are side by side laterally, so z gets flat weights (0).
    """
    pos = placement(offsets)
    shapes = np.asarray(tile_shapes)
    widths = np.zeros(3)
    for i, j in combinations(range(len(pos)), 2):
        extent = (np.minimum(pos[i] + shapes[i], pos[j] + shapes[j])
                  - np.maximum(pos[i], pos[j]))
        if np.all(extent > 0):
            # neighbours overlap along the lateral axis where they share the least
            frac = extent[1:] / np.minimum(shapes[i], shapes[j])[1:]
            axis = 1 + int(np.argmin(frac))
            widths[axis] = max(widths[axis], extent[axis])
    return widths


def _blocks(shape: Sequence[int], block: Sequence[int]):
    ranges = [range(0, s, b) for s, b in zip(shape, block)]
    for start in product(*ranges):
        yield tuple(slice(a, min(a + b, s)) for a, b, s in zip(start, block, shape))


def _block_shape(shape: Sequence[int], chunks: Sequence[int] | None) -> tuple[int, int, int]:
    """Whole output chunks, about BLOCK_YX voxels laterally and at most 128 deep."""
    cz, cy, cx = (int(c) for c in chunks[-3:]) if chunks is not None else (1, 1, 1)
    bz = shape[0] if shape[0] <= 128 else 128
    return (max(cz, -(-bz // cz) * cz), max(cy, BLOCK_YX // cy * cy),
            max(cx, BLOCK_YX // cx * cx))


def fuse_tiles(tiles: Sequence, offsets: np.ndarray, out=None, *, blend: str = "linear",
               width: Sequence[float] | None = None, fill: float = 0.0,
               block: Sequence[int] | None = None):
    """Place tiles at their offsets and blend the overlaps into one volume.

    Parameters
    ----------
    tiles : sequence of array-like
        3D tiles (z, y, x); anything sliceable (NumPy, Zarr, h5py, dask).
    offsets : ndarray, shape (n, 3)
        Tile origins in voxels, e.g. from :func:`stitch_tiles` (rounded for placement).
    out : array-like, optional
        Writable destination of shape :func:`fused_shape` (a Zarr array or an
        ``OmeZarrWriter`` streams to disk). Default: a new float32 NumPy array.
    blend : {"linear", "average"}
        ``"linear"``: feathered weights falling towards tile edges; ``"average"``: plain
        mean of overlapping tiles.
    width : (float, float, float), optional
        Feathering width per axis in voxels (default: :func:`blend_widths`).
    fill : float
        Value where no tile lies (e.g. the medium index for RI).
    block : (int, int, int), optional
        Output block processed at once (default: whole chunks of ``out``, about 512
        voxels laterally); bounds the memory used.

    Returns
    -------
    array-like
        ``out``, filled.
    """
    if blend not in BLENDS:
        raise ConfigError(f"unknown blend {blend!r}", "--blend", f"use one of {BLENDS}")
    shapes = [tuple(int(s) for s in t.shape) for t in tiles]
    pos = placement(offsets)
    shape = fused_shape(shapes, offsets)
    if out is None:
        out = np.empty(shape, np.float32)
    elif tuple(out.shape[-3:]) != shape:
        raise ConfigError(f"output has shape {tuple(out.shape)}, the tiles need {shape}")
    widths = (blend_widths(shapes, offsets) if width is None else np.asarray(width, float))
    if blend == "average":
        widths = np.zeros(3)
    block = tuple(block) if block is not None else _block_shape(shape,
                                                                getattr(out, "chunks", None))
    lead = (0,) * (len(out.shape) - 3)  # e.g. a (c, z, y, x) writer with one channel
    for sl in progress(list(_blocks(shape, block)), desc="fusing tiles"):
        lo = np.array([s.start for s in sl])
        hi = np.array([s.stop for s in sl])
        acc = np.zeros(tuple(hi - lo), np.float32)
        wsum = np.zeros(tuple(hi - lo), np.float32)
        for k, tile in enumerate(tiles):
            a = np.maximum(lo, pos[k])
            b = np.minimum(hi, pos[k] + shapes[k])
            if np.any(b <= a):
                continue
            src = tuple(slice(int(u), int(v)) for u, v in zip(a - pos[k], b - pos[k]))
            dst = tuple(slice(int(u), int(v)) for u, v in zip(a - lo, b - lo))
            w = np.ones((1, 1, 1), np.float32)
            for axis in range(3):
                r = ramp(shapes[k][axis], widths[axis])[src[axis]]
                w = w * r.reshape([-1 if i == axis else 1 for i in range(3)])
            acc[dst] += w * np.asarray(tile[src], dtype=np.float32)
            wsum[dst] += np.broadcast_to(w, acc[dst].shape)
        values = np.full(acc.shape, fill, np.float32)
        covered = wsum > 0
        values[covered] = acc[covered] / wsum[covered]
        out[lead + sl] = values
    return out
