"""``segment_volume``: organelle masks and cell / nucleus instances of one RI tomogram."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..constants import CANONICAL_VOXEL_SIZE_UM, MEDIUM_INDEX, ORGANELLE_MASKS
from ..errors import ConfigError, InputError, ModelError
from ..io import voxel_size_from
from ..preprocess import normalize_ri, resample_to_shape
from ..preprocess.domain import warn_if_off_domain
from ._grid import to_grid
from .cells import nucleus_instances, predict_cells
from .organelles import MASK_THRESHOLD, cell_support, load_organelle_model, predict_organelles
from .watershed import (
    VoxelClassifier,
    default_voxel_classifier,
    watershed_cells,
)

METHODS = ("network", "watershed")
#: Peak memory of :func:`segment_volume`'s work arrays, bytes per voxel of the organelle
#: network's grid. Measured with tracemalloc on fields of 32 x 96 x 96 to 128 x 256 x 256
#: voxels and 4 to 16 cells, input on that grid: 57-59 in all (either route, at the cell
#: watershed), of which 12 are the outputs; so 45-47, and a margin.
PEAK_BYTES_PER_GRID_VOXEL = 52
#: Bytes per voxel of the input grid held besides: the input as float32, the int32 cell and
#: nucleus labels and the four boolean masks.
OUTPUT_BYTES_PER_VOXEL = 16
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
        stack = np.empty((len(planes), *self.cell_labels.shape), np.int32)
        for layer, plane in zip(stack, planes):
            layer[...] = plane  # no int32 copy of every plane before the stack
        return stack, list(LABEL_CHANNELS)


def check_segment_budget(shape: Sequence[int], voxel_size_um: Sequence[float] | float,
                         grid_voxel_size_um: Sequence[float] = CANONICAL_VOXEL_SIZE_UM, *,
                         extra_bytes: float = 0.0, where: str | Path = "segment_volume"
                         ) -> tuple[int, int, int]:
    """Refuse, before anything is allocated, a segmentation that would not fit in memory.

    Parameters
    ----------
    shape : (Z, Y, X)
        Shape of the RI volume.
    voxel_size_um : (z, y, x) or float
        Its voxel size.
    grid_voxel_size_um : (z, y, x)
        Voxel size of the organelle network's grid, where the work is done.
    extra_bytes : float
        Memory needed besides (e.g. the label stacks of earlier frames).
    where : str or Path
        The file or function named in the message.

    Returns
    -------
    (z, y, x)
        The shape of the organelle network's grid.

    Raises
    ------
    InputError
        When the grid exceeds ``RI2FL_MAX_VOXELS`` or the peak memory
        (:data:`PEAK_BYTES_PER_GRID_VOXEL`, :data:`OUTPUT_BYTES_PER_VOXEL`) exceeds the
        available memory.
    """
    from ..preprocess import check_grid_budget, check_resolves_cells

    check_resolves_cells(voxel_size_um, where)
    n_input = float(np.prod([float(n) for n in shape[-3:]]))
    return check_grid_budget(shape, voxel_size_um, grid_voxel_size_um,
                             bytes_per_voxel=PEAK_BYTES_PER_GRID_VOXEL,
                             extra_bytes=OUTPUT_BYTES_PER_VOXEL * n_input + extra_bytes,
                             where=where, doing="segmenting",
                             grid_name="the organelle network's")


def _check_input(ri: np.ndarray, voxel_size_um: Sequence[float] | float) -> tuple:
    ri = np.asarray(ri)
    if ri.ndim != 3:
        raise InputError(f"expected one (Z, Y, X) RI volume, got shape {ri.shape}",
                         "segment_volume", "segment time points or channels one by one")
    vs = voxel_size_from(voxel_size_um, "segment_volume")
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
                   probabilities: Mapping[str, np.ndarray] | None = None,
                   domain_check: bool | str | Path = True) -> Segmentation:
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
    domain_check : bool, str or Path
        Warn (:class:`ri2fl.preprocess.domain.OffDomainWarning`) when ``ri`` is unlike the
        organelle network's training data; a str or Path names the input in the warning;
        False: no check.

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
    check_segment_budget(ri.shape, vs, grid)
    if domain_check is not False:
        warn_if_off_domain(ri, vs, medium_index, net, domain_check
                           if isinstance(domain_check, str | Path) else "the RI volume")
    ri_grid = to_grid(ri, vs, grid)
    ri_n = normalize_ri(ri_grid, medium_index)
    support = cell_support(ri_grid, grid, medium_index)
    prob = _organelle_probabilities(ri_n, ri.shape, net, probabilities, support)
    if method == "network":
        # a nucleus lies inside a cell: nucleus voxels outside the whole-cell mask are noise
        nuclei = nucleus_instances((prob["nucleus"] > threshold) & (prob["membrane"] > threshold),
                                   grid)
        cells = predict_cells(ri_n, prob["membrane"], nuclei, _load_cell_model(cell_model),
                              grid, membrane_mask=prob["membrane"] > threshold,
                              assign=cell_assign)
        cell_labels, nucleus_labels = (resample_to_shape(a, ri.shape, order=0)
                                       for a in (cells, nuclei))
    else:
        fl = _classifier_fluorescence(ri, vs, medium_index, fl, fl_model, voxel_classifier)
        cell_labels, nucleus_labels, prob = _watershed_route(ri, vs, medium_index, fl,
                                                             voxel_classifier, prob, support)
    prob_in = {k: resample_to_shape(v, ri.shape) for k, v in prob.items()}
    masks = {k: prob_in[k] > threshold for k in ORGANELLE_MASKS}
    # organelles nest: nucleus and droplets inside the cell, nucleoli inside the nucleus
    masks["nucleus"] &= masks["membrane"]
    masks["lipid_droplets"] &= masks["membrane"]
    masks["nucleolus"] &= masks["nucleus"]
    # masks and instances must agree: every labelled nucleus/cell voxel is in its mask
    masks["nucleus"] |= nucleus_labels > 0
    masks["membrane"] |= cell_labels > 0
    return Segmentation(masks, cell_labels.astype(np.int32, copy=False),
                        nucleus_labels.astype(np.int32, copy=False), vs, method,
                        prob_in if return_probabilities else {})


def _organelle_probabilities(ri_n: np.ndarray, ri_shape: tuple, net: torch.nn.Module,
                             probabilities: Mapping[str, np.ndarray] | None,
                             support: np.ndarray) -> dict[str, np.ndarray]:
    """Organelle probabilities on the network's grid, 0 outside the cell ``support``: the
    network's, or ``probabilities`` (input grid) of an earlier call."""
    if probabilities is None:
        prob = predict_organelles(ri_n, net)
        for v in prob.values():
            v *= support  # in place: the arrays are the network's own
        return prob
    if sorted(probabilities) != sorted(net.targets) or any(
            np.shape(v) != ri_shape for v in probabilities.values()):
        raise InputError("probabilities do not match this volume and model", "probabilities",
                         "pass the .probabilities of a call on the same volume")
    return {k: resample_to_shape(v, ri_n.shape) * support for k, v in probabilities.items()}


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
    pred = predict_volume(ri, vs, model=fl_model, targets=channels, medium_index=medium_index,
                          domain_check=False)  # segment_volume has checked
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
    outside = ~resample_to_shape(support, proba.shape[1:], order=0)
    proba[0][outside] = 1.0
    proba[1:, outside] = 0.0
    named = dict(zip(clf.channels, channels, strict=True))
    cells, nuclei = watershed_cells(proba, work, membrane=named.get("membrane"),
                                    nucleus_fl=named.get("nucleus"))
    canonical_shape = prob["nucleus"].shape
    prob = dict(prob)
    prob["nucleus"] = resample_to_shape(proba[2], canonical_shape)
    prob["membrane"] = resample_to_shape(proba[1] + proba[2], canonical_shape)
    return (resample_to_shape(cells, ri.shape, order=0),
            resample_to_shape(nuclei, ri.shape, order=0), prob)
