"""Stitching tile files: lazy tile access, stage positions from metadata, OME-Zarr output."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .fuse import fuse_tiles, fused_shape

log = logging.getLogger(__name__)

#: Tomocube stage positions (PositionX/Y/Z frame attributes) are taken to be millimetres.
TCF_POSITION_UNIT_UM = 1000.0


class TileFiles:
    """Tiles read from files on demand, with only the last few kept in memory.

    Sequence of sliceable tiles for :func:`stitch_tiles` and :func:`fuse_tiles`. Both visit
    tiles in row-major order, so keeping about two rows of tiles (``cache``) reads each
    file a few times at most while memory stays bounded for any grid size.

    Parameters
    ----------
    paths : sequence of path
        Tile files in any format :func:`ri2fl.io.read` opens.
    frame : int
        Time point of multi-frame files.
    cache : int
        Number of tiles kept loaded.
    **read_options
        Passed to :func:`ri2fl.io.read` (e.g. ``voxel_size_um`` for .npy tiles).
    """

    def __init__(self, paths: Sequence[str | Path], frame: int = 0, cache: int = 4,
                 **read_options):
        from ..io import read

        self.paths = [Path(p) for p in paths]
        self.frame = frame
        self.read_options = read_options
        self.cache_size = max(1, cache)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.volumes = []
        for k, p in enumerate(self.paths):
            vol = read(p, frame=frame, **read_options)
            if vol.axes != "zyx":
                raise InputError(f"a tile must be one 3D volume, got axes {vol.axes!r}", p,
                                 "stitch one channel/time point at a time")
            self._keep(k, np.asarray(vol.data, dtype=np.float32))
            self.volumes.append(vol)
            vol.data = _Shape(vol.data.shape)  # keep the metadata, drop the voxels
        sizes = {tuple(np.round(v.voxel_size_um, 4)) for v in self.volumes}
        if len(sizes) > 1:
            raise InputError(f"tiles have different voxel sizes: {sorted(sizes)}",
                             hint="resample the tiles to one voxel size first")

    @property
    def voxel_size_um(self) -> tuple[float, float, float]:
        return self.volumes[0].voxel_size_um

    @property
    def medium_index(self) -> float | None:
        return self.volumes[0].medium_index

    def _keep(self, k: int, data: np.ndarray) -> np.ndarray:
        self._cache[k] = data
        self._cache.move_to_end(k)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return data

    def load(self, k: int) -> np.ndarray:
        """Tile ``k`` as a float32 array (from the cache, or read again)."""
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        from ..io import read

        vol = read(self.paths[k], frame=self.frame, **self.read_options)
        return self._keep(k, np.asarray(vol.data, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, k: int) -> _Tile:
        if not -len(self) <= k < len(self):
            raise IndexError(k)
        return _Tile(self, k % len(self))


class _Shape:
    """Placeholder data that only knows its shape."""

    def __init__(self, shape):
        self.shape = tuple(shape)


class _Tile:
    def __init__(self, files: TileFiles, k: int):
        self.files, self.k = files, k
        self.shape = files.volumes[k].data.shape

    def __getitem__(self, key):
        return self.files.load(self.k)[key]


def _tcf_position_um(path: Path, frame: int) -> np.ndarray | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = f[f"Data/3D/{frame:06d}"].attrs
            values = [attrs.get(f"Position{a}") for a in "ZYX"]
    except (OSError, KeyError):
        return None
    if values[1] is None or values[2] is None:
        return None
    vals = [float(np.ravel(v)[0]) if v is not None else 0.0 for v in values]
    return np.asarray(vals) * TCF_POSITION_UNIT_UM


def _ngff_translation_um(path: Path) -> np.ndarray | None:
    try:
        from ..io.ome_zarr import ngff_attributes

        attrs = ngff_attributes(path)
    except Exception:  # not an OME-Zarr, or unreadable: no position
        return None
    ms = (attrs.get("ome", attrs).get("multiscales") or [{}])[0]
    for t in (ms.get("datasets") or [{}])[0].get("coordinateTransformations", []):
        if t.get("type") == "translation" and len(t.get("translation", [])) >= 3:
            return np.asarray(t["translation"][-3:], dtype=float)
    return None


def positions_from_metadata(files: TileFiles) -> np.ndarray | None:
    """Nominal (z, y, x) tile origins in voxels from the files' stage positions, if all
    tiles have one (TCF ``PositionX/Y/Z``, OME-Zarr ``translation``, or a
    ``position_um`` entry of the volume metadata); else None."""
    out = []
    for path, vol in zip(files.paths, files.volumes):
        pos = vol.metadata.get("position_um")
        pos = np.asarray(pos, float) if pos is not None else None
        fmt = str(vol.metadata.get("format", ""))
        if pos is None and fmt.startswith("tcf"):
            pos = _tcf_position_um(path, files.frame)
        if pos is None and fmt.startswith("ome-zarr"):
            pos = _ngff_translation_um(path)
        if pos is None:
            return None
        out.append(pos / np.asarray(vol.voxel_size_um))
    pos = np.asarray(out)
    distances = np.abs(pos[:, None, 1:] - pos[None, :, 1:]).max(axis=-1)
    np.fill_diagonal(distances, np.inf)
    if len(pos) > 1 and distances.min() < 1.0:  # e.g. positions never recorded (all 0)
        log.warning("tiles share a stage position; their positions are not used")
        return None
    return pos - pos.min(axis=0)


def stitch_to_ome_zarr(path: str | Path, tiles: Sequence, offsets: np.ndarray,
                       voxel_size_um: Sequence[float], *, blend: str = "linear",
                       fill: float = 0.0, medium_index: float | None = None,
                       channel_name: str = "ri", chunks: Sequence[int] | None = None,
                       provenance: dict | None = None, overwrite: bool = False) -> Path:
    """Fuse placed tiles straight into an OME-Zarr store, block by block.

    The store appears under ``path`` only once complete (``ri2fl.io.create_ome_zarr``); the
    tile offsets are recorded in its ``ri2fl.stitch`` attributes. ``overwrite`` replaces a
    store ri2fl wrote (anything else is never replaced).
    """
    from ..io import create_ome_zarr

    shape = fused_shape([t.shape for t in tiles], offsets)
    with create_ome_zarr(path, shape, voxel_size_um, channel_names=[channel_name],
                         chunks=chunks, fill_value=fill, medium_index=medium_index,
                         overwrite=overwrite) as out:
        fuse_tiles(tiles, offsets, out, blend=blend, fill=fill)
        attrs = dict(out.group.attrs.get("ri2fl") or {})
        attrs["stitch"] = {"offsets_voxels": np.round(offsets, 3).tolist(), "blend": blend,
                           **(provenance or {})}
        out.group.attrs["ri2fl"] = attrs
    return Path(path)
