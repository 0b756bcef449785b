"""Small helpers for HDF5 files (TCF and plain): opening with clear errors, reading attributes."""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the compression filters of tiled TCF files)
import numpy as np

from ..errors import InputError


def open_h5(path: str | Path) -> h5py.File:
    """Open ``path`` read-only, turning h5py's errors into one :class:`InputError` line."""
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        msg = str(exc).split("(")[0].strip().rstrip(",") or type(exc).__name__
        raise InputError(f"cannot open as HDF5 ({msg})", path,
                         "check that the file is complete (not truncated) and is HDF5/TCF") \
            from None


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
