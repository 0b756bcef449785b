"""Cell-by-cell instance segmentation with a nucleus-conditioned network (Choi et al.).

1. The nucleus mask is split into instances by connected components; fragments closer than
   ``merge_gap_um`` are one nucleus (the condensed chromosomes of a mitotic cell), and
   instances under 200 voxels of the canonical grid, or under a tenth of the largest nucleus
   of the field, are dropped.
2. For every nucleus *i* the cell network sees four channels on a coarse whole-volume grid:
   [normalised RI, membrane (whole-cell) probability, nucleus *i*, all other nuclei] and
   predicts the probability that each voxel belongs to cell *i*.
3. Each voxel goes to the nucleus of highest probability; below 0.5 it is background. The
   probabilities are resized back to the working grid before the argmax, so boundaries are
   not blocky. With ``assign="flood"`` (the default) only the voxels the network is sure of
   (winner ahead of the runner-up by ``ASSIGN_MARGIN``) keep their argmax label; the cells then
   grow from these cores over the cell voxels (watershed on 1 - best probability), so a cell
   is one connected piece grown from its nucleus: the long processes of an astrocyte went to
   a neighbour under the plain argmax (cell F1 0.80 -> 0.86 on nine held-out fields).

The paper resizes every field of view to a fixed 64 x 128 x 128 grid; here the coarse grid
has a fixed voxel size instead (default (0.4, 0.6, 0.6) µm: the standard 12.8 x 76.8 x 76.8 µm
FOV becomes 32 x 128 x 128), so that a small crop and a large field see cells at the same
scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from ..constants import CANONICAL_VOXEL_SIZE_UM
from ..errors import ConfigError
from ..preprocess import resample_to_shape, resampled_shape
from ._morph import ball, relabel_sequential, scaled_voxel_count

#: Nuclei smaller than this many voxels of the canonical grid are ignored (Choi et al.).
MIN_NUCLEUS_VOXELS = 200
#: Nuclei smaller than this fraction of the field's largest nucleus are dropped. The specks
#: the organelle network marks around a nucleus (10-46 µm³ beside 240-550 µm³ nuclei in
#: held-out fields) each took a share of the real cell: on the 12 held-out fields of
#: ``scripts/train_segmentation.py evaluate`` the network route's cell F1 is 0.85 with this
#: rule and 0.57 without. Its cost: small true nuclei beside large ones go too (macrophage
#: and hek293 fields: F1 0.87 -> 0.69 and 0.62 -> 0.42), and so do the condensed chromosomes
#: of a mitotic cell beside an interphase nucleus (6-17 µm³ in the simulator, a few per cent
#: of an interphase nucleus).
MIN_NUCLEUS_FRACTION = 0.1
#: Nucleus fragments closer than this (µm) are one nucleus.
NUCLEUS_MERGE_GAP_UM = 1.0
#: Voxel size (z, y, x) of the grid the cell network sees.
CELL_VOXEL_SIZE_UM: tuple[float, float, float] = (0.4, 0.6, 0.6)
#: ``assign="flood"``: margin of the best over the second-best cell probability that makes a
#: voxel a seed of its cell.
ASSIGN_MARGIN = 0.5
#: Input channels of the cell network, in order.
CELL_INPUTS: tuple[str, ...] = ("ri", "membrane", "this_nucleus", "other_nuclei")


def nucleus_instances(nucleus_mask: np.ndarray,
                      voxel_size_um: Sequence[float] = CANONICAL_VOXEL_SIZE_UM,
                      min_voxels: int = MIN_NUCLEUS_VOXELS,
                      merge_gap_um: float = NUCLEUS_MERGE_GAP_UM,
                      min_fraction: float = MIN_NUCLEUS_FRACTION) -> np.ndarray:
    """Split a nucleus mask into instances.

    Parameters
    ----------
    nucleus_mask : (Z, Y, X) bool
        Binary nucleus mask.
    voxel_size_um : (z, y, x)
        Voxel size of the mask.
    min_voxels : int
        Minimum size in voxels **of the canonical grid**; scaled to ``voxel_size_um``.
    merge_gap_um : float
        Components separated by less than this are grouped into one nucleus (0: plain
        connected components).
    min_fraction : float
        Instances smaller than this fraction of the largest one are dropped (0: keep all).

    Returns
    -------
    (Z, Y, X) int32
        Labels 1..N, 0 = background.
    """
    mask = np.asarray(nucleus_mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    structure = ndi.generate_binary_structure(3, 1)
    if merge_gap_um > 0:
        grown = ndi.binary_dilation(mask, ball(merge_gap_um / 2, voxel_size_um))
        labels = ndi.label(grown, structure=structure)[0]
        labels *= mask
    else:
        labels = ndi.label(mask, structure=structure)[0]
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    small = sizes < max(scaled_voxel_count(min_voxels, voxel_size_um),
                        min_fraction * sizes.max())
    small[0] = True
    labels[small[labels]] = 0
    return relabel_sequential(labels)


def cell_network_inputs(ri_norm: np.ndarray, membrane: np.ndarray,
                        nucleus_soft: np.ndarray) -> np.ndarray:
    """Stack the four inputs of the cell network for every nucleus.

    Parameters
    ----------
    ri_norm, membrane : (z, y, x) float
        Normalised RI and membrane (whole-cell) probability on the cell grid.
    nucleus_soft : (N, z, y, x) float
        Per-nucleus occupancy in [0, 1] on the cell grid.

    Returns
    -------
    (N, 4, z, y, x) float32
    """
    total = nucleus_soft.sum(axis=0)
    batch = np.empty((len(nucleus_soft), 4, *ri_norm.shape), np.float32)
    for i, this in enumerate(nucleus_soft):
        batch[i, 0] = ri_norm
        batch[i, 1] = membrane
        batch[i, 2] = this
        batch[i, 3] = np.clip(total - this, 0.0, 1.0)
    return batch


def soft_nuclei(nucleus_labels: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Per-nucleus occupancy resized to ``shape``, (N, *shape) float32 in [0, 1].

    Area-averaged, then scaled to peak at 1, so that a nucleus smaller than a coarse voxel
    never vanishes.
    """
    n = int(nucleus_labels.max())
    out = np.zeros((n, *shape), np.float32)
    for i in range(1, n + 1):
        soft = resample_to_shape((nucleus_labels == i).astype(np.float32), shape,
                                 anti_alias=True)
        peak = float(soft.max())
        out[i - 1] = soft / peak if peak > 0 else soft
    return out


