"""Outputs that never lose a user's data.

Every output is written into a private staging folder next to it and renamed into place
only when complete, so a crash or a bad input never leaves a half-written output under the
final name. ri2fl replaces only what it wrote itself (:func:`is_own_output`), and only when
asked to (``overwrite=True``, the CLI's ``--overwrite``):

- a folder output (an OME-Zarr store) holds a ``.ri2fl-output.json`` marker, written by
  :func:`atomic_path` itself; a zarr store with a ``ri2fl`` root attribute block counts too;
- a file output holds the bytes ``ri2fl`` in its first or last 64 KiB (or in a Parquet
  footer): every writer embeds its provenance there;
- a CSV table cannot carry metadata: it is ri2fl's own when its header line is the header
  of the table about to replace it.

A symbolic link, or anything else, is never written through or replaced.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import __version__
from .errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: stale staging folders are then left for the user
    fcntl = None

#: Ownership marker at the top of every folder output.
OUTPUT_MARKER = ".ri2fl-output.json"
#: Staging folders are ``.<name>.<random>.ri2fl-staging``, holding this marker (locked).
STAGING_SUFFIX = ".ri2fl-staging"
STAGING_MARKER = ".ri2fl-staging"
#: Bytes every ri2fl file output holds near its start or end.
OWN_BYTES = b"ri2fl"
_EDGE = 64 * 1024
_MAX_FOOTER = 64 * 2**20
_TEXT_TABLES = (".csv", ".tsv")
_FILE_SUFFIXES = (".tif", ".tiff", ".h5", ".hdf5", ".tcf", ".png", ".html", ".htm", ".csv",
                  ".tsv", ".parquet", ".json", ".yaml", ".yml", ".pt", ".npz", ".npy",
                  ".sha256")
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
_REASONS = {errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on the device",
            errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted", errno.EFBIG: "file too large",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EEXIST: "something appeared under that name meanwhile",
            errno.ENOTEMPTY: "something appeared under that name meanwhile",
            errno.ENAMETOOLONG: "file name too long"}


# --------------------------------------------------------------------------- ownership

def _edges(path: Path) -> bytes:
    """The first and last 64 KiB of a file, plus a Parquet footer (metadata at the end)."""
    with open(path, "rb") as fh:
        head = fh.read(_EDGE)
        size = os.fstat(fh.fileno()).st_size
        fh.seek(max(size - _EDGE, len(head)))
        tail = fh.read()
        footer = b""
        if size > _EDGE and tail.endswith(b"PAR1"):
            length = int.from_bytes(tail[-8:-4], "little")
            if length <= min(size, _MAX_FOOTER):
                fh.seek(size - 8 - length)
                footer = fh.read(length)
    return head + b"\0" + tail + b"\0" + footer


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.readline(_EDGE).rstrip(b"\r\n")


def _zarr_attrs_own(path: Path) -> bool:
    """A zarr v3 (``zarr.json``) or v2 (``.zattrs``) root with a ``ri2fl`` attribute block."""
    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        meta = path / name
        if meta.is_file() and not meta.is_symlink():
            try:
                attrs = json.loads(meta.read_bytes())
            except (OSError, ValueError):
                return False
            attrs = attrs.get(key, {}) if key and isinstance(attrs, dict) else attrs
            return isinstance(attrs, dict) and isinstance(attrs.get("ri2fl"), dict)
    return False


def _folder_own(path: Path) -> bool:
    marker = path / OUTPUT_MARKER
    try:
        if stat.S_ISREG(marker.lstat().st_mode):
            return json.loads(marker.read_bytes()).get("format") == "ri2fl-output"
    except (OSError, ValueError, AttributeError):
        pass
    return _zarr_attrs_own(path)


def is_own_output(path: str | Path, *, staged: str | Path | None = None) -> bool:
    """Whether ``path`` is an output ri2fl wrote (see the module docstring).

    Parameters
    ----------
    path : str or Path
        An existing file or folder; a symbolic link is never ri2fl's own.
    staged : str or Path, optional
        The table about to replace a CSV ``path``: the CSV is ri2fl's own when its header
        line equals this one's. Without it a CSV counts only if it holds the marker bytes.
    """
    path = Path(path)
    try:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            return _folder_own(path)
        if not stat.S_ISREG(mode):
            return False
        if OWN_BYTES in _edges(path):
            return True
        return (staged is not None and path.suffix.lower() in _TEXT_TABLES
                and _first_line(path) == _first_line(Path(staged)))
    except OSError:
        return False


def _write_folder_marker(folder: Path) -> None:
    record = {"format": "ri2fl-output", "ri2fl_version": __version__,
              "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    fd = os.open(folder / OUTPUT_MARKER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
        fh.write("\n")


# --------------------------------------------------------------------------- checks

def check_not_input(output: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an ``output`` that is an input, lies inside one, or holds one.

    Paths are compared after resolving links, so ``./a`` and a link to ``a`` are the same.

    Raises
    ------
    OutputError
        When writing ``output`` (or replacing it) would change or delete an input.
    """
    out = os.path.realpath(output)
    for inp in inputs:
        if inp is None:
            continue
        real = os.path.realpath(inp)
        if out == real:
            what = "is the input"
        elif os.path.commonpath([out, real]) == real:
            what = f"lies inside the input {inp}"
        elif os.path.commonpath([out, real]) == out:
            what = f"holds the input {inp}; replacing it would delete the input"
        else:
            continue
        raise OutputError(f"the output {what}", output, "choose another output path")


