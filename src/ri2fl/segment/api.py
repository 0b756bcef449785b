"""``segment_volume``: organelle masks and cell / nucleus instances of one RI tomogram."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..constants import CANONICAL_VOXEL_SIZE_UM, MEDIUM_INDEX, ORGANELLE_MASKS
from ..errors import ConfigError, InputError, ModelError
from ._grid import normalize_ri, resize, to_grid
from .cells import nucleus_instances, predict_cells
from .organelles import MASK_THRESHOLD, cell_support, load_organelle_model, predict_organelles
from .watershed import (
    VoxelClassifier,
    default_voxel_classifier,
    watershed_cells,
)

METHODS = ("network", "watershed")
#: Channels of :meth:`Segmentation.label_stack`, in order.
LABEL_CHANNELS: tuple[str, ...] = ("cell_labels", "nucleus_labels", *ORGANELLE_MASKS)


@dataclass
class Segmentation:
    """Masks and instances of one tomogram, all on the input grid.

    Attributes
    ----------
    masks : dict
        ``nucleus``, ``nucleolus``, ``membrane`` (whole cell), ``lipid_droplets`` -> bool
        (Z, Y, X).
    cell_labels, nucleus_labels : (Z, Y, X) int32
        Instances, 0 = background; cell *i* contains nucleus *i*.
    voxel_size_um : (z, y, x)
        Voxel size of the arrays.
    method : str
        ``"network"`` or ``"watershed"``.
    probabilities : dict
        Per-organelle probabilities on the input grid (only if asked for).
    """

    masks: dict[str, np.ndarray]
    cell_labels: np.ndarray
    nucleus_labels: np.ndarray
    voxel_size_um: tuple[float, float, float]
    method: str
    probabilities: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_cells(self) -> int:
        """Number of cell instances."""
        return int(np.unique(self.cell_labels[self.cell_labels > 0]).size)

    def label_stack(self) -> tuple[np.ndarray, list[str]]:
        """All outputs as one (C, Z, Y, X) int32 stack and its channel names (for OME-Zarr)."""
        planes = [self.cell_labels, self.nucleus_labels,
                  *(self.masks[m] for m in ORGANELLE_MASKS)]
        return np.stack([np.asarray(p, np.int32) for p in planes]), list(LABEL_CHANNELS)


def _check_input(ri: np.ndarray, voxel_size_um: Sequence[float] | float) -> tuple:
    ri = np.asarray(ri)
    if ri.ndim != 3:
        raise InputError(f"expected one (Z, Y, X) RI volume, got shape {ri.shape}",
                         "segment_volume", "segment time points or channels one by one")
    vs = np.atleast_1d(np.asarray(voxel_size_um, dtype=float))
    vs = tuple(float(v) for v in (np.repeat(vs, 3) if vs.size == 1 else vs))
    if len(vs) != 3 or min(vs) <= 0:
        raise InputError(f"invalid voxel size {voxel_size_um!r}", "segment_volume",
                         "give (z, y, x) in µm, or one number for isotropic voxels")
    if not np.isfinite(ri).all():
        raise InputError("the RI volume holds NaN or infinite values", "segment_volume")
    return ri.astype(np.float32, copy=False), vs


def segment_volume(ri: np.ndarray, voxel_size_um: Sequence[float] | float,
                   medium_index: float = MEDIUM_INDEX, method: str = "network",
                   fl: Mapping[str, np.ndarray] | str | None = "infer", *,
                   model: str | torch.nn.Module = "segment-default",
                   cell_model: str | torch.nn.Module = "cell-default",
                   fl_model: str | torch.nn.Module = "default",
                   voxel_classifier: VoxelClassifier | None = None,
                   threshold: float = MASK_THRESHOLD,
                   cell_assign: str = "flood",
                   return_probabilities: bool = False,
                   probabilities: Mapping[str, np.ndarray] | None = None) -> Segmentation:
    """Segment organelles and individual cells in an RI tomogram.

    Parameters
    ----------
    ri : (Z, Y, X) array
        Refractive-index tomogram (raw RI values, not normalised).
    voxel_size_um : (z, y, x) or float
        Its voxel size in µm.
    medium_index : float
        Refractive index of the medium (1.337 culture medium, 1.335 PBS).
    method : {"network", "watershed"}
        How cells are separated: the nucleus-conditioned cell network (Choi et al.) or the
        classical voxel classifier + seeded watershed (RI2FL).
    fl : "infer", dict or None
        ``method="watershed"`` only: what the voxel classifier sees. ``"infer"`` (default):
        the nucleus and membrane fluorescence that ``fl_model`` infers from ``ri`` (the RI2FL
        route); a dict: inferred fluorescence already at hand, name -> array on the input grid
        (e.g. ``ri2fl.infer.predict_volume(...).fl``); None: RI features only.
    model : str or Module
        Organelle network (shipped name, checkpoint path or loaded module).
    cell_model : str or Module
        Cell network, for ``method="network"``.
    fl_model : str or Module
        Fluorescence model for ``fl="infer"``.
    voxel_classifier : VoxelClassifier, optional
        For ``method="watershed"`` (default: the shipped one for the given inputs).
    threshold : float
        Probability threshold of the organelle masks.
    cell_assign : {"flood", "argmax"}
        ``method="network"``: how the cell network's probabilities become cells
        (:func:`ri2fl.segment.cells.predict_cells`); ``"argmax"`` is Choi et al.'s rule.
    return_probabilities : bool
        Also return the organelle probabilities (input grid) in ``.probabilities``.
    probabilities : dict, optional
        Organelle probabilities of this volume from an earlier call
        (``return_probabilities=True``): the organelle network is not run again, e.g. to
        compare the two cell methods.

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> seg = segment_volume(ri, (0.2, 0.15, 0.15))            # doctest: +SKIP
    >>> seg.n_cells, seg.masks["nucleus"].sum()                # doctest: +SKIP
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}", "method", f"choose one of {METHODS}")
    if isinstance(fl, str) and fl != "infer":
        raise ConfigError(f"unknown fl {fl!r}", "fl",
                          "pass 'infer', a dict of inferred channels, or None")
    ri, vs = _check_input(ri, voxel_size_um)
    net = load_organelle_model(model)
    grid = tuple(getattr(net, "voxel_size_um", CANONICAL_VOXEL_SIZE_UM))
    ri_grid = to_grid(ri, vs, grid)
    ri_n = normalize_ri(ri_grid, medium_index)
    if probabilities is not None:
        if sorted(probabilities) != sorted(net.targets) or any(
                np.shape(v) != ri.shape for v in probabilities.values()):
            raise InputError("probabilities do not match this volume and model", "probabilities",
                             "pass the .probabilities of a call on the same volume")
        prob = {k: resize(v, ri_n.shape, order=1) for k, v in probabilities.items()}
    else:
        prob = predict_organelles(ri_n, net)
    support = cell_support(ri_grid, grid, medium_index)
    prob = {k: v * support for k, v in prob.items()}
    if method == "network":
        # a nucleus lies inside a cell: nucleus voxels outside the whole-cell mask are noise
        nuclei = nucleus_instances((prob["nucleus"] > threshold) & (prob["membrane"] > threshold),
                                   grid)
        cells = predict_cells(ri_n, prob["membrane"], nuclei, _load_cell_model(cell_model),
                              grid, membrane_mask=prob["membrane"] > threshold,
                              assign=cell_assign)
        cell_labels, nucleus_labels = (resize(a, ri.shape, order=0) for a in (cells, nuclei))
    else:
        fl = _classifier_fluorescence(ri, vs, medium_index, fl, fl_model, voxel_classifier)
        cell_labels, nucleus_labels, prob = _watershed_route(ri, vs, medium_index, fl,
                                                             voxel_classifier, prob, support)
    prob_in = {k: resize(v, ri.shape, order=1) for k, v in prob.items()}
    masks = {k: prob_in[k] > threshold for k in ORGANELLE_MASKS}
    # organelles nest: nucleus and droplets inside the cell, nucleoli inside the nucleus
    masks["nucleus"] &= masks["membrane"]
    masks["lipid_droplets"] &= masks["membrane"]
    masks["nucleolus"] &= masks["nucleus"]
    # masks and instances must agree: every labelled nucleus/cell voxel is in its mask
    masks["nucleus"] |= nucleus_labels > 0
    masks["membrane"] |= cell_labels > 0
    return Segmentation(masks, cell_labels.astype(np.int32), nucleus_labels.astype(np.int32),
                        vs, method, prob_in if return_probabilities else {})


