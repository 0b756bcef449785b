"""Where the tiles of a large field sit: pairwise phase correlation, then a global fit.

Each pair of neighbouring tiles is registered on the region where their nominal positions
(a regular grid, or stage positions) say they overlap, by phase correlation with sub-voxel
refinement (``skimage.registration.phase_cross_correlation``). The measured displacements
over-determine the tile positions; they are reconciled by weighted least squares over the
tile graph, dropping pairs whose correlation is poor or which disagree with the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from skimage.registration import phase_cross_correlation

from ..errors import ConfigError, InputError
from ..evaluate import pcc

log = logging.getLogger(__name__)

#: Weight of nominal pairwise displacements, relative to a perfect measurement: small enough
#: not to bias registered tiles, enough to place tiles with no usable measurement.
PRIOR_WEIGHT = 1e-4


#: Largest part (z, y, x) of an overlap searched for the integer shift: the masked
#: correlation holds about ten complex float64 copies of its padded size, so the full strip
#: of two 64 x 512 x 512 tiles would need gigabytes; its centre is plenty to register on, and
#: shifts up to about 70 % of this extent are still found.
COARSE_EXTENT = (16, 128, 128)
#: Largest part of the aligned overlap used for the sub-voxel refinement.
FINE_EXTENT = (64, 256, 256)
#: Shortest overlap extent (voxels) along which a sub-voxel shift is estimated.
_MIN_SUBVOXEL_LENGTH = 12


@dataclass(frozen=True)
class PairMeasurement:
    """Measured displacement between two overlapping tiles.

    Attributes
    ----------
    i, j : int
        Tile indices.
    displacement : ndarray, shape (3,)
        Measured ``position[j] - position[i]`` in voxels (z, y, x).
    correlation : float
        Pearson correlation of the two tiles over their registered overlap, in [-1, 1].
    """

    i: int
    j: int
    displacement: np.ndarray
    correlation: float


def _as_fraction_pair(overlap: float | Sequence[float]) -> tuple[float, float]:
    oy, ox = (overlap, overlap) if np.isscalar(overlap) else tuple(overlap)
    for o in (oy, ox):
        if not 0.0 < float(o) < 0.9:
            raise ConfigError(f"tile overlap must be a fraction in (0, 0.9), got {o}",
                              "--overlap", "e.g. --overlap 0.1 for 10 % overlap")
    return float(oy), float(ox)


def grid_positions(tile_shape: Sequence[int], grid: tuple[int, int],
                   overlap: float | Sequence[float]) -> np.ndarray:
    """Nominal (z, y, x) tile origins of a row-major grid with a fractional overlap.

    Examples
    --------
    >>> grid_positions((8, 100, 100), (1, 2), 0.1).tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 90.0]]
    """
    rows, cols = (int(g) for g in grid)
    if rows < 1 or cols < 1:
        raise ConfigError(f"grid must have at least one row and column, got {grid}", "--grid")
    oy, ox = _as_fraction_pair(overlap)
    _, ty, tx = tile_shape
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.stack([np.zeros(rows * cols), r * ty * (1 - oy), c * tx * (1 - ox)], axis=1)


def overlap_box(pos_i: np.ndarray, shape_i: Sequence[int], pos_j: np.ndarray,
                shape_j: Sequence[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Global [lo, hi) of the intersection of two boxes (integer origins), or None."""
    lo = np.maximum(pos_i, pos_j)
    hi = np.minimum(pos_i + np.asarray(shape_i), pos_j + np.asarray(shape_j))
    return (lo, hi) if np.all(hi > lo) else None


def neighbour_pairs(positions: np.ndarray, shapes: Sequence[Sequence[int]],
                    min_ratio: float = 0.3) -> list[tuple[int, int]]:
    """Pairs of tiles sharing a side: their nominal overlap is at least ``min_ratio`` of the
    largest overlap of any pair.

    Corner neighbours of a grid share only ``overlap`` times as much as side neighbours and
    too little for a reliable measurement, so they fall below the default.
    """
    pos = np.round(positions).astype(int)
    volumes = {}
    for i, j in combinations(range(len(pos)), 2):
        box = overlap_box(pos[i], shapes[i], pos[j], shapes[j])
        if box is not None:
            volumes[i, j] = int(np.prod(box[1] - box[0]))
    if not volumes:
        return []
    largest = max(volumes.values())
    return [pair for pair, v in volumes.items() if v >= min_ratio * largest]


def _region(tile, origin: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo - origin, hi - origin))
    return np.asarray(tile[sl], dtype=np.float32)


