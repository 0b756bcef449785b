"""From a tomogram to its feature table: predict and segment when needed, then measure.

:func:`profile_volume` works on arrays; :func:`profile_file` on any file :func:`ri2fl.io.read`
reads (TCF, HDF5, TIFF, OME-Zarr, .npy), optionally with the OME-Zarr outputs of
``ri2fl predict`` and ``ri2fl segment``, or with the ground truth of a paired HDF5 file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..constants import MEDIUM_INDEX, ORGANELLE_MASKS, TARGETS
from ..errors import InputError
from .analysis import track_cells
from .features import measure_cells


@dataclass
class ProfiledField:
    """One field of view with everything computed for it (all on the RI grid)."""

    table: pd.DataFrame
    ri: np.ndarray
    voxel_size_um: tuple[float, float, float]
    medium_index: float
    fl: dict[str, np.ndarray]
    cell_labels: np.ndarray
    nucleus_labels: np.ndarray
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    uncertainty: dict[str, np.ndarray] = field(default_factory=dict)


def profile_volume(ri: np.ndarray, voxel_size_um: Sequence[float],
                   medium_index: float = MEDIUM_INDEX, *,
                   fl: Mapping[str, np.ndarray] | None = None,
                   cell_labels: np.ndarray | None = None,
                   nucleus_labels: np.ndarray | None = None,
                   masks: Mapping[str, np.ndarray] | None = None,
                   model: Any = "default", tta: int = 0, mc: int = 0,
                   method: str = "network", seed: int = 0,
                   segment_options: Mapping[str, Any] | None = None,
                   uncertainty: Mapping[str, np.ndarray] | None = None,
                   **measure_options: Any) -> ProfiledField:
    """Profile one RI tomogram; predict the fluorescence and segment the cells if not given.

    Parameters
    ----------
    ri : (Z, Y, X) array
        Absolute refractive index.
    voxel_size_um : (z, y, x)
        Its voxel size in µm.
    medium_index : float
        Refractive index of the medium.
    fl : dict, optional
        Fluorescence per target on the RI grid; default: ``ri2fl.infer.predict_volume``
        with ``model``, ``tta`` and ``mc``.
    cell_labels, nucleus_labels, masks : arrays, optional
        Instances and organelle masks; default: ``ri2fl.segment.segment_volume`` with
        ``method`` (given the predicted fluorescence).
    segment_options : mapping, optional
        More keyword arguments of ``segment_volume`` (e.g. ``model``, ``cell_model``).
    uncertainty : dict, optional
        Uncertainty maps per target that go with a given ``fl`` (when predicting here, the
        larger of the TTA and MC-dropout s.d.).
    **measure_options
        Passed to :func:`ri2fl.profile.measure_cells`.

    Returns
    -------
    ProfiledField
    """
    ri = np.asarray(ri, dtype=np.float32)
    uncertainty = dict(uncertainty or {})
    if fl is None:
        from ..infer import predict_volume

        pred = predict_volume(ri, voxel_size_um, model=model, tta=tta, mc=mc,
                              medium_index=medium_index, seed=seed)
        fl = {k: np.asarray(v) for k, v in pred.fl.items()}
        # the report shows one map per target: the larger of data and model s.d.
        for name in pred.fl:
            maps = [np.asarray(m[name]) for m in (pred.uncertainty_data, pred.uncertainty_model)
                    if name in m]
            if maps:
                uncertainty[name] = np.maximum.reduce(maps) if len(maps) > 1 else maps[0]
    if cell_labels is None:
        from ..segment import segment_volume

        seg = segment_volume(ri, voxel_size_um, medium_index, method=method, fl=dict(fl),
                             **dict(segment_options or {}))
        cell_labels, nucleus_labels = seg.cell_labels, seg.nucleus_labels
        masks = dict(seg.masks) if masks is None else masks
    table = measure_cells(ri, cell_labels, nucleus_labels, dict(fl), voxel_size_um,
                          medium_index=medium_index, masks=masks,
                          uncertainty=uncertainty or None, **measure_options)
    return ProfiledField(table=table, ri=ri, voxel_size_um=tuple(voxel_size_um),
                         medium_index=float(medium_index), fl=dict(fl),
                         cell_labels=np.asarray(cell_labels),
                         nucleus_labels=(np.asarray(nucleus_labels) if nucleus_labels
                                         is not None else np.zeros_like(cell_labels)),
                         masks=dict(masks or {}), uncertainty=uncertainty)


def _frame_of(vol, t: int) -> np.ndarray:
    return np.asarray(vol.data[t] if vol.axes.startswith("t") else vol.data)


def _stack_channels(vol, t: int, where: Path) -> dict[str, np.ndarray]:
    data = _frame_of(vol, t)
    if data.ndim == 3:
        return {vol.channel_names[0]: data}
    if len(vol.channel_names) != data.shape[0]:
        raise InputError("channel names do not match the channel axis", where)
    return {name: data[i] for i, name in enumerate(vol.channel_names)}


def _read_side(path: Path | None, t: int, shape: tuple[int, ...], kind: str):
    if path is None:
        return None
    from ..io import read

    vol = read(path, modality="fl")
    channels = _stack_channels(vol, min(t, vol.time_points - 1), path)
    for name, arr in channels.items():
        if arr.shape != shape:
            raise InputError(f"{kind} channel {name!r} has shape {arr.shape}, the RI has "
                             f"{shape}", path, f"give the {kind} made from this RI file")
    return channels


def _uncertainty_channels(channels: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per target, the larger of ``<t>_uncertainty_data`` and ``<t>_uncertainty_model``."""
    out: dict[str, np.ndarray] = {}
    for t in TARGETS:
        maps = [np.asarray(channels[f"{t}_uncertainty_{kind}"]) for kind in ("data", "model")
                if f"{t}_uncertainty_{kind}" in channels]
        if maps:
            out[t] = np.maximum.reduce(maps) if len(maps) > 1 else maps[0]
    return out


