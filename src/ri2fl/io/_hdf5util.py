"""Small helpers for HDF5 files (TCF and plain): opening with clear errors, reading attributes."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the compression filters of tiled TCF files)
import numpy as np

from ..errors import InputError
from ._checks import check_regular_file


def open_h5(path: str | Path, check_links: bool = True) -> h5py.File:
    """Open ``path`` read-only, turning h5py's errors into one :class:`InputError` line.

    Links to other files are checked first (:func:`check_external_links`) unless
    ``check_links`` is False (loaders of one frame of a file already checked).
    """
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        msg = str(exc).split("(")[0].strip().rstrip(",") or type(exc).__name__
        raise InputError(f"cannot open as HDF5 ({msg})", path,
                         "check that the file is complete (not truncated) and is HDF5/TCF") \
            from None
    try:
        if check_links:
            check_external_links(f, Path(path))
    except BaseException:
        f.close()
        raise
    return f


def attr(obj, name: str, default=None):
    """Attribute ``name`` as a Python scalar/str: 1-element arrays unwrapped, bytes decoded."""
    try:
        value = obj.attrs[name]
    except (KeyError, OSError, TypeError):
        return default
    return to_python(value)


def to_python(value):
    """Unwrap a 1-element array and decode bytes, as TCF stores every attribute."""
    if isinstance(value, np.ndarray):
        value = value.ravel()
        if value.size == 1:
            value = value[0]
        else:
            return [to_python(v) for v in value.tolist()]
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    if isinstance(value, np.generic):
        return value.item()
    return value


def attrs_dict(obj) -> dict:
    """All attributes of ``obj`` as plain Python values (unreadable ones skipped)."""
    out = {}
    for key in list(obj.attrs.keys()):
        try:
            out[key] = to_python(obj.attrs[key])
        except (OSError, TypeError, ValueError):
            continue
    return out


def attr_float(obj, name: str, where, default: float | None = None) -> float | None:
    """A numeric attribute, or ``default`` when absent; InputError when not a finite number."""
    value = attr(obj, name)
    if value is None:
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"attribute {name}={value!r} is not a number", where) from None
    if not np.isfinite(out):
        raise InputError(f"attribute {name}={value!r} is not finite", where)
    return out


def attr_int(obj, name: str, where, default: int | None = None) -> int | None:
    """An integer attribute (accepts 3.0), or ``default`` when absent."""
    value = attr_float(obj, name, where, None)
    if value is None:
        return default
    if value != int(value) or abs(value) > 2**53:
        raise InputError(f"attribute {name}={value!r} is not an integer", where)
    return int(value)


_NOT_WRITTEN_HINT = ("the file is incomplete (its writer stopped early); export it again, or "
                     "read it with fill_missing=True to take the fill value for what is missing")


def _candidates(name: str | bytes, h5_path: Path) -> list[Path]:
    """Where HDF5 looks for a file that another one names: as is when absolute, else next to
    the naming file or in the working directory."""
    name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    path = Path(name)
    return [path] if path.is_absolute() else [h5_path.parent / path, Path.cwd() / path]


def _check_named_file(name, h5_path: Path, where, missing_ok: bool) -> None:
    """Refuse a file named by an HDF5 file (external link/storage, virtual source) that is a
    pipe or device (reading it would block or never end) or, unless ``missing_ok``, absent."""
    existing = [p for p in _candidates(name, h5_path) if p.exists() or p.is_symlink()]
    for path in existing:
        check_regular_file(path, where)
    if not existing and not missing_ok:
        raise InputError(f"the data file {name!r} it refers to is missing", where,
                         "copy that file next to this one")


def check_external_links(f: h5py.File, path: Path) -> None:
    """Refuse links to other files that are pipes or devices (opening one would block).

    Link types are listed without opening anything (about 10 µs a link).
    """
    external: list[bytes] = []  # checked after the visit: h5py's callback must not raise
    f.id.links.visit(lambda name, info: external.append(name)
                     if info.type == h5py.h5l.TYPE_EXTERNAL else None, info=True)
    for name in external:
        link = f.get(name.decode(errors="replace"), getlink=True)
        _check_named_file(link.filename, path, f"{path}:{name.decode(errors='replace')}",
                          missing_ok=True)


def check_stored(ds: h5py.Dataset, where, fill_missing: bool = False) -> None:
    """Refuse a dataset that declares more data than the file stores.

    HDF5 allocates storage as data are written: a dataset never written, or chunked and
    written in part, reads as its fill value, which would pass for data. Files that hold the
    data elsewhere (external storage, virtual-dataset sources) must be regular files.
    """
    if ds.size == 0:
        return
    h5_path = Path(ds.file.filename)
    for name, *_ in ds.external or []:
        _check_named_file(name, h5_path, where, missing_ok=False)
    if ds.is_virtual:
        for source in ds.virtual_sources():
            if source.file_name != ".":
                _check_named_file(source.file_name, h5_path, where, missing_ok=fill_missing)
        return
    if fill_missing or ds.external or ds.id.get_create_plist().get_layout() == h5py.h5d.COMPACT:
        return
    if ds.id.get_storage_size() == 0:
        raise InputError(f"declares {ds.size} voxels {ds.shape} but stores no data", where,
                         _NOT_WRITTEN_HINT)
    if ds.chunks is not None:
        expected = math.prod(-(-n // c) for n, c in zip(ds.shape, ds.chunks))
        stored = ds.id.get_num_chunks()
        if stored < expected:
            raise InputError(f"stores {stored} of its {expected} chunks: the rest were never "
                             "written", where, _NOT_WRITTEN_HINT)
