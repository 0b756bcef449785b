"""TIFF and OME-TIFF volumes (tifffile).

The voxel size comes from the OME-XML ``PhysicalSizeX/Y/Z`` (with their units) or from ImageJ
metadata (``spacing`` for z, the X/YResolution tags for y and x); a TIFF with neither needs
the voxel size from the caller. Axes are reordered to (t, c, z, y, x).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tifffile

from .._atomic import atomic_path
from ..errors import InputError
from ._checks import (
    check_axes_not_empty,
    check_single_frame,
    check_size,
    max_voxels,
    validate,
    voxel_size_from,
)
from .volume import Volume

_UNIT_TO_UM = {"µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
               "\\u00b5m": 1.0, "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3,
               "cm": 1e4, "m": 1e6, "meter": 1e6, "å": 1e-4, "angstrom": 1e-4}
#: tifffile's names for an unnamed leading axis (a plain multi-page stack).
_GENERIC = set("QIS")


def _unit_factor(unit, where) -> float:
    if unit in (None, ""):
        return 1.0
    factor = _UNIT_TO_UM.get(str(unit).strip().lower())
    if factor is None:
        raise InputError(f"unknown length unit {unit!r} in the TIFF metadata", where,
                         "pass the voxel size explicitly (--voxel-size Z Y X)")
    return factor


def _ome_voxel_size(tif: tifffile.TiffFile, where) -> tuple[list | None, list[str]]:
    meta = tifffile.xml2dict(tif.ome_metadata)
    image = meta.get("OME", {}).get("Image", {})
    if isinstance(image, list):
        image = image[0]
    pixels = image.get("Pixels", {})
    sizes = []
    for a in "ZYX":
        value = pixels.get(f"PhysicalSize{a}")
        sizes.append(None if value is None else
                     float(value) * _unit_factor(pixels.get(f"PhysicalSize{a}Unit"), where))
    channels = pixels.get("Channel", [])
    if isinstance(channels, dict):
        channels = [channels]
    names = [str(c.get("Name")) for c in channels if isinstance(c, dict) and c.get("Name")]
    if sizes[1] is None or sizes[2] is None:
        return None, names
    if sizes[0] is None:
        sizes[0] = sizes[2] if int(pixels.get("SizeZ", 1)) == 1 else None
    return (sizes if sizes[0] is not None else None), names


def _imagej_voxel_size(tif: tifffile.TiffFile, where) -> list | None:
    ij = tif.imagej_metadata or {}
    page = tif.pages.first
    tags = page.tags
    if "XResolution" not in tags or "spacing" not in ij:
        return None
    factor = _unit_factor(ij.get("unit", "um"), where)
    sizes = []
    for tag in ("YResolution", "XResolution"):
        num, den = tags[tag].value
        if num <= 0 or den <= 0:
            return None
        sizes.append(den / num * factor)
    return [float(ij["spacing"]) * factor, *sizes]


def _to_tczyx(axes: str, shape: Sequence[int], where) -> tuple[str, list[int], list[int]]:
    """Map tifffile's axes to ours.

    Returns our axes, the shape after dropping singleton non-spatial axes, and the
    transpose order that brings that array to (t, c, z, y, x).
    """
    axes = axes.upper()
    generic = [a for a in axes if a in _GENERIC]
    if "Z" not in axes and len(generic) == 1:
        axes = axes.replace(generic[0], "Z")
    keep = [i for i, (a, s) in enumerate(zip(axes, shape)) if s != 1 or a in "ZYX"]
    rest = "".join(axes[i] for i in keep)
    if set(rest) - set("TCZYX") or not {"Z", "Y", "X"} <= set(rest) or len(set(rest)) != len(
            rest):
        raise InputError(f"TIFF axes {axes} {tuple(shape)} are not a 3D volume", where,
                         "ri2fl needs a z-stack (z, y, x), optionally with channels/time")
    order = [rest.index(a) for a in "TCZYX" if a in rest]
    return "".join(rest[i] for i in order).lower(), [shape[i] for i in keep], order


def read_tiff(path: str | Path, *, frame: int | None = None, modality: str = "ri",
              voxel_size_um=None, medium_index: float | None = None) -> Volume:
    """Read a TIFF / OME-TIFF z-stack (see the module docstring for where metadata comes from).
    """
    path = Path(path)
    with _tifffile_problems() as problems:
        try:
            vol = _read_tiff(path, frame, modality, voxel_size_um, medium_index, problems)
        except InputError as exc:
            if problems:  # the real cause (e.g. truncation) rather than its consequence
                raise InputError(f"corrupt or truncated TIFF ({problems[0]})", path,
                                 "export or copy the file again") from exc
            raise
    if problems:
        raise InputError(f"corrupt or truncated TIFF ({problems[0]})", path,
                         "export or copy the file again")
    return vol


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().split())
        # tifffile logs damage as errors, and missing (zero-filled) data as a warning
        if record.levelno >= logging.ERROR or any(
                w in message.lower() for w in ("missing", "truncat", "corrupt")):
            self.messages.append(message[:200])


@contextlib.contextmanager
def _tifffile_problems() -> Iterator[list[str]]:
    """Collect what tifffile logs about a damaged file instead of letting it print."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _check_series_stored(tif: tifffile.TiffFile, series, where) -> None:
    """Refuse a series whose metadata (OME-XML, ImageJ) declare more planes or bytes than
    the file holds: tifffile would fill the rest with zeros."""
    if series.dataoffset is not None:  # uncompressed and contiguous: one run of bytes
        if series.dataoffset + series.nbytes > tif.filehandle.size:
            raise InputError(f"the metadata declare {tuple(series.shape)} ({series.nbytes} "
                             f"bytes) but the file holds {tif.filehandle.size} bytes", where,
                             _LYING_METADATA_HINT)
        return
    try:
        missing = sum(page is None for page in series)
    except (IndexError, ValueError, TypeError, OSError):  # planes beyond the file's pages
        missing = len(series)
    if missing:
        raise InputError(f"the metadata declare {len(series)} image planes "
                         f"{tuple(series.shape)} but {missing} of them are not in the file",
                         where, _LYING_METADATA_HINT)


