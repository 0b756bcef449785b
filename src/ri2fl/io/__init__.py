"""Reading and writing tomograms.

``read(path)`` returns a :class:`Volume` from TCF, HDF5, TIFF/OME-TIFF, OME-Zarr or NumPy
files; ``write_ome_zarr`` and ``write_ome_tiff`` write volumes the field's viewers open.
"""

from .paired import PairedSample, read_paired, write_paired
from .volume import Volume

__all__ = ["PairedSample", "Volume", "read_paired", "write_paired"]
