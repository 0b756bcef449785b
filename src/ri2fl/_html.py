"""ri2fl's one HTML page writer: a self-contained page (inline style, PNG figures embedded as
base64), stamped with the version and time, written atomically.

The evaluation report (:mod:`ri2fl.evaluate.html`) and the profiling report
(:mod:`ri2fl.report.html`) fill it with their own sections.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import __version__
from ._atomic import atomic_path

__all__ = ["STYLE", "png_tag", "write_html_page"]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222;
       padding: 0 1em; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #555; font-size: 13px; }
nav a { margin-right: 1em; }
"""


def png_tag(png: bytes, alt: str = "") -> str:
    """An ``<img>`` with the PNG bytes ``png`` embedded as base64."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _section(sid: str | None, heading: str, fragments: Sequence[str]) -> list[str]:
    anchor = f" id='{sid}'" if sid else ""
    return [f"<section{anchor}><h2>{html.escape(heading)}</h2>", *fragments, "</section>"]


def write_html_page(path: str | Path, title: str,
                    sections: Sequence[tuple[str | None, str, Sequence[str]]],
                    note: str = "", *, nav: bool = False, overwrite: bool = False) -> Path:
    """Write an HTML page of sections; return ``path``.

    Parameters
    ----------
    path : str or Path
        The ``.html`` file, written atomically.
    title : str
        Page title and heading.
    sections : sequence of (id, heading, fragments)
        Each a ``<section>`` (with ``id`` unless None) holding an ``<h2>`` heading and the
        HTML fragments.
    note : str
        Plain text after the version and time stamp.
    nav : bool
        A line of links to the sections that have an id.
    overwrite : bool
        Replace a page ri2fl wrote (anything else is never replaced).
    """
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = f" {html.escape(note)}" if note else ""
    links = " ".join(f"<a href='#{sid}'>{html.escape(head)}</a>"
                     for sid, head, _ in sections if sid)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='generator' content='ri2fl {__version__}'>"
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>ri2fl {__version__}, {stamp}.{note}</p>"
             + (f"<nav>{links}</nav>" if nav else "")]
    for sid, heading, fragments in sections:
        parts.extend(_section(sid, heading, fragments))
    parts.append("</body></html>")
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path