_LYING_METADATA_HINT = ("the file is truncated, or its OME-XML/ImageJ metadata do not match "
                        "its images; export it again")


def _read_tiff(path: Path, frame, modality, voxel_size_um, medium_index,
               problems: list[str]) -> Volume:
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # tifffile raises several types for broken files
        raise InputError(f"cannot read as TIFF ({type(exc).__name__}: {exc})", path,
                         "the file is corrupt or truncated") from None
    with tif:
        if not tif.series:
            raise InputError("TIFF holds no image series", path)
        series = tif.series[0]
        where = f"{path}"
        names: list[str] = []
        found = None
        try:
            if tif.is_ome:
                found, names = _ome_voxel_size(tif, where)
            elif tif.is_imagej:
                found = _imagej_voxel_size(tif, where)
        except (KeyError, ValueError, TypeError, ZeroDivisionError):
            found = None
        if voxel_size_um is None and found is None:
            raise InputError("no voxel size in the TIFF metadata (neither OME nor ImageJ)",
                             path, "pass voxel_size_um=(z, y, x) (CLI: --voxel-size Z Y X)")
        voxel_size = voxel_size_from(voxel_size_um if voxel_size_um is not None else found,
                                     path)
        axes, kept_shape, order = _to_tczyx(series.axes, series.shape, where)
        check_size(kept_shape[-3:], where)
        n_voxels = float(np.prod([float(s) for s in kept_shape]))
        if n_voxels > 4 * max_voxels():  # TIFFs are read whole: bound all frames together
            raise InputError(f"series of {n_voxels:.3g} voxels is too large to load", where,
                             "split it, or set RI2FL_MAX_VOXELS to allow larger data")
        check_axes_not_empty(kept_shape, axes, where)
        _check_series_stored(tif, series, where)
        if problems:  # damage tifffile found while parsing: refuse before decoding
            raise InputError(f"corrupt or truncated TIFF ({problems[0]})", path,
                             "export or copy the file again")
        try:
            raw = series.asarray()
        except Exception as exc:
            raise InputError(f"cannot decode TIFF data ({type(exc).__name__}: {exc})", path,
                             "the file is corrupt or truncated") from None
    data = np.transpose(raw.reshape(kept_shape), order)
    if axes.startswith("t") and frame is not None:
        if not -data.shape[0] <= frame < data.shape[0]:
            raise InputError(f"frame {frame} out of range (0..{data.shape[0] - 1})", path)
        data, axes = data[frame], axes[1:]
    elif not axes.startswith("t"):
        check_single_frame(frame, path)
    n_channels = data.shape[axes.index("c")] if "c" in axes else 1
    if len(names) != n_channels:
        names = [modality] if n_channels == 1 else [f"ch{i}" for i in range(n_channels)]
    data = validate(data, path, modality if n_channels == 1 else "fl")
    return Volume(data=data, voxel_size_um=voxel_size, axes=axes, channel_names=names,
                  medium_index=medium_index, metadata={"format": "ome-tiff" if tif.is_ome
                                                       else "tiff", "tiff_axes": series.axes})


