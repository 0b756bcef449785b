"""Training data of the package's default random forests (``ri2fl/segment/_defaults``).

Three forests ship beside the networks: the voxel classifier of the watershed route on the
nucleus and membrane fluorescence (``voxel_fl.npz``) and on RI features (``voxel_ri.npz``),
and the 2D lipid-droplet pixel classifier (``lipid2d.npz``). Each is stored as its sparse
training data and refitted on load. The ``segment-default`` recipe writes them after its
last stage (``classifiers`` in ``configs/recipes/segment-default/recipe.yaml``); copy them
into ``src/ri2fl/segment/_defaults`` to ship them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["INTENSITY_SCALE", "build_default_classifiers", "sparse_labels"]

log = logging.getLogger(__name__)

#: Range of the random intensity factors the default forests also learn from: inferred
#: fluorescence is dimmer in other cell types than in the training fibroblasts (nucleus 0.42
#: inside a held-out epithelial nucleus), so the forests learn relative contrast.
INTENSITY_SCALE = (0.3, 1.5)


def sparse_labels(classes: np.ndarray, rng: np.random.Generator, per_class: int,
                  margin: bool = False) -> np.ndarray:
    """Sparse labels: ``per_class`` random voxels of each class, the rest -1.

    With ``margin``, background voxels are drawn away (2 voxels) from the foreground's border.
    """
    from scipy import ndimage as ndi

    lab = np.full(classes.shape, -1, np.int8)
    for k in np.unique(classes):
        region = classes == k
        if margin and k == 0:
            region &= ~ndi.binary_dilation(classes > 0, iterations=2)
        idx = np.flatnonzero(region)
        lab.flat[rng.choice(idx, min(per_class, idx.size), replace=False)] = k
    return lab


def build_default_classifiers(data: str | Path, out_dir: str | Path, n_files: int = 2,
                              per_class: int = 1500, fl_model: str | None = "default",
                              split: str = "train") -> list[Path]:
    """Write the training data of the three default forests into ``out_dir``.

    Parameters
    ----------
    data : str or Path
        Manifest of simulated fields (masks, cell and nucleus labels); the first ``n_files``
        of ``split`` are used.
    out_dir : str or Path
        Receives ``voxel_fl.npz``, ``voxel_ri.npz`` and ``lipid2d.npz``.
    per_class : int
        Labelled voxels per class and field (a third of it for the droplet classifier).
    fl_model : str, optional
        The RI2FL model whose inferred fluorescence the fluorescence forests learn from, as
        they see it in use; ``None``: the true fluorescence.
    """
    from ..data import list_samples
    from ..infer import predict_volume
    from ..io import read_paired
    from ..preprocess import normalize_ri
    from ..segment import to_grid, train_lipid_classifier, train_voxel_classifier
    from ..segment.watershed import WORKING_VOXEL_SIZE_UM

    rng = np.random.default_rng(0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fl_vols, ri_vols, labels, lipid_imgs, lipid_labs = [], [], [], [], []
    for path, _ in list_samples(data, split)[:n_files]:
        s = read_paired(path)
        vs = s.voxel_size_um
        fl = s.fl if fl_model is None else predict_volume(
            s.ri, vs, model=fl_model, medium_index=s.medium_index).fl
        fl_vols.append(np.stack([to_grid(np.asarray(fl[c]), vs, WORKING_VOXEL_SIZE_UM)
                                 for c in ("nucleus", "membrane")]))
        ri_grid = to_grid(s.ri, vs, WORKING_VOXEL_SIZE_UM)
        ri_vols.append(np.asarray(normalize_ri(ri_grid, medium_index=s.medium_index),
                                  np.float32)[None])
        classes = np.where(s.nucleus_labels > 0, 2, np.where(s.cell_labels > 0, 1, 0))
        labels.append(sparse_labels(to_grid(classes, vs, WORKING_VOXEL_SIZE_UM, order=0), rng,
                                    per_class))
        lipid_imgs.append(np.asarray(fl["lipid_droplets"]).max(0))
        lipid_labs.append(sparse_labels(s.masks["lipid_droplets"].max(0).astype(np.int8), rng,
                                        per_class // 3, margin=True))
    written = [
        train_voxel_classifier(fl_vols, labels, ("nucleus", "membrane"),
                               intensity_scale=INTENSITY_SCALE).save(out / "voxel_fl.npz",
                                                                     overwrite=True),
        train_voxel_classifier(ri_vols, labels, ("ri",),
                               intensity_scale=INTENSITY_SCALE).save(out / "voxel_ri.npz",
                                                                     overwrite=True),
        train_lipid_classifier(lipid_imgs, lipid_labs).save(out / "lipid2d.npz",
                                                            overwrite=True),
    ]
    log.info("classifier training data written to %s", out)
    return [Path(p) for p in written]
