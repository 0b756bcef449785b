"""Checks shared by every reader: shapes, sizes, voxel sizes and RI plausibility.

Readers call these before allocating or returning data so that a hostile or broken file ends
in one :class:`~ri2fl.errors.InputError` line instead of a crash, a hang or a huge allocation.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
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
#: Refractive indices of imaging media (water 1.333, PBS 1.335, culture medium 1.337, up to
#: high-index mounting media ~1.52), from a file or from ``--medium-index``.
MEDIUM_INDEX_RANGE = (1.30, 1.60)
#: Largest metadata file (zarr.json, .zattrs, ...) read; real ones hold a few kB.
MAX_METADATA_BYTES = 16 * 2**20


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


_LEADING_AXES = {"t": "time points", "c": "channels"}


def check_axes_not_empty(shape: Sequence[int], axes: str, where: str | Path) -> None:
    """Refuse a time or channel axis of length 0 (spatial ones: :func:`check_size`)."""
    for name, n in zip(axes, shape):
        if name in _LEADING_AXES and int(n) <= 0:
            raise InputError(f"the file holds 0 {_LEADING_AXES[name]} (shape {tuple(shape)})",
                             where, "the file holds no image data; export it again")


def check_medium_index(value, where: str | Path) -> float | None:
    """A medium refractive index (from a file or an option): finite and in
    :data:`MEDIUM_INDEX_RANGE`; ``None`` (not given) passes through.

    Raises
    ------
    InputError
        When the value is not a number, not finite, or outside the range.
    """
    if value is None:
        return None
    lo, hi = MEDIUM_INDEX_RANGE
    try:
        if isinstance(value, bool | np.bool_):
            raise TypeError
        index = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"medium index {str(value)[:40]!r} is not a number", where,
                         f"give the medium's refractive index ({lo:.2f}-{hi:.2f}), e.g. "
                         "1.337") from None
    if not (math.isfinite(index) and lo <= index <= hi):
        raise InputError(f"implausible medium index {index:g} (outside {lo:.2f}-{hi:.2f})",
                         where, "1.337 for culture medium, 1.335 for PBS; pass medium_index= "
                         "(CLI: --medium-index) to give the right one")
    return index


def check_time_interval(value, where: str | Path) -> float | None:
    """Seconds between time points from a file: ``None`` when absent, else finite and > 0."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"invalid time interval {str(value)[:40]!r}", where,
                         "the file's time metadata are corrupt; export it again")
    return seconds


_SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_SPECIAL_HINT = ("ri2fl reads only files saved on disk: reading a pipe or device could block "
                 "forever or never end")


def _refuse_special(mode: int, where: str | Path) -> None:
    kind = next((name for is_kind, name in _SPECIAL_FILES if is_kind(mode)), "a special file")
    raise InputError(f"{kind}, not a regular file", where, _SPECIAL_HINT)


