"""Budgets of the grids that resampling creates, checked before anything is allocated.

Resampling to the model's 0.2 x 0.15 x 0.15 µm grid multiplies the number of voxels by the
ratio of the voxel volumes: a 24 x 40 x 48 volume of 5 µm voxels becomes 600 x 1333 x 1600
(1.3e9 voxels). :func:`check_grid_budget` computes that grid from the shapes and voxel sizes
alone and refuses it with one :class:`~ri2fl.errors.InputError` line when it exceeds the
voxel limit (``RI2FL_MAX_VOXELS``), the available memory or the free disk of a scratch folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..constants import CANONICAL_VOXEL_SIZE_UM
from ..errors import InputError
from ..io import max_voxels, voxel_size_from
from .resample import resampled_shape

__all__ = ["MAX_INPUT_VOXEL_UM", "available_memory_bytes", "check_grid_budget",
           "check_resolves_cells", "free_disk_bytes"]

#: Coarsest input voxel (z, y, x) µm the networks are run on: 8 times the canonical grid. A
#: coarser tomogram cannot resolve organelles (nucleoli, droplets, mitochondria are 0.3-2 µm),
#: and upsampling it to the model's grid costs up to 8^3 times its voxels for nothing.
MAX_INPUT_VOXEL_UM: tuple[float, float, float] = tuple(
    8 * v for v in CANONICAL_VOXEL_SIZE_UM)

_CGROUP = Path("/sys/fs/cgroup")
_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")


def _cgroup_available() -> int | None:
    """Memory left under this process's cgroup (v2) limit, if it has one."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((_CGROUP / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def _address_space_available() -> int | None:
    """Address space left under ``ulimit -v`` (RLIMIT_AS), if one is set: job schedulers set it."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as fh:
            used = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        return limit - used
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def _host_available() -> int | None:
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def available_memory_bytes() -> int | None:
    """Bytes of memory this process can still allocate (None: unknown, no check)."""
    known = [b for b in (_host_available(), _cgroup_available(), _address_space_available())
             if b is not None]
    return max(0, min(known)) if known else None


def free_disk_bytes(folder: str | Path | None) -> int | None:
    """Free bytes on the disk of ``folder`` (or of its nearest existing parent; None: the
    system's temporary folder). None when unknown."""
    path = Path(folder if folder is not None else tempfile.gettempdir()).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return None


def _size(n_bytes: float) -> str:
    """``31 GB``: bytes in decimal units, two significant digits."""
    k = 0
    while n_bytes >= 999.5 and k < len(_UNITS) - 1:
        n_bytes /= 1000
        k += 1
    return f"{float(f'{n_bytes:.2g}'):g} {_UNITS[k]}" if k else f"{int(n_bytes)} B"


def _count(n: float) -> str:
    """``1.3e9`` for large counts, plain digits below a million."""
    if n < 1e6:
        return f"{int(n)}"
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _um(voxel: Sequence[float]) -> str:
    if len(set(voxel)) == 1:
        return f"{voxel[0]:g} µm"
    return " x ".join(f"{v:g}" for v in voxel) + " µm"


def _limit(n_voxels: int, n_bytes: float, scratch_dir: str | Path | None,
           on_disk: bool) -> tuple[str, str] | None:
    """(what is exceeded, what to do) for the first limit the grid exceeds, else None."""
    if n_voxels > max_voxels():
        return (f"more than the {_count(max_voxels())} voxels allowed",
                "or set RI2FL_MAX_VOXELS to allow larger grids")
    if on_disk:
        free = free_disk_bytes(scratch_dir)
        if free is not None and n_bytes > free:
            folder = scratch_dir if scratch_dir is not None else tempfile.gettempdir()
            return (f"more than the {_size(free)} free on disk in {folder}",
                    "or free disk space there")
    else:
        available = available_memory_bytes()
        if available is not None and n_bytes > available:
            return (f"more than the {_size(available)} of memory available",
                    "or run it on a machine with more memory")
    return None


def check_grid_budget(shape: Sequence[int], voxel_size_um,
                      target_voxel_size_um=CANONICAL_VOXEL_SIZE_UM, *, channels: int = 1,
                      bytes_per_voxel: float = 4.0, extra_bytes: float = 0.0,
                      scratch_dir: str | Path | None = None, on_disk: bool = False,
                      where: str | Path = "voxel_size_um", doing: str = "resampling",
                      grid_name: str = "the model's") -> tuple[int, int, int]:
    """Refuse, before anything is allocated, work whose grid is too large; return the grid.

    Parameters
    ----------
    shape : sequence of int
        Input shape; its last three axes are (z, y, x).
    voxel_size_um, target_voxel_size_um : float or (z, y, x)
        Input voxel size and the voxel size of the grid the work runs on (µm).
    channels : int
        Arrays of the grid's shape the work holds at once (e.g. output channels).
    bytes_per_voxel : float
        Bytes per voxel of each of them (4: float32).
    extra_bytes : float
        Bytes needed besides (e.g. arrays on the input grid).
    scratch_dir : str or Path, optional
        With ``on_disk``: the folder whose disk receives the grid (default: the system's
        temporary folder).
    on_disk : bool
        The grid goes to disk (checked against free disk) instead of memory.
    where : str or Path
        The file or argument named in the message.
    doing, grid_name : str
        Wording: ``"<doing> ... to <grid_name> ... grid"`` ("on" unless ``"resampling"``).

    Returns
    -------
    (z, y, x)
        The shape of the target grid.

    Raises
    ------
    InputError
        When the grid has more voxels than :func:`ri2fl.io.max_voxels` or its bytes
        exceed the available memory (or free disk). Also for implausible voxel sizes.
    """
    src = voxel_size_from(voxel_size_um, where)
    dst = voxel_size_from(target_voxel_size_um, where)
    grid = resampled_shape(shape, src, dst)
    n_voxels = int(np.prod([float(n) for n in grid]))
    n_bytes = n_voxels * channels * bytes_per_voxel + extra_bytes
    exceeded = _limit(n_voxels, n_bytes, scratch_dir, on_disk)
    if exceeded is None:
        return grid
    dims = " x ".join(str(int(n)) for n in shape[-3:])
    onto = "to" if doing == "resampling" else "on"
    what = (f"{doing} {dims} voxels of {_um(src)} {onto} {grid_name} {_um(dst)} grid needs "
            f"{' x '.join(map(str, grid))} voxels ({_count(n_voxels)}, {_size(n_bytes)}), "
            f"{exceeded[0]}")
    raise InputError(what, where, "check the voxel size (in µm) or pass --voxel-size Z Y X, "
                                  f"crop the volume, {exceeded[1]}")


def check_resolves_cells(voxel_size_um, where: str | Path = "voxel_size_um") -> None:
    """Refuse a tomogram whose voxels are too coarse to show organelles.

    Raises
    ------
    InputError
        When a voxel side exceeds :data:`MAX_INPUT_VOXEL_UM` (the message says by how much).
    """
    voxel = voxel_size_from(voxel_size_um, where)
    if all(v <= m for v, m in zip(voxel, MAX_INPUT_VOXEL_UM)):
        return
    factor = max(v / c for v, c in zip(voxel, CANONICAL_VOXEL_SIZE_UM))
    raise InputError(f"voxels of {_um(voxel)} are {factor:.3g} times coarser than the "
                     f"{_um(CANONICAL_VOXEL_SIZE_UM)} grid the networks work on: they cannot "
                     "resolve organelles", where,
                     f"check the voxel size (in µm) or pass --voxel-size Z Y X; the networks "
                     f"need voxels of at most {_um(MAX_INPUT_VOXEL_UM)}")
