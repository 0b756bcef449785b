"""Reading and writing tomograms.

``read(path)`` returns a :class:`Volume` from TCF, HDF5, TIFF/OME-TIFF, OME-Zarr or NumPy
files; ``write_ome_zarr`` / ``create_ome_zarr`` (streaming) and ``write_ome_tiff`` write
volumes the field's viewers open; ``ri2fl.io.tcf`` writes TCF files. See docs/io.md.
"""

from .ome_zarr import OmeZarrWriter, create_ome_zarr, read_ome_zarr, write_ome_zarr
from .paired import PairedSample, read_paired, write_paired
from .reader import detect_format, read
from .tiff import write_ome_tiff
from .volume import Volume

__all__ = ["OmeZarrWriter", "PairedSample", "Volume", "create_ome_zarr", "detect_format",
           "read", "read_ome_zarr", "read_paired", "write_ome_tiff", "write_ome_zarr",
           "write_paired"]
