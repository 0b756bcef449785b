"""Checks shared by every reader: shapes, sizes, voxel sizes and RI plausibility.

Readers call these before allocating or returning data so that a hostile or broken file ends
in one :class:`~ri2fl.errors.InputError` line instead of a crash, a hang or a huge allocation.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from tokenize import TokenError

import numpy as np

from ..errors import InputError, Ri2flError

#: Largest number of voxels in one frame of one channel that a reader will allocate. The
#: largest real tomograms are 260 x 860 x 860 (1.9e8) and stitched fields 65 x 3200 x 3200
#: (6.7e8); raise it with the environment variable ``RI2FL_MAX_VOXELS``.
DEFAULT_MAX_VOXELS = 2**30

#: RI values above this cannot be a refractive index of a biological sample.
RI_PLAUSIBLE_MAX = 2.5
#: RI values below this (other than exact zeros) cannot be absolute refractive indices.
RI_PLAUSIBLE_MIN = 0.9


#: What h5py, tifffile, zarr and numpy raise when a file's bytes are corrupt: HDF5's C library
#: alone surfaces as RuntimeError, KeyError, ValueError or OSError depending on where it fails;
#: broken OME-XML and .npy headers as SyntaxError (xml ParseError) or TokenError.
CORRUPT_FILE_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError,
                       ZeroDivisionError, OverflowError, EOFError, SyntaxError, TokenError,
                       struct.error, MemoryError)


@contextlib.contextmanager
def corrupt_file_guard(where: str | Path) -> Iterator[None]:
    """Turn the exceptions libraries raise on corrupt bytes into one InputError line."""
    try:
        yield
    except Ri2flError:
        raise
    except MemoryError:
        raise InputError("the file declares more data than fits in memory", where,
                         "the file is corrupt, or read one frame at a time") from None
    except CORRUPT_FILE_ERRORS as exc:
        detail = " ".join(str(exc).split())[:160]
        raise InputError(f"cannot read: the file is corrupt ({type(exc).__name__}: {detail})",
                         where, "export or copy the file again") from exc


def max_voxels() -> int:
    """The per-frame voxel limit (``RI2FL_MAX_VOXELS`` or :data:`DEFAULT_MAX_VOXELS`)."""
    try:
        return int(os.environ.get("RI2FL_MAX_VOXELS", DEFAULT_MAX_VOXELS))
    except ValueError:
        return DEFAULT_MAX_VOXELS


def check_size(shape: Sequence[int], where: str | Path) -> tuple[int, ...]:
    """Refuse non-positive or absurdly large declared sizes before anything is allocated."""
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"invalid array size {shape!r}", where,
                         "the file's size attributes are corrupt") from None
    if any(s <= 0 for s in shape):
        raise InputError(f"empty or negative array size {shape}", where,
                         "the file holds no image data")
    n = int(np.prod([float(s) for s in shape]))
    if n > max_voxels():
        raise InputError(f"declared size {shape} ({n:.3g} voxels) is larger than the "
                         f"{max_voxels():.3g} voxels read at once", where,
                         "the file is corrupt; or read it lazily (OME-Zarr: lazy=True), or set "
                         "RI2FL_MAX_VOXELS to allow larger reads")
    return shape


def check_single_frame(frame: int | None, where: str | Path) -> None:
    """A frame other than 0 asked of a file with a single time point."""
    if frame is not None and frame not in (0, -1):
        raise InputError(f"frame {frame} requested but the file has one time point", where,
                         "leave out frame / --frame")


def check_spatial_rank(shape: Sequence[int], n_leading: int, where: str | Path) -> None:
    """Require ``n_leading`` leading axes plus (z, y, x)."""
    if len(shape) != 3 + n_leading:
        need = 3 + n_leading
        raise InputError(f"array has {len(shape)} dimensions {tuple(shape)}, expected {need}",
                         where, "ri2fl needs 3D volumes (z, y, x); a 2D image cannot be used"
                         if len(shape) < 3 else "pass frame=/--frame or select one dataset")


def voxel_size_from(value, where: str | Path) -> tuple[float, float, float]:
    """Parse a voxel size: one number (isotropic) or three (z, y, x), all finite and > 0."""
    try:
        v = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise InputError(f"invalid voxel size {value!r}", where,
                         "give one number (isotropic) or three (z, y, x) in µm") from None
    if v.size == 1:
        v = np.repeat(v, 3)
    if v.size != 3 or not np.all(np.isfinite(v)) or np.any(v <= 0) or np.any(v > 1e4):
        raise InputError(f"invalid voxel size {v.tolist()}", where,
                         "give one number (isotropic) or three (z, y, x) in µm, each > 0")
    return (float(v[0]), float(v[1]), float(v[2]))


def check_finite(data: np.ndarray, where: str | Path) -> None:
    """Refuse NaN or infinite values, which would silently poison every downstream number."""
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        n = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise InputError(f"{n} voxels are NaN or infinite", where,
                         "fix or mask the reconstruction (e.g. numpy.nan_to_num) before use")


def check_ri_range(data: np.ndarray, where: str | Path) -> None:
    """Refuse RI values that cannot be absolute refractive indices (e.g. stored x 10^4)."""
    if data.size == 0:
        return
    hi = float(np.max(data))
    nonzero = data[data != 0]
    lo = float(np.min(nonzero)) if nonzero.size else 0.0
    if hi > RI_PLAUSIBLE_MAX:
        raise InputError(f"values up to {hi:.6g} do not look like refractive indices", where,
                         "divide by the storage scale (e.g. 10000 for RI x 10^4) or read "
                         "with modality='fl' if this is not RI")
    if nonzero.size and lo < RI_PLAUSIBLE_MIN:
        raise InputError(f"values down to {lo:.6g} do not look like absolute refractive "
                         "indices", where, "if this is an RI contrast (n - n_medium), add the "
                         "medium index before saving")


def as_float32(data: np.ndarray, where: str | Path) -> np.ndarray:
    """Convert numeric data to float32; refuse anything else (strings, compounds, objects)."""
    data = np.asarray(data)
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_):
        raise InputError(f"unsupported data type {data.dtype}", where,
                         "the volume must hold numbers (integer or float)")
    if np.issubdtype(data.dtype, np.complexfloating):
        raise InputError("complex values", where, "store the real refractive index")
    return data.astype(np.float32, copy=False)


def validate(data: np.ndarray, where: str | Path, modality: str = "ri") -> np.ndarray:
    """float32 data, finite, and for RI in a plausible range."""
    data = as_float32(data, where)
    check_finite(data, where)
    if modality == "ri":
        check_ri_range(data, where)
    return data
