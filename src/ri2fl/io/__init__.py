"""Reading and writing tomograms.

``read(path)`` returns a :class:`Volume` from TCF, HDF5, TIFF/OME-TIFF, OME-Zarr or NumPy
files; ``write_ome_zarr`` / ``create_ome_zarr`` (streaming) and ``write_ome_tiff`` write
volumes the field's viewers open; ``ri2fl.io.tcf`` writes TCF files; ``write_table``
writes feature tables (.parquet, .csv). The checks every reader applies
(``voxel_size_from``, ``check_medium_index``, ``check_regular_file``, ...) are public here
for the other subpackages. See docs/io.md.

The format modules (and zarr, dask, tifffile behind them) are imported on first use, so
``import ri2fl.io`` stays fast for the CLI and the napari plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._checks import (
    MEDIUM_INDEX_RANGE,
    check_medium_index,
    check_regular_file,
    check_regular_tree,
    max_voxels,
    voxel_size_from,
)
from .paired import PAIRED_SUFFIXES, PairedSample, read_paired, read_paired_any, write_paired
from .volume import Volume

_LAZY = {
    "OmeZarrWriter": "ome_zarr", "create_ome_zarr": "ome_zarr", "read_ome_zarr": "ome_zarr",
    "write_ome_zarr": "ome_zarr", "write_ome_tiff": "tiff", "detect_format": "reader",
    "read": "reader", "TABLE_SUFFIXES": "tables", "write_table": "tables",
    "read_labels": "ome_zarr", "label_names": "ome_zarr",
    "DEFAULT_PREDICTION_DTYPE": "prediction", "PREDICTION_DTYPES": "prediction",
    "check_prediction_dtype": "prediction", "prediction_channel_names": "prediction",
    "split_prediction_channels": "prediction", "write_prediction": "prediction",
}

if TYPE_CHECKING:
    from .ome_zarr import (
        OmeZarrWriter,
        create_ome_zarr,
        label_names,
        read_labels,
        read_ome_zarr,
        write_ome_zarr,
    )
    from .prediction import (
        DEFAULT_PREDICTION_DTYPE,
        PREDICTION_DTYPES,
        check_prediction_dtype,
        prediction_channel_names,
        split_prediction_channels,
        write_prediction,
    )
    from .reader import detect_format, read
    from .tables import TABLE_SUFFIXES, write_table
    from .tiff import write_ome_tiff


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_PREDICTION_DTYPE", "MEDIUM_INDEX_RANGE", "PAIRED_SUFFIXES",
           "PREDICTION_DTYPES", "TABLE_SUFFIXES", "OmeZarrWriter", "PairedSample", "Volume",
           "check_medium_index", "check_prediction_dtype", "check_regular_file",
           "check_regular_tree", "create_ome_zarr", "detect_format", "label_names",
           "max_voxels", "prediction_channel_names", "read", "read_labels", "read_ome_zarr",
           "read_paired", "read_paired_any", "split_prediction_channels", "voxel_size_from",
           "write_ome_tiff", "write_ome_zarr", "write_paired", "write_prediction",
           "write_table"]