def _common(a: np.ndarray, b: np.ndarray, shift: np.ndarray):
    """The parts of ``a`` and ``b`` that coincide once ``b`` is moved by integer ``shift``."""
    s = np.round(shift).astype(int)
    sa = tuple(slice(max(k, 0), n + min(k, 0)) for k, n in zip(s, a.shape))
    sb = tuple(slice(max(-k, 0), n - max(k, 0)) for k, n in zip(s, b.shape))
    return a[sa], b[sb]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two overlaps; 0 (no evidence) below 16 voxels or for a flat one."""
    if x.size < 16:
        return 0.0
    r = pcc(x, y, min_std=0.0)
    return 0.0 if np.isnan(r) else r


def _subvoxel(a: np.ndarray, b: np.ndarray, upsample_factor: int) -> np.ndarray:
    """Residual sub-voxel shift of two nearly aligned regions (Hann-windowed phase
    correlation: the window keeps the regions' borders from pulling the peak to zero)."""
    # axes too short for a sub-voxel estimate (a thin z stack) keep the integer shift
    usable = np.asarray(a.shape) >= _MIN_SUBVOXEL_LENGTH
    if upsample_factor <= 1 or not usable.any():
        return np.zeros(a.ndim)
    win = np.ones((1,) * a.ndim, np.float32)
    for axis in np.flatnonzero(usable):
        w = np.hanning(a.shape[axis]).astype(np.float32)
        win = win * w.reshape([-1 if k == axis else 1 for k in range(a.ndim)])
    a = (a - a.mean()) * win
    b = (b - b.mean()) * win
    shift, _, _ = phase_cross_correlation(a, b, upsample_factor=upsample_factor)
    shift = np.where(usable, np.asarray(shift, dtype=float), 0.0)
    return shift if np.all(np.abs(shift) <= 1.0) else np.zeros(a.ndim)


def measure_pair(tile_i, tile_j, pos_i: np.ndarray, pos_j: np.ndarray,
                 upsample_factor: int = 10) -> tuple[np.ndarray, float] | None:
    """Displacement correction and correlation of tile j relative to tile i.

    Returns ``(d, r)``: the true ``pos_j - pos_i`` is the nominal one plus ``d``; ``r`` is
    the correlation over the registered overlap. None if the tiles do not overlap.

    The integer part comes from masked normalised cross-correlation (Padfield 2012, in
    ``phase_cross_correlation`` with masks), which, unlike plain phase correlation, is not
    biased towards zero by the small, non-periodic overlap; the sub-voxel part from
    upsampled phase correlation of the aligned overlap.
    """
    box = overlap_box(pos_i, tile_i.shape, pos_j, tile_j.shape)
    if box is None:
        return None
    a = _region(tile_i, pos_i, *box)
    b = _region(tile_j, pos_j, *box)
    if min(a.shape) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:  # an empty field
        return np.zeros(3), 0.0
    # region of j, moved by d, matches region of i: d is how far j really sits further on;
    # float64, as in float32 the masked correlation can peak one voxel off
    ca, cb = (_central(r, COARSE_EXTENT).astype(np.float64) for r in (a, b))
    mask = np.ones(ca.shape, bool)
    coarse = np.asarray(phase_cross_correlation(ca, cb, reference_mask=mask,
                                                moving_mask=mask)[0], dtype=float)
    ca, cb = _common(a, b, coarse)
    ca, cb = _central(ca, FINE_EXTENT), _central(cb, FINE_EXTENT)
    shift = coarse + _subvoxel(ca, cb, upsample_factor)
    return shift, _pearson(ca, cb)


def _central(a: np.ndarray, extent: Sequence[int]) -> np.ndarray:
    """The central part of ``a``, at most ``extent`` voxels along each axis."""
    sl = tuple(slice((n - min(n, e)) // 2, (n - min(n, e)) // 2 + min(n, e))
               for n, e in zip(a.shape, extent))
    return a[sl]


def measure_pairs(tiles: Sequence, positions: np.ndarray, pairs: Sequence[tuple[int, int]],
                  upsample_factor: int = 10) -> list[PairMeasurement]:
    """Phase-correlate every pair on its nominal overlap."""
    from ..progress import progress

    pos = np.round(positions).astype(int)
    out = []
    for i, j in progress(pairs, desc="registering tile pairs"):
        result = measure_pair(tiles[i], tiles[j], pos[i], pos[j], upsample_factor)
        if result is not None:
            shift, r = result
            out.append(PairMeasurement(i, j, (pos[j] - pos[i]) + shift, r))
    return out


def _solve(nominal: np.ndarray, edges: list[PairMeasurement],
           guides: list[PairMeasurement]) -> np.ndarray:
    """Weighted least squares of positions from pairwise displacements.

    ``edges`` are trusted measurements (weight: their correlation); ``guides`` hold the
    nominal displacement of every neighbouring pair with a small weight, so a tile whose
    measurements are all untrusted stays on the grid next to its neighbours; an even
    smaller pull to the nominal positions fixes the global translation.
    """
    n = len(nominal)
    rows, rhs, weights = [], [], []
    for e, w in [(e, max(e.correlation, 1e-3)) for e in edges] + [(g, PRIOR_WEIGHT)
                                                                   for g in guides]:
        row = np.zeros(n)
        row[e.j], row[e.i] = 1.0, -1.0
        rows.append(row)
        rhs.append(e.displacement)
        weights.append(w)
    rows.extend(np.eye(n))
    rhs.extend(nominal)
    weights.extend([PRIOR_WEIGHT * 1e-2] * n)
    w = np.sqrt(np.asarray(weights))[:, None]
    A, b = np.asarray(rows) * w, np.asarray(rhs) * w
    return np.linalg.lstsq(A, b, rcond=None)[0]


def global_positions(nominal: np.ndarray, measurements: Sequence[PairMeasurement],
                     min_correlation: float = 0.2, max_residual: float = 2.0) -> np.ndarray:
    """Tile positions agreeing best with the pairwise measurements.

    Pairs correlating below ``min_correlation`` are ignored; then, while some pair
    disagrees with the fit by more than ``max_residual`` voxels, the worst one is dropped.
    A tile left without a trusted neighbour (an empty field, say) keeps its nominal
    place relative to its neighbours.
    """
    nominal = np.asarray(nominal, dtype=float)
    guides = [PairMeasurement(m.i, m.j, nominal[m.j] - nominal[m.i], 0.0)
              for m in measurements]
    edges = [m for m in measurements if m.correlation >= min_correlation]
    while True:
        pos = _solve(nominal, edges, guides)
        if not edges:
            return pos
        residuals = [np.abs(pos[e.j] - pos[e.i] - e.displacement).max() for e in edges]
        worst = int(np.argmax(residuals))
        if residuals[worst] <= max_residual:
            return pos
        log.info("dropping tile pair %s (residual %.1f voxels)",
                 (edges[worst].i, edges[worst].j), residuals[worst])
        edges.pop(worst)


def stitch_tiles(tiles: Sequence, grid: tuple[int, int] | None = None,
                 overlap: float | Sequence[float] = 0.1, positions: np.ndarray | None = None,
                 *, upsample_factor: int = 10, min_correlation: float = 0.2,
                 max_residual: float = 2.0) -> np.ndarray:
    """Estimate the (z, y, x) origin of every tile of a large field, in voxels.

    Parameters
    ----------
    tiles : sequence of array-like
        3D tiles (z, y, x), in row-major grid order. Anything sliceable works (NumPy, Zarr,
        h5py, dask); only overlap regions are read.
    grid : (rows, cols), optional
        Grid layout; required unless ``positions`` are given.
    overlap : float or (float, float)
        Nominal overlap of neighbouring tiles as a fraction of the tile size (y, x).
    positions : ndarray, shape (n, 2) or (n, 3), optional
        Nominal tile origins in voxels ((y, x) or (z, y, x)), e.g. from stage positions;
        overrides ``grid`` and ``overlap``.
    upsample_factor : int
        Sub-voxel precision of phase correlation (1/upsample_factor voxel).
    min_correlation, max_residual : float
        Pairs correlating less, or disagreeing with the global fit by more voxels, are
        not trusted.

    Returns
    -------
    ndarray, shape (n, 3)
        Tile origins (float, sub-voxel) with the smallest at 0 along each axis.

    Examples
    --------
    >>> offsets = stitch_tiles(tiles, grid=(2, 3), overlap=0.15)  # doctest: +SKIP
    >>> fused = fuse_tiles(tiles, offsets)                          # doctest: +SKIP
    """
    tiles = list(tiles)
    if not tiles:
        raise InputError("no tiles to stitch")
    shapes = [tuple(int(s) for s in t.shape) for t in tiles]
    if any(len(s) != 3 for s in shapes):
        raise InputError(f"tiles must be 3D (z, y, x), got shapes {sorted(set(shapes))}")
    if positions is not None:
        nominal = np.asarray(positions, dtype=float)
        if nominal.ndim != 2 or nominal.shape[1] not in (2, 3) or len(nominal) != len(tiles):
            raise ConfigError(f"positions must have shape ({len(tiles)}, 2 or 3), got "
                              f"{nominal.shape}", "positions")
        if nominal.shape[1] == 2:
            nominal = np.column_stack([np.zeros(len(nominal)), nominal])
    else:
        if grid is None or grid[0] * grid[1] != len(tiles):
            raise ConfigError(f"{len(tiles)} tiles do not fill a grid of {grid}", "--grid",
                              "give --grid ROWSxCOLS with ROWS*COLS tiles in row-major order")
        nominal = grid_positions(shapes[0], grid, overlap)
    nominal = nominal - nominal.min(axis=0)
    pairs = neighbour_pairs(nominal, shapes)
    measurements = measure_pairs(tiles, nominal, pairs, upsample_factor)
    pos = global_positions(nominal, measurements, min_correlation, max_residual)
    return pos - pos.min(axis=0)
