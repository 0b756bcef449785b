"""Reading and writing tomograms.

``read(path)`` returns a :class:`Volume` from TCF, HDF5, TIFF/OME-TIFF, OME-Zarr or NumPy
files; ``write_ome_zarr`` / ``create_ome_zarr`` (streaming) and ``write_ome_tiff`` write
volumes the field's viewers open; ``ri2fl.io.tcf`` writes TCF files. See docs/io.md.

The format modules (and zarr, dask, tifffile behind them) are imported on first use, so
``import ri2fl.io`` stays fast for the CLI and the napari plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .paired import PAIRED_SUFFIXES, PairedSample, read_paired, read_paired_any, write_paired
from .volume import Volume

_LAZY = {
    "OmeZarrWriter": "ome_zarr", "create_ome_zarr": "ome_zarr", "read_ome_zarr": "ome_zarr",
    "write_ome_zarr": "ome_zarr", "write_ome_tiff": "tiff", "detect_format": "reader",
    "read": "reader",
}

if TYPE_CHECKING:
    from .ome_zarr import OmeZarrWriter, create_ome_zarr, read_ome_zarr, write_ome_zarr
    from .reader import detect_format, read
    from .tiff import write_ome_tiff


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PAIRED_SUFFIXES", "OmeZarrWriter", "PairedSample", "Volume", "create_ome_zarr",
           "detect_format", "read", "read_ome_zarr", "read_paired", "read_paired_any",
           "write_ome_tiff", "write_ome_zarr", "write_paired"]
