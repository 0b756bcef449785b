"""napari reader: Tomocube TCF, ri2fl's HDF5 files and OME-Zarr outputs.

Each file opens with its physical voxel size as the layer scale (µm; seconds per frame for
time-lapses) and one layer per channel named after it (``cell membrane``,
``cell membrane_uncertainty_data``, ``cell mask: nucleus``...), so predictions overlay the RI
they came from. Large and multi-frame data stay lazy (dask).

The manifest's ``filename_patterns`` send napari every ``.TCF``, ``.h5``/``.hdf5`` and
``.zarr`` path; :func:`get_reader` then looks inside and returns None for the files this
plugin cannot read, so napari offers them to its other readers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Ri2flError
from ._layers import LayerData, labels_name, layer_for, volume_layers

_SUFFIXES = (".tcf", ".h5", ".hdf5", ".zarr")
#: Datasets that make an HDF5 file a paired sample (:func:`ri2fl.io.write_paired`) rather
#: than a lone RI volume.
_PAIRED_DATASETS = ("fl", "masks", "cell_labels", "nucleus_labels")


def _stem(path: Path) -> str:
    name = path.name.rstrip("/")
    for ext in (".ome.zarr", ".zarr", ".TCF", ".tcf", ".hdf5", ".h5"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def read_layers(path: str | Path) -> list[LayerData]:
    """Layer data tuples of one file (what napari gets from this plugin).

    Raises
    ------
    ri2fl.errors.InputError
        If the file cannot be read (napari shows the one-line message).
    """
    from ..io import detect_format

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "tcf":
        return _tcf_layers(path)
    if fmt == "hdf5" and _is_paired(path):
        return _paired_layers(path)
    return _volume_file_layers(path, fmt)


def _file_metadata(path: Path, vol: Any) -> dict[str, Any]:
    return {"path": str(path), "voxel_size_um": list(vol.voxel_size_um),
            "medium_index": vol.medium_index, "time_interval_s": vol.time_interval_s}


def _volume_file_layers(path: Path, fmt: str) -> list[LayerData]:
    """A lone volume (HDF5 ``ri`` dataset, OME-Zarr image): one layer per channel."""
    from ..io import read

    zarr_store = fmt == "ome-zarr"
    vol = read(path, **({"lazy": True} if zarr_store else {}))
    labels = zarr_store and _stored_as_integers(path, vol.metadata.get("array_path", "0"))
    layers = volume_layers(vol.data, vol.axes, vol.channel_names, vol.voxel_size_um,
                           _stem(path), _file_metadata(path, vol), labels=labels,
                           time_interval_s=vol.time_interval_s)
    return layers + (_label_layers(path, vol) if zarr_store and not labels else [])


def _label_layers(path: Path, vol: Any) -> list[LayerData]:
    """Labels layers of an image's NGFF ``labels`` group (ri2fl segment, the demo)."""
    from ..io import read_labels

    return [layer for name, data in read_labels(path).items()
            for layer in volume_layers(data, "tzyx" if data.ndim == 4 else "zyx", [name],
                                       vol.voxel_size_um, _stem(path),
                                       _file_metadata(path, vol), labels=True,
                                       time_interval_s=vol.time_interval_s)]


def _tcf_layers(path: Path) -> list[LayerData]:
    """The RI of a TCF file, then its measured fluorescence channels (``Data/3DFL``)."""
    from ..io import read

    vol = read(path)
    layers = volume_layers(vol.data, vol.axes, vol.channel_names, vol.voxel_size_um,
                           _stem(path), _file_metadata(path, vol),
                           time_interval_s=vol.time_interval_s)
    if vol.metadata.get("fl_channels"):
        layers += _tcf_fluorescence(path, vol)
    return layers


def _tcf_fluorescence(path: Path, ri: Any) -> list[LayerData]:
    """Measured fluorescence, placed in RI coordinates: its own voxel size, z offset and
    time points (FL may be sampled less often than RI)."""
    from ..io import read

    fl = read(path, modality="fl")
    offsets = fl.metadata.get("fl_offset_z_um") or [0.0] * len(fl.channel_names)
    timed = fl.axes.startswith("t")
    t_scale, t_start = _fl_timing(fl, ri) if timed else (None, None)
    layers = []
    for k, channel in enumerate(fl.channel_names):
        data = fl.data[:, k] if timed else fl.data[k]
        scale = ((t_scale,) if timed else ()) + tuple(fl.voxel_size_um)
        translate = ((t_start,) if timed else ()) + (float(offsets[k] or 0.0), 0.0, 0.0)
        layers.append(layer_for(data, f"fl:{channel}", scale,
                                f"{_stem(path)} fluorescence {channel}",
                                _file_metadata(path, fl), translate=translate, measured=k))
    return layers