def _load_cell_model(cell_model: str | torch.nn.Module) -> torch.nn.Module:
    if isinstance(cell_model, torch.nn.Module):
        return cell_model.eval()
    from ..models import load

    net = load(cell_model)
    if getattr(net, "task", "cell_seg") != "cell_seg":
        raise ModelError(f"model task is {net.task!r}, not 'cell_seg'", str(cell_model),
                         "use a cell model such as 'cell-default'")
    return net


def _classifier_fluorescence(ri: np.ndarray, vs: tuple, medium_index: float,
                             fl: Mapping[str, np.ndarray] | str | None,
                             fl_model: str | torch.nn.Module,
                             clf: VoxelClassifier | None) -> Mapping[str, np.ndarray] | None:
    """The fluorescence the voxel classifier of the watershed route sees (None: RI only)."""
    if fl is None or isinstance(fl, Mapping):
        return fl
    if clf is not None and "nucleus" not in clf.channels:
        return None  # a classifier of RI features: nothing to infer
    from ..infer import predict_volume

    channels = list(clf.channels) if clf is not None else ["nucleus", "membrane"]
    pred = predict_volume(ri, vs, model=fl_model, targets=channels, medium_index=medium_index)
    return {k: np.asarray(v) for k, v in pred.fl.items()}