def write_ome_tiff(path: str | Path, data, voxel_size_um,
                   channel_names: Sequence[str] | None = None, axes: str | None = None,
                   compression: str | None = "zlib", overwrite: bool = False) -> Path:
    """Write an OME-TIFF with physical voxel sizes (µm) and channel names, atomically.

    Parameters
    ----------
    path : str or Path
        Output file (``.ome.tif``).
    data : array-like or Volume
        (z, y, x), (c, z, y, x), (t, z, y, x) or (t, c, z, y, x).
    voxel_size_um : float or 3 floats
        Voxel size (z, y, x) in µm (from ``data`` when it is a Volume and this is None).
    channel_names : sequence of str, optional
        One per channel.
    axes : str, optional
        Axis letters of ``data`` (default zyx / czyx / tczyx by rank).
    compression : str or None
        tifffile compression (default zlib, lossless).
    overwrite : bool
        Replace an existing OME-TIFF that ri2fl wrote (anything else is never replaced).
    """
    from .. import __version__
    from .ome_zarr import default_axes
    if isinstance(data, Volume):
        voxel_size_um = data.voxel_size_um if voxel_size_um is None else voxel_size_um
        channel_names = channel_names or data.channel_names
        axes = axes or data.axes
        data = data.data
    data = np.asarray(data)
    axes = (axes or default_axes(data.ndim)).lower()
    if len(axes) != data.ndim or not axes.endswith("zyx"):
        raise InputError(f"axes {axes!r} do not fit data of shape {data.shape}")
    vz, vy, vx = voxel_size_from(voxel_size_um, "voxel_size_um")
    metadata = {"axes": axes.upper(), "PhysicalSizeX": vx, "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": vy, "PhysicalSizeYUnit": "µm", "PhysicalSizeZ": vz,
                "PhysicalSizeZUnit": "µm"}
    if "c" in axes:
        n = data.shape[axes.index("c")]
        names = list(channel_names) if channel_names else [f"ch{i}" for i in range(n)]
        if len(names) != n:
            raise InputError(f"{len(names)} channel names for {n} channels")
        metadata["Channel"] = {"Name": [str(x) for x in names]}
    elif channel_names:
        metadata["Channel"] = {"Name": [str(channel_names[0])]}
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, data, ome=True, photometric="minisblack", metadata=metadata,
                         compression=compression, bigtiff=data.nbytes > 2**31,
                         software=f"ri2fl {__version__}")
    return path
