"""The record of finished outputs of an output folder: ``<out>/.ri2fl-manifest.json``.

An output counts as complete when it exists under its final name (it is renamed into place
only once fully written) *and* the manifest says it was made from an input with the same
content and with the same options. Anything else is redone.

The manifest is only ever read as data: its keys must be plain file names of the folder and
are never used to build a path, so a hand-edited or hostile manifest cannot make a run write
or delete anything outside the output folder.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from .._atomic import atomic_path, is_own_output
from ..errors import OutputError
from ._fingerprint import input_digest, input_signature

MANIFEST_NAME = ".ri2fl-manifest.json"
FORMAT = "ri2fl-batch-manifest"
VERSION = 1
#: A larger manifest is not ri2fl's: a real one holds about 400 bytes per output.
MAX_BYTES = 64 * 2**20
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))

log = logging.getLogger(__name__)


def _not_regular(path: Path, mode: int) -> OutputError:
    what = "is a symbolic link" if stat.S_ISLNK(mode) else "is not a regular file"
    return OutputError(f"{what}, not ri2fl's manifest", path,
                       "remove it (ri2fl writes its own) and run again")


def _read(path: Path) -> bytes | None:
    """The manifest's bytes, or None if there is none; never follows a link or opens a FIFO.

    Raises
    ------
    OutputError
        If something other than a regular file has the manifest's name, or a file ri2fl did
        not write (it would not replace it when saving).
    ValueError
        If it is larger than :data:`MAX_BYTES`.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)
    if not is_own_output(path):
        raise OutputError("was not written by ri2fl; ri2fl never replaces it", path,
                          "move it away and run again")
    with open(os.open(path, _OPEN_FLAGS), "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):  # swapped since the lstat
            raise _not_regular(path, mode)
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES // 2**20} MiB")
    return data


def _plain_name(name: Any) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and "\0" not in name and not os.path.isabs(name))


@dataclass
class Manifest:
    """Finished outputs of one folder, keyed by output file name."""

    out_dir: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    @classmethod
    def load(cls, out_dir: str | Path) -> Manifest:
        """Read the folder's manifest; a missing or unreadable one counts as empty.

        Raises
        ------
        OutputError
            If a link, FIFO, device or folder has the manifest's name, or a file ri2fl did
            not write.
        """
        out_dir = Path(out_dir)
        path = out_dir / MANIFEST_NAME
        try:
            data = _read(path)
            if data is None:
                return cls(out_dir)
            raw = json.loads(data)
        except (OSError, ValueError, RecursionError) as exc:  # deep nesting: RecursionError
            log.warning("%s: unreadable manifest (%s); all outputs will be redone", path, exc)
            return cls(out_dir)
        outputs = raw.get("outputs") if isinstance(raw, dict) else None
        if not isinstance(outputs, dict) or raw.get("format") != FORMAT:
            log.warning("%s: not a ri2fl manifest; all outputs will be redone", path)
            return cls(out_dir)
        entries = {k: v for k, v in outputs.items() if _plain_name(k) and isinstance(v, dict)}
        return cls(out_dir, entries)

    def save(self) -> None:
        """Write the manifest atomically (never half-written, even on a crash)."""
        doc = {"format": FORMAT, "version": VERSION, "outputs": self.entries}
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        with atomic_path(self.path, overwrite=True) as tmp, open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def digest_if_unchanged(self, name: str, input_path: Path) -> str | None:
        """The recorded input hash of ``name`` if the input's size and times still match."""
        entry = self.entries.get(name, {})
        try:
            if entry.get("input_signature") == input_signature(input_path):
                return entry.get("input_sha256")
        except OSError:
            pass
        return None

    def is_complete(self, name: str, input_path: Path, options_sha256: str) -> bool:
        """Whether output ``name`` exists and was made from this input with these options."""
        entry = self.entries.get(name)
        if entry is None or entry.get("options_sha256") != options_sha256:
            return False
        if not os.path.lexists(self.out_dir / name):
            return False
        digest = self.digest_if_unchanged(name, input_path)
        if digest is None:  # the input was touched or copied: compare contents
            try:
                digest = input_digest(input_path)
            except OSError:
                return False
        return digest == entry.get("input_sha256")

    def record(self, name: str, input_path: Path, signature: str, digest: str,
               options_sha256: str) -> None:
        """Note that output ``name`` is complete (call :meth:`save` to persist)."""
        if not _plain_name(name):
            raise ValueError(f"not a plain output name: {name!r}")
        self.entries[name] = {
            "input": str(Path(input_path).resolve()),
            "input_signature": signature,
            "input_sha256": digest,
            "options_sha256": options_sha256,
            "ri2fl_version": __version__,
        }

    def forget(self, name: str) -> None:
        """Drop the entry of an output that is about to be redone."""
        self.entries.pop(name, None)
