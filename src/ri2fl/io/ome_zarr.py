"""OME-Zarr (OME-NGFF) reading and writing, NGFF 0.5 on zarr v3 by default, 0.4 on zarr v2.

The metadata (``multiscales`` with axes, physical ``scale`` and units, ``omero`` channel names)
are built with the pydantic models of the NGFF specification (``ome-zarr-models``), and every
finished store is re-read and validated against them before it is moved into place, so that
napari (napari-ome-zarr), Fiji (OME-Zarr / N5 plugins), ome-zarr-py and MoBIE open the output
with the right voxel size and channel names. The arrays are written with zarr-python.

Streaming: :func:`create_ome_zarr` returns an :class:`OmeZarrWriter` that behaves like a
writable array; fill it slice by slice and call :meth:`OmeZarrWriter.finalize` (or use it as a
context manager) to move the finished store into place atomically::

    with create_ome_zarr("pred.ome.zarr", (6, 64, 512, 512), (0.2, 0.15, 0.15),
                         channel_names=TARGETS) as out:
        for sl, block in patches:          # sl: tuple of slices over (c, z, y, x)
            out[sl] = block
    # on leaving the block the store is complete under its final name; on an exception
    # the partial store is removed and nothing appears under the final name
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
import math
import os
import stat
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import dask.array as da
import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec

from .._atomic import atomic_path
from ..errors import InputError
from ._checks import (
    MAX_METADATA_BYTES,
    check_axes_not_empty,
    check_medium_index,
    check_regular_file,
    check_regular_tree,
    check_single_frame,
    check_size,
    check_time_interval,
    corrupt_file_guard,
    validate,
    voxel_size_from,
)
from ._lazy import lazy_frames
from .volume import Volume

NGFF_VERSIONS = ("0.4", "0.5")
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_AXIS_UNITS = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"}
_UNIT_TO_UM = {"micrometer": 1.0, "micron": 1.0, "µm": 1.0, "um": 1.0, "nanometer": 1e-3,
               "nm": 1e-3, "millimeter": 1e3, "mm": 1e3, "meter": 1e6, "m": 1e6,
               "angstrom": 1e-4}
#: Colours napari/Fiji use for the channels, in order (hex RRGGBB).
_COLOURS = ("FF00FF", "00FF00", "FF0000", "FFFF00", "00FFFF", "0000FF", "FFFFFF", "FF8000")
_MAX_ZYX_CHUNK = (32, 256, 256)


def default_axes(ndim: int) -> str:
    """Axis letters for an array of ``ndim`` dimensions: zyx, czyx or tczyx."""
    axes = {3: "zyx", 4: "czyx", 5: "tczyx"}.get(ndim)
    if axes is None:
        raise InputError(f"cannot write a {ndim}D array as a volume",
                         hint="give (z, y, x), (c, z, y, x) or (t, c, z, y, x) data")
    return axes


def default_chunks(shape: Sequence[int], axes: str) -> tuple[int, ...]:
    """One time point and one channel per chunk; at most 32 x 256 x 256 in z, y, x."""
    spatial = tuple(min(s, m) for s, m in zip(shape[-3:], _MAX_ZYX_CHUNK))
    return (1,) * (len(axes) - 3) + spatial


def level_shape(shape: Sequence[int], level: int) -> tuple[int, ...]:
    """Shape of pyramid level ``level``: y and x halved per level (z, c, t kept)."""
    f = 2**level
    return (*shape[:-2], max(1, shape[-2] // f), max(1, shape[-1] // f))


def _spec(version: str, module: str) -> ModuleType:
    """Module ``module`` of the ome-zarr-models package of NGFF ``version`` (v04 or v05).

    Imported on first use, so that code that only reads stores skips its ~0.3 s import.
    """
    return importlib.import_module(f"ome_zarr_models.v0{version[-1]}.{module}")


@contextlib.contextmanager
def _spec_bug(version: str) -> Iterator[None]:
    """Raise metadata that fail the NGFF models as the writer bug they are."""
    try:
        yield
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise RuntimeError(f"ri2fl wrote OME-NGFF {version} metadata that fail the "
                           f"specification's models (a bug in ri2fl): {exc}") from exc


def _multiscales(axes: str, voxel_size_um, time_interval_s, name: str, version: str,
                 levels: int = 1) -> dict:
    """The ``multiscales`` entry, built through the ome-zarr-models classes of ``version``."""
    spatial = dict(zip("zyx", voxel_size_um))
    scale = [float(spatial.get(a, time_interval_s if a == "t" and time_interval_s else 1.0))
             for a in axes]
    axis, ms = _spec(version, "axes"), _spec(version, "multiscales")
    with _spec_bug(version):
        model = ms.Multiscale(
            axes=[axis.Axis(name=a, type=_AXIS_TYPES[a], unit=_AXIS_UNITS.get(a)) for a in axes],
            datasets=[ms.Dataset.build(path=str(level), translation=None,
                                       scale=[*scale[:-2], *(s * 2**level for s in scale[-2:])])
                      for level in range(levels)],
            name=name,
            type="mean (intensities) / subsampling (integers), 2 x 2 in y, x" if levels > 1
            else None,
            **({"version": "0.4"} if version == "0.4" else {}))
    return model.model_dump(mode="json", exclude_none=True)


def _omero(channel_names: Sequence[str], windows: Sequence[tuple[float, float]],
           version: str) -> dict:
    channels = []
    for i, (name, (lo, hi)) in enumerate(zip(channel_names, windows)):
        channels.append({"label": str(name), "color": _COLOURS[i % len(_COLOURS)],
                         "active": True, "coefficient": 1.0, "family": "linear",
                         "inverted": False,
                         "window": {"start": float(lo), "end": float(hi),
                                    "min": float(lo), "max": float(hi)}})
    omero = {"channels": channels, "rdefs": {"model": "color"}}
    if version == "0.4":
        omero["version"] = "0.4"
    return omero


def _ngff_attrs(axes, voxel_size_um, channel_names, windows, time_interval_s, name,
                version, medium_index, levels=1) -> dict:
    multiscales = [_multiscales(axes, voxel_size_um, time_interval_s, name, version, levels)]
    omero = _omero(channel_names, windows, version)
    # our own block (NGFF allows extra keys): what OME metadata has no place for
    extra = {"ri2fl": {"medium_index": None if medium_index is None else float(medium_index)}}
    ome = {"multiscales": multiscales, "omero": omero}
    if version == "0.5":
        ome = {"version": "0.5", **ome}
    _check_ngff_attrs(ome, version)
    return {"ome": ome, **extra} if version == "0.5" else {**ome, **extra}


def _check_ngff_attrs(ome: dict, version: str) -> None:
    """Validate the OME attributes with ome-zarr-models; ``omero`` too (0.5 has no model)."""
    from ome_zarr_models.common.omero import Omero

    with _spec_bug(version):
        _spec(version, "image").ImageAttrs.model_validate(ome)
        Omero.model_validate(ome["omero"])


def _check_ngff_store(group: zarr.Group) -> None:
    """Validate a written image group, re-read from disk, against the NGFF models.

    The arrays are checked against the metadata too (they exist, their rank and, in 0.5,
    their ``dimension_names`` match the axes), and so is a ``labels`` group (each label an
    integer multiscale image with ``image-label`` metadata). A failure is a bug in this writer.
    """
    version = "0.5" if group.metadata.zarr_format == 3 else "0.4"
    with _spec_bug(version):
        _spec(version, "image").Image.from_zarr(group)
        if "labels" in group:
            _spec(version, "labels").Labels.from_zarr(group["labels"])
    attrs = dict(group.attrs)
    _check_ngff_attrs(attrs["ome"] if version == "0.5" else attrs, version)


def _default_window(dtype, channel_name: str) -> tuple[float, float]:
    if channel_name == "ri":
        return (1.33, 1.40)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(np.dtype(dtype))
        return (float(info.min), float(info.max))
    return (0.0, 1.0)


def _create_group_arrays(store: Path, shape, chunks, dtype, axes: str, version: str,
                         fill_value, levels: int) -> tuple[zarr.Group, list[zarr.Array]]:
    if version == "0.5":
        group = zarr.open_group(store, mode="w", zarr_format=3)
        options = {"compressors": BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"),
                   "dimension_names": list(axes)}
    else:
        group = zarr.open_group(store, mode="w", zarr_format=2)
        options = {"compressors": numcodecs.Blosc(cname="zstd", clevel=5,
                                                  shuffle=numcodecs.Blosc.BITSHUFFLE),
                   "chunk_key_encoding": {"name": "v2", "separator": "/"}}
    arrays = []
    for level in range(levels):
        lshape = level_shape(shape, level)
        lchunks = tuple(min(c, s) for c, s in zip(chunks, lshape))
        arrays.append(group.create_array(str(level), shape=lshape, chunks=lchunks,
                                         dtype=dtype, fill_value=fill_value, **options))
    return group, arrays


def _downsample(src: zarr.Array, dst: zarr.Array) -> None:
    """Fill ``dst`` with ``src`` halved in y and x, chunk by chunk (bounded memory).

    Intensities are averaged over 2 x 2 blocks; integers (labels, masks) are subsampled so
    that no label value is invented.
    """
    data = da.from_zarr(src)
    ny, nx = dst.shape[-2:]
    if np.issubdtype(src.dtype, np.integer) or src.dtype == np.bool_:
        small = data[..., : 2 * ny : 2, : 2 * nx : 2]
    else:
        small = da.coarsen(np.mean, data[..., : 2 * ny, : 2 * nx],
                           {data.ndim - 2: 2, data.ndim - 1: 2}).astype(src.dtype)
    da.store(small.rechunk(dst.chunks), dst, lock=False)


def _check_write_args(shape, voxel_size_um, channel_names, axes, version):
    if version not in NGFF_VERSIONS:
        raise InputError(f"unknown NGFF version {version!r}", hint=f"use one of {NGFF_VERSIONS}")
    axes = axes or default_axes(len(shape))
    if len(axes) != len(shape) or not axes.endswith("zyx") or set(axes) - set("tczyx"):
        raise InputError(f"axes {axes!r} do not fit data of shape {tuple(shape)}",
                         hint="use zyx, czyx, tzyx or tczyx")
    n_channels = shape[axes.index("c")] if "c" in axes else 1
    if channel_names is None:
        channel_names = (["ri"] if n_channels == 1 else [f"ch{i}" for i in range(n_channels)])
    channel_names = [str(c) for c in channel_names]
    if len(channel_names) != n_channels:
        raise InputError(f"{len(channel_names)} channel names for {n_channels} channels")
    return axes, channel_names, voxel_size_from(voxel_size_um, "voxel_size_um")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.zarr", ".zarr"):
        name = name.removesuffix(suffix)
    return name


#: Colour of label value 1 of 0/1 masks (instances get napari's random colours).
_MASK_RGBA = (255, 255, 255, 255)


def _label_dtype(data) -> np.dtype:
    """Integers as they are (bool as uint8); anything else is refused (labels are integers)."""
    dtype = np.dtype(data.dtype)
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if not np.issubdtype(dtype, np.integer):
        raise InputError(f"labels must be integers, got {dtype}", hint="pass label images "
                         "or 0/1 masks as an integer or boolean array")
    return dtype


def _write_labels(store: Path, labels: Mapping[str, Any], voxel_size_um, axes: str,
                  version: str, time_interval_s: float | None, levels: int) -> None:
    """Add ``labels/<name>`` images (NGFF image-label) to the image group at ``store``.

    Each label has the image's axes without ``c`` and the same scale; the ``labels`` group's
    attributes list them.
    """
    label_axes = axes.replace("c", "")
    names = [str(n) for n in labels]
    group = zarr.open_group(store / "labels", mode="w", zarr_format=3 if version == "0.5"
                            else 2)
    attrs: dict[str, Any] = {"labels": names}
    group.attrs.update({"ome": {"version": "0.5", **attrs}} if version == "0.5" else attrs)
    for name, data in labels.items():
        data = np.asarray(data)
        if data.ndim != len(label_axes):
            raise InputError(f"label {name!r} has {data.ndim} axes, the image {label_axes}")
        dtype = _label_dtype(data)
        sub, arrays = _create_group_arrays(store / "labels" / str(name), data.shape,
                                           default_chunks(data.shape, label_axes), dtype,
                                           label_axes, version, 0, levels)
        arrays[0][...] = data.astype(dtype, copy=False)
        for src, dst in itertools.pairwise(arrays):
            _downsample(src, dst)
        label = {"source": {"image": "../../"}}
        if dtype == np.uint8 and data.max(initial=0) <= 1:
            label["colors"] = [{"label-value": 1, "rgba": list(_MASK_RGBA)}]
        ms = [_multiscales(label_axes, voxel_size_um, time_interval_s, str(name), version,
                           levels)]
        ome = {"multiscales": ms, "image-label": label}
        sub.attrs.update({"ome": {"version": "0.5", **ome}} if version == "0.5" else
                         {**ome, "image-label": {**label, "version": "0.4"}})


class OmeZarrWriter:
    """A writable OME-Zarr image being filled piece by piece (see :func:`create_ome_zarr`).

    Index it like the array it wraps (``writer[c, z0:z1, y0:y1, x0:x1] = block``). Nothing is
    visible under the final path until :meth:`finalize`; :meth:`abort` removes the partial
    store. As a context manager it finalizes on success and aborts on an exception.
    """

    def __init__(self, path: Path, stack: contextlib.ExitStack, arrays: list[zarr.Array],
                 group: zarr.Group, axes: str):
        self.path = path
        self.array = arrays[0]
        self.levels = arrays
        self.group = group
        self.axes = axes
        self._stack = stack
        self._open = True
        #: private folder removed with the unfinished store: room for scratch files
        self.scratch_dir: Path | None = None
        #: where the store is written until :meth:`finalize` moves it to ``path``
        self.staged: Path = path

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    chunks = property(lambda self: self.array.chunks)

    def __setitem__(self, key, value) -> None:
        self.array[key] = np.asarray(value)

    def __getitem__(self, key):
        return self.array[key]

    def __array__(self, dtype=None, copy=None):
        data = self.array[...]
        return data if dtype is None else data.astype(dtype)

    def add_labels(self, labels: Mapping[str, Any]) -> None:
        """Store label images and 0/1 masks of this image as its NGFF ``labels`` group.

        Parameters
        ----------
        labels : mapping
            Name -> integer or boolean array with the image's shape without the channel
            axis (e.g. ``{"cell_labels": cells, "nucleus": mask}``).
        """
        attrs = dict(self.group.attrs)
        ome = attrs.get("ome", attrs)
        ms = ome["multiscales"][0]
        scale = next(t["scale"] for t in ms["datasets"][0]["coordinateTransformations"]
                     if t["type"] == "scale")
        spatial = [scale[self.axes.index(a)] for a in "zyx"]
        interval = scale[0] if self.axes.startswith("t") else None
        version = "0.5" if "ome" in attrs else "0.4"
        _write_labels(self.staged, labels, spatial, self.axes, version, interval,
                      len(self.levels))

    def set_windows(self, windows: Sequence[tuple[float, float]]) -> None:
        """Set the display range of each channel (e.g. from data seen while writing)."""
        attrs = dict(self.group.attrs)
        omero = attrs["ome"]["omero"] if "ome" in attrs else attrs["omero"]
        for ch, (lo, hi) in zip(omero["channels"], windows):
            ch["window"] = {"start": float(lo), "end": float(hi), "min": float(lo),
                            "max": float(hi)}
        self.group.attrs.update(attrs)

    def finalize(self) -> Path:
        """Build the pyramid levels (if any), move the store to its final path; return it."""
        if self._open:
            try:
                for src, dst in zip(self.levels, self.levels[1:]):
                    _downsample(src, dst)
                _check_ngff_store(self.group)
            except BaseException:
                self.abort()
                raise
            self._open = False
            self._stack.close()
        return self.path

    def abort(self) -> None:
        """Remove the partial store; the final path is left untouched."""
        if self._open:
            self._open = False
            err = RuntimeError("aborted")
            self._stack.__exit__(type(err), err, None)

    def __enter__(self) -> OmeZarrWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()


# Why the array writing stays hand-written (issue #29 item 10): ome-zarr-py 0.18's
# write_image, given the same 64 x 512 x 512 float32 volume, codec, chunks and 3 levels, took
# 0.8-1.6 CPU s against our 0.9-1.3 and, fed a lazy dask array, the same peak memory as our
# stream (140-150 MB above imports, vs 180-220 MB for either with the array in memory; 3 runs,
# 2 cores under load, `python benchmarks/bench_ome_zarr_write.py`): no gain. But it needs the
# whole image up front (an array or a dask graph) and has no incremental writer, so the tiler
# could not add overlapping patches into the output as they come, and it writes in place, not
# through atomic staging. ngff-zarr was not tried: it pulls wasmtime, itkwasm and zarrista.
def create_ome_zarr(path: str | Path, shape: Sequence[int], voxel_size_um,
                    channel_names: Sequence[str] | None = None, axes: str | None = None,
                    chunks: Sequence[int] | None = None, dtype="float32",
                    ngff_version: str = "0.5", time_interval_s: float | None = None,
                    windows: Sequence[tuple[float, float]] | None = None,
                    name: str | None = None, fill_value=0,
                    medium_index: float | None = None, levels: int = 1,
                    overwrite: bool = False) -> OmeZarrWriter:
    """Create an empty OME-Zarr image to be filled piece by piece (streaming writes).

    Parameters
    ----------
    path : str or Path
        Output store, conventionally ending in ``.ome.zarr``.
    shape : sequence of int
        Full shape, (z, y, x), (c, z, y, x) or (t, c, z, y, x) (see ``axes``).
    voxel_size_um : float or 3 floats
        Physical voxel size (z, y, x) in µm.
    channel_names : sequence of str, optional
        One name per channel (default ``["ri"]`` for one channel, else ``ch0, ch1, ...``).
    axes : str, optional
        Axis letters (default from ``len(shape)``: zyx, czyx, tczyx; tzyx also allowed).
    chunks : sequence of int, optional
        Chunk shape (default one channel/time point and at most 32 x 256 x 256 voxels).
    dtype : numpy dtype
        Stored data type (default float32).
    ngff_version : {"0.5", "0.4"}
        0.5 writes zarr v3; 0.4 writes zarr v2 for older viewers.
    time_interval_s : float, optional
        Seconds between frames (scale of the ``t`` axis).
    windows : sequence of (float, float), optional
        Display range per channel (default: 1.33..1.40 for ``ri``, 0..1 for float data).
    name : str, optional
        Image name in the metadata (default: the file name).
    fill_value : number
        Value of regions never written.
    medium_index : float, optional
        Medium refractive index, stored in the ``ri2fl`` attribute block.
    levels : int
        Resolution levels (1: full resolution only). Levels 1.. halve y and x each and are
        computed from level 0 by ``finalize()``, chunk by chunk: use them for large fields so
        viewers can zoom out without reading everything.
    overwrite : bool
        Replace an existing store that ri2fl wrote (anything else is never replaced; see
        :func:`ri2fl._atomic.atomic_path`).

    Returns
    -------
    OmeZarrWriter
        Writable like an array; call ``finalize()`` (or use ``with``) when done.
    """
    path = Path(path)
    shape = tuple(int(s) for s in shape)
    axes, names, voxel_size = _check_write_args(shape, voxel_size_um, channel_names, axes,
                                                ngff_version)
    chunks = tuple(chunks) if chunks is not None else default_chunks(shape, axes)
    windows = windows or [_default_window(dtype, n) for n in names]
    levels = max(1, int(levels))
    stack = contextlib.ExitStack()
    tmp = stack.enter_context(atomic_path(path, overwrite=overwrite))
    try:
        group, arrays = _create_group_arrays(tmp, shape, chunks, np.dtype(dtype), axes,
                                             ngff_version, fill_value, levels)
        group.attrs.update(_ngff_attrs(axes, voxel_size, names, windows, time_interval_s,
                                       name or _stem(path), ngff_version,
                                       medium_index, levels))
    except BaseException as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)
        raise
    writer = OmeZarrWriter(path, stack, arrays, group, axes)
    writer.scratch_dir, writer.staged = tmp.parent, tmp
    return writer


def _window_of(data, channel_axis: int | None, names) -> list[tuple[float, float]]:
    """Per-channel display range: the 0.1 and 99.9 percentiles of (a subsample of) the data."""
    arr = np.asarray(data)
    arr = arr[None] if channel_axis is None else np.moveaxis(arr, channel_axis, 0)
    out = []
    for c in range(arr.shape[0]):
        sample = arr[c].ravel()[:: max(1, arr[c].size // 1_000_000)]
        if np.issubdtype(sample.dtype, np.number):
            sample = sample[np.isfinite(sample)]
        if sample.size == 0 or not np.issubdtype(sample.dtype, np.number):
            out.append(_default_window(arr.dtype, names[c]))
            continue
        lo, hi = (float(v) for v in np.nanpercentile(sample, [0.1, 99.9]))
        out.append((lo, hi if hi > lo else lo + 1.0))
    return out


def write_ome_zarr(path: str | Path, data, voxel_size_um=None,
                   channel_names: Sequence[str] | None = None, axes: str | None = None,
                   chunks: Sequence[int] | None = None, dtype=None,
                   ngff_version: str = "0.5", time_interval_s: float | None = None,
                   name: str | None = None, medium_index: float | None = None,
                   levels: int = 1, overwrite: bool = False,
                   labels: Mapping[str, Any] | None = None) -> Path:
    """Write a volume as OME-Zarr, atomically.

    Parameters
    ----------
    path : str or Path
        Output store (``.ome.zarr``).
    data : array-like, dask array or Volume
        (z, y, x), (c, z, y, x), (t, z, y, x) or (t, c, z, y, x) data. A :class:`Volume`
        brings its own voxel size, axes, channel names and time interval.
    voxel_size_um : float or 3 floats
        Physical voxel size (z, y, x) in µm (taken from ``data`` when it is a Volume).
    channel_names, axes, chunks, ngff_version, time_interval_s, name, medium_index, levels
        As in :func:`create_ome_zarr`.
    overwrite : bool
        Replace an existing store that ri2fl wrote (see :func:`create_ome_zarr`).
    dtype : numpy dtype, optional
        Stored type (default: the data's own).
    labels : mapping, optional
        Label images and 0/1 masks of this image (name -> integer or boolean array, the
        image's shape without its channel axis), stored as its NGFF ``labels`` group
        (:meth:`OmeZarrWriter.add_labels`); read them with :func:`read_labels`.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> write_ome_zarr("cell.ome.zarr", ri, (0.2, 0.15, 0.15))  # doctest: +SKIP
    >>> write_ome_zarr("cell.ome.zarr", ri, (0.2, 0.15, 0.15),
    ...                labels={"cell_labels": cells})  # doctest: +SKIP
    >>> write_ome_zarr("fl.ome.zarr", fl, (0.2, 0.15, 0.15),
    ...                channel_names=["membrane", "nucleus"], ngff_version="0.4")  # doctest: +SKIP
    """
    if isinstance(data, Volume):
        vol = data
        data = vol.data
        voxel_size_um = vol.voxel_size_um if voxel_size_um is None else voxel_size_um
        axes = axes or vol.axes
        channel_names = channel_names or vol.channel_names
        time_interval_s = time_interval_s or vol.time_interval_s
        medium_index = vol.medium_index if medium_index is None else medium_index
    if voxel_size_um is None:
        raise InputError("no voxel size given for the OME-Zarr output",
                         hint="pass voxel_size_um=(z, y, x)")
    if not isinstance(data, da.Array):
        data = np.asarray(data)
    dtype = np.dtype(dtype or data.dtype)
    axes = axes or default_axes(data.ndim)
    c_axis = axes.index("c") if "c" in axes else None
    names = channel_names
    if names is None:
        n = data.shape[c_axis] if c_axis is not None else 1
        names = ["ri"] if n == 1 else [f"ch{i}" for i in range(n)]
    windows = (_window_of(data, c_axis, list(names)) if isinstance(data, np.ndarray)
               else None)
    with create_ome_zarr(path, data.shape, voxel_size_um, names, axes, chunks, dtype,
                         ngff_version, time_interval_s, windows, name,
                         medium_index=medium_index, levels=levels,
                         overwrite=overwrite) as out:
        if isinstance(data, da.Array):
            da.store(data.astype(dtype).rechunk(out.chunks), out.array, lock=False)
        else:
            out.array[...] = data.astype(dtype, copy=False)
        if labels:
            out.add_labels(labels)
    return Path(path)


# --------------------------------------------------------------------------- reading

#: Metadata files of zarr v3 and v2 groups and arrays.
_METADATA_FILES = ("zarr.json", ".zattrs", ".zgroup", ".zarray", ".zmetadata")
_CORRUPT_NGFF_HINT = "the store's OME-NGFF metadata are corrupt; export it again"
_MISSING_CHUNKS_HINT = ("the store is incomplete (an interrupted copy or write), or its chunk "
                        "files are named for another dimension_separator; copy it again, or "
                        "pass --fill-missing (fill_missing=True) to read them as the fill value")


def is_ome_zarr(path: Path) -> bool:
    """A directory holding a zarr v3 (``zarr.json``) or v2 (``.zattrs``/``.zgroup``) group."""
    return path.is_dir() and any((path / n).exists() for n in ("zarr.json", ".zattrs",
                                                                ".zgroup"))


def _check_metadata_files(folder: Path) -> None:
    """Refuse metadata files that are pipes or devices, or too large to be metadata."""
    for name in _METADATA_FILES:
        meta = folder / name
        if meta.exists() or meta.is_symlink():
            check_regular_file(meta, max_bytes=MAX_METADATA_BYTES)


def _ngff_metadata(attrs: dict, where) -> tuple[dict, dict, str]:
    ome = attrs.get("ome", attrs)
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    if not isinstance(multiscales, list) or not multiscales or not isinstance(
            multiscales[0], dict):
        raise InputError("no OME-NGFF 'multiscales' metadata", where,
                         "this zarr store is not an OME-Zarr image")
    ms = multiscales[0]
    version = str(ome.get("version", "0.5") if "ome" in attrs else ms.get("version", "0.4"))
    omero = ome.get("omero") if isinstance(ome.get("omero"), dict) else {}
    return ms, omero, version


def _dataset_meta(ms: dict, dataset: str | None, where) -> tuple[dict, list[str]]:
    """The ``datasets`` entry of resolution level ``dataset`` (default: the first), and the
    paths of all levels."""
    datasets = ms.get("datasets")
    if not datasets:
        raise InputError("OME-Zarr multiscales lists no datasets", where, _CORRUPT_NGFF_HINT)
    if not isinstance(datasets, list) or not all(
            isinstance(d, dict) and isinstance(d.get("path"), str) for d in datasets):
        raise InputError(f"multiscales 'datasets' {repr(datasets)[:60]} is not a list of "
                         "{'path': ...} entries", where, _CORRUPT_NGFF_HINT)
    levels = [d["path"] for d in datasets]
    for d in datasets:
        if dataset is None or d["path"] == dataset:
            return d, levels
    raise InputError(f"no resolution level {dataset!r}", where, f"levels: {levels}")


def _scale_of(transforms, ndim: int, where) -> list[float] | None:
    """The ``scale`` of a ``coordinateTransformations`` list (``ndim`` positive numbers), or
    None when it has none."""
    if transforms is None:
        return None
    if not isinstance(transforms, list) or not all(isinstance(t, dict) for t in transforms):
        raise InputError(f"coordinateTransformations {repr(transforms)[:60]} is not a list "
                         "of transformations", where, _CORRUPT_NGFF_HINT)
    for tr in transforms:
        if tr.get("type") != "scale":
            continue
        scale = tr.get("scale")
        if not isinstance(scale, list) or len(scale) != ndim or not all(
                isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s)
                and s > 0 for s in scale):
            raise InputError(f"scale {repr(scale)[:60]} is not {ndim} positive numbers (one "
                             "per axis)", where, _CORRUPT_NGFF_HINT)
        return [float(s) for s in scale]
    return None


def _axes_of(ms: dict, ndim: int, where) -> tuple[str, list[str | None]]:
    axes_meta = ms.get("axes")
    if axes_meta is None:  # NGFF <= 0.3: always tczyx
        axes_meta = list("tczyx")[-ndim:]
    if not isinstance(axes_meta, list | str):
        raise InputError(f"axes {repr(axes_meta)[:60]} are not a list", where,
                         _CORRUPT_NGFF_HINT)
    names, units = [], []
    for a in axes_meta:
        names.append(str(a.get("name") if isinstance(a, dict) else a).lower())
        units.append(a.get("unit") if isinstance(a, dict) else None)
    axes = "".join(names)
    if len(axes) != ndim or not axes.endswith("zyx") or set(axes) - set("tczyx") or len(
            set(axes)) != len(axes):
        raise InputError(f"axes {names} of the image are not supported", where,
                         "ri2fl reads 3D images with axes zyx, czyx, tzyx or tczyx")
    return axes, units


def _unit_to_um(unit, where) -> float:
    if not unit:
        return 1.0
    factor = _UNIT_TO_UM.get(str(unit).lower())
    if factor is None:
        raise InputError(f"unknown length unit {str(unit)[:40]!r} of a spatial axis", where,
                         "pass voxel_size_um=(z, y, x) in µm (CLI: --voxel-size Z Y X)")
    return factor


def _physical_sizes(ms: dict, ds_meta: dict, axes: str, units: list, where,
                    voxel_size_um) -> tuple[tuple[float, float, float], float | None]:
    """Voxel size (µm) and time interval (s) from the level's and the multiscale's scales;
    ``voxel_size_um``, when given, replaces the voxel size."""
    ndim = len(axes)
    scale = _scale_of(ds_meta.get("coordinateTransformations"), ndim, where)
    outer = _scale_of(ms.get("coordinateTransformations"), ndim, where) or [1.0] * ndim
    t_interval = (check_time_interval(scale[0] * outer[0], where)
                  if scale and axes.startswith("t") else None)
    if voxel_size_um is None:
        if scale is None:
            raise InputError("no 'scale' coordinate transformation: the voxel size is unknown",
                             where, "pass voxel_size_um=(z, y, x) in µm (CLI: --voxel-size "
                             "Z Y X)")
        voxel_size_um = [scale[axes.index(a)] * outer[axes.index(a)]
                         * _unit_to_um(units[axes.index(a)], where) for a in "zyx"]
    return voxel_size_from(voxel_size_um, where), t_interval


def _channel_names(omero: dict, n_channels: int, modality: str) -> list[str]:
    channels = omero.get("channels")
    labels = [c.get("label") for c in channels if isinstance(c, dict)] if isinstance(
        channels, list) else []
    if len(labels) == n_channels and all(labels):
        return [str(x) for x in labels]
    return [modality] if n_channels == 1 else [f"ch{i}" for i in range(n_channels)]


def _group_attrs(path: Path) -> dict:
    _check_metadata_files(path)
    try:
        attrs = zarr.open_group(path, mode="r").attrs.asdict()
    except Exception as exc:  # zarr raises many types for a broken store
        raise InputError(f"cannot open as OME-Zarr ({type(exc).__name__}: {exc})", path,
                         "check that the store is complete") from None
    return attrs if isinstance(attrs, dict) else {}


def _image_group(path: Path) -> tuple[Path, dict]:
    """The group holding the image and its attributes (bioformats2raw: the group "0")."""
    attrs = _group_attrs(path)
    ome = attrs.get("ome", attrs)
    if isinstance(ome, dict) and "multiscales" not in ome and (
            "bioformats2raw.layout" in ome or (path / "0").is_dir()):
        path = path / "0"
        attrs = _group_attrs(path)
    return path, attrs


def _open_array(group: Path, array_path: str) -> zarr.Array:
    if Path(array_path).is_absolute() or ".." in Path(array_path).parts:
        raise InputError(f"image array path {array_path!r} leads outside the store", group,
                         _CORRUPT_NGFF_HINT)
    _check_metadata_files(group / array_path)
    try:
        return zarr.open_array(group / array_path, mode="r")
    except Exception as exc:
        raise InputError(f"cannot open image array '{array_path}' ({exc})", group) from None


def _stored_medium(attrs: dict, where) -> float | None:
    block = attrs.get("ri2fl")
    value = block.get("medium_index") if isinstance(block, dict) else None
    return check_medium_index(value, f"{where} (ri2fl.medium_index)")


def _missing_policy(attrs: dict, fill_missing: bool) -> str:
    """How chunks the store declares but does not hold are treated.

    "fill" (the caller asked): read as the fill value. "partial": stores ri2fl wrote (their
    ``ri2fl`` block), whose writer, like zarr's default, leaves out chunks holding only the
    fill value; only a read that finds no chunk at all is refused. "refuse": any missing
    chunk is refused, since the fill value (usually 0) would pass for data.
    """
    if fill_missing:
        return "fill"
    return "partial" if isinstance(attrs.get("ri2fl"), dict) else "refuse"


def _as_region(key, shape: Sequence[int]) -> tuple[slice, ...]:
    """A basic index (ints and slices) as one slice per axis."""
    key = key if isinstance(key, tuple) else (key,)
    region = []
    for k in key:
        if isinstance(k, int | np.integer):
            k = range(shape[len(region)])[k]
            region.append(slice(k, k + 1))
        else:
            region.append(k if isinstance(k, slice) else slice(None))
    return tuple(region) + (slice(None),) * (len(shape) - len(region))


#: Up to this many chunk files a read needs, each is looked up by name; beyond (a huge shape
#: declared over tiny chunks), the files the store holds are listed instead.
_MAX_CHUNK_LOOKUPS = 4096


def _check_chunk_file(chunk: Path, bound: int) -> bool:
    """Whether chunk file ``chunk`` is stored; refuses a pipe, a device or an oversized one."""
    try:
        info = os.stat(chunk)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode) or info.st_size > bound:
        check_regular_file(chunk, max_bytes=bound)  # raises, naming what is wrong
    return True


def _stored_chunk_files(arr: zarr.Array, array_dir: Path) -> Iterator[tuple[tuple, Path]]:
    """Grid coordinates and path of every chunk file under ``array_dir``, named exactly as
    the array's chunk key encoding names them (other files are not chunks of it)."""
    meta = arr.metadata
    sep = getattr(meta, "dimension_separator", None) or meta.chunk_key_encoding.separator
    prefix = meta.encode_chunk_key((0,) * arr.ndim)[: -len(sep.join("0" * arr.ndim))]
    seen: set[tuple[int, int]] = set()
    folders = [array_dir]
    while folders:
        folder = folders.pop()
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        for entry in os.scandir(folder):
            if entry.is_dir():
                folders.append(Path(entry.path))
                continue
            key = Path(entry.path).relative_to(array_dir).as_posix()
            parts = key[len(prefix):].split(sep) if key.startswith(prefix) else []
            if len(parts) == arr.ndim and all(p.isdigit() for p in parts):
                coords = tuple(int(p) for p in parts)
                if meta.encode_chunk_key(coords) == key:
                    yield coords, Path(entry.path)


def _count_stored_chunks(arr: zarr.Array, array_dir: Path, ranges: list[range],
                         bound: int) -> int:
    """How many chunk files of the grid region ``ranges`` are stored (each checked)."""
    if math.prod(len(r) for r in ranges) <= _MAX_CHUNK_LOOKUPS:
        return sum(_check_chunk_file(array_dir / arr.metadata.encode_chunk_key(coords), bound)
                   for coords in itertools.product(*ranges))
    return sum(_check_chunk_file(chunk, bound) for coords, chunk in
               _stored_chunk_files(arr, array_dir)
               if all(c in r for c, r in zip(coords, ranges)))


def _check_chunks(arr: zarr.Array, array_dir: Path, region: tuple[slice, ...], where,
                  policy: str) -> None:
    """Refuse the chunk files a read of ``region`` needs when they are missing (see
    :func:`_missing_policy`), pipes or devices, or larger than a chunk can compress to."""
    grid = tuple(arr.shards or arr.chunks)  # what one file holds
    ranges = []
    for sl, n, c in zip(region, arr.shape, grid):
        start, stop, _ = sl.indices(n)
        if stop <= start:
            return
        ranges.append(range(start // c, (stop - 1) // c + 1))
    raw = math.prod(grid) * arr.dtype.itemsize
    bound = raw + raw // 8 + 2**20  # incompressible data, codec headers, shard index
    expected = math.prod(len(r) for r in ranges)
    missing = expected - _count_stored_chunks(arr, array_dir, ranges, bound)
    if not missing or policy == "fill" or (policy == "partial" and missing < expected):
        return
    if missing == expected:
        n = math.prod(len(range(*sl.indices(s))) for sl, s in zip(region, arr.shape))
        raise InputError(f"declares {n} voxels {arr.shape} for this read but stores no data "
                         f"for them (none of their {expected} chunk files)", where,
                         _MISSING_CHUNKS_HINT)
    raise InputError(f"{missing} of the {expected} chunk files this read needs are missing",
                     where, _MISSING_CHUNKS_HINT)


class _CheckedArray:
    """A zarr array whose reads raise corrupt chunks as InputError; dask reads the blocks of
    lazy volumes through it (their chunk files were checked once, in :func:`_zarr_data`)."""

    def __init__(self, arr: zarr.Array, where: str):
        self.arr = arr
        self.where = where
        self.shape = arr.shape
        self.dtype = arr.dtype
        self.ndim = arr.ndim

    def __getitem__(self, key) -> np.ndarray:
        with corrupt_file_guard(self.where):
            return self.arr[key]


def _load_zarr_frame(path: str, array_path: str, modality: str, policy: str,
                     t: int) -> np.ndarray:
    """Read frame ``t`` (picklable with ``t`` last: the lazy frames' loader)."""
    where = f"{path}/{array_path}[{t}]"
    with corrupt_file_guard(path):
        arr = zarr.open_array(Path(path) / array_path, mode="r")
        _check_chunks(arr, Path(path) / array_path, _as_region(t, arr.shape), where, policy)
        return validate(arr[t], where, modality)


def _zarr_data(arr: zarr.Array, path: Path, array_path: str, axes: str, frame: int | None,
               lazy: bool, modality: str, policy: str) -> tuple[Any, str]:
    """The image's data (eager, one frame, or lazy) and their axes."""
    where = f"{path}/{array_path}"
    whole = (slice(None),) * arr.ndim
    if axes.startswith("t") and frame is not None:
        if not -arr.shape[0] <= frame < arr.shape[0]:
            raise InputError(f"frame {frame} out of range (0..{arr.shape[0] - 1})", where)
        return _load_zarr_frame(str(path), array_path, modality, policy, frame), axes[1:]
    if axes.startswith("t"):
        loader = functools.partial(_load_zarr_frame, str(path), array_path, modality, policy)
        return lazy_frames(loader, arr.shape[0], arr.shape[1:]), axes
    check_single_frame(frame, where)
    _check_chunks(arr, path / array_path, whole, where, policy)
    if lazy:
        source = _CheckedArray(arr, where)
        data = da.from_array(source, chunks=arr.chunks, name=f"ome-zarr-{uuid.uuid4().hex}",
                             meta=np.empty((0,) * arr.ndim, arr.dtype))
        return data.astype(np.float32), axes
    return validate(arr[...], where, modality), axes


def read_ome_zarr(path: str | Path, *, frame: int | None = None, modality: str = "ri",
                  voxel_size_um=None, medium_index: float | None = None,
                  dataset: str | None = None, lazy: bool = False,
                  fill_missing: bool = False) -> Volume:
    """Read the full-resolution level of an OME-Zarr image (NGFF 0.4 or 0.5).

    The voxel size comes from the dataset's (and the multiscale's) ``scale`` transformations,
    converted to µm from the axis units; channel names from ``omero``. ``dataset`` picks
    another resolution level by its path. Multi-frame images are read lazily per frame;
    ``lazy=True`` also keeps single-frame images as dask arrays (for stitched fields).

    Before anything is read the store is checked: every entry a regular file or directory
    (no pipe or device that would block or never end), metadata files at most
    :data:`~ri2fl.io._checks.MAX_METADATA_BYTES`, each chunk file read no larger than its
    chunk. Chunks the store declares but does not hold are refused (see
    :func:`_missing_policy`) unless ``fill_missing=True`` reads them as the fill value.
    """
    path = Path(path)
    check_regular_tree(path)
    path, attrs = _image_group(path)
    ms, omero, version = _ngff_metadata(attrs, path)
    ds_meta, levels = _dataset_meta(ms, dataset, path)
    array_path = ds_meta["path"]
    arr = _open_array(path, array_path)
    where = f"{path}/{array_path}"
    axes, units = _axes_of(ms, arr.ndim, where)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InputError(f"unsupported data type {arr.dtype}", where)
    check_axes_not_empty(arr.shape, axes, where)
    # what one read allocates: a frame (all channels), or everything unless kept lazy
    check_size(arr.shape[1:] if axes.startswith("t") else
               (arr.shape[-3:] if lazy else arr.shape), where)
    voxel_size, t_interval = _physical_sizes(ms, ds_meta, axes, units, where, voxel_size_um)
    n_channels = arr.shape[axes.index("c")] if "c" in axes else 1
    names = _channel_names(omero, n_channels, modality)
    data_modality = modality if names in (["ri"], [modality]) and n_channels == 1 else "fl"
    metadata = {"format": f"ome-zarr {version}", "ngff_version": version,
                "array_path": array_path, "name": ms.get("name"), "levels": levels}
    data, axes = _zarr_data(arr, path, array_path, axes, frame, lazy, data_modality,
                            _missing_policy(attrs, fill_missing))
    if medium_index is None:
        medium_index = _stored_medium(attrs, path)
    return Volume(data=data, voxel_size_um=voxel_size, axes=axes, channel_names=names,
                  medium_index=medium_index, time_interval_s=t_interval, metadata=metadata)


def ngff_attributes(path: str | Path) -> dict[str, Any]:
    """The raw NGFF attributes of an OME-Zarr group (for inspection and tests)."""
    return zarr.open_group(Path(path), mode="r").attrs.asdict()


# --------------------------------------------------------------------------- labels

#: Integer channels that ri2fl < 0.x wrote as image channels instead of an NGFF labels group.
_LEGACY_LABEL_CHANNELS = ("cell_labels", "nucleus_labels", "nucleus", "nucleolus", "membrane",
                          "lipid_droplets")


def label_names(path: str | Path) -> list[str]:
    """Names of the label images stored with an OME-Zarr image (its NGFF ``labels`` group,
    or the integer channels of an older ri2fl segmentation); [] when it has none."""
    path = Path(path)
    if not is_ome_zarr(path):
        return []
    image, attrs = _image_group(path)
    names = _labels_group_names(image)
    if names:
        return names
    legacy = _legacy_label_volume(image, attrs)
    return [] if legacy is None else list(legacy.channel_names)


def _labels_group_names(image: Path) -> list[str]:
    if not is_ome_zarr(image / "labels"):
        return []
    attrs = _group_attrs(image / "labels")
    listed = attrs.get("ome", attrs).get("labels") if isinstance(attrs.get("ome", attrs),
                                                                  dict) else None
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        raise InputError(f"'labels' attribute {repr(listed)[:60]} is not a list of names",
                         image / "labels", _CORRUPT_NGFF_HINT)
    return listed


def _legacy_label_volume(image: Path, attrs: dict) -> Volume | None:
    """An older ri2fl segmentation: an integer image whose channels are the labels."""
    ms, omero, _ = _ngff_metadata(attrs, image)
    ds_meta, _ = _dataset_meta(ms, None, image)
    arr = _open_array(image, ds_meta["path"])
    axes = _axes_of(ms, arr.ndim, image)[0]
    names = _channel_names(omero, arr.shape[axes.index("c")] if "c" in axes else 1, "labels")
    if not np.issubdtype(arr.dtype, np.integer) or not set(names) & set(
            _LEGACY_LABEL_CHANNELS[:2]):
        return None
    return Volume(data=arr, voxel_size_um=(1.0, 1.0, 1.0), channel_names=names, axes=axes)


def _read_label(group: Path, frame: int | None, name: str, policy: str) -> np.ndarray:
    """Full-resolution level of label image ``group``, integers kept (one frame if asked)."""
    attrs = _group_attrs(group)
    ms, _, _ = _ngff_metadata(attrs, group)
    ds_meta, _ = _dataset_meta(ms, None, group)
    arr = _open_array(group, ds_meta["path"])
    axes, _ = _axes_of(ms, arr.ndim, group)
    where = f"{group}/{ds_meta['path']}"
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise InputError(f"label {name!r} holds {arr.dtype}, not integers", where)
    check_size(arr.shape[1:] if axes.startswith("t") else arr.shape, where)
    key: Any = slice(None)
    if axes.startswith("t") and frame is not None:
        key = range(arr.shape[0])[frame]
    _check_chunks(arr, group / ds_meta["path"], _as_region(key, arr.shape), where, policy)
    with corrupt_file_guard(where):
        return np.asarray(arr[key])


def read_labels(path: str | Path, *, frame: int | None = None,
                names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Label images and masks stored with an OME-Zarr image, by name, as integer arrays.

    Reads the image's NGFF ``labels`` group (``labels/<name>``, what ``ri2fl segment`` and
    ``ri2fl demo`` write); a store of an older ri2fl, holding them as the integer channels
    ``cell_labels``, ``nucleus_labels``, ... of the image itself, reads the same.

    Parameters
    ----------
    path : str or Path
        The OME-Zarr image.
    frame : int, optional
        One time point of a time-lapse (default: all, with the time axis first).
    names : sequence of str, optional
        Only these labels (default: all).

    Returns
    -------
    dict
        Name -> (Z, Y, X) (or (T, Z, Y, X)) integer array; empty when the image has none.
    """
    path = Path(path)
    check_regular_tree(path)
    image, attrs = _image_group(path)
    stored = _labels_group_names(image)
    wanted = [n for n in stored if names is None or n in names]
    if stored:
        # an empty mask stores no chunk at all: in ri2fl's own stores that is no loss
        policy = "fill" if _missing_policy(attrs, False) == "partial" else "refuse"
        return {n: _read_label(image / "labels" / n, frame, n, policy) for n in wanted}
    legacy = _legacy_label_volume(image, attrs)
    if legacy is None:
        return {}
    arr = legacy.data
    timelapse = legacy.axes.startswith("t")
    out = {}
    for c, name in enumerate(legacy.channel_names):
        if names is not None and name not in names:
            continue
        key = (slice(None) if frame is None else frame, c) if timelapse else (c,)
        with corrupt_file_guard(path):
            out[name] = np.asarray(arr[key] if "c" in legacy.axes else arr[...])
    return out
