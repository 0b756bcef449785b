"""Tomocube TCF files (HDF5): reading every layout, writing realistic files, adding FL channels.

Layout (see ``shared/spec/formats.md``): modality groups ``Data/3D`` (RI), ``Data/2DMIP``,
``Data/3DFL/CH<n>``; one entry per time point named ``000000``, ``000001``, ...; every
attribute a 1-element array. A time point is either

- a dataset: float RI as is (FormatVersion < 1.3) or uint16 RI x 10⁴ (>= 1.3, 0 = medium), or
- an "LDM" group of tiles ``TILE_<k>`` with ``DataSizeX/Y/Z``, ``ScalarType``, ``RIMin``
  (``MinIntensity`` for FL); each tile has ``SamplingStep`` (only 1 is full resolution) and
  0-based inclusive ``DataIndexOffsetPoint*`` / ``DataIndexLastPoint*``; tiles may be stored
  larger than their extent (padding). uint8 tiles: RI = v / 1000 + RIMin; uint16: v / 10⁴.
  FL uint8 tiles are offset counts: v + MinIntensity.

Reading is lazy for time-lapses: each frame is a dask chunk whose loader opens the file and
reads that frame only. The assembly of LDM tiles is written here because no maintained library
reads TCF with laziness, validation and every layout (``tcfile`` loads eagerly and trusts
the attributes).
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # registers the LZ4/Zstd/Blosc filters of tiled TCF files
import numpy as np

from .._atomic import atomic_path
from ..constants import MEDIUM_INDEX
from ..errors import InputError
from ._checks import check_medium_index, check_size, corrupt_file_guard, validate, voxel_size_from
from ._hdf5util import attr, attr_float, attr_int, attrs_dict, check_stored, open_h5
from ._lazy import lazy_frames
from .volume import Volume

_FRAME = re.compile(r"^\d{6}$")
_TILE = re.compile(r"^TILE_(\d+)$")
_CHANNEL = re.compile(r"^CH(\d+)$")
_GROUPS = {"ri": "Data/3D", "mip": "Data/2DMIP", "fl": "Data/3DFL"}


# --------------------------------------------------------------------------- reading

def _frame_keys(group: h5py.Group) -> list[str]:
    return sorted(k for k in group if _FRAME.match(k))


def _tile_keys(group: h5py.Group) -> list[str]:
    keys = [k for k in group if _TILE.match(k)]
    return sorted(keys, key=lambda k: int(_TILE.match(k).group(1)))


def _ldm_shape(node: h5py.Group, ndim: int, where: str) -> tuple[int, ...]:
    names = "ZYX"[3 - ndim:]
    sizes = [attr_int(node, f"DataSize{a}", where) for a in names]
    if any(s is None for s in sizes):
        raise InputError(f"tiled (LDM) frame lacks DataSize{'/'.join(names)}", where,
                         "the TCF file is incomplete or corrupt")
    return check_size(sizes, where)


def frame_shape(node, ndim: int, where: str) -> tuple[int, ...]:
    """Shape of one frame (a dataset or an LDM group) without reading its data."""
    if isinstance(node, h5py.Dataset):
        if node.ndim != ndim:
            raise InputError(f"frame has {node.ndim} dimensions {node.shape}, expected {ndim}",
                             where, "the TCF file is corrupt")
        return check_size(node.shape, where)
    return _ldm_shape(node, ndim, where)


def _tile_region(tile: h5py.Dataset, shape: Sequence[int], where: str):
    """(target slices, source slices) of a full-resolution tile; None for reduced copies."""
    step = attr_float(tile, "SamplingStep", where, 1.0)
    if step != 1:
        return None
    ndim = len(shape)
    if tile.ndim != ndim:
        raise InputError(f"tile has {tile.ndim} dimensions, expected {ndim}", where,
                         "the TCF file is corrupt")
    target, source = [], []
    for axis, name in enumerate("ZYX"[3 - ndim:]):
        first = attr_int(tile, f"DataIndexOffsetPoint{name}", where)
        last = attr_int(tile, f"DataIndexLastPoint{name}", where)
        if first is None or last is None:
            raise InputError(f"tile lacks DataIndexOffsetPoint{name}/DataIndexLastPoint{name}",
                             where, "the TCF file is corrupt")
        if not 0 <= first <= last < shape[axis] or last - first + 1 > tile.shape[axis]:
            raise InputError(f"tile index range {first}..{last} along {name} does not fit the "
                             f"frame ({shape[axis]}) or the tile ({tile.shape[axis]})", where,
                             "the TCF file is corrupt")
        target.append(slice(first, last + 1))
        source.append(slice(0, last - first + 1))  # tiles may be padded beyond ``last``
    return tuple(target), tuple(source)


def _read_ldm(node: h5py.Group, ndim: int, kind: str, medium: float, where: str) -> np.ndarray:
    """Assemble a tiled frame: full-resolution tiles only, padding cut, values decoded."""
    shape = _ldm_shape(node, ndim, where)
    tiles = [(k, node[k]) for k in _tile_keys(node) if isinstance(node[k], h5py.Dataset)]
    regions = [(k, t, _tile_region(t, shape, f"{where}/{k}")) for k, t in tiles]
    regions = [(k, t, r) for k, t, r in regions if r is not None]
    # cheap bound first (hostile sizes allocate nothing), then the exact coverage
    n_voxels = int(np.prod(shape))
    if sum(int(np.prod([s.stop - s.start for s in r[0]])) for _, _, r in regions) < n_voxels:
        raise InputError("full-resolution tiles do not cover the frame", where,
                         "the TCF file is incomplete or corrupt")
    covered = np.zeros(shape, dtype=bool)
    raw = np.zeros(shape, dtype=np.float32)
    for key, tile, (target, source) in regions:
        if not np.issubdtype(tile.dtype, np.number):
            raise InputError(f"tile has data type {tile.dtype}", f"{where}/{key}")
        check_stored(tile, f"{where}/{key}")
        raw[target] = tile[source]
        covered[target] = True
    if not covered.all():
        raise InputError(f"full-resolution tiles do not cover the frame ({int(covered.sum())} "
                         f"of {n_voxels} voxels)", where, "the TCF file is incomplete or corrupt")
    uint8 = _is_uint8(attr(node, "ScalarType"), [t for _, t, _ in regions])
    if kind == "fl":  # uint8 FL tiles are counts offset by MinIntensity
        if uint8:
            raw += attr_float(node, "MinIntensity", where, 0.0)
        return raw
    if uint8:
        ri_min = attr_float(node, "RIMin", where)
        if ri_min is None:
            raise InputError("uint8 tiles without RIMin", where, "the TCF file is corrupt")
        raw /= np.float32(1000.0)
        raw += np.float32(ri_min)
        return raw
    return _decode_uint16(raw, medium)


def _is_uint8(scalar_type, tiles: Sequence[h5py.Dataset]) -> bool:
    """Whether tiles hold uint8 (RI - RIMin) x 1000: from ``ScalarType`` or the tile dtype.

    ``ScalarType`` is a flag in the files seen so far; a type name ("uint8", "UCHAR") is
    accepted too.
    """
    if isinstance(scalar_type, str):
        return "8" in scalar_type or "char" in scalar_type.lower()
    if scalar_type is not None:
        return bool(scalar_type)
    return bool(tiles) and tiles[0].dtype == np.uint8


def _decode_uint16(raw: np.ndarray, medium: float) -> np.ndarray:
    """RI x 10⁴ to RI; zeros (left empty by some pipelines) become the medium."""
    empty = raw == 0
    out = raw.astype(np.float32, copy=False)  # in place when already float32
    out /= np.float32(1e4)
    out[empty] = medium
    return out


def _read_node(node, ndim: int, kind: str, medium: float, where: str) -> np.ndarray:
    """Decode one frame (dataset or LDM group) of a modality into float32."""
    frame_shape(node, ndim, where)
    try:
        if isinstance(node, h5py.Group):
            data = _read_ldm(node, ndim, kind, medium, where)
        else:
            if not np.issubdtype(node.dtype, np.number):
                raise InputError(f"frame has data type {node.dtype}", where,
                                 "the TCF file is corrupt")
            check_stored(node, where)
            raw = node[()]
            if kind == "fl" or np.issubdtype(raw.dtype, np.floating):
                data = raw.astype(np.float32)  # FL counts; legacy (< 1.3) float RI as is
            else:
                data = _decode_uint16(raw, medium)
    except OSError as exc:
        raise InputError(f"cannot read frame data ({exc})", where,
                         "the file is truncated or a compression filter is missing") from None
    return validate(data, where, "fl" if kind == "fl" else "ri")


def _load_frame(path: str, group: str, keys: tuple[str, ...], ndim: int, kind: str,
                medium: float, t: int) -> np.ndarray:
    """Open ``path`` and decode frame ``keys[t]`` of ``group`` (picklable: lazy loader)."""
    key = keys[t]
    with corrupt_file_guard(path), open_h5(path, check_links=False) as f:
        return _read_node(f[f"{group}/{key}"], ndim, kind, medium, f"{path}:{group}/{key}")


def _load_fl_frame(path: str, channels: tuple[str, ...], keys: tuple[str, ...], medium: float,
                   t: int) -> np.ndarray:
    """Open ``path`` and decode frame ``keys[t]`` of every FL channel as (c, z, y, x)."""
    key = keys[t]
    with corrupt_file_guard(path), open_h5(path, check_links=False) as f:
        return np.stack([_read_node(f[f"Data/3DFL/{c}/{key}"], 3, "fl", medium,
                                    f"{path}:Data/3DFL/{c}/{key}") for c in channels])


#: Up to this many time points, their ``Time`` attributes are read when the file is opened;
#: beyond, times come from ``TimeInterval`` (see :func:`frame_times` for the exact ones).
_MAX_TIMES_READ = 512


def _times(group: h5py.Group, keys: Sequence[str], interval: float | None,
           where: str) -> list[float | None]:
    if len(keys) <= _MAX_TIMES_READ:
        return [attr_float(group[k], "Time", where) for k in keys]
    return [int(k) * interval if interval is not None else None for k in keys]


def frame_times(path: str | Path, modality: str = "ri") -> list[float | None]:
    """The ``Time`` attribute (s) of every time point of a modality (exact; reads them all)."""
    path = Path(path)
    with corrupt_file_guard(path), open_h5(path) as f:
        name = _GROUPS[modality]
        if modality == "fl":
            channels = _fl_channels(f, path)
            if not channels:
                raise InputError("Data/3DFL holds no channels", path)
            name = f"{name}/{channels[0]}"
        if name not in f:
            raise InputError(f"no '{name}' group", path)
        group = f[name]
        return [attr_float(group[k], "Time", f"{path}:{name}") for k in _frame_keys(group)]


def _voxel_size(group: h5py.Group, where: str, fallback: h5py.Group | None = None):
    values = []
    for a in "ZYX":
        v = attr_float(group, f"Resolution{a}", where)
        if v is None and fallback is not None:
            v = attr_float(fallback, f"Resolution{a}", where)
        values.append(v)
    if values[0] is None and values[1] is not None:  # 2D modalities have no z resolution
        values[0] = values[2]
    if any(v is None for v in values):
        raise InputError(f"no Resolution{'/'.join('ZYX')} attributes", where,
                         "pass voxel_size_um=(z, y, x) (CLI: --voxel-size Z Y X)")
    return voxel_size_from(values, where)


def _medium(f: h5py.File) -> float | None:
    if "Info/Device" not in f:
        return None
    return check_medium_index(attr(f["Info/Device"], "RI"), f"{f.filename}:Info/Device/RI")


def _pick_frame(keys: list[str], frame: int | None, where: str) -> list[str]:
    if frame is None:
        return keys
    if not -len(keys) <= frame < len(keys):
        raise InputError(f"frame {frame} out of range (0..{len(keys) - 1})", where)
    return [keys[frame]]


def _fl_channels(f: h5py.File, where: str) -> list[str]:
    if "Data/3DFL" not in f:
        return []
    group = f["Data/3DFL"]
    keys = [k for k in group if _CHANNEL.match(k) and isinstance(group[k], h5py.Group)]
    return sorted(keys, key=lambda k: int(_CHANNEL.match(k).group(1)))


def _fl_name(group: h5py.Group, key: str) -> str:
    name = attr(group, "Name")
    return str(name) if name else key


def _metadata(f: h5py.File, path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": "tcf", **attrs_dict(f)}
    for group in ("Info/Device", "Info/Imaging", "Info/MetaData/FL/Registration"):
        if group in f and isinstance(f[group], h5py.Group):
            meta[group.replace("/", ".")] = attrs_dict(f[group])
    meta["modalities"] = sorted(f["Data"].keys()) if "Data" in f else []
    channels = _fl_channels(f, path)
    meta["fl_channels"] = [_fl_name(f[f"Data/3DFL/{c}"], c) for c in channels]
    return meta


def read_tcf(path: str | Path, *, frame: int | None = None, modality: str = "ri",
             voxel_size_um=None, medium_index: float | None = None) -> Volume:
    """Read a Tomocube TCF file (all layouts: legacy float, uint16, tiled LDM).

    Parameters
    ----------
    path : str or Path
        The ``.TCF`` file.
    frame : int, optional
        Time point (default: all, as a lazy dask array when there are several).
    modality : {"ri", "fl", "mip"}
        ``Data/3D`` RI (zyx / tzyx), ``Data/3DFL`` fluorescence channels (czyx / tczyx, raw
        counts, with their own voxel size; ``metadata["fl_offset_z_um"]`` gives where each
        channel's slice 0 sits in RI z coordinates; ``frame`` counts FL time points, whose
        times are ``metadata["times_s"]``), or ``Data/2DMIP`` (a (1, y, x) volume).
    voxel_size_um : float or (z, y, x), optional
        Overrides the Resolution attributes.
    medium_index : float, optional
        Overrides ``Info/Device/RI``; also the value given to empty (0) uint16 voxels.
    """
    path = Path(path)
    with open_h5(path) as f:
        group_name = _GROUPS[modality]
        if group_name not in f or not isinstance(f[group_name], h5py.Group):
            have = sorted(f["Data"].keys()) if "Data" in f and isinstance(
                f["Data"], h5py.Group) else []
            raise InputError(f"not a readable TCF: no '{group_name}' group (has {have})", path,
                             "choose another modality" if have else "the file is not a TCF")
        group = f[group_name]
        where = f"{path}:{group_name}"
        medium = medium_index if medium_index is not None else _medium(f)
        fill = medium if medium is not None else MEDIUM_INDEX
        metadata = _metadata(f, path)
        metadata["FormatVersion"] = attr(f, "FormatVersion")
        metadata[group_name.replace("/", ".")] = attrs_dict(group)
        time_interval = attr_float(group, "TimeInterval", where)
        if modality == "fl":
            vol = _read_fl(f, path, frame, fill, metadata)
        else:
            keys = _frame_keys(group)
            if not keys:
                raise InputError(f"'{group_name}' holds no time points", path,
                                 "the TCF file is empty or incomplete")
            ndim = 3 if modality == "ri" else 2
            # first and last frame here; every frame is checked again when it is loaded
            shapes = {frame_shape(group[k], ndim, f"{where}/{k}") for k in (keys[0], keys[-1])}
            if len(shapes) != 1:
                raise InputError(f"time points have different shapes {sorted(shapes)}", where)
            shape = shapes.pop()
            metadata["layout"] = "ldm" if isinstance(group[keys[0]], h5py.Group) else "dataset"
            metadata["times_s"] = _times(group, keys, time_interval, where)
            keys = _pick_frame(keys, frame, where)
            loader = functools.partial(_load_frame, str(path), group_name, tuple(keys), ndim,
                                       modality, fill)
            if len(keys) == 1:
                data, axes = loader(0), "zyx"
            else:
                data, axes = lazy_frames(loader, len(keys), shape), "tzyx"
            if ndim == 2:
                data = data[..., None, :, :]
            vol = Volume(data=data, voxel_size_um=_voxel_size(group, where, f.get("Data/3D")),
                         axes=axes, channel_names=[modality], metadata=metadata)
    if voxel_size_um is not None:
        vol.voxel_size_um = voxel_size_from(voxel_size_um, path)
    vol.medium_index = medium
    vol.time_interval_s = time_interval
    return vol


def _read_fl(f: h5py.File, path: Path, frame: int | None, medium: float,
             metadata: dict) -> Volume:
    channels = _fl_channels(f, path)
    where = f"{path}:Data/3DFL"
    if not channels:
        raise InputError("Data/3DFL holds no channels (CH0, CH1, ...)", path)
    groups = [f[f"Data/3DFL/{c}"] for c in channels]
    keys = sorted(set.intersection(*(set(_frame_keys(g)) for g in groups)))
    if not keys:
        raise InputError("fluorescence channels share no time point", where)
    shapes = {frame_shape(g[k], 3, f"{where}/{c}/{k}") for g, c in zip(groups, channels)
              for k in (keys[0], keys[-1])}
    if len(shapes) != 1:
        raise InputError(f"fluorescence channels have different shapes {sorted(shapes)}", where)
    shape = shapes.pop()
    fl_group = f["Data/3DFL"]
    metadata["fl_offset_z_um"] = [attr_float(g, "OffsetZ", where,
                                             attr_float(fl_group, "OffsetZ", where, 0.0))
                                  for g in groups]
    metadata["fl_frames"] = keys
    # FL may be sampled less often than RI: match FL and RI time points by their times
    metadata["times_s"] = _times(groups[0], keys, attr_float(fl_group, "TimeInterval", where),
                                 where)
    metadata["layout"] = "ldm" if isinstance(groups[0][keys[0]], h5py.Group) else "dataset"
    names = [_fl_name(g, c) for g, c in zip(groups, channels)]
    keys = _pick_frame(keys, frame, where)
    loader = functools.partial(_load_fl_frame, str(path), tuple(channels), tuple(keys), medium)
    if len(keys) == 1:
        data, axes = loader(0), "czyx"
    else:
        data, axes = lazy_frames(loader, len(keys), (len(channels), *shape)), "tczyx"
    return Volume(data=data, voxel_size_um=_voxel_size(fl_group, where), axes=axes,
                  channel_names=names, metadata=metadata)


# --------------------------------------------------------------------------- writing

def _a(value) -> np.ndarray:
    """A TCF attribute: a 1-element array (strings as fixed-length bytes)."""
    if isinstance(value, str):
        return np.array([value.encode()])
    if isinstance(value, bool | np.bool_):
        return np.array([int(value)], dtype=np.int64)
    if isinstance(value, int | np.integer):
        return np.array([value], dtype=np.int64)
    return np.array([value], dtype=np.float64)


def _set_attrs(obj, **attrs) -> None:
    for key, value in attrs.items():
        if value is not None:
            obj.attrs[key] = _a(value)


def _compression(name: str | None) -> dict:
    if name is None:
        return {}
    if name == "gzip":
        return {"compression": "gzip", "compression_opts": 4}
    plugins = {"lz4": hdf5plugin.LZ4, "zstd": hdf5plugin.Zstd, "blosc": hdf5plugin.Blosc}
    if name not in plugins:
        raise InputError(f"unknown TCF compression {name!r}",
                         hint="use None, 'gzip', 'lz4', 'zstd' or 'blosc'")
    return dict(plugins[name]())


def _as_frames(data, ndim: int = 3) -> list[np.ndarray]:
    if isinstance(data, np.ndarray) and data.ndim == ndim:
        return [data]
    frames = [np.asarray(x) for x in data]
    if not frames or any(x.ndim != ndim for x in frames):
        raise InputError(f"expected a ({'z, ' if ndim == 3 else ''}y, x) array or a list/stack "
                         "of them")
    return frames


def _write_tiles(group: h5py.Group, data: np.ndarray, tile_shape: Sequence[int],
                 include_reduced: bool, comp: dict) -> None:
    """Cut ``data`` into tiles padded to ``tile_shape`` and add a SamplingStep-2 copy."""
    names = "ZYX"[3 - data.ndim:]
    starts = [range(0, n, t) for n, t in zip(data.shape, tile_shape)]
    index = 0
    for corner in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, data.ndim):
        sl = tuple(slice(int(c), min(int(c) + t, n))
                   for c, t, n in zip(corner, tile_shape, data.shape))
        block = np.zeros(tile_shape, dtype=data.dtype)  # stored padded, as real files do
        block[tuple(slice(0, s.stop - s.start) for s in sl)] = data[sl]
        tile = group.create_dataset(f"TILE_{index:02d}", data=block, **comp)
        _set_attrs(tile, SamplingStep=1,
                   **{f"DataIndexOffsetPoint{a}": s.start for a, s in zip(names, sl)},
                   **{f"DataIndexLastPoint{a}": s.stop - 1 for a, s in zip(names, sl)})
        index += 1
    if include_reduced:  # a reduced copy real files carry: readers must skip it
        reduced = data[tuple(slice(None, None, 2) for _ in names)]
        tile = group.create_dataset(f"TILE_{index:02d}", data=reduced, **comp)
        _set_attrs(tile, SamplingStep=2,
                   **{f"DataIndexOffsetPoint{a}": 0 for a in names},
                   **{f"DataIndexLastPoint{a}": n - 1 for a, n in zip(names, reduced.shape)})
        index += 1
    _set_attrs(group, NumberOfTiles=index,
               **{f"DataSize{a}": n for a, n in zip(names, data.shape)})


def _encode_ri(ri: np.ndarray, version: float, layout: str, scalar_type: str):
    """Stored array and group attributes of one RI frame."""
    if version < 1.3:
        return ri.astype(np.float32), {}
    if layout == "ldm" and scalar_type == "uint8":
        ri_min = float(np.floor(ri.min() * 1000) / 1000)
        v = np.clip(np.round((ri - ri_min) * 1000), 0, 255).astype(np.uint8)
        return v, {"ScalarType": 1, "RIMin": ri_min}
    v = np.clip(np.round(ri.astype(np.float64) * 1e4), 0, 65535).astype(np.uint16)
    return v, ({"RIMin": float(ri.min())} if layout == "ldm" else {})


def _write_frame(group: h5py.Group, key: str, stored: np.ndarray, extra: dict, layout: str,
                 tile_shape, include_reduced: bool, comp: dict, frame_attrs: dict):
    if layout == "ldm":
        node = group.create_group(key)
        if tile_shape is None:  # full z, half of y and x: edge tiles come out padded
            half = tuple(max(1, -(-n // 2)) for n in stored.shape[-2:])
            tile_shape = (*stored.shape[:-2], *half)
        _write_tiles(node, stored, tuple(tile_shape)[-stored.ndim:], include_reduced, comp)
    else:
        node = group.create_dataset(key, data=stored, **comp)
    _set_attrs(node, **{**frame_attrs, **extra})  # the decoding offset wins over RIMin
    return node


def write_tcf(path: str | Path, ri_frames, voxel_size_um, fl: Mapping[str, Any] | None = None,
              version: str = "1.4", layout: str = "dataset", *,
              medium_index: float = MEDIUM_INDEX, time_interval_s: float = 1.0,
              fl_voxel_size_um=None, fl_offset_z_um: float | Sequence[float] = 0.0,
              scalar_type: str = "uint16", tile_shape: Sequence[int] | None = None,
              include_reduced_tiles: bool = True, compression: str | None = None,
              mip: bool = True, title: str = "ri2fl", wavelength_um: float = 0.532,
              na: float = 1.08, magnification: float = 60.0, overwrite: bool = False) -> Path:
    """Write a realistic Tomocube TCF file, atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.TCF`` file.
    ri_frames : array or sequence of arrays
        One (z, y, x) RI tomogram, or a (t, z, y, x) stack / list of them.
    voxel_size_um : float or (z, y, x)
        RI voxel size (stored as ResolutionZ/Y/X).
    fl : mapping name -> array, optional
        Fluorescence counts per channel, (z, y, x) or (t, z, y, x), uint8 or uint16; written
        to ``Data/3DFL/CH<n>`` in the mapping's order with a ``Name`` attribute.
    version : str
        FormatVersion. < "1.3" stores float RI; >= "1.3" stores uint16 RI x 10⁴.
    layout : {"dataset", "ldm"}
        One dataset per frame, or tiled LDM groups (needs version >= 1.3).
    medium_index : float
        Stored as ``Info/Device/RI``.
    time_interval_s : float
        ``TimeInterval`` of the modality groups and ``Time`` of each frame.
    fl_voxel_size_um : float or (z, y, x), optional
        FL voxel size (default: the RI voxel size).
    fl_offset_z_um : float or one per channel
        ``OffsetZ`` of each FL channel (µm in RI z coordinates).
    scalar_type : {"uint16", "uint8"}
        LDM tiles: uint16 RI x 10⁴, or uint8 (RI - RIMin) x 1000 with ``ScalarType``.
    tile_shape : sequence of int, optional
        LDM tile shape (default: full z, half of y and x, so edge tiles are padded).
    include_reduced_tiles : bool
        LDM: add a SamplingStep-2 reduced copy as real files do.
    compression : {None, "gzip", "lz4", "zstd", "blosc"}
        Dataset compression ("lz4"/"zstd"/"blosc" need hdf5plugin to read, like real files).
    mip : bool
        Also write ``Data/2DMIP`` (max projection along z).
    overwrite : bool
        Replace an existing TCF that ri2fl wrote (anything else is never replaced).
    """
    v = float(version)
    if layout not in ("dataset", "ldm"):
        raise InputError(f"unknown TCF layout {layout!r}", hint="use 'dataset' or 'ldm'")
    if layout == "ldm" and v < 1.3:
        raise InputError("the LDM layout needs FormatVersion >= 1.3")
    frames = _as_frames(ri_frames)
    vz, vy, vx = voxel_size_from(voxel_size_um, "voxel_size_um")
    comp = _compression(compression)
    now = _dt.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    with atomic_path(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as f:
        # these root attributes, written first, lie near the start: ri2fl's mark (ri2fl._atomic)
        _set_attrs(f, FormatVersion=version, CreateDate=stamp, RecordingTime=stamp,
                   DataID=f"ri2fl-{uuid.uuid4().hex[:8]}", UniqueID=uuid.uuid4().hex,
                   Title=title, Description="written by ri2fl.io.tcf.write_tcf",
                   UserID="ri2fl", DeviceHost="ri2fl", DeviceSerial="SIM-0000",
                   DeviceSoftwareVersion="ri2fl", SoftwareVersion="ri2fl",
                   DeviceModelType="HTX")
        _set_attrs(f.create_group("Info/Device"), Magnification=magnification, NA=na,
                   RI=medium_index, Wavelength=wavelength_um, Iteration=100)
        _set_attrs(f.create_group("Info/Imaging"), CameraGain=1.0, CameraShutter=1.0)
        _set_attrs(f.create_group("Info/MetaData/FL/Registration"), Rotation=0.0, Scale=1.0,
                   TranslationX=0.0, TranslationY=0.0)
        nz, ny, nx = frames[0].shape
        g3 = f.create_group("Data/3D")
        _set_attrs(g3, DataCount=len(frames), SizeX=nx, SizeY=ny, SizeZ=nz, ResolutionX=vx,
                   ResolutionY=vy, ResolutionZ=vz, TimeInterval=time_interval_s,
                   RIMin=float(min(x.min() for x in frames)),
                   RIMax=float(max(x.max() for x in frames)))
        gm = f.create_group("Data/2DMIP") if mip else None
        if gm is not None:
            _set_attrs(gm, DataCount=len(frames), SizeX=nx, SizeY=ny, ResolutionX=vx,
                       ResolutionY=vy, TimeInterval=time_interval_s)
        for t, ri in enumerate(frames):
            frame_attrs = {"PositionX": 0.0, "PositionY": 0.0, "PositionZ": 0.0,
                           "PositionC": 0.0, "Time": t * time_interval_s,
                           "RecordingTime": (now + _dt.timedelta(seconds=t * time_interval_s)
                                             ).strftime("%Y-%m-%d %H:%M:%S.%f"),
                           "RIMin": float(ri.min()), "RIMax": float(ri.max())}
            stored, extra = _encode_ri(ri, v, layout, scalar_type)
            _write_frame(g3, f"{t:06d}", stored, extra, layout, tile_shape,
                         include_reduced_tiles, comp, frame_attrs)
            if gm is not None:
                mip_stored, mip_extra = _encode_ri(ri.max(axis=0), v, layout, scalar_type)
                _write_frame(gm, f"{t:06d}", mip_stored, mip_extra, layout, None,
                             include_reduced_tiles, comp, frame_attrs)
        if fl:
            _write_fl(f, fl, fl_voxel_size_um or (vz, vy, vx), fl_offset_z_um, layout,
                      tile_shape, include_reduced_tiles, comp, time_interval_s)
    return Path(path)


def _write_fl(f: h5py.File, fl: Mapping[str, Any], voxel_size_um, offset_z_um, layout: str,
              tile_shape, include_reduced: bool, comp: dict, time_interval_s: float) -> None:
    vz, vy, vx = voxel_size_from(voxel_size_um, "fl_voxel_size_um")
    offsets = ([float(offset_z_um)] * len(fl) if np.ndim(offset_z_um) == 0
               else [float(o) for o in offset_z_um])
    channels = {name: _as_frames(arr) for name, arr in fl.items()}
    shapes = {x.shape for frames in channels.values() for x in frames}
    if not channels or len(shapes) != 1 or len(offsets) != len(channels):
        raise InputError(f"fluorescence channels must be non-empty, of one (z, y, x) shape "
                         f"(got {sorted(shapes)}) with one OffsetZ each")
    nz, ny, nx = shapes.pop()
    group = f.create_group("Data/3DFL")
    _set_attrs(group, Channels=len(channels), DataCount=max(len(x) for x in channels.values()),
               SizeX=nx, SizeY=ny, SizeZ=nz, ResolutionX=vx, ResolutionY=vy, ResolutionZ=vz,
               TimeInterval=time_interval_s)
    for i, (name, frames) in enumerate(channels.items()):
        ch = group.create_group(f"CH{i}")
        _set_attrs(ch, Name=str(name), OffsetZ=float(offsets[i]))
        for t, arr in enumerate(frames):
            extra: dict = {}
            stored = arr
            if layout == "ldm" and arr.dtype == np.uint8:
                lo = int(arr.min())
                stored = (arr - lo).astype(np.uint8)
                extra = {"ScalarType": 1, "MinIntensity": float(lo)}
            _write_frame(ch, f"{t:06d}", stored, extra, layout, tile_shape, include_reduced,
                         comp, {"Time": t * time_interval_s})


def add_fl_channels(src: str | Path, dst: str | Path, channels: Mapping[str, Any],
                    voxel_size_um=None, offset_z_um: float = 0.0, *,
                    overwrite: bool = False) -> Path:
    """Copy a TCF file and put inferred channels in ``Data/3DFL/CH0..CHn`` (uint8 x 255).

    This is how the reference tool hands predictions to Tomocube's viewer: values in [0, 1]
    are stored as ``round(255 * clip(v, 0, 1))``. An existing ``Data/3DFL`` is replaced;
    everything else is copied unchanged, and a ``ri2fl_version`` root attribute is added.
    ``dst`` may equal ``src`` only when ``src`` is a TCF ri2fl wrote and ``overwrite`` is set
    (a user's file is never replaced).

    Parameters
    ----------
    src, dst : str or Path
        Input TCF and output TCF.
    channels : mapping name -> array
        (z, y, x) or (t, z, y, x) inferred fluorescence in [0, 1], e.g. the six TARGETS in
        order (membrane, actin, mitochondria, lipid_droplets, nucleus, nucleolus).
    voxel_size_um : float or (z, y, x), optional
        Voxel size of the channels (default: the RI voxel size of ``src``).
    offset_z_um : float
        ``OffsetZ`` of the channels (0: slice 0 on RI slice 0, as for predictions).
    overwrite : bool
        Replace an existing ``dst`` that ri2fl wrote.
    """
    from .. import __version__

    src, dst = Path(src), Path(dst)
    with open_h5(src) as f:
        if "Data/3D" not in f:
            raise InputError("not a TCF: no 'Data/3D' group", src)
        if voxel_size_um is None:
            voxel_size_um = _voxel_size(f["Data/3D"], f"{src}:Data/3D")
    encoded = {name: np.round(np.clip(np.nan_to_num(np.asarray(a, dtype=np.float32)), 0, 1)
                              * 255).astype(np.uint8) for name, a in channels.items()}
    with atomic_path(dst, overwrite=overwrite) as tmp:
        shutil.copyfile(src, tmp)
        with h5py.File(tmp, "r+") as f:
            for group in ("Data/3DFL", "Data/2DFLMIP"):
                if group in f:
                    del f[group]
            _write_fl(f, encoded, voxel_size_um, offset_z_um, "dataset", None, False, {},
                      attr_float(f["Data/3D"], "TimeInterval", src, 1.0))
            mips = f.create_group("Data/2DFLMIP")
            _set_attrs(mips, Channels=len(encoded))
            for i, arr in enumerate(encoded.values()):
                for t, frame in enumerate(_as_frames(arr)):
                    mips.create_dataset(f"CH{i}/{t:06d}", data=frame.max(axis=0))
            # last: a copied header seldom has room, so it lands at the end of the file
            f.attrs["ri2fl_version"] = __version__
    return dst