@torch.no_grad()
def predict_cells(ri_norm: np.ndarray, membrane_prob: np.ndarray, nucleus_labels: np.ndarray,
                  model: torch.nn.Module, voxel_size_um: Sequence[float],
                  threshold: float = 0.5, membrane_mask: np.ndarray | None = None,
                  batch_size: int = 2, assign: str = "flood") -> np.ndarray:
    """Cell instances from nucleus instances with the nucleus-conditioned network.

    Parameters
    ----------
    ri_norm : (Z, Y, X) float
        RI normalised to [0, 1] (:func:`ri2fl.preprocess.normalize_ri`).
    membrane_prob : (Z, Y, X) float
        Membrane (whole-cell) probability from the organelle network.
    nucleus_labels : (Z, Y, X) int
        Nucleus instances (:func:`nucleus_instances`).
    model : torch.nn.Module
        The cell network (``ri2fl.models.load("cell-default")``): 4 inputs, 1 sigmoid output;
        its ``voxel_size_um`` attribute (if any) sets the coarse grid.
    voxel_size_um : (z, y, x)
        Voxel size of the inputs.
    threshold : float
        Voxels whose best probability is below it are background.
    membrane_mask : (Z, Y, X) bool, optional
        If given, cells are also restricted to it (sharper boundaries than the coarse grid).
    batch_size : int
        Nuclei per forward pass.
    assign : {"flood", "argmax"}
        ``"argmax"``: each voxel to the nucleus of highest probability (Choi et al.);
        ``"flood"``: confident voxels as seeds, the rest by watershed from them (module notes).

    Returns
    -------
    (Z, Y, X) int32
        Cell labels; cell *i* is the cell of nucleus *i* and always contains it.
    """
    if assign not in ("flood", "argmax"):
        raise ConfigError(f"unknown cell assignment {assign!r}", "assign",
                          "use 'flood' (default) or 'argmax' (Choi et al.)")
    if int(nucleus_labels.max()) == 0:
        return np.zeros(nucleus_labels.shape, np.int32)
    flood = assign == "flood"
    # in a function of its own, so that the network inputs and the last resized
    # probability are freed before the watershed, the peak of memory
    best, second, labels = _cell_probabilities(ri_norm, membrane_prob, nucleus_labels, model,
                                               voxel_size_um, batch_size, flood)
    cell = best >= threshold
    if membrane_mask is not None:
        cell &= membrane_mask
    labels[~cell] = 0
    if not flood:
        return finalize_cells(labels, nucleus_labels)
    labels[~(best - second > ASSIGN_MARGIN)] = 0
    del second
    seeds = finalize_cells(labels, nucleus_labels)
    del labels
    landscape = np.subtract(1.0, best, out=best)
    grown = watershed(landscape, markers=seeds, mask=cell | (nucleus_labels > 0))
    return finalize_cells(grown.astype(np.int32, copy=False), nucleus_labels)


