"""Training examples of the nucleus-conditioned cell network (``task: cell_seg``).

The cell network (Choi et al., :mod:`ri2fl.segment.cells`) sees a whole field on a coarse grid
(``voxel_size_um``, default 0.4 x 0.6 x 0.6 µm) as four channels, [normalised RI, membrane
(whole-cell) probability, this nucleus, all other nuclei], and predicts the cell of *this*
nucleus. Every nucleus instance of a paired file (split from its true nucleus mask as at
inference) is one example; the target is the true cell under most of that nucleus's voxels.

The membrane channel is the true whole-cell mask blurred by one voxel (``data.membrane:
mask``, what the shipped ``cell-default`` learnt from), or the membrane probability of an
organelle network (``data.membrane: segment-default`` or a checkpoint path), which is what
the cell network sees in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

__all__ = ["CellExamples", "cell_examples", "membrane_model"]

#: an example: inputs (4, z, y, x) and target (z, y, x), float32 on the cell grid
Example = tuple[np.ndarray, np.ndarray]


def membrane_model(source: str) -> torch.nn.Module | None:
    """The organelle network named by ``data.membrane`` (``None`` for ``"mask"``)."""
    if source == "mask":
        return None
    from ..segment.organelles import load_organelle_model

    return load_organelle_model(source)


def _membrane(sample: Any, ri_norm: np.ndarray, model: torch.nn.Module | None) -> np.ndarray:
    """Membrane probability on the file's grid: the organelle network's, else the true mask."""
    if model is None:
        return ndi.gaussian_filter(sample.masks["membrane"].astype(np.float32), 1.0)
    from ..preprocess import resample_to_shape
    from ..segment import to_grid
    from ..segment.organelles import predict_organelles

    on_grid = to_grid(ri_norm, sample.voxel_size_um, model.voxel_size_um)
    prob = predict_organelles(on_grid, model)["membrane"]
    return resample_to_shape(prob, ri_norm.shape)


def cell_examples(path: str | Path, voxel_size_um: Sequence[float],
                  membrane: torch.nn.Module | None = None,
                  medium_index: float | None = None) -> list[Example]:
    """One (inputs, target) pair per nucleus instance of a paired file.

    Parameters
    ----------
    path : str or Path
        Paired HDF5 with ``masks/nucleus``, ``masks/membrane`` and ``cell_labels``
        (``ri2fl simulate`` writes them).
    voxel_size_um : (z, y, x)
        The cell network's grid.
    membrane : Module, optional
        Organelle network whose membrane probability is the second channel (default: the
        true whole-cell mask blurred by one voxel).
    medium_index : float, optional
        Overrides the file's medium index.
    """
    from ..errors import InputError
    from ..io import read_paired
    from ..preprocess import normalize_ri, resample_to_shape, resampled_shape
    from ..segment.cells import cell_network_inputs, nucleus_instances, soft_nuclei

    s = read_paired(path)
    if s.cell_labels is None or "nucleus" not in s.masks or \
            (membrane is None and "membrane" not in s.masks):
        raise InputError("the cell network learns from cell_labels, masks/nucleus and "
                         "masks/membrane", path, "simulate the data with ri2fl simulate")
    medium = s.medium_index if medium_index is None else medium_index
    ri_n = np.asarray(normalize_ri(s.ri, medium_index=medium), np.float32)
    nuclei = nucleus_instances(s.masks["nucleus"], s.voxel_size_um)
    if nuclei.max() == 0:
        return []
    coarse = resampled_shape(s.ri.shape, s.voxel_size_um, voxel_size_um)
    # anti-aliased, as segmentation's cell step shrinks them (segment.cells)
    inputs = cell_network_inputs(resample_to_shape(ri_n, coarse, anti_alias=True),
                                 resample_to_shape(_membrane(s, ri_n, membrane), coarse,
                                                   anti_alias=True),
                                 soft_nuclei(nuclei, coarse))
    out = []
    for i in range(1, int(nuclei.max()) + 1):
        # the true cell of nucleus i: the cell label under most of its voxels
        owner = np.bincount(s.cell_labels[nuclei == i]).argmax()
        target = resample_to_shape((s.cell_labels == owner).astype(np.float32), coarse,
                                   anti_alias=True)
        out.append((inputs[i - 1], (target > 0.5).astype(np.float32)))
    return out


class CellExamples(torch.utils.data.Dataset):
    """Cell-network examples, in a new random order every epoch, augmented or not.

    Parameters
    ----------
    examples : sequence of (inputs, target)
        From :func:`cell_examples`.
    n_items : int, optional
        Examples per epoch (default: each once).
    augment : dict, optional
        The ``augment`` section: ``flip`` (both in-plane axes), ``rot90`` (in plane) and
        ``noise`` (Gaussian noise of that s.d. on the membrane channel); ``None`` for
        validation (fixed order, no augmentation).
    seed : int
        Seeds the order and the augmentation together with the epoch.
    """

    def __init__(self, examples: Sequence[Example], n_items: int | None = None,
                 augment: dict[str, Any] | None = None, seed: int = 0):
        if not examples:
            from ..errors import ConfigError

            raise ConfigError("no nucleus in the cell network's data", "data.path",
                              "the files need nuclei (masks/nucleus)")
        self.examples = list(examples)
        self.n_items = int(n_items or len(self.examples))
        self.augment, self.seed, self.epoch = augment, int(seed), 0
        self.volumes: list = []  # no fluorescence targets (see Trainer._loss_options)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_items

    def _order(self) -> np.ndarray:
        if self.augment is None:
            return np.arange(self.n_items) % len(self.examples)
        rng = np.random.default_rng((self.seed, self.epoch))
        rounds = -(-self.n_items // len(self.examples))
        return np.concatenate([rng.permutation(len(self.examples)) for _ in range(rounds)])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.examples[int(self._order()[index])]
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, self.epoch, int(index)))
            x, y = _augment(x, y, self.augment, rng)
        return torch.from_numpy(np.ascontiguousarray(x)), \
            torch.from_numpy(np.ascontiguousarray(y)[None])


def _augment(x: np.ndarray, y: np.ndarray, options: dict[str, Any],
             rng: np.random.Generator) -> Example:
    """Random in-plane flips and 90° rotations, and noise on the membrane channel."""
    if options.get("flip", True):
        for axis in (-1, -2):
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis)
    if options.get("rot90", True):
        k = int(rng.integers(4))
        x, y = np.rot90(x, k, axes=(-2, -1)), np.rot90(y, k, axes=(-2, -1))
    x = np.array(x, np.float32)
    noise = float(options.get("noise") or 0.0)
    if noise:
        x[1] = np.clip(x[1] + noise * rng.standard_normal(x[1].shape), 0, 1)
    return x, np.ascontiguousarray(y, np.float32)
