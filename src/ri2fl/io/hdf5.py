"""Plain HDF5 volumes in the paper's convention: datasets ``ri`` and ``fl`` (Z, Y, X).

The voxel size comes from a ``voxel_size_um`` attribute on the dataset or the file (one number
means isotropic, three are z, y, x); ``medium_index`` likewise. ``fl`` may be (Z, Y, X) or
(C, Z, Y, X) with a ``channel_names`` attribute, as :func:`ri2fl.io.write_paired` writes it.
Integer data packed with the CF convention (``scale_factor``, ``add_offset`` attributes) is
unpacked to float32: ``value = stored * scale_factor + add_offset``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ._checks import (
    check_axes_not_empty,
    check_medium_index,
    check_single_frame,
    check_size,
    check_time_interval,
    corrupt_file_guard,
    validate,
    voxel_size_from,
)
from ._hdf5util import attr, attrs_dict, check_stored, open_h5
from ._lazy import lazy_frames
from .volume import Volume

_DEFAULT_DATASET = {"ri": "ri", "fl": "fl"}


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names


def _pick_dataset(f: h5py.File, path: Path, modality: str, dataset: str | None) -> h5py.Dataset:
    name = dataset or _DEFAULT_DATASET.get(modality)
    if name is None:
        raise InputError(f"modality {modality!r} is not available in plain HDF5", path,
                         "use modality 'ri' or 'fl', or name the dataset")
    if name in f and isinstance(f[name], h5py.Dataset):
        return f[name]
    volumes = [n for n in _datasets(f) if f[n].ndim >= 3]
    if dataset is None and modality == "ri" and len(volumes) == 1:
        return f[volumes[0]]
    raise InputError(f"no dataset {name!r} (datasets: {volumes or _datasets(f)})", path,
                     "pass dataset=NAME (CLI: --dataset NAME)")


def _axes(ds: h5py.Dataset, modality: str, path: Path) -> str:
    ndim = ds.ndim
    if ndim == 3:
        return "zyx"
    if ndim == 4:
        return "czyx" if modality == "fl" or "channel_names" in ds.attrs else "tzyx"
    if ndim == 5:
        return "tczyx"
    raise InputError(f"dataset '{ds.name}' has {ndim} dimensions {ds.shape}", path,
                     "ri2fl needs 3D volumes (z, y, x), optionally with channel/time axes")


def _channel_names(ds: h5py.Dataset, axes: str, modality: str) -> list[str]:
    n = ds.shape[axes.index("c")] if "c" in axes else 1
    names = attr(ds, "channel_names")
    if names is not None:
        names = [str(x) for x in np.atleast_1d(names)]
        if len(names) == n:
            return names
    if n == 1:
        target = attr(ds, "target")
        return [str(target)] if target else ["ri" if modality == "ri" else
                                             ds.name.rsplit("/", 1)[-1]]
    return [f"ch{i}" for i in range(n)]


def _unpacked(data: np.ndarray, ds: h5py.Dataset, where: str) -> np.ndarray:
    """``data`` as stored, or unpacked when ``ds`` carries CF ``scale_factor``/``add_offset``."""
    scale, offset = attr(ds, "scale_factor"), attr(ds, "add_offset")
    if scale is None and offset is None:
        return data
    try:
        scale = float(np.asarray(1.0 if scale is None else scale).ravel()[0])
        offset = float(np.asarray(0.0 if offset is None else offset).ravel()[0])
    except (TypeError, ValueError, IndexError):
        raise InputError("invalid scale_factor / add_offset attributes", where,
                         "they must be single numbers (CF convention)") from None
    if not (np.isfinite(scale) and np.isfinite(offset) and scale != 0):
        raise InputError(f"invalid packing: scale_factor {scale}, add_offset {offset}", where,
                         "scale_factor must be finite and non-zero, add_offset finite")
    return (np.asarray(data, np.float64) * scale + offset).astype(np.float32)


def _load_frame(path: str, name: str, modality: str, t: int) -> np.ndarray:
    """Read frame ``t`` of dataset ``name`` (picklable: used by lazy dask arrays)."""
    with corrupt_file_guard(path), open_h5(path, check_links=False) as f:
        try:
            ds = f[name]
            data = _unpacked(ds[t], ds, f"{path}:{name}")
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot read frame {t} of '{name}' ({exc})", path,
                             "the file may be truncated or corrupt") from None
    return validate(data, f"{path}:{name}[{t}]", modality)


def read_hdf5(path: str | Path, *, frame: int | None = None, modality: str = "ri",
              voxel_size_um=None, medium_index: float | None = None,
              dataset: str | None = None, fill_missing: bool = False) -> Volume:
    """Read a volume from a plain HDF5 file (see the module docstring for the layout).

    Parameters
    ----------
    path : str or Path
        The ``.h5`` / ``.hdf5`` file.
    frame : int, optional
        Time point to read when the dataset has a time axis (default: all, lazily).
    modality : {"ri", "fl"}
        Which dataset to read by default (``ri`` or ``fl``).
    voxel_size_um : float or 3 floats, optional
        Overrides the file's ``voxel_size_um`` attribute.
    medium_index : float, optional
        Overrides the file's ``medium_index`` attribute.
    dataset : str, optional
        Any dataset path inside the file, e.g. ``"predictions/membrane"``.
    fill_missing : bool
        Read a dataset never (or only partly) written as its fill value instead of refusing
        it.
    """
    path = Path(path)
    with open_h5(path) as f:
        ds = _pick_dataset(f, path, modality, dataset)
        where = f"{path}:{ds.name}"
        if not (np.issubdtype(ds.dtype, np.number) or ds.dtype == np.bool_):
            raise InputError(f"unsupported data type {ds.dtype}", where,
                             "the volume must hold numbers (integer or float)")
        axes = _axes(ds, modality, path)
        # an explicitly named dataset other than ``ri`` is not range-checked as RI
        is_ri = modality == "ri" and (dataset is None or ds.name == "/ri")
        modality = "ri" if is_ri else "fl"
        check_axes_not_empty(ds.shape, axes, where)
        # what one read allocates: a frame (all channels), or the whole array without t
        check_size(ds.shape[1:] if axes.startswith("t") else ds.shape, where)
        check_stored(ds, where, fill_missing)
        vs = voxel_size_um if voxel_size_um is not None else attr(
            ds, "voxel_size_um", attr(f, "voxel_size_um"))
        if vs is None:
            raise InputError("no 'voxel_size_um' attribute", where,
                             "pass voxel_size_um=(z, y, x) (CLI: --voxel-size Z Y X)")
        voxel_size = voxel_size_from(vs, where)
        medium = medium_index if medium_index is not None else check_medium_index(
            attr(ds, "medium_index", attr(f, "medium_index")), where)
        names = _channel_names(ds, axes, modality)
        metadata = {"format": "hdf5", "dataset": ds.name, **attrs_dict(f),
                    **{f"{ds.name.strip('/')}.{k}": v for k, v in attrs_dict(ds).items()}}
        if "fl" in f and isinstance(f["fl"], h5py.Dataset):
            fl = f["fl"]
            fl_axes = "czyx" if fl.ndim == 4 else "zyx"
            metadata["fl_channels"] = (_channel_names(fl, fl_axes, "fl") if fl.ndim in (3, 4)
                                       else [])
        time_interval = check_time_interval(
            attr(ds, "time_interval_s", attr(f, "time_interval_s")), where)
        if axes.startswith("t") and frame is None:
            data = lazy_frames(functools.partial(_load_frame, str(path), ds.name, modality),
                               ds.shape[0], ds.shape[1:])
        elif axes.startswith("t"):
            if not -ds.shape[0] <= frame < ds.shape[0]:
                raise InputError(f"frame {frame} out of range (0..{ds.shape[0] - 1})", where)
            data = _load_frame(str(path), ds.name, modality, frame)
            axes = axes[1:]
        else:
            check_single_frame(frame, where)
            try:
                data = validate(_unpacked(ds[()], ds, where), where, modality)
            except OSError as exc:
                raise InputError(f"cannot read data ({exc})", where,
                                 "the file may be truncated or corrupt") from None
    return Volume(data=data, voxel_size_um=voxel_size, axes=axes, channel_names=names,
                  medium_index=medium, time_interval_s=time_interval,
                  metadata=metadata)
