"""napari widgets: infer fluorescence, and segment organelles and cells, on an RI layer.

The compute lives in :func:`predict_layer` and :func:`segment_layer` (arrays in, layer data
tuples out, no napari needed); the widget functions only pick the data of the selected layer
(the current frame of a time-lapse) and are turned into forms by napari (``autogenerate``).
New layers get the same scale as the RI layer, so they overlay it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..constants import MEDIUM_INDEX
from ..errors import InputError
from ._layers import LayerData, layer_for

if TYPE_CHECKING:
    import napari


def _volume(data: Any, scale: Sequence[float]) -> tuple[np.ndarray, tuple[float, ...]]:
    ri = np.asarray(data, dtype=np.float32)
    if ri.ndim != 3:
        raise InputError(f"expected one 3D RI volume (z, y, x), got {ri.ndim} dimensions",
                         hint="select a 3D image layer (or one frame of a time-lapse)")
    voxel = tuple(float(s) for s in scale[-3:])
    if all(v == 1.0 for v in voxel):
        raise InputError("the layer has no physical scale (voxel size 1 x 1 x 1)",
                         hint="open the file with the ri2fl reader, or set the layer's scale "
                              "to the voxel size in µm")
    return ri, voxel


def predict_layer(data: Any, scale: Sequence[float], *, model: Any = "default",
                  tta: int = 0, mc: int = 0, medium_index: float = MEDIUM_INDEX,
                  name: str = "ri", device: str | None = None) -> list[LayerData]:
    """Inferred fluorescence (and uncertainty) of an RI volume, as napari layers.

    Parameters
    ----------
    data : array-like
        (Z, Y, X) absolute refractive index.
    scale : sequence of float
        Voxel size in µm (z, y, x): the RI layer's scale.
    model, tta, mc, medium_index, device
        As in :func:`ri2fl.infer.predict_volume`.
    name : str
        Prefix of the new layer names.

    Returns
    -------
    list of (data, kwargs, "image")
        One layer per target, then per uncertainty map, with the same scale.
    """
    from ..infer import predict_volume

    ri, voxel = _volume(data, scale)
    pred = predict_volume(ri, voxel, model=model, tta=tta, mc=mc, medium_index=medium_index,
                          device=device)
    return [layer_for(np.asarray(arr), channel, voxel, f"{name} {channel}")
            for channel, arr in pred.channels().items()]


def segment_layer(data: Any, scale: Sequence[float], *, method: str = "network",
                  medium_index: float = MEDIUM_INDEX, name: str = "ri") -> list[LayerData]:
    """Organelle masks and cell/nucleus instances of an RI volume, as napari Labels layers."""
    from ..segment import segment_volume

    ri, voxel = _volume(data, scale)
    seg = segment_volume(ri, voxel, medium_index=medium_index, method=method)
    layers = [layer_for(np.asarray(m, dtype=np.uint8), f"{organelle}_mask", voxel,
                        f"{name} {organelle} mask") for organelle, m in seg.masks.items()]
    layers.append(layer_for(seg.nucleus_labels, "nucleus_labels", voxel,
                            f"{name} nucleus labels"))
    layers.append(layer_for(seg.cell_labels, "cell_labels", voxel, f"{name} cell labels"))
    return layers


def _current(image: napari.layers.Image, viewer: napari.viewer.Viewer | None) -> Any:
    """The displayed 3D volume of a layer: for a time-lapse, the frame on screen."""
    data = image.data
    if data.ndim == 4:
        t = int(viewer.dims.current_step[0]) if viewer is not None else 0
        data = data[t]
    return data


def _medium(image: napari.layers.Image, medium_index: float) -> float:
    meta = (getattr(image, "metadata", None) or {}).get("ri2fl", {})
    return float(meta.get("medium_index") or medium_index)


def predict_widget(image: napari.layers.Image, viewer: napari.viewer.Viewer,
                   model: str = "default", tta: int = 0, mc: int = 0,
                   medium_index: float = MEDIUM_INDEX) -> list[napari.types.LayerDataTuple]:
    """Infer the six fluorescence channels (with uncertainty when TTA/MC > 0) of the
    selected RI layer; the medium index of files opened with ri2fl comes from the file."""
    return predict_layer(_current(image, viewer), image.scale, model=model, tta=tta, mc=mc,
                         medium_index=_medium(image, medium_index), name=image.name)


def segment_widget(image: napari.layers.Image, viewer: napari.viewer.Viewer,
                   method: str = "network",
                   medium_index: float = MEDIUM_INDEX) -> list[napari.types.LayerDataTuple]:
    """Segment nucleus, nucleolus, cell and lipid droplets, and split cells, in the
    selected RI layer (``method``: "network" or "watershed")."""
    return segment_layer(_current(image, viewer), image.scale, method=method,
                         medium_index=_medium(image, medium_index), name=image.name)