def _expects_folder(path: Path) -> bool | None:
    name = path.name.lower()
    if name.endswith(".zarr"):
        return True
    return False if path.suffix.lower() in _FILE_SUFFIXES else None


def _check_kind(path: Path, folder: bool | None) -> None:
    if folder is None or path.is_dir() == folder:
        return
    have, new = ("a folder", "file") if path.is_dir() else ("a file", "folder")
    raise OutputError(f"exists and is {have}; ri2fl never replaces it with a {new}", path,
                      "choose another path, or move it away")


def check_output(path: str | Path, *, overwrite: bool = False) -> None:
    """Refuse an output :func:`atomic_path` would refuse, before the work that makes it.

    Call it first in commands whose output comes after a long computation, so that a bad
    path is reported at once, not hours later.

    Raises
    ------
    OutputError
        When ``path`` is a symbolic link, exists and was not written by ri2fl, exists and
        ``overwrite`` is false, or is a folder where a file goes (or the reverse).
    """
    _check_target(Path(path), overwrite)


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse, before any work, a target that must not be written (see :func:`atomic_path`)."""
    if path.is_symlink():
        raise OutputError("is a symbolic link; ri2fl never writes through a link", path,
                          "give the real path, or remove the link")
    if not os.path.lexists(path):
        return
    _check_kind(path, _expects_folder(path))
    # a CSV's header is compared at the rename, once the new table is there
    undecided = path.is_file() and path.suffix.lower() in _TEXT_TABLES
    if not (undecided or is_own_output(path)):
        raise OutputError("exists and was not written by ri2fl; ri2fl never replaces it", path,
                          "choose another path, or move it away")
    if not overwrite:
        raise OutputError("exists", path, "pass --overwrite to replace it")


def _check_replace(path: Path, staged: Path) -> None:
    """Check again, at the rename, that ``staged`` may replace ``path``."""
    if path.is_symlink():
        raise OutputError("became a symbolic link; ri2fl never writes through a link", path)
    _check_kind(path, staged.is_dir())
    if not is_own_output(path, staged=staged):
        csv = " (its header is not the new table's)" if path.suffix.lower() in _TEXT_TABLES else ""
        raise OutputError(f"exists and was not written by ri2fl{csv}; ri2fl never replaces it",
                          path, "choose another path, or move it away")


@contextlib.contextmanager
def _output_errors(path: Path) -> Iterator[None]:
    """Turn a filesystem error while staging or renaming into a one-line :class:`OutputError`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
        raise OutputError(f"cannot write: {reason}", path,
                          "write somewhere else, or free space / fix the permissions") from exc


def _errno_of(exc: OSError) -> int | None:
    # h5py reports HDF5's errors with the C errno in the message only
    found = re.search(r"errno = (\d+)", str(exc))
    return exc.errno or (int(found[1]) if found else None)