def _watershed_route(ri: np.ndarray, vs: tuple, medium_index: float,
                     fl: Mapping[str, np.ndarray] | None, clf: VoxelClassifier | None,
                     prob: dict[str, np.ndarray], support: np.ndarray) -> tuple:
    """Classical route on the working grid; nucleus/membrane probabilities replace the
    network's so that masks and instances agree. ``support`` (:func:`cell_support`, on the
    organelle grid) confines the classifier's cell classes too."""
    inputs = "fl" if fl is not None else "ri"
    clf = clf if clf is not None else default_voxel_classifier(inputs)
    work = tuple(clf.voxel_size_um)
    if inputs == "fl":
        missing = [c for c in clf.channels if c not in fl]
        if missing:
            raise InputError(f"fluorescence channels {missing} missing (have {sorted(fl)})",
                             "fl", "pass the inferred nucleus and membrane channels")
        for name in clf.channels:
            if np.shape(fl[name]) != ri.shape:
                raise InputError(f"fluorescence {name!r} has shape {np.shape(fl[name])}, "
                                 f"RI has {ri.shape}", "fl", "give FL on the RI grid")
        channels = np.stack([to_grid(np.asarray(fl[c], np.float32), vs, work)
                             for c in clf.channels])
    else:
        channels = normalize_ri(to_grid(ri, vs, work), medium_index)[None]
    proba = clf.predict_proba(channels)
    outside = ~resize(support, proba.shape[1:], order=0)
    proba[0][outside] = 1.0
    proba[1:, outside] = 0.0
    named = dict(zip(clf.channels, channels, strict=True))
    cells, nuclei = watershed_cells(proba, work, membrane=named.get("membrane"),
                                    nucleus_fl=named.get("nucleus"))
    canonical_shape = prob["nucleus"].shape
    prob = dict(prob)
    prob["nucleus"] = resize(proba[2], canonical_shape, order=1)
    prob["membrane"] = resize(proba[1] + proba[2], canonical_shape, order=1)
    return resize(cells, ri.shape, order=0), resize(nuclei, ri.shape, order=0), prob
