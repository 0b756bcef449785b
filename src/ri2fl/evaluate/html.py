"""A short, self-contained HTML report: headings, tables and PNG figures embedded as base64."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .._html import png_tag, write_html_page


def image_tag(path: str | Path, alt: str = "") -> str:
    """An ``<img>`` with the PNG at ``path`` embedded as base64."""
    return png_tag(Path(path).read_bytes(), alt)


def table_html(table: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as an HTML table with rounded floats (small ones, e.g. p-values, as 1.2e-07)."""
    def fmt(v: float) -> str:
        return f"{v:.2e}" if v != 0 and abs(v) < 10 ** -digits else f"{v:.{digits}f}"

    return table.to_html(index=False, float_format=fmt, border=0, na_rep="–")


def write_report(path: str | Path, title: str,
                 sections: Sequence[tuple[str, Sequence[str]]], note: str = "", *,
                 overwrite: bool = False) -> Path:
    """Write an HTML page (:func:`ri2fl._html.write_html_page`); each section is (heading,
    list of HTML fragments).

    ``overwrite`` replaces a page ri2fl wrote (anything else is never replaced).
    """
    return write_html_page(path, title, [(None, heading, fragments)
                                         for heading, fragments in sections],
                           note, overwrite=overwrite)
