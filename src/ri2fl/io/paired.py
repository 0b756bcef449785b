"""Paired training samples in the paper's HDF5 convention, extended for multi-target data.

Layout of one ``.h5`` file (all arrays (Z, Y, X) on the RI grid):

- ``ri``: float32 reconstructed RI, attrs ``voxel_size_um`` (z, y, x), ``medium_index``.
- ``fl``: float32 fluorescence, either (Z, Y, X) for one target (attr ``target``) or
  (C, Z, Y, X) with attr ``channel_names``; the paper's files hold a single ``fl``.
- optional ``ri_true`` (float32), ``masks/<name>`` (uint8 0/1), ``cell_labels`` and
  ``nucleus_labels`` (int32), ``bf`` and ``dic`` (float32).
- root attrs: ``cell_type``, ``seed`` and anything else the writer adds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._atomic import atomic_path
from ..constants import RI_CLIP
from ..errors import InputError
from ._checks import (
    check_axes_not_empty,
    check_medium_index,
    check_regular_file,
    check_size,
    corrupt_file_guard,
    voxel_size_from,
)
from ._hdf5util import check_stored, open_h5

#: File suffixes of paired RI / fluorescence data: paired HDF5, TCF with ``Data/3DFL``,
#: OME-Zarr with an ``ri`` channel.
PAIRED_SUFFIXES = (".h5", ".hdf5", ".tcf", ".zarr")

_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


@dataclass
class PairedSample:
    """One paired RI / fluorescence field of view with optional ground truth."""

    ri: np.ndarray
    fl: dict[str, np.ndarray]
    voxel_size_um: tuple[float, float, float]
    medium_index: float = 1.337
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    cell_labels: np.ndarray | None = None
    nucleus_labels: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


def write_paired(path: str | Path, sample: PairedSample, *, overwrite: bool = False) -> Path:
    """Write ``sample`` to ``path`` (HDF5), atomically.

    ``overwrite`` replaces an existing file that ri2fl wrote (anything else never).
    """
    from .. import __version__

    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as f:
        # first, so that it lies near the start of the file (see ri2fl._atomic)
        f.attrs["ri2fl_version"] = __version__
        ri = f.create_dataset("ri", data=sample.ri.astype(np.float32), **_COMPRESSION)
        ri.attrs["voxel_size_um"] = np.asarray(sample.voxel_size_um, dtype=np.float64)
        ri.attrs["medium_index"] = float(sample.medium_index)
        names = list(sample.fl)
        if names:
            fl = f.create_dataset(
                "fl", data=np.stack([sample.fl[n] for n in names]).astype(np.float32),
                **_COMPRESSION)
            fl.attrs["channel_names"] = names
        for name, mask in sample.masks.items():
            f.create_dataset(f"masks/{name}", data=mask.astype(np.uint8), **_COMPRESSION)
        for name in ("cell_labels", "nucleus_labels"):
            arr = getattr(sample, name)
            if arr is not None:
                f.create_dataset(name, data=arr.astype(np.int32), **_COMPRESSION)
        for name, arr in sample.extra.items():
            f.create_dataset(name, data=arr, **_COMPRESSION)
        for key, value in sample.attrs.items():
            f.attrs[key] = value
        f.attrs["voxel_size_um"] = np.asarray(sample.voxel_size_um, dtype=np.float64)
    return path


def read_paired(path: str | Path, targets: list[str] | None = None,
                load_extra: bool = True) -> PairedSample:
    """Read a paired HDF5 file written by :func:`write_paired` or by the paper's tools.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.
    targets : list of str, optional
        Fluorescence channels to load (default: all).
    load_extra : bool
        Also load masks, labels and other arrays.
    """
    path = Path(path).expanduser()
    with corrupt_file_guard(path):
        return _read_paired(path, targets, load_extra)


def _checked_dataset(f: h5py.File, name: str, path: Path,
                     ranks: tuple[int, ...] = (1, 2, 3, 4)) -> h5py.Dataset:
    """Dataset ``name``, refused unless numeric, of one of ``ranks`` (4: channels first), of
    a size that may be read, and stored (not only declared)."""
    ds = f[name]
    where = f"{path}:{name}"
    if not isinstance(ds, h5py.Dataset) or ds.ndim not in ranks:
        raise InputError(f"'{name}' is not an array of {' or '.join(map(str, ranks))} "
                         "dimensions", where, "paired files hold (Z, Y, X) arrays ('fl' may "
                         "add channels first)")
    if not (np.issubdtype(ds.dtype, np.number) or ds.dtype == np.bool_):
        raise InputError(f"unsupported data type {ds.dtype}", where)
    check_axes_not_empty(ds.shape, "czyx"[-ds.ndim:], where)
    check_size(ds.shape, where)
    check_stored(ds, where)
    return ds


def _read_paired(path: Path, targets: list[str] | None, load_extra: bool) -> PairedSample:
    check_regular_file(path)
    with open_h5(path) as f:
        if "ri" not in f:
            raise InputError("no 'ri' dataset", path,
                             "paired files need datasets 'ri' and 'fl' (Z, Y, X)")
        ri_ds = _checked_dataset(f, "ri", path, ranks=(3,))
        vs = ri_ds.attrs.get("voxel_size_um", f.attrs.get("voxel_size_um"))
        if vs is None:
            raise InputError("no 'voxel_size_um' attribute", path,
                             "add one to the 'ri' dataset: (z, y, x) in µm")
        voxel_size = voxel_size_from(vs, f"{path}:ri")
        stored_medium = ri_ds.attrs.get("medium_index")
        medium = 1.337 if stored_medium is None else check_medium_index(
            np.asarray(stored_medium).ravel()[0], f"{path}:ri")
        fl: dict[str, np.ndarray] = {}
        if "fl" in f:
            ds = _checked_dataset(f, "fl", path, ranks=(3, 4))
            if ds.ndim == 3:
                name = ds.attrs.get("target", "fl")
                names = [name.decode() if isinstance(name, bytes) else str(name)]
                arrays = {names[0]: lambda: ds[()]}
            else:
                default = [f"ch{i}" for i in range(ds.shape[0])]
                names = [n.decode() if isinstance(n, bytes) else str(n)
                         for n in ds.attrs.get("channel_names", default)]
                arrays = {n: (lambda i=i: ds[i]) for i, n in enumerate(names)}
            for name in names:
                if targets is None or name in targets:
                    fl[name] = np.asarray(arrays[name](), dtype=np.float32)
            missing = [t for t in (targets or []) if t not in fl]
            if missing:
                raise InputError(f"fluorescence targets {missing} not in file (has {names})", path)
        sample = PairedSample(ri=np.asarray(ri_ds[()], dtype=np.float32), fl=fl,
                              voxel_size_um=voxel_size, medium_index=medium,
                              attrs={k: f.attrs[k] for k in f.attrs})
        if load_extra:
            if "masks" in f:
                sample.masks = {k: _checked_dataset(f, f"masks/{k}", path)[()].astype(bool)
                                for k in f["masks"]}
            for name in ("cell_labels", "nucleus_labels"):
                if name in f:
                    setattr(sample, name, _checked_dataset(f, name, path)[()])
            for name in ("ri_true", "bf", "dic"):
                if name in f:
                    sample.extra[name] = _checked_dataset(f, name, path)[()]
    return sample


def read_ri_fl(path: str | Path, fl_names: Sequence[str],
               channel_map: Mapping[str, str] | None = None, skip_missing: bool = False
               ) -> tuple[np.ndarray, dict[str, np.ndarray], tuple, float]:
    """RI and fluorescence of a TCF (``Data/3D`` + ``Data/3DFL``) or a multi-channel OME-Zarr.

    TCF fluorescence has its own grid and ``OffsetZ``: it is mapped onto the RI grid with
    ``ri2fl.preprocess.fl_to_ri_grid``; RI voxels outside the FL stack become NaN
    (unregistered). OME-Zarr needs a channel named ``ri`` and the targets on one grid.

    Parameters
    ----------
    path : str or Path
        The ``.TCF`` file or ``.zarr`` folder.
    fl_names : sequence of str
        Target names to read.
    channel_map : mapping, optional
        Target name -> channel name in the file (e.g. ``{"nucleus": "CH1"}``); a target
        whose mapped channel the file lacks, or that is not mapped, is looked up by its own
        name.
    skip_missing : bool
        Leave out targets the file has no channel for, instead of raising ``InputError``.

    Returns
    -------
    ri, fluorescence (target -> array on the RI grid), voxel size (µm), medium index
    """
    from . import read

    path = Path(path)
    channel_map = channel_map or {}

    def channels(names: list[str]) -> dict[str, int]:
        found = {}
        for target in fl_names:
            name = channel_map.get(target, target)
            if name in names or target in names:
                found[target] = names.index(name if name in names else target)
            elif not skip_missing:
                raise InputError(f"no fluorescence channel {name!r} (has {names})", path,
                                 "map targets to channels with data.channel_map")
        return found

    if path.suffix.lower() == ".tcf":
        from ..preprocess import fl_to_ri_grid

        ri_vol = read(path, frame=0, modality="ri")
        fl_vol = read(path, frame=0, modality="fl")
        ri = np.asarray(ri_vol.data, np.float32)
        fl = np.asarray(fl_vol.data, np.float32)
        offsets = fl_vol.metadata.get("fl_offset_z_um") or [0.0] * fl.shape[0]
        targets = {}
        for name, c in channels(list(fl_vol.channel_names)).items():
            args = (fl_vol.voxel_size_um, ri.shape, ri_vol.voxel_size_um, float(offsets[c]))
            mapped = fl_to_ri_grid(fl[c], *args)
            covered = fl_to_ri_grid(np.ones(fl.shape[1:], np.float32), *args)
            mapped[covered < 0.999] = np.nan
            targets[name] = mapped
        medium = ri_vol.medium_index if ri_vol.medium_index is not None else RI_CLIP[0]
        return ri, targets, ri_vol.voxel_size_um, medium
    vol = read(path, frame=0, modality="fl")
    names = list(vol.channel_names)
    data = np.asarray(vol.data, np.float32)
    if data.ndim != 4 or "ri" not in names:
        raise InputError(f"not a paired volume: channels {names}", path,
                         "paired OME-Zarr needs a channel 'ri' and the fluorescence targets")
    targets = {n: data[c] for n, c in channels(names).items()}
    medium = vol.medium_index if vol.medium_index is not None else RI_CLIP[0]
    return data[names.index("ri")], targets, vol.voxel_size_um, medium


def read_paired_any(path: str | Path, targets: Sequence[str],
                    channel_map: Mapping[str, str] | None = None,
                    fl_scale: float = 1.0) -> PairedSample:
    """A paired field of view from paired HDF5, TCF with fluorescence, or paired OME-Zarr.

    The fluorescence channels that ``targets`` name (through ``channel_map``) are read onto
    the RI grid and divided by ``fl_scale`` (raw counts -> the models' fixed ~[0, 1] scale; one
    number for a whole data set). A TCF's fluorescence stack may cover only part of the RI
    stack: the sample is cropped to the z-slices where every channel read is registered.

    Raises
    ------
    InputError
        When the fluorescence covers no whole z-slice of the RI.
    """
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        sample = read_paired(path, targets=None)
        sample.fl = {n: a for n, a in sample.fl.items() if n in targets}
    else:
        ri, fl, voxel, medium = read_ri_fl(path, targets, channel_map, skip_missing=True)
        sample = PairedSample(ri=ri, fl=fl, voxel_size_um=tuple(voxel), medium_index=medium)
        _crop_to_registered(sample, path)
    if fl_scale != 1.0:
        sample.fl = {n: a / np.float32(fl_scale) for n, a in sample.fl.items()}
    return sample


def _crop_to_registered(sample: PairedSample, path: Path) -> None:
    if not sample.fl:
        return
    finite = np.all([np.isfinite(a).all(axis=(1, 2)) for a in sample.fl.values()], axis=0)
    if not finite.any():
        raise InputError("the fluorescence covers no whole z-slice of the RI", path,
                         "check the file's fluorescence OffsetZ and voxel size")
    z = np.flatnonzero(finite)
    keep = slice(int(z[0]), int(z[-1]) + 1)
    sample.ri = sample.ri[keep]
    sample.fl = {n: np.nan_to_num(a[keep], nan=0.0) for n, a in sample.fl.items()}
