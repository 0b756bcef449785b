"""``read(path)``: one entry point for every tomogram format, dispatching on content.

The format is recognised from the file's first bytes (HDF5, TIFF, NumPy signatures) or, for
directories, from zarr metadata, so a mis-named file still reads; the suffix is only a
fallback. Each format has its own module (``tcf``, ``hdf5``, ``tiff``, ``ome_zarr``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._checks import (
    CORRUPT_FILE_ERRORS,
    check_axes_not_empty,
    check_medium_index,
    check_single_frame,
    check_size,
    check_spatial_rank,
    corrupt_file_guard,
    validate,
    voxel_size_from,
)
from ._lazy import lazy_frames
from .volume import Volume

MODALITIES = ("ri", "fl", "mip")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"


def detect_format(path: str | Path) -> str:
    """Name the format of ``path``: "tcf", "hdf5", "tiff", "ome-zarr" or "npy".

    Raises
    ------
    InputError
        When the path does not exist or its content is not a supported format.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", path, "check the path")
    if path.is_dir():
        from .ome_zarr import is_ome_zarr
        if is_ome_zarr(path):
            return "ome-zarr"
        raise InputError("a directory that is not an OME-Zarr store", path,
                         "give a file, or a .ome.zarr directory")
    if not path.is_file():  # devices and pipes: reading them could block forever
        raise InputError("not a regular file", path, "give a file saved on disk")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    if head.startswith(_HDF5_MAGIC) or _is_hdf5(path):
        return "tcf" if _is_tcf(path) else "hdf5"
    if head[:4] in _TIFF_MAGICS:
        return "tiff"
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if not head:
        raise InputError("empty file", path, "the file holds no data")
    suffix = path.suffix.lower()
    known = {".tcf": "TCF", ".h5": "HDF5", ".hdf5": "HDF5", ".tif": "TIFF", ".tiff": "TIFF",
             ".npy": "NumPy"}
    if suffix in known:
        raise InputError(f"not a valid {known[suffix]} file (unrecognised content)", path,
                         "the file is corrupt or truncated; export it again")
    raise InputError("unsupported file format", path,
                     "ri2fl reads TCF, HDF5 (.h5), TIFF/OME-TIFF, OME-Zarr and .npy")


def _is_hdf5(path: Path) -> bool:
    import h5py
    try:
        return bool(h5py.is_hdf5(path))
    except CORRUPT_FILE_ERRORS:
        return False


def _is_tcf(path: Path) -> bool:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            link = f.get("Data", getlink=True)  # a link to another file is not followed here
            has_data = link is not None and not isinstance(link, h5py.ExternalLink) and \
                isinstance(f["Data"], h5py.Group)
            return has_data or "FormatVersion" in f.attrs
    except CORRUPT_FILE_ERRORS:
        return False  # the HDF5 reader reports the problem


def read(path: str | Path, *, frame: int | None = None, modality: str = "ri",
         voxel_size_um=None, medium_index: float | None = None,
         dataset: str | None = None, lazy: bool = False, fill_missing: bool = False) -> Volume:
    """Read a tomogram (or time-lapse, or fluorescence stack) with its physical metadata.

    Parameters
    ----------
    path : str or Path
        A Tomocube ``.TCF``, HDF5 (``ri``/``fl`` datasets), TIFF/OME-TIFF, OME-Zarr
        (NGFF 0.4/0.5) or ``.npy`` file. The format is detected from the content.
    frame : int, optional
        Time point to load. Without it multi-frame files come back as a lazy dask array
        (axes starting with ``t``): indexing one frame reads only that frame.
    modality : {"ri", "fl", "mip"}
        TCF: ``"ri"`` (Data/3D), ``"fl"`` (Data/3DFL channels) or ``"mip"`` (Data/2DMIP).
        HDF5: ``"ri"`` or ``"fl"`` dataset. For other formats, ``"ri"`` enables the RI range
        check (values must look like absolute refractive indices).
    voxel_size_um : float or (z, y, x), optional
        Voxel size in µm; overrides the file's metadata and is required for ``.npy`` and for
        TIFFs without OME/ImageJ calibration.
    medium_index : float, optional
        Refractive index of the medium; overrides the file's value.
    dataset : str, optional
        HDF5: dataset path to read; OME-Zarr: resolution level path.
    lazy : bool
        OME-Zarr: keep even a single frame as a dask array (large stitched fields, viewers).
        Multi-frame data of every format is lazy anyway.
    fill_missing : bool
        OME-Zarr and HDF5: read chunks the file declares but does not store (never written,
        lost in a copy) as the fill value. By default such files are refused, since the
        fill value (usually 0) would pass for data.

    Returns
    -------
    Volume
        float32 data with axes ``zyx``, ``czyx``, ``tzyx`` or ``tczyx``.

    Raises
    ------
    InputError
        For anything wrong with the file, in one line naming the file and what to do.

    Examples
    --------
    >>> vol = read("cell.TCF")                      # doctest: +SKIP
    >>> vol.voxel_size_um, vol.shape                # doctest: +SKIP
    >>> ri0 = read("timelapse.TCF", frame=0).data   # doctest: +SKIP
    >>> vol = read("stack.npy", voxel_size_um=(0.2, 0.15, 0.15))  # doctest: +SKIP
    """
    if modality not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}", hint=f"use one of {MODALITIES}")
    medium_index = check_medium_index(medium_index, "medium_index")
    path = Path(path).expanduser()
    fmt = detect_format(path)
    with corrupt_file_guard(path):
        vol = _read_format(fmt, path, dataset, lazy, fill_missing, frame=frame,
                           modality=modality, voxel_size_um=voxel_size_um,
                           medium_index=medium_index)
    vol.metadata.setdefault("format", fmt)
    vol.metadata.setdefault("path", str(path))
    return vol


