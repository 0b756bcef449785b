"""Atomic outputs: write to a temporary sibling, rename into place when complete.

A crash or a bad input therefore never leaves a half-written output under the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    Works for files and for directories (OME-Zarr stores). On any exception the temporary
    output is removed and the exception propagates; an existing ``path`` is left untouched.

    Examples
    --------
    >>> with atomic_path("out.ome.zarr") as tmp:  # doctest: +SKIP
    ...     write_ome_zarr(tmp, data)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # keep the suffixes so that writers which dispatch on them still work
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial{''.join(path.suffixes)}")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists():
        return
    if path.exists() and path.is_dir() and not path.is_symlink():
        backup = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(path, backup)
        os.replace(tmp, path)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, path)
