"""A short, self-contained HTML report: headings, tables and PNG figures embedded as base64."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .. import __version__
from .._atomic import atomic_path

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #555; font-size: 13px; }
"""


def image_tag(path: str | Path, alt: str = "") -> str:
    """An ``<img>`` with the PNG at ``path`` embedded as base64."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(table: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as an HTML table with rounded floats (small ones, e.g. p-values, as 1.2e-07)."""
    def fmt(v: float) -> str:
        return f"{v:.2e}" if v != 0 and abs(v) < 10 ** -digits else f"{v:.{digits}f}"

    return table.to_html(index=False, float_format=fmt, border=0, na_rep="–")


def write_report(path: str | Path, title: str,
                 sections: Sequence[tuple[str, Sequence[str]]], note: str = "", *,
                 overwrite: bool = False) -> Path:
    """Write an HTML page; each section is (heading, list of HTML fragments).

    ``overwrite`` replaces a page ri2fl wrote (anything else is never replaced).
    """
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'>"
             f"<meta name='generator' content='ri2fl {__version__}'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>ri2fl {__version__}, {stamp}. {html.escape(note)}</p>"]
    for heading, fragments in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.extend(fragments)
    parts.append("</body></html>")
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path
