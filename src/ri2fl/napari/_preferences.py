"""Make ri2fl napari's reader for its file types, so that no "Choose reader" dialog asks.

napari opens a path without asking when one reader claims it, or when its settings
(``plugins.extension2reader``) name a reader for the path's pattern. ``.TCF`` files are ri2fl's
alone; ``.h5`` and ``.zarr`` are also claimed by napari's builtins, so napari asks once, unless
these preferences are set (what "Remember this choice" in the dialog does for one pattern).
"""

from __future__ import annotations

import os

#: napari reader-preference patterns for what ri2fl opens: files by extension, OME-Zarr
#: folders (which napari matches with a trailing separator).
PREFERENCE_PATTERNS: tuple[str, ...] = ("*.TCF", "*.tcf", "*.h5", "*.hdf5", f"*.zarr{os.sep}")
PLUGIN_NAME = "ri2fl"


def prefer_ri2fl_reader(override: bool = False) -> dict[str, str]:
    """Set ri2fl as napari's reader for TCF, HDF5 and Zarr paths, in napari's settings.

    Parameters
    ----------
    override : bool
        Also replace the patterns the user already gave to another reader.

    Returns
    -------
    dict
        The preferences added (pattern -> ``"ri2fl"``); napari saves them with its settings.
        HDF5 files ri2fl cannot read still open: napari then offers its other readers.
    """
    from napari.settings import get_settings

    settings = get_settings()
    current = dict(settings.plugins.extension2reader)
    added = {pattern: PLUGIN_NAME for pattern in PREFERENCE_PATTERNS
             if override or pattern not in current}
    settings.plugins.extension2reader = {**current, **added}
    return added
