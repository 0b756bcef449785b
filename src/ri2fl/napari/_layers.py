"""napari layer data tuples for ri2fl volumes: names, physical scale, units, colours, types.

Plain functions on arrays, with no napari import, so that the reader and the widgets' compute
run (and are tested) without a display.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..constants import RI_CLIP, TARGETS

#: A napari LayerDataTuple: (data, layer keyword arguments, layer type).
LayerData = tuple[Any, dict[str, Any], str]

#: One colour per fluorescence target (napari colormap names), as in the paper's figures.
TARGET_COLORMAPS: dict[str, str] = dict(zip(TARGETS, ("magenta", "green", "red", "yellow",
                                                      "cyan", "blue")))
#: Colours of measured fluorescence channels (TCF ``Data/3DFL``), in channel order.
MEASURED_COLORMAPS = ("green", "magenta", "cyan", "yellow", "red", "blue")
RI_CONTRAST = (RI_CLIP[0] - 0.005, RI_CLIP[1])
SPACE_UNIT = "µm"
TIME_UNIT = "s"
#: Percentiles of a layer's own data that set its contrast limits (dim channels and
#: uncertainty maps use a small part of any fixed range).
CONTRAST_PERCENTILES = (1.0, 99.9)
#: Voxels read to estimate contrast limits: a few planes of one frame, never a whole field.
_CONTRAST_SAMPLE = 2_000_000
_CONTRAST_PLANES = 8


@functools.cache
def napari_accepts_units() -> bool:
    """Whether the installed napari takes ``units=`` and ``axis_labels=`` (0.6 and later).

    Without napari the keywords are kept: whoever reads the tuples gets them.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("napari")
    except PackageNotFoundError:
        return True
    numbers = tuple(int(n) for n in re.findall(r"\d+", installed)[:2])
    return numbers >= (0, 6)


def axes_metadata(ndim: int, time_unit: str = TIME_UNIT) -> dict[str, tuple[str, ...]]:
    """``units`` and ``axis_labels`` of a ``zyx`` (3D) or ``tzyx`` (4D) layer."""
    if not napari_accepts_units():
        return {}
    labels = ("t", "z", "y", "x")[-ndim:]
    units = tuple(time_unit if axis == "t" else SPACE_UNIT for axis in labels)
    return {"units": units, "axis_labels": labels}


def is_labels(channel: str) -> bool:
    """Instance labels and binary masks are napari Labels layers, not images."""
    return channel.endswith(("labels", "mask")) or channel.startswith("mask")


def _target_of(channel: str) -> str | None:
    return next((t for t in TARGETS if channel == t or channel.startswith(f"{t}_")), None)


def labels_name(stem: str, channel: str) -> str:
    """Name of a Labels layer, so that it reads as a mask, not as a fluorescence channel.

    ``nucleus_labels`` -> ``"<stem> labels: nucleus"``; ``nucleus_mask``, ``mask_nucleus``
    and a plain ``nucleus`` of an integer store -> ``"<stem> mask: nucleus"``.
    """
    if channel.endswith("labels"):
        return f"{stem} labels: {channel.removesuffix('labels').strip('_ ') or 'cells'}"
    organelle = channel.removesuffix("mask").removeprefix("mask").strip("_ :")
    return f"{stem} mask: {organelle or channel}"


def _contrast_sample(data: Any) -> np.ndarray:
    """A few evenly spaced planes of the first frame: enough for percentiles, cheap when lazy."""
    index: list[Any] = [0] * (data.ndim - 3)
    nz = data.shape[-3]
    index.append(np.unique(np.linspace(0, nz - 1, min(nz, _CONTRAST_PLANES)).astype(int)))
    plane = data.shape[-2] * data.shape[-1] * len(index[-1])
    step = max(1, int(np.ceil(np.sqrt(plane / _CONTRAST_SAMPLE))))
    index += [slice(None, None, step)] * 2
    return np.asarray(data[tuple(index)], dtype=np.float32)


