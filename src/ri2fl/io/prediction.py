"""The one layout of inferred fluorescence stores, whoever writes them.

``ri2fl predict`` (streaming, :func:`ri2fl.infer.predict_file`), ``ri2fl demo`` and the Python
API (:func:`write_prediction`) all write an OME-Zarr image with axes czyx (tczyx for
time-lapses) whose channels are, in this order, the targets, then ``<target>_uncertainty_data``
(s.d. over test-time augmentations, when computed), then ``<target>_uncertainty_model``
(s.d. over MC-dropout passes, when computed); float32 by default, float16 on request (the
same names either way). Masks and instance labels go with the RI image they were made from,
as its NGFF ``labels`` group (:func:`ri2fl.io.write_ome_zarr` ``labels=``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

#: Stored types a prediction may have; the first is the default.
PREDICTION_DTYPES: tuple[str, ...] = ("float32", "float16")
DEFAULT_PREDICTION_DTYPE = PREDICTION_DTYPES[0]
#: Suffixes of the two uncertainty components, in stored order.
UNCERTAINTY_KINDS: tuple[str, ...] = ("data", "model")


def prediction_channel_names(targets: Sequence[str], data: bool = False,
                             model: bool = False) -> list[str]:
    """Channel names in stored order: targets, then data s.d., then model s.d.

    Examples
    --------
    >>> prediction_channel_names(["nucleus"], data=True, model=True)
    ['nucleus', 'nucleus_uncertainty_data', 'nucleus_uncertainty_model']
    """
    names = list(targets)
    for kind, present in zip(UNCERTAINTY_KINDS, (data, model)):
        if present:
            names += [f"{t}_uncertainty_{kind}" for t in targets]
    return names


def check_prediction_dtype(dtype: Any) -> np.dtype:
    """The stored type of a prediction: float32 or float16.

    Raises
    ------
    ConfigError
        For any other type.
    """
    try:
        checked = np.dtype(dtype)
    except TypeError:
        checked = None
    if checked is None or checked.name not in PREDICTION_DTYPES:
        raise ConfigError(f"predictions are stored as {' or '.join(PREDICTION_DTYPES)}, not "
                          f"{dtype!r}", "--dtype", f"default {DEFAULT_PREDICTION_DTYPE}")
    return checked


def write_prediction(path: str | Path, fl: Mapping[str, Any], voxel_size_um: Sequence[float],
                     *, uncertainty_data: Mapping[str, Any] | None = None,
                     uncertainty_model: Mapping[str, Any] | None = None,
                     dtype: Any = DEFAULT_PREDICTION_DTYPE,
                     medium_index: float | None = None, overwrite: bool = False) -> Path:
    """Write inferred fluorescence held in memory in the layout ``ri2fl predict`` writes.

    Parameters
    ----------
    path : str or Path
        The ``.ome.zarr`` store (written atomically).
    fl : mapping
        Target -> (Z, Y, X) inferred fluorescence.
    voxel_size_um : (z, y, x)
        Voxel size in µm.
    uncertainty_data, uncertainty_model : mapping, optional
        Target -> s.d. over test-time augmentations / MC-dropout passes (every target).
    dtype : {"float32", "float16"}
        Stored type.
    medium_index : float, optional
        Stored in the ``ri2fl`` attribute block.
    overwrite : bool
        Replace a store ri2fl wrote.

    Returns
    -------
    Path
        ``path``.
    """
    from .ome_zarr import write_ome_zarr

    dtype = check_prediction_dtype(dtype)
    targets = list(fl)
    maps = [fl[t] for t in targets]
    for kind in (uncertainty_data, uncertainty_model):
        if kind:
            maps += [kind[t] for t in targets]
    names = prediction_channel_names(targets, bool(uncertainty_data), bool(uncertainty_model))
    stack = np.stack([np.asarray(m, dtype=np.float32) for m in maps]).astype(dtype)
    return write_ome_zarr(path, stack, voxel_size_um, channel_names=names,
                          medium_index=medium_index, overwrite=overwrite)


def split_prediction_channels(channels: Mapping[str, Any]
                              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Channels of a prediction store by name -> (fl, uncertainty_data, uncertainty_model).

    A demo store of an older ri2fl (one ``<target>_uncertainty`` channel, the larger of the
    two s.d.) gives it as the data uncertainty.
    """
    fl: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {kind: {} for kind in UNCERTAINTY_KINDS}
    for name, value in channels.items():
        base, sep, kind = name.partition("_uncertainty")
        part = parts.get(kind.lstrip("_") or "data") if sep else None
        if part is None:
            fl[name] = value
        else:
            part[base] = value
    return fl, parts["data"], parts["model"]