def _stat(path: str | Path) -> os.stat_result:
    """``os.stat`` (symbolic links followed), its failures as InputError."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise InputError("no such file (or a broken symbolic link)", path,
                         "check the path; a store's files must all be present") from None
    except OSError as exc:  # e.g. a symbolic-link loop, no permission
        raise InputError(f"cannot read ({exc.strerror})", path) from None


def check_regular_file(path: str | Path, where: str | Path | None = None,
                       max_bytes: int | None = None) -> int:
    """Refuse anything but a regular file (after symbolic links); return its size in bytes.

    Named pipes, devices and sockets are refused before anything opens them (a FIFO blocks
    the reader forever, ``/dev/zero`` never ends); ``max_bytes`` bounds what will be read.
    """
    info = _stat(path)
    where = path if where is None else where
    if not stat.S_ISREG(info.st_mode):
        _refuse_special(info.st_mode, where)
    if max_bytes is not None and info.st_size > max_bytes:
        raise InputError(f"{info.st_size} bytes, more than the {max_bytes} expected", where,
                         "the file is corrupt or not what its name says")
    return info.st_size


def check_regular_tree(path: str | Path) -> int:
    """Refuse a directory (e.g. an OME-Zarr store) holding anything but regular files and
    directories; return how many files it holds.

    Nothing is opened: entries are listed with ``os.scandir`` and only symbolic links are
    followed (``stat``), so a store of thousands of chunks is checked in milliseconds.
    Linked directories are entered once (a link loop ends).
    """
    seen: set[tuple[int, int]] = set()
    folders = [Path(path)]
    n_files = 0
    while folders:
        folder = folders.pop()
        info = _stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InputError(f"cannot list the folder ({exc.strerror})", folder) from None
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                n_files += 1
            else:  # a symbolic link or a special file
                mode = _stat(entry.path).st_mode
                if stat.S_ISDIR(mode):
                    folders.append(Path(entry.path))
                elif stat.S_ISREG(mode):
                    n_files += 1
                else:
                    _refuse_special(mode, entry.path)
    return n_files


def check_spatial_rank(shape: Sequence[int], n_leading: int, where: str | Path) -> None:
    """Require ``n_leading`` leading axes plus (z, y, x)."""
    if len(shape) != 3 + n_leading:
        need = 3 + n_leading
        raise InputError(f"array has {len(shape)} dimensions {tuple(shape)}, expected {need}",
                         where, "ri2fl needs 3D volumes (z, y, x); a 2D image cannot be used"
                         if len(shape) < 3 else "pass frame=/--frame or select one dataset")


#: Voxel sizes (µm) a microscope can have: below, a value is in the wrong unit (m, mm) or
#: corrupt; above, resampling to the 0.2 x 0.15 x 0.15 µm model grid would explode the grid.
VOXEL_SIZE_RANGE_UM = (0.01, 50.0)


def voxel_size_from(value, where: str | Path) -> tuple[float, float, float]:
    """Parse a voxel size: one number (isotropic) or three (z, y, x), each finite and in
    :data:`VOXEL_SIZE_RANGE_UM`."""
    try:
        v = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"invalid voxel size {value!r}", where,
                         "give one number (isotropic) or three (z, y, x) in µm") from None
    if v.size == 1:
        v = np.repeat(v, 3)
    if v.size != 3 or not np.all(np.isfinite(v)):
        raise InputError(f"invalid voxel size {v.tolist()}", where,
                         "give one number (isotropic) or three (z, y, x) in µm")
    lo, hi = VOXEL_SIZE_RANGE_UM
    if np.any(v < lo) or np.any(v > hi):
        raise InputError(f"implausible voxel size {' x '.join(f'{x:g}' for x in v)} µm, outside "
                         f"{lo:g}-{hi:g} µm", where,
                         "check the voxel size and its unit (µm, not nm or mm), or pass "
                         "--voxel-size Z Y X (voxel_size_um=) in µm")
    return (float(v[0]), float(v[1]), float(v[2]))


#: Elements per block when a check walks a volume: its temporaries stay a few MB.
_BLOCK = 1 << 22


def _blocks(data: np.ndarray) -> Iterator[np.ndarray]:
    """``data`` flattened (a view unless it is non-contiguous) in blocks of :data:`_BLOCK`."""
    flat = data.ravel(order="K")
    for start in range(0, flat.size, _BLOCK):
        yield flat[start:start + _BLOCK]


def check_finite(data: np.ndarray, where: str | Path) -> None:
    """Refuse NaN or infinite values, which would silently poison every downstream number."""
    if not np.issubdtype(data.dtype, np.floating):
        return
    n = sum(int(b.size - np.count_nonzero(np.isfinite(b))) for b in _blocks(data))
    if n:
        raise InputError(f"{n} voxels are NaN or infinite", where,
                         "fix or mask the reconstruction (e.g. numpy.nan_to_num) before use")


def check_ri_range(data: np.ndarray, where: str | Path) -> None:
    """Refuse RI values that cannot be absolute refractive indices (e.g. stored x 10^4), and
    a volume with no voxel that looks like one (all zeros: data never written).

    Exact zeros are allowed next to real values (padding of some reconstructions).
    """
    if data.size == 0:
        return
    hi, lo = -math.inf, math.inf
    for block in _blocks(data):
        hi = max(hi, float(block.max()))
        lo = min(lo, float(np.min(block, where=block != 0, initial=math.inf)))
    if hi > RI_PLAUSIBLE_MAX:
        raise InputError(f"values up to {hi:.6g} do not look like refractive indices", where,
                         "divide by the storage scale (e.g. 10000 for RI x 10^4) or read "
                         "with modality='fl' if this is not RI")
    if lo == math.inf:
        raise InputError(f"no voxel looks like a refractive index (all {data.size} are 0)",
                         where, "the data were never written (an incomplete file or store); "
                         "export it again, or read with modality='fl' if this is not RI")
    if lo < RI_PLAUSIBLE_MIN:
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