def _fl_timing(fl: Any, ri: Any) -> tuple[float, float]:
    """Seconds per FL frame and the time of the first one, relative to the first RI frame."""
    times = [t for t in fl.metadata.get("times_s") or [] if t is not None]
    ri_times = [t for t in ri.metadata.get("times_s") or [] if t is not None]
    step = fl.time_interval_s or (float(np.median(np.diff(times))) if len(times) > 1 else 0.0)
    if not step:
        return float(ri.time_interval_s or 1.0), 0.0
    start = times[0] - ri_times[0] if times and ri_times else 0.0
    return float(step), float(start)


def _is_paired(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        return "ri" in f and any(name in f for name in _PAIRED_DATASETS)


def _paired_layers(path: Path) -> list[LayerData]:
    """A paired sample: RI, its fluorescence, organelle masks and cell/nucleus labels."""
    from ..io import read_paired

    sample = read_paired(path)
    stem, scale = _stem(path), sample.voxel_size_um
    meta = {"path": str(path), "voxel_size_um": list(scale),
            "medium_index": sample.medium_index, "time_interval_s": None}
    layers = [layer_for(sample.ri, "ri", scale, stem, meta)]
    layers += [layer_for(arr, name, scale, f"{stem} {name}", meta)
               for name, arr in sample.fl.items()]
    layers += [layer_for(mask, f"{name}_mask", scale, labels_name(stem, f"{name}_mask"), meta)
               for name, mask in sample.masks.items()]
    for name in ("nucleus_labels", "cell_labels"):
        arr = getattr(sample, name)
        if arr is not None:
            layers.append(layer_for(arr, name, scale, labels_name(stem, name), meta))
    return layers


def _stored_as_integers(path: Path, array_path: str) -> bool:
    """Whether an OME-Zarr image holds integers (labels, masks) rather than intensities."""
    import zarr

    dtype = zarr.open_array(path / array_path, mode="r").dtype
    return bool(np.issubdtype(dtype, np.integer) or dtype == np.bool_)


def _hdf5_has_volume(path: Path) -> bool:
    """Whether an HDF5 file holds an RI volume that :func:`ri2fl.io.read` picks (an ``ri``
    dataset, or the only dataset of 3 or more dimensions) with a voxel size, without
    reading the data."""
    import h5py

    with h5py.File(path, "r") as f:
        volumes: list[h5py.Dataset] = []
        f.visititems(lambda _, obj: volumes.append(obj)
                     if isinstance(obj, h5py.Dataset) and obj.ndim >= 3 else None)
        ri = f.get("ri")
        ds = ri if isinstance(ri, h5py.Dataset) else (volumes[0] if len(volumes) == 1 else None)
        return ds is not None and ("voxel_size_um" in ds.attrs or "voxel_size_um" in f.attrs)


def can_read(path: str | Path) -> bool:
    """Whether this plugin reads ``path``: a TCF file, an HDF5 RI volume with its voxel size,
    or an OME-Zarr image. Looks at names and metadata only."""
    from ..io import detect_format

    path = Path(path)
    if not path.name.lower().rstrip("/").endswith(_SUFFIXES):
        return False
    try:
        fmt = detect_format(path)
        if fmt == "hdf5":
            return _hdf5_has_volume(path)
        return fmt in ("tcf", "ome-zarr")
    except (Ri2flError, OSError, KeyError, ValueError):
        return False


def _read_all(paths: str | Path | list) -> list[LayerData]:
    paths = paths if isinstance(paths, list) else [paths]
    return [layer for p in paths for layer in read_layers(p)]


def get_reader(path: str | Path | list) -> Callable[[str | Path | list], list[LayerData]] | None:
    """napari's reader hook: a function reading ``path``, or None if it is not ours."""
    paths = path if isinstance(path, list) else [path]
    if not paths or not all(can_read(p) for p in paths):
        return None
    return _read_all
