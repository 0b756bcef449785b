"""Progress bars shown on long work (tqdm), quiet when not on a terminal or when asked."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None,
             disable: bool | None = None, **kwargs) -> Iterable[T]:
    """Wrap ``iterable`` in a progress bar on stderr.

    The bar is hidden when ``disable`` is true, when ``RI2FL_NO_PROGRESS`` is set, or when
    stderr is not a terminal (as in CI logs), unless ``disable=False`` is given explicitly.
    """
    if disable is None:
        disable = bool(os.environ.get("RI2FL_NO_PROGRESS")) or not sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False,
                dynamic_ncols=True, **kwargs)
