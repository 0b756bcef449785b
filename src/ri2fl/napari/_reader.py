"""napari reader: Tomocube TCF, HDF5 RI volumes and ri2fl OME-Zarr outputs.

Each file opens with its physical voxel size as the layer scale and one layer per channel
named after it (``cell membrane``, ``cell membrane_uncertainty_data``...), so predictions
overlay the RI they came from. Large and multi-frame data stay lazy (dask).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import Ri2flError
from ._layers import LayerData, volume_layers

_SUFFIXES = (".tcf", ".h5", ".hdf5", ".zarr")


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
    from ..io import detect_format, read

    path = Path(path)
    zarr_store = detect_format(path) == "ome-zarr"
    vol = read(path, **({"lazy": True} if zarr_store else {}))
    metadata = {"path": str(path), "voxel_size_um": list(vol.voxel_size_um),
                "medium_index": vol.medium_index, "time_interval_s": vol.time_interval_s}
    labels = zarr_store and _stored_as_integers(path, vol.metadata.get("array_path", "0"))
    return volume_layers(vol.data, vol.axes, vol.channel_names, vol.voxel_size_um,
                         _stem(path), metadata, labels=labels)


def _stored_as_integers(path: Path, array_path: str) -> bool:
    """Whether an OME-Zarr image holds integers (labels, masks) rather than intensities."""
    import zarr

    dtype = zarr.open_array(path / array_path, mode="r").dtype
    return bool(np.issubdtype(dtype, np.integer) or dtype == np.bool_)


def _read_all(paths: str | Path | list) -> list[LayerData]:
    paths = paths if isinstance(paths, list) else [paths]
    return [layer for p in paths for layer in read_layers(p)]


def get_reader(path: str | Path | list) -> Callable[[str | Path | list], list[LayerData]] | None:
    """napari's reader hook: a function reading ``path``, or None if it is not ours."""
    paths = path if isinstance(path, list) else [path]
    for p in paths:
        p = Path(p)
        if not p.name.lower().rstrip("/").endswith(_SUFFIXES):
            return None
        try:
            from ..io import detect_format

            if detect_format(p) not in ("tcf", "hdf5", "ome-zarr"):
                return None
        except Ri2flError:
            return None
    return _read_all
