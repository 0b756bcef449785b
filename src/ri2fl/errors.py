"""User-facing errors.

Every problem a user can fix (a bad file, a wrong option) is raised as :class:`Ri2flError`
with a message that says what went wrong, where, and what to do. The CLI prints it as one
line and exits non-zero; anything else is a bug and is reported as such.
"""

from __future__ import annotations

from pathlib import Path


class Ri2flError(Exception):
    """An error the user can act on.

    Parameters
    ----------
    what : str
        What went wrong, e.g. ``"not a TCF file: no 'Data/3D' group"``.
    where : str or Path, optional
        The file, dataset or option concerned.
    hint : str, optional
        What to do about it, e.g. ``"pass --voxel-size Z Y X"``.
    """

    def __init__(self, what: str, where: str | Path | None = None, hint: str | None = None):
        self.what = what
        self.where = str(where) if where is not None else None
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.hint:
            parts.append(self.hint)
        return "; ".join(parts)


class InputError(Ri2flError):
    """A file or array that cannot be read or is not what it claims to be."""


class ConfigError(Ri2flError):
    """An option, configuration file or manifest that is invalid."""


class ModelError(Ri2flError):
    """A model file that is missing, corrupt, or fails its checksum."""


class OutputError(Ri2flError):
    """An output path that must not be written (a user's file, a link, an input), or a
    filesystem that refuses the write (read-only, full, no permission)."""
