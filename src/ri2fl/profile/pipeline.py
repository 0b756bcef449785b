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
    #: the two components behind ``uncertainty`` (s.d. over TTA / MC dropout), as
    #: ``ri2fl predict`` stores them; empty when not computed
    uncertainty_data: dict[str, np.ndarray] = field(default_factory=dict)
    uncertainty_model: dict[str, np.ndarray] = field(default_factory=dict)


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
    components: tuple[dict, dict] = ({}, {})
    if fl is None:
        from ..infer import predict_volume

        pred = predict_volume(ri, voxel_size_um, model=model, tta=tta, mc=mc,
                              medium_index=medium_index, seed=seed)
        fl = {k: np.asarray(v) for k, v in pred.fl.items()}
        components = ({k: np.asarray(v) for k, v in pred.uncertainty_data.items()},
                      {k: np.asarray(v) for k, v in pred.uncertainty_model.items()})
        # the report shows one map per target: the larger of data and model s.d.
        uncertainty.update(larger_uncertainty(*components))
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
                         masks=dict(masks or {}), uncertainty=uncertainty,
                         uncertainty_data=components[0], uncertainty_model=components[1])


def larger_uncertainty(data: Mapping[str, np.ndarray],
                       model: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per target, the larger of the data and the model s.d. (the one map a report shows)."""
    out: dict[str, np.ndarray] = {}
    for name in dict.fromkeys([*data, *model]):
        maps = [np.asarray(m[name]) for m in (data, model) if name in m]
        out[name] = np.maximum.reduce(maps) if len(maps) > 1 else maps[0]
    return out


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
    from ..io import split_prediction_channels

    _, data, model = split_prediction_channels(channels)
    return {t: v for t, v in larger_uncertainty(data, model).items() if t in TARGETS}


def _read_labels_side(path: Path, t: int, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Instances and masks of frame ``t`` stored with ``path`` (its NGFF labels, or the
    integer channels of an older ri2fl segmentation), as ``profile_volume`` takes them."""
    from ..io import read_labels

    labels = read_labels(path)
    if "cell_labels" not in labels:
        raise InputError("holds no 'cell_labels'", path,
                         "give the OME-Zarr written by 'ri2fl segment'")
    out = {}
    for name, arr in labels.items():
        frame = arr[min(t, arr.shape[0] - 1)] if arr.ndim == 4 else arr
        if frame.shape != shape:
            raise InputError(f"label {name!r} has shape {frame.shape}, the RI has {shape}",
                             path, "give the segmentation made from this RI file")
        out[name] = frame
    return {"cell_labels": out["cell_labels"].astype(np.int32),
            "nucleus_labels": out.get("nucleus_labels"),
            "masks": {m: out[m] > 0 for m in ORGANELLE_MASKS if m in out}}


def found_beside(path: str | Path) -> dict[str, Path]:
    """Outputs of an earlier run that :func:`profile_file` reuses for the RI file ``path``.

    - ``segmentation``: ``path`` itself when it is an OME-Zarr image with ``cell_labels``
      among its labels (``ri2fl segment`` and ``ri2fl demo`` write the RI so), else
      ``<stem>_labels.ome.zarr`` next to it (an older demo);
    - ``predictions``: ``<stem>_fluorescence.ome.zarr`` next to it (``ri2fl demo``).

    ``<stem>`` is the file name without its extension, or without ``_ri`` and it (the
    demo's ``<field>_ri.ome.zarr``).
    """
    from ..batch import output_path_for
    from ..io import label_names

    path = Path(path)
    stem = output_path_for(path, path.parent, ".x").name[:-2]
    stems = dict.fromkeys([stem, stem.removesuffix("_ri")])
    found: dict[str, Path] = {}
    if "cell_labels" in label_names(path):
        found["segmentation"] = path
    for kind, suffix in (("predictions", "_fluorescence.ome.zarr"),
                         ("segmentation", "_labels.ome.zarr")):
        for s in stems:
            candidate = path.parent / f"{s}{suffix}"
            if kind not in found and s and candidate.is_dir():
                found[kind] = candidate
    return found


def profile_file(path: str | Path, *, predictions: str | Path | None = None,
                 segmentation: str | Path | None = None, ground_truth: bool = False,
                 frame: int | None = None, voxel_size_um: Sequence[float] | None = None,
                 medium_index: float | None = None, model: Any = "default", tta: int = 0,
                 mc: int = 0, method: str = "network",
                 metadata: Mapping[str, Any] | None = None,
                 max_track_distance_um: float = 10.0,
                 fill_missing: bool = False, reuse: bool = True) -> pd.DataFrame:
    """Feature table of one file: every cell of every frame.

    Parameters
    ----------
    path : str or Path
        RI file (TCF, HDF5, TIFF, OME-Zarr, .npy), or a paired HDF5 with ``ground_truth``.
    predictions : path, optional
        OME-Zarr written by ``ri2fl predict`` for this file (channels named by target);
        default: predict here.
    segmentation : path, optional
        OME-Zarr written by ``ri2fl segment`` for this file (labels ``cell_labels``,
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
    reuse : bool
        Without ``predictions`` / ``segmentation``, reuse those an earlier run left with or
        next to ``path`` (:func:`found_beside`) instead of predicting and segmenting again.

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
        found = found_beside(path) if reuse else {}
        predictions = predictions or found.get("predictions")
        segmentation = segmentation or found.get("segmentation")
        frames_done = []
        for t in range(vol.time_points):
            ri = _frame_of(vol, t)
            fl = _read_side(Path(predictions) if predictions else None,
                            t if frame is None else frame, ri.shape, "prediction")
            unc = None
            if fl is not None:
                unc = _uncertainty_channels(fl)
                fl = {k: v for k, v in fl.items() if k in TARGETS}
            kwargs = (_read_labels_side(Path(segmentation), t if frame is None else frame,
                                        ri.shape) if segmentation else {})
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
