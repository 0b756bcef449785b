"""Writing tables (feature tables, metrics) as Parquet or CSV, atomically.

Every table ri2fl writes goes through :func:`write_table`: Parquet files carry a ``ri2fl``
key in their schema metadata (in the footer: ri2fl's ownership mark, see
:mod:`ri2fl._atomic`); a CSV cannot carry one and is ri2fl's own when its header is that of
the table replacing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._atomic import atomic_path
from ..errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

#: The table formats :func:`write_table` writes, by file suffix.
TABLE_SUFFIXES = (".parquet", ".csv")


def check_table_path(path: str | Path) -> Path:
    """``path`` as a Path, if its suffix is one of :data:`TABLE_SUFFIXES`.

    Raises
    ------
    ConfigError
        For any other suffix.
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ConfigError(f"unknown table format {path.suffix!r}", path, "use .parquet or .csv")
    return path


def _to_parquet(table: pd.DataFrame, path: Path) -> None:
    """``table.to_parquet(path, index=False)`` with a ``ri2fl`` schema metadata key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .. import __version__

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = {**(arrow.schema.metadata or {}), b"ri2fl": __version__.encode()}
    pq.write_table(arrow.replace_schema_metadata(metadata), path)


def write_table(table: pd.DataFrame, path: str | Path, *, overwrite: bool = False,
                float_format: str | None = None) -> Path:
    """Write a table as .parquet or .csv (by the suffix of ``path``), atomically.

    Parameters
    ----------
    table : DataFrame
        Written without its index.
    path : str or Path
        ``*.parquet`` or ``*.csv``.
    overwrite : bool
        Replace a table ri2fl wrote (a CSV: one with the same header); anything else is
        never replaced (see :func:`ri2fl._atomic.atomic_path`).
    float_format : str, optional
        CSV only: format of floats, e.g. ``"%.6g"``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        If the suffix is neither .parquet nor .csv.
    OutputError
        If ``path`` may not be written or replaced.
    """
    path = check_table_path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if path.suffix.lower() == ".csv":
            table.to_csv(tmp, index=False, float_format=float_format)
        else:
            _to_parquet(table, tmp)
    return path
