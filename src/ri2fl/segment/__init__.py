"""Segmentation: organelle masks, nuclei and individual cells from RI (Choi et al., RI2FL).

- :func:`segment_volume`: the one call most users need, ``method="network"`` (multi-task
  organelle U-Net + nucleus-conditioned cell network) or ``"watershed"`` (random-forest
  voxel classifier + seeded watershed).
- :mod:`.organelles`, :mod:`.cells`, :mod:`.watershed`: the steps, usable on their own.
- :func:`segment_lipid_droplets_2d`, :func:`train_lipid_classifier`: lipid droplets on the
  max projection with a random-forest pixel classifier trainable from sparse labels.
- :func:`to_grid`: a volume onto a network's grid as segmentation does (the one resampler,
  :func:`ri2fl.preprocess.resample`, anti-aliased; also used to train the networks).
"""

from ._grid import to_grid
from .api import LABEL_CHANNELS, METHODS, Segmentation, check_segment_budget, segment_volume
from .cells import nucleus_instances, predict_cells
from .lipid2d import (
    LipidClassifier,
    default_lipid_classifier,
    segment_lipid_droplets_2d,
    train_lipid_classifier,
)
from .organelles import cell_support, predict_organelles
from .watershed import (
    VoxelClassifier,
    default_voxel_classifier,
    train_voxel_classifier,
    watershed_cells,
)

__all__ = [
    "LABEL_CHANNELS", "METHODS", "LipidClassifier", "Segmentation", "VoxelClassifier",
    "cell_support", "check_segment_budget", "default_lipid_classifier",
    "default_voxel_classifier", "nucleus_instances",
    "predict_cells", "predict_organelles", "segment_lipid_droplets_2d",
    "segment_volume", "to_grid", "train_lipid_classifier",
    "train_voxel_classifier", "watershed_cells",
]