def profile_file(path: str | Path, *, predictions: str | Path | None = None,
                 segmentation: str | Path | None = None, ground_truth: bool = False,
                 frame: int | None = None, voxel_size_um: Sequence[float] | None = None,
                 medium_index: float | None = None, model: Any = "default", tta: int = 0,
                 mc: int = 0, method: str = "network",
                 metadata: Mapping[str, Any] | None = None,
                 max_track_distance_um: float = 10.0,
                 fill_missing: bool = False) -> pd.DataFrame:
    """Feature table of one file: every cell of every frame.

    Parameters
    ----------
    path : str or Path
        RI file (TCF, HDF5, TIFF, OME-Zarr, .npy), or a paired HDF5 with ``ground_truth``.
    predictions : path, optional
        OME-Zarr written by ``ri2fl predict`` for this file (channels named by target);
        default: predict here.
    segmentation : path, optional
        OME-Zarr written by ``ri2fl segment`` for this file (channels ``cell_labels``,
        ``nucleus_labels`` and the organelle masks); default: segment here.
    ground_truth : bool
        Use the fluorescence, labels and masks stored in a paired HDF5 file.
    frame : int, optional
        Only this time point of a time-lapse.
    voxel_size_um, medium_index : optional
        Override the file's values.
    model, tta, mc, method
        Prediction and segmentation options (see :func:`profile_volume`).
    metadata : mapping, optional
        Constant columns added to every row (e.g. ``{"condition": "LPS"}``).
    max_track_distance_um : float
        Largest centroid displacement between frames linked into one track.
    fill_missing : bool
        Read missing chunks of an incomplete store as the fill value instead of refusing.

    Returns
    -------
    pandas.DataFrame
        Features with columns ``source``, ``frame`` (time-lapses: also ``time_s`` and
        ``track_id``) and the ``metadata`` columns.
    """
    path = Path(path)
    if ground_truth:
        table = _profile_paired(path, medium_index)
        frames_done = [table]
        timelapse, interval = False, None
    else:
        from ..io import read

        vol = read(path, frame=frame, voxel_size_um=voxel_size_um, medium_index=medium_index,
                   fill_missing=fill_missing)
        if vol.channel_names != ["ri"] and "c" in vol.axes:
            raise InputError(f"holds channels {vol.channel_names[:6]}, not a refractive-index "
                             "volume", path, "give the RI file as INPUT and this one with "
                             "--predictions or --segmentation")
        n_medium = medium_index or vol.medium_index or MEDIUM_INDEX
        timelapse, interval = vol.axes.startswith("t"), vol.time_interval_s
        frames_done = []
        for t in range(vol.time_points):
            ri = _frame_of(vol, t)
            fl = _read_side(Path(predictions) if predictions else None, t, ri.shape,
                            "prediction")
            seg = _read_side(Path(segmentation) if segmentation else None, t, ri.shape,
                             "segmentation")
            unc = None
            if fl is not None:
                unc = _uncertainty_channels(fl)
                fl = {k: v for k, v in fl.items() if k in TARGETS}
            kwargs = {}
            if seg is not None:
                if "cell_labels" not in seg:
                    raise InputError("no 'cell_labels' channel", segmentation,
                                     "give the OME-Zarr written by 'ri2fl segment'")
                kwargs = {"cell_labels": seg["cell_labels"].astype(np.int32),
                          "nucleus_labels": seg.get("nucleus_labels"),
                          "masks": {m: seg[m] > 0 for m in ORGANELLE_MASKS if m in seg}}
            field_ = profile_volume(ri, vol.voxel_size_um, n_medium, fl=fl, model=model,
                                    tta=tta, mc=mc, method=method, seed=t,
                                    uncertainty=unc, **kwargs)
            table = field_.table
            table.insert(1, "frame", frame if frame is not None else t)
            frames_done.append(table)
    table = pd.concat(frames_done, ignore_index=True)
    table.insert(0, "source", str(path))
    if timelapse:
        if interval:
            table.insert(3, "time_s", table["frame"] * float(interval))
        table = track_cells(table, max_distance_um=max_track_distance_um)
    for key, value in (metadata or {}).items():
        table[key] = value
    return table


def _profile_paired(path: Path, medium_index: float | None) -> pd.DataFrame:
    from ..io import read_paired

    sample = read_paired(path)
    if sample.cell_labels is None:
        raise InputError("no 'cell_labels' dataset for --ground-truth", path,
                         "profile without --ground-truth to segment the cells")
    n_medium = medium_index or sample.medium_index
    table = measure_cells(sample.ri, sample.cell_labels, sample.nucleus_labels, sample.fl,
                          sample.voxel_size_um, medium_index=n_medium,
                          masks=sample.masks or None)
    table.insert(1, "frame", 0)
    if "cell_type" in sample.attrs:
        table["cell_type"] = str(sample.attrs["cell_type"])
    return table
