"""One run per output folder: an operating-system lock on ``<out>/.ri2fl.lock``.

The lock is an ``flock`` (``msvcrt.locking`` on Windows) held on an open file, so the kernel
releases it when the process dies, even by SIGKILL: a crashed run never leaves a stale lock
behind. A run removes the file while it still holds the lock, so that no run leaves it behind
(a folder the run created and leaves empty goes too); a run that locked a file meanwhile
removed finds it no longer under the name and locks the new one instead.

The lock file is opened without following links and must be a regular file of its own: a
planted link, FIFO or hard link under its name is refused, never truncated or blocked on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, OutputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

LOCK_NAME = ".ri2fl.lock"


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


_OPEN_FLAGS = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))

_REMOVE_IT = "remove it (ri2fl creates its own) and run again"


def _unusable(exc: OSError, where: Path) -> OutputError:
    """A folder or lock that cannot be created: read-only, no permission, disk full..."""
    return OutputError(f"cannot write to the output folder: {exc.strerror or exc}", where,
                       "choose a folder you can write to with -o")


def _make_folder(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` and its missing parents; return those this call created, deepest last.

    Raises
    ------
    OutputError
        If ``out_dir`` is a file or a symbolic link, or cannot be created.
    """
    if os.path.islink(out_dir):
        raise OutputError("the output folder is a symbolic link", out_dir,
                          f"pass the folder it points to ({os.path.realpath(out_dir)}) or "
                          "another folder with -o")
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise OutputError("exists and is not a folder", out_dir,
                          "choose another output folder with -o")
    missing = [p for p in (out_dir, *out_dir.parents) if not os.path.lexists(p)]
    created = []
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:  # made meanwhile by someone else: not ours to remove
            continue
        except OSError as exc:
            raise _unusable(exc, folder) from None
        created.append(folder)
    return created


def _open_lock(path: Path) -> int:
    """Open or create the lock file itself; refuse links, FIFOs, devices and hard links."""
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o644)
    except OSError as exc:
        if os.path.islink(path):
            raise OutputError("is a symbolic link, not ri2fl's lock file", path,
                              _REMOVE_IT) from None
        if exc.errno in (errno.EISDIR, errno.ENXIO, errno.ELOOP):
            raise OutputError("is not a regular file, not ri2fl's lock file", path,
                              _REMOVE_IT) from None
        raise _unusable(exc, path.parent) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "is not a regular file" if not stat.S_ISREG(st.st_mode) else "has hard links"
        raise OutputError(f"{what}, not ri2fl's lock file", path, _REMOVE_IT)
    return fd


def _remove_if_unused(created: list[Path], lock: Path) -> None:
    """Remove the folders this run created if nothing but the lock is in them."""
    if not created:
        return
    out_dir = created[-1]
    with contextlib.suppress(OSError):
        if [e.name for e in os.scandir(out_dir)] == [lock.name]:
            lock.unlink()
        for folder in reversed(created):
            os.rmdir(folder)  # refuses a folder that is not empty


def _still_named(fd: int, path: Path) -> bool:
    """Whether the locked file ``fd`` is still the one under ``path`` (not removed by the
    run that held it while this one waited for it)."""
    try:
        named, held = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _remove_held(fd: int, path: Path) -> None:
    """Remove the lock file while it is held (POSIX; Windows cannot remove an open file)."""
    if fcntl is not None and _still_named(fd, path):
        with contextlib.suppress(OSError):
            path.unlink()


def _acquire(path: Path, out_dir: Path) -> int:
    """Open and lock ``path``; the file descriptor, or ConfigError if another run holds it."""
    while True:
        fd = _open_lock(path)
        if not _try_lock(fd):
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"output folder is in use by another ri2fl run (pid {holder})",
                              out_dir, "wait for that run to finish, or write to another "
                                       "folder with -o")
        if fcntl is None or _still_named(fd, path):
            return fd
        os.close(fd)  # removed by the run that just finished: lock the new file


@contextlib.contextmanager
def output_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the output folder for this process; refuse if another run holds it.

    The folder is created if needed; if the run then leaves nothing in it but the lock, the
    folder is removed again on exit (a folder that existed before is always kept).

    Raises
    ------
    ConfigError
        When another live process holds the folder (the message names its process id).
    OutputError
        When the folder or its lock file cannot be used: a file or link in their place, a
        read-only or full file system, no permission.
    """
    out_dir = Path(out_dir)
    created = _make_folder(out_dir)
    path = out_dir / LOCK_NAME
    try:
        fd = _acquire(path, out_dir)
    except OutputError:
        _remove_if_unused(created, path)
        raise
    try:
        _write_pid(fd, path)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            _remove_held(fd, path)  # while still locked
            _remove_if_unused(created, path)
        _unlock(fd)
        os.close(fd)


def _write_pid(fd: int, path: Path) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        raise _unusable(exc, path.parent) from None