def percentile_limits(data: Any, percentiles: Sequence[float] = CONTRAST_PERCENTILES
                      ) -> tuple[float, float]:
    """Contrast limits from the data's own percentiles (finite values), never empty."""
    sample = _contrast_sample(data)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(sample, percentiles))
    if high <= low:
        high = low + max(abs(low) * 1e-3, 1e-6)
    return low, high


def layer_for(data: Any, channel: str, scale: Sequence[float], name: str,
              metadata: dict[str, Any] | None = None, labels: bool = False,
              translate: Sequence[float] | None = None, measured: int | None = None
              ) -> LayerData:
    """The layer data tuple of one channel: its type, colours and contrast from its name.

    Parameters
    ----------
    data : array-like
        (z, y, x) or (t, z, y, x) values.
    channel : str
        What the data is: ``ri``, a target (``membrane``...), ``<target>_uncertainty_*``,
        a mask or labels channel, or any other name.
    scale : sequence of float
        One value per axis of ``data``: seconds per frame, then the voxel size in µm.
    name : str
        Layer name.
    metadata : dict, optional
        Stored as ``metadata["ri2fl"]`` with the channel.
    labels : bool
        Force a Labels layer (integer stores such as ``ri2fl segment`` outputs, whose mask
        channels are named after the organelles).
    translate : sequence of float, optional
        Position of the first voxel (s, µm), e.g. the frame a prediction was made from.
    measured : int, optional
        Index of a measured fluorescence channel (colours cycle through
        :data:`MEASURED_COLORMAPS`).
    """
    kwargs: dict[str, Any] = {"name": name, "scale": tuple(float(s) for s in scale),
                              "metadata": {"ri2fl": {"channel": channel, **(metadata or {})}},
                              **axes_metadata(len(scale))}
    if translate is not None:
        kwargs["translate"] = tuple(float(t) for t in translate)
    if labels or is_labels(channel):
        return _as_labels(data), kwargs, "labels"
    target = _target_of(channel)
    if channel == "ri":
        kwargs.update(colormap="gray", contrast_limits=RI_CONTRAST)
        return data, kwargs, "image"
    kwargs.update(blending="additive", contrast_limits=percentile_limits(data))
    if "uncertainty" in channel:
        kwargs.update(colormap="inferno", visible=False)
    elif target is not None:
        kwargs["colormap"] = TARGET_COLORMAPS[target]
    elif measured is not None:
        kwargs["colormap"] = MEASURED_COLORMAPS[measured % len(MEASURED_COLORMAPS)]
    return data, kwargs, "image"


def volume_layers(data: Any, axes: str, channel_names: Sequence[str],
                  voxel_size_um: Sequence[float], stem: str,
                  metadata: dict[str, Any] | None = None, labels: bool = False,
                  time_interval_s: float | None = None) -> list[LayerData]:
    """One layer per channel of a ``zyx``/``czyx``/``tzyx``/``tczyx`` array.

    The time axis (if any) stays the first, scaled to ``time_interval_s`` seconds per frame
    (1 when unknown); ``labels`` makes every channel a Labels layer, named as a mask.
    """
    spatial = tuple(float(v) for v in voxel_size_um)
    scale = ((float(time_interval_s or 1.0),) if axes.startswith("t") else ()) + spatial
    if "c" not in axes:
        channel = channel_names[0] if channel_names else "ri"
        name = stem if channel == "ri" else _channel_name(stem, channel, labels)
        return [layer_for(data, channel, scale, name, metadata, labels)]
    caxis = axes.index("c")
    layers = []
    for k, channel in enumerate(channel_names):
        index = (slice(None),) * caxis + (k,)
        layers.append(layer_for(data[index], channel, scale,
                                _channel_name(stem, channel, labels), metadata, labels))
    return layers


def _channel_name(stem: str, channel: str, labels: bool) -> str:
    return labels_name(stem, channel) if labels or is_labels(channel) else f"{stem} {channel}"


def _as_labels(data: Any) -> Any:
    """Labels layers need integers; readers hand back float32 (lazily converted)."""
    if np.issubdtype(data.dtype, np.integer):
        return data
    return data.astype(np.int32)