def _read_format(fmt: str, path: Path, dataset: str | None, lazy: bool, fill_missing: bool,
                 **kwargs) -> Volume:
    if fmt == "tcf":
        from .tcf import read_tcf
        vol = read_tcf(path, **kwargs)
    elif fmt == "hdf5":
        from .hdf5 import read_hdf5
        vol = read_hdf5(path, dataset=dataset, fill_missing=fill_missing, **kwargs)
    elif fmt == "tiff":
        from .tiff import read_tiff
        vol = read_tiff(path, **kwargs)
    elif fmt == "ome-zarr":
        from .ome_zarr import read_ome_zarr
        vol = read_ome_zarr(path, dataset=dataset, lazy=lazy, fill_missing=fill_missing,
                            **kwargs)
    else:
        vol = read_npy(path, **kwargs)
    return vol


def _npy_frame(path: str, modality: str, t: int) -> np.ndarray:
    """Frame ``t`` of a (t, z, y, x) ``.npy`` (memory-mapped: reads that frame only)."""
    with corrupt_file_guard(path):
        frame = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False)[t])
    return validate(frame, f"{path}[{t}]", modality)


def read_npy(path: str | Path, *, frame: int | None = None, modality: str = "ri",
             voxel_size_um=None, medium_index: float | None = None) -> Volume:
    """Read a ``.npy`` array of shape (z, y, x) or (t, z, y, x); the voxel size is required.

    The array is memory-mapped, so reading one frame of a (t, z, y, x) file reads only it.
    """
    path = Path(path)
    if voxel_size_um is None:
        raise InputError(".npy files carry no voxel size", path,
                         "pass voxel_size_um=(z, y, x) (CLI: --voxel-size Z Y X)")
    voxel_size = voxel_size_from(voxel_size_um, path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except CORRUPT_FILE_ERRORS as exc:
        raise InputError(f"cannot read as NumPy array ({type(exc).__name__})", path,
                         "the file is corrupt or truncated; save it again with numpy.save") \
            from None
    if arr.ndim not in (3, 4):
        check_spatial_rank(arr.shape, 0, path)
    check_size(arr.shape[-3:], path)
    axes = "tzyx" if arr.ndim == 4 else "zyx"
    check_axes_not_empty(arr.shape, axes, path)
    if axes == "zyx":
        check_single_frame(frame, path)
    if arr.ndim == 4 and frame is not None:
        if not -arr.shape[0] <= frame < arr.shape[0]:
            raise InputError(f"frame {frame} out of range (0..{arr.shape[0] - 1})", path)
        arr, axes = arr[frame], "zyx"
    if axes == "tzyx":
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"unsupported data type {arr.dtype}", path,
                             "the volume must hold numbers (integer or float)")
        data = lazy_frames(functools.partial(_npy_frame, str(path), modality), arr.shape[0],
                           arr.shape[1:])
    else:
        data = validate(np.asarray(arr), path, modality)
    return Volume(data=data, voxel_size_um=voxel_size, axes=axes,
                  channel_names=[modality], medium_index=medium_index,
                  metadata={"format": "npy"})
