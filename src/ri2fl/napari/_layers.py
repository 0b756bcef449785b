"""napari layer data tuples for ri2fl volumes: names, physical scale, colours, layer types.

Plain functions on arrays, with no napari import, so that the reader and the widgets' compute
run (and are tested) without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..constants import RI_CLIP, TARGETS

#: A napari LayerDataTuple: (data, layer keyword arguments, layer type).
LayerData = tuple[Any, dict[str, Any], str]

#: One colour per fluorescence target (napari colormap names), as in the paper's figures.
TARGET_COLORMAPS: dict[str, str] = dict(zip(TARGETS, ("magenta", "green", "red", "yellow",
                                                      "cyan", "blue")))
RI_CONTRAST = (RI_CLIP[0] - 0.005, RI_CLIP[1])


def is_labels(channel: str) -> bool:
    """Instance labels and binary masks are napari Labels layers, not images."""
    return channel.endswith(("labels", "mask")) or channel.startswith("mask")


def _target_of(channel: str) -> str | None:
    return next((t for t in TARGETS if channel == t or channel.startswith(f"{t}_")), None)


def layer_for(data: Any, channel: str, scale: Sequence[float], name: str,
              metadata: dict[str, Any] | None = None, labels: bool = False) -> LayerData:
    """The layer data tuple of one channel: its type, colours and contrast from its name.

    ``scale`` is the physical voxel size in µm, one value per axis of ``data``; ``labels``
    forces a Labels layer (integer stores such as ``ri2fl segment`` outputs, whose mask
    channels are named after the organelles).
    """
    kwargs: dict[str, Any] = {"name": name, "scale": tuple(float(s) for s in scale),
                              "metadata": {"ri2fl": {"channel": channel, **(metadata or {})}}}
    if labels or is_labels(channel):
        return _maybe_labels(data, "labels"), kwargs, "labels"
    target = _target_of(channel)
    if channel == "ri":
        kwargs.update(colormap="gray", contrast_limits=RI_CONTRAST)
    elif "uncertainty" in channel:
        kwargs.update(colormap="inferno", blending="additive", visible=False)
    elif target is not None:
        kwargs.update(colormap=TARGET_COLORMAPS[target], blending="additive",
                      contrast_limits=(0.0, 1.0))
    return data, kwargs, "image"


def volume_layers(data: Any, axes: str, channel_names: Sequence[str],
                  voxel_size_um: Sequence[float], stem: str,
                  metadata: dict[str, Any] | None = None,
                  labels: bool = False) -> list[LayerData]:
    """One layer per channel of a ``zyx``/``czyx``/``tzyx``/``tczyx`` array.

    The time axis (if any) stays the first, with a scale of 1 (one step per frame);
    ``labels`` makes every channel a Labels layer.
    """
    spatial = tuple(float(v) for v in voxel_size_um)
    scale = ((1.0,) if axes.startswith("t") else ()) + spatial
    if "c" not in axes:
        channel = channel_names[0] if channel_names else "ri"
        name = stem if channel == "ri" else f"{stem} {channel}"
        return [layer_for(data, channel, scale, name, metadata, labels)]
    caxis = axes.index("c")
    layers = []
    for k, channel in enumerate(channel_names):
        index = (slice(None),) * caxis + (k,)
        layers.append(layer_for(data[index], channel, scale, f"{stem} {channel}", metadata,
                                labels))
    return layers


def _maybe_labels(data: Any, channel: str) -> Any:
    """Labels layers need integers; readers hand back float32 (lazily converted)."""
    if not is_labels(channel) or np.issubdtype(data.dtype, np.integer):
        return data
    return data.astype(np.int32)