# --------------------------------------------------------------------------- staging

def _staging_prefix(name: str) -> str:
    return f".{name[:200]}."  # room for the random part within a 255-byte file name


def _new_staging(parent: Path, name: str) -> tuple[Path, int]:
    """A fresh private staging folder next to the output, with its marker locked."""
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(name), suffix=STAGING_SUFFIX,
                                    dir=parent))
    try:
        # lock the marker before it appears under its name: never seen unlocked while in use
        fd = os.open(staging / f"{STAGING_MARKER}.new",
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.rename(staging / f"{STAGING_MARKER}.new", staging / STAGING_MARKER)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, fd


def _in_use(marker: Path) -> bool:
    """Whether a staging marker is locked by a live run (unknown without flock: in use)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def clean_stale_staging(parent: str | Path, name: str) -> int:
    """Remove the staging folders of ``name`` that killed runs left in ``parent``.

    Only folders named ``.<name>.*.ri2fl-staging`` that hold an unlocked ``.ri2fl-staging``
    marker are removed: a run still writing holds the lock, and anything else (a look-alike
    without the marker, a link) is left alone.

    Returns
    -------
    int
        The number of folders removed.
    """
    prefix, removed = _staging_prefix(name), 0
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(STAGING_SUFFIX)
                and entry.is_dir(follow_symlinks=False)):
            continue
        marker = Path(entry.path) / STAGING_MARKER
        try:
            regular = stat.S_ISREG(marker.lstat().st_mode)
        except OSError:
            continue
        if regular and not _in_use(marker):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _commit(staged: Path, path: Path, staging: Path, overwrite: bool) -> None:
    """Move ``staged`` onto ``path``; an own output it replaces goes into ``staging`` first."""
    # an OME-Zarr store carries its mark in its attributes: an extra file at its root would
    # make zarr warn about an unknown member whenever a reader lists the store
    if staged.is_dir() and not _zarr_attrs_own(staged):
        _write_folder_marker(staged)
    if not os.path.lexists(path):
        os.replace(staged, path)
        return
    _check_replace(path, staged)
    if not overwrite:
        raise OutputError("appeared while writing", path, "pass --overwrite to replace it")
    if not staged.is_dir():
        os.replace(staged, path)
        return
    old = staging / ".replaced"
    os.rename(path, old)
    try:
        os.rename(staged, path)
    except BaseException:
        os.rename(old, path)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging path for ``path``; move what is written there onto ``path`` on success.

    Works for files and for folders (OME-Zarr stores). The yielded path is
    ``<parent>/.<name>.<random>.ri2fl-staging/<name>``: it has the output's name (writers that
    go by suffixes or record the name work as usual), and its ``.parent`` is a private
    folder removed with everything in it when the block ends: put scratch files there.

    Parameters
    ----------
    path : str or Path
        The output. Refused (before any work) when it is a symbolic link, or exists and was
        not written by ri2fl, or exists and ``overwrite`` is false, or is a folder where a file
        goes (or the reverse).
    overwrite : bool
        Replace an existing output that ri2fl wrote.

    Raises
    ------
    OutputError
        For the refusals above, and when the filesystem refuses the write (read-only, full,
        no permission). On any exception (Ctrl-C too) only the staging folder is removed and
        an existing ``path`` is left untouched.

    Examples
    --------
    >>> with atomic_path("out.ome.zarr") as tmp:  # doctest: +SKIP
    ...     write_ome_zarr(tmp, data)
    """
    path = Path(path)
    _check_target(path, overwrite)
    with _output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(path.parent, path.name)
        staging, lock = _new_staging(path.parent, path.name)
    try:
        staged = staging / path.name
        try:
            yield staged
        except OSError as exc:
            if _errno_of(exc) not in _FULL:
                raise
            raise OutputError(f"cannot write: {_REASONS[_errno_of(exc)]}", path,
                              "write somewhere else, or free space") from exc
        if os.path.lexists(staged):
            with _output_errors(path):
                _commit(staged, path, staging, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(lock)
