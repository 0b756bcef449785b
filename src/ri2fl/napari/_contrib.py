"""napari sample data (a simulated cell with its ground truth) and an OME-Zarr writer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._layers import LayerData, layer_for

#: Shape (z, y, x) of the sample field: small enough to simulate in seconds.
SAMPLE_SHAPE = (64, 192, 192)


def simulated_cell(seed: int = 0, shape: Sequence[int] = SAMPLE_SHAPE) -> list[LayerData]:
    """A simulated fibroblast as a holotomograph sees it: measured RI, the true fluorescence
    of the six targets and the cell labels, all with the physical voxel size as scale."""
    from ..simulate import simulate_fov

    fov = simulate_fov("fibroblast", seed=seed, shape=tuple(shape))
    scale = fov.voxel_size_um
    meta = {"medium_index": fov.medium_index, "simulated": True}
    layers = [layer_for(fov.ri, "ri", scale, "simulated RI", meta)]
    layers += [layer_for(fl, name, scale, f"true {name}", meta) for name, fl in fov.fl.items()]
    layers.append(layer_for(fov.cell_labels, "cell_labels", scale, "true cell labels", meta))
    return layers


def write_ome_zarr_layers(path: str, layers: list[tuple[Any, dict, str]]) -> list[str]:
    """Save image layers of one shape as one OME-Zarr image, a channel per layer.

    The voxel size comes from the layers' scale and the channel names from their names
    (``cell membrane`` -> ``membrane`` when every name shares the prefix), so ri2fl and
    other NGFF readers open it back with the same scale and names.
    """
    from ..io import write_ome_zarr

    if not layers:
        raise InputError("no layers to write", path)
    shapes = {np.shape(data) for data, _, _ in layers}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise InputError(f"layers must be 3D and of one shape to share a file, got {shapes}",
                         path, "save layers of different shapes to separate files")
    scales = {tuple(np.round(meta.get("scale", (1, 1, 1))[-3:], 6)) for _, meta, _ in layers}
    if len(scales) != 1:
        raise InputError(f"layers have different scales {scales}", path)
    names = [str(meta.get("name", f"ch{k}")) for k, (_, meta, _) in enumerate(layers)]
    prefix = names[0].split(" ")[0] + " "
    if len(names) > 1 and all(n.startswith(prefix) for n in names):
        names = [n[len(prefix):] for n in names]
    data = np.stack([np.asarray(d, dtype=np.float32) for d, _, _ in layers])
    medium = next((m.get("metadata", {}).get("ri2fl", {}).get("medium_index")
                   for _, m, _ in layers), None)
    write_ome_zarr(Path(path), data, next(iter(scales)), channel_names=names,
                   medium_index=medium)
    return [str(path)]
