"""Stable fingerprints of inputs and options, so that a rerun knows what is already done.

Two fingerprints decide whether an output can be skipped: the SHA-256 of the input's bytes
(a file, or every file of a directory store such as OME-Zarr) and the SHA-256 of the options
that produced it. Neither depends on the process, the machine or the run's date.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
import os
import re
import stat
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import check_regular_file, check_regular_tree

_MAX_DEPTH = 12
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_CHUNK = 1 << 20


def fingerprint(obj: Any) -> str:
    """SHA-256 (hex) of a canonical description of ``obj``.

    ``obj`` is typically a dict of options; callables are described by their qualified name,
    their defaults and the values they close over (``functools.partial`` arguments included),
    arrays and tensors by a hash of their bytes.
    """
    text = json.dumps(_canonical(obj, 0, set()), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


def _canonical(obj: Any, depth: int, seen: set[int]) -> Any:
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if depth > _MAX_DEPTH or id(obj) in seen:
        return {"type": _qualname(type(obj))}
    seen = seen | {id(obj)}

    def sub(value: Any) -> Any:
        return _canonical(value, depth + 1, seen)

    if isinstance(obj, enum.Enum):
        return {"enum": _qualname(type(obj)), "name": obj.name}
    if isinstance(obj, os.PathLike):
        return {"path": os.fspath(obj)}
    if isinstance(obj, bytes):
        return {"bytes": hashlib.sha256(obj).hexdigest()}
    if isinstance(obj, (np.ndarray, np.generic)):
        arr = np.ascontiguousarray(obj)
        return {"array": hashlib.sha256(arr.tobytes()).hexdigest(), "shape": list(arr.shape),
                "dtype": arr.dtype.str}
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):
        return sub(obj.detach().cpu().numpy())
    if isinstance(obj, Mapping):
        return {"mapping": sorted([str(k), sub(v)] for k, v in obj.items())}
    if isinstance(obj, (list, tuple)):
        return [sub(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return {"set": sorted(json.dumps(sub(v), sort_keys=True) for v in obj)}
    if isinstance(obj, functools.partial):
        return {"partial": sub(obj.func), "args": sub(obj.args), "keywords": sub(obj.keywords)}
    if isinstance(obj, types.FunctionType):
        cells = [c.cell_contents for c in (obj.__closure__ or ()) if _cell_filled(c)]
        return {"function": _qualname(obj), "defaults": sub(obj.__defaults__),
                "kwdefaults": sub(obj.__kwdefaults__), "closure": sub(cells)}
    if isinstance(obj, types.MethodType):
        return {"method": obj.__func__.__qualname__, "self": sub(obj.__self__)}
    if isinstance(obj, (types.BuiltinFunctionType, types.ModuleType, type)):
        return {"ref": _qualname(obj) if not isinstance(obj, types.ModuleType) else obj.__name__}
    if callable(getattr(obj, "state_dict", None)):  # torch modules: their weights
        return {"type": _qualname(type(obj)), "state": sub(dict(obj.state_dict()))}
    if dataclasses.is_dataclass(obj):
        return {"type": _qualname(type(obj)),
                "fields": sub({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})}
    if hasattr(obj, "__dict__"):
        return {"type": _qualname(type(obj)), "state": sub(vars(obj))}
    return {"type": _qualname(type(obj)), "repr": _ADDRESS.sub("", repr(obj))}


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def check_regular_input(path: str | Path) -> None:
    """Refuse an input that is not a regular file or a folder of regular files.

    Links are followed, so a link to a FIFO or a device is refused too; nothing is opened, so
    a FIFO cannot block and ``/dev/zero`` cannot be read forever.

    Raises
    ------
    InputError
        If ``path`` or anything under it is a FIFO, socket or device (or a link to one), or
        ``path`` does not exist.
    """
    if os.path.isdir(path):
        check_regular_tree(path)
    else:
        check_regular_file(path)


def _files(path: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative posix name, path, stat) of every regular file under ``path``, in order.

    A FIFO, socket or device under ``path`` is refused (:class:`InputError`) as it is met,
    so that the folder is walked once, not once to check it and once to list it.
    """
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = Path(root) / name
            try:
                st = full.stat()
            except OSError:  # vanished since checked
                continue
            if not stat.S_ISREG(st.st_mode):
                check_regular_file(full)  # raises, naming what is wrong
            yield full.relative_to(path).as_posix(), full, st


def _read_regular(path: Path) -> Iterator[bytes]:
    """The bytes of a regular file, by blocks; never blocks on a FIFO swapped in meanwhile."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=True) as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError("changed into a special file while being read", path,
                             "ri2fl reads only files saved on disk")
        while block := fh.read(_CHUNK):
            yield block


def input_signature(path: str | Path) -> str:
    """A cheap signature of an input (sizes and modification times, no reading).

    When it has not changed since the input was hashed, the recorded hash is reused.

    Raises
    ------
    InputError
        If the input is, or holds, a FIFO, socket or device (see :func:`check_regular_input`).
    """
    path = Path(path)
    if path.is_dir():  # special files are refused by _files
        h = hashlib.sha256()
        for rel, _, fst in _files(path):
            h.update(f"{rel}\0{fst.st_size}\0{fst.st_mtime_ns}\n".encode())
        return "dir:" + h.hexdigest()
    check_regular_file(path)
    st = path.stat()
    return f"file:{st.st_size}:{st.st_mtime_ns}"


def input_digest(path: str | Path) -> str:
    """SHA-256 (hex) of an input's content: a file's bytes, or a directory's files and names.

    Raises
    ------
    InputError
        If the input is, or holds, a FIFO, socket or device (see :func:`check_regular_input`).
    """
    path = Path(path)
    if path.is_dir():  # special files are refused by _files
        files = [(rel, full) for rel, full, _ in _files(path)]
    else:
        check_regular_file(path)
        files = [("", path)]
    h = hashlib.sha256()
    for rel, full in files:
        h.update(f"{rel}\0".encode())
        for block in _read_regular(full):
            h.update(block)
    return h.hexdigest()