def _cell_probabilities(ri_norm: np.ndarray, membrane_prob: np.ndarray,
                        nucleus_labels: np.ndarray, model: torch.nn.Module,
                        voxel_size_um: Sequence[float], batch_size: int, flood: bool
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Per voxel of ``nucleus_labels``' grid: the best cell probability, the runner-up (only
    with ``flood``, else None) and the label of the best, from the cell network."""
    shape = nucleus_labels.shape
    n = int(nucleus_labels.max())
    cell_vs = tuple(getattr(model, "voxel_size_um", CELL_VOXEL_SIZE_UM))
    coarse = resampled_shape(shape, voxel_size_um, cell_vs)
    ri_c = resample_to_shape(ri_norm, coarse, anti_alias=True)
    mem_c = resample_to_shape(membrane_prob, coarse, anti_alias=True)
    inputs = cell_network_inputs(ri_c, mem_c, soft_nuclei(nucleus_labels, coarse))
    device = next(model.parameters()).device
    best = np.zeros(shape, np.float32)
    second = np.zeros(shape, np.float32) if flood else None  # runner-up, for the seeds
    labels = np.zeros(shape, np.int32)
    for start in range(0, n, batch_size):
        prob = model(torch.from_numpy(inputs[start:start + batch_size]).to(device))
        for k, p in enumerate(prob[:, 0].cpu().numpy()):
            full = resample_to_shape(p, shape)
            better = full > best
            if flood:  # the runner-up: the old best where this nucleus wins, else the larger
                np.maximum(second, full, out=second)
                np.copyto(second, best, where=better)
            np.copyto(best, full, where=better)
            labels[better] = start + k + 1
    return best, second, labels


def finalize_cells(cell_labels: np.ndarray, nucleus_labels: np.ndarray) -> np.ndarray:
    """Make every cell contain its whole nucleus and keep only the part connected to it."""
    cells = np.asarray(cell_labels, np.int32).copy()
    cells[nucleus_labels > 0] = nucleus_labels[nucleus_labels > 0]
    for i, sl in enumerate(ndi.find_objects(cells), start=1):
        if sl is None:
            continue
        region = cells[sl] == i
        comp, n = ndi.label(region)
        if n > 1:
            keep = np.unique(comp[(nucleus_labels[sl] == i) & region])
            stray = region & ~np.isin(comp, keep[keep > 0])
            cells[sl][stray] = 0
    return cells
