"""Lipid droplets in 2D: a random-forest pixel classifier on the max projection.

The RI2FL paper segments lipid droplets on the maximum-intensity projection of the inferred
lipid channel with an ilastik-style random-forest pixel classifier (probability threshold
0.9, segments under 0.5 µm² removed). This module is that classifier: multi-scale filter
features, a scikit-learn random forest trained from sparse labels, and the post-processing.

Filter scales are given in micrometres and converted to pixels with the pixel size, so one
classifier serves images of different pixel sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import (
    hessian_matrix,
    hessian_matrix_eigvals,
    multiscale_basic_features,
    structure_tensor,
    structure_tensor_eigenvalues,
)
from skimage.measure import label
from sklearn.ensemble import RandomForestClassifier

from .._atomic import atomic_path
from ..errors import ConfigError, InputError
from ._morph import remove_small

#: Filter scales (Gaussian sigmas) in µm: droplets are 0.3-2 µm in radius.
DEFAULT_SIGMAS_UM: tuple[float, ...] = (0.15, 0.3, 0.6, 1.2)
#: Pixel size (µm) of the canonical grid, the default when none is given.
CANONICAL_PIXEL_UM = 0.15
DEFAULT_THRESHOLD = 0.9
DEFAULT_MIN_AREA_UM2 = 0.5
_DEFAULTS_DIR = Path(__file__).with_name("_defaults")


def pixel_features(image: np.ndarray, pixel_size_um: float = CANONICAL_PIXEL_UM,
                   sigmas_um: Sequence[float] = DEFAULT_SIGMAS_UM) -> np.ndarray:
    """Multi-scale filter features of a 2D image, shape (Y, X, F), float32.

    Gaussian smoothing, gradient magnitude and Hessian eigenvalues
    (:func:`skimage.feature.multiscale_basic_features`), plus, at every scale, the Laplacian
    of Gaussian, the difference of Gaussians (sigma, 1.6 sigma) and the two eigenvalues of
    the structure tensor: the ilastik feature set.

    Parameters
    ----------
    image : (Y, X) array
        The image, on its own intensity scale (not normalised here, so that a classifier
        trained on quantitative inferred fluorescence keeps its meaning).
    pixel_size_um : float
        Pixel size in µm; ``sigmas_um`` are divided by it.
    sigmas_um : sequence of float
        Filter scales in µm.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise InputError(f"expected a 2D image, got shape {image.shape}", "lipid classifier")
    sigmas = [s / pixel_size_um for s in sigmas_um]
    feats = [multiscale_basic_features(image, intensity=True, edges=True, texture=True,
                                       sigma_min=min(sigmas), sigma_max=max(sigmas),
                                       num_sigma=len(sigmas), channel_axis=None)]
    extra = [image[..., None]]
    for s in sigmas:
        extra.append(ndi.gaussian_laplace(image, s)[..., None])
        dog = ndi.gaussian_filter(image, s) - ndi.gaussian_filter(image, 1.6 * s)
        extra.append(dog[..., None])
        st = structure_tensor(image, sigma=s, order="rc")
        extra.append(np.moveaxis(np.asarray(structure_tensor_eigenvalues(st)), 0, -1))
        hm = hessian_matrix(image, sigma=s, order="rc", use_gaussian_derivatives=True)
        extra.append(np.moveaxis(np.asarray(hessian_matrix_eigvals(hm)), 0, -1))
    return np.concatenate(feats + extra, axis=-1).astype(np.float32)


@dataclass
class LipidClassifier:
    """A trained lipid-droplet pixel classifier.

    It is fully described by its training data (features are recomputed from the stored
    training images) and its parameters, so it is saved as a plain ``.npz`` of arrays
    (:meth:`save`) and rebuilt deterministically by :meth:`load`: no pickle is ever loaded.
    """

    forest: RandomForestClassifier
    pixel_size_um: float
    sigmas_um: tuple[float, ...]
    training_images: list[np.ndarray] = field(default_factory=list, repr=False)
    training_labels: list[np.ndarray] = field(default_factory=list, repr=False)

    def predict_proba(self, image: np.ndarray, pixel_size_um: float | None = None) -> np.ndarray:
        """Probability (Y, X) that each pixel belongs to a lipid droplet."""
        px = self.pixel_size_um if pixel_size_um is None else float(pixel_size_um)
        feats = pixel_features(image, px, self.sigmas_um)
        proba = self.forest.predict_proba(feats.reshape(-1, feats.shape[-1]))
        droplet_col = list(self.forest.classes_).index(1)
        return proba[:, droplet_col].reshape(image.shape).astype(np.float32)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the training images, sparse labels and parameters to ``path`` (.npz).

        ``overwrite`` replaces a file ri2fl wrote (anything else is never replaced).
        """
        from .. import __version__

        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "ri2fl_version": np.asarray(__version__),  # first member: ri2fl's mark
            "pixel_size_um": np.float64(self.pixel_size_um),
            "sigmas_um": np.asarray(self.sigmas_um, dtype=np.float64),
            "n_estimators": np.int64(self.forest.n_estimators),
            "max_depth": np.int64(self.forest.max_depth or 0),
            "random_state": np.int64(self.forest.random_state or 0),
        }
        for i, (img, lab) in enumerate(zip(self.training_images, self.training_labels)):
            arrays[f"image_{i}"] = img.astype(np.float32)
            arrays[f"labels_{i}"] = lab.astype(np.int8)
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LipidClassifier:
        """Rebuild a classifier saved by :meth:`save` (retrains it, deterministically)."""
        path = Path(path)
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"not a saved lipid classifier ({exc})", path) from None
        with z:
            n = sum(1 for k in z.files if k.startswith("image_"))
            if n == 0 or "sigmas_um" not in z.files:
                raise InputError("not a saved lipid classifier (no training images)", path)
            images = [z[f"image_{i}"] for i in range(n)]
            labels = [z[f"labels_{i}"] for i in range(n)]
            return train_lipid_classifier(
                images, labels, pixel_size_um=float(z["pixel_size_um"]),
                sigmas_um=tuple(float(s) for s in z["sigmas_um"]),
                n_estimators=int(z["n_estimators"]), max_depth=int(z["max_depth"]) or None,
                random_state=int(z["random_state"]))


def train_lipid_classifier(images: Sequence[np.ndarray], sparse_labels: Sequence[np.ndarray],
                           pixel_size_um: float = CANONICAL_PIXEL_UM,
                           sigmas_um: Sequence[float] = DEFAULT_SIGMAS_UM,
                           n_estimators: int = 60, max_depth: int | None = 16,
                           random_state: int = 0) -> LipidClassifier:
    """Train the pixel classifier from sparsely labelled 2D images (ilastik-style).

    Parameters
    ----------
    images : sequence of (Y, X) arrays
        Max projections of the (inferred) lipid channel.
    sparse_labels : sequence of (Y, X) int arrays
        Per pixel: 1 = droplet, 0 = not droplet, -1 (or any negative) = unlabelled.
        A few scribbles per class suffice.
    pixel_size_um : float
        Pixel size of the training images (µm).
    sigmas_um, n_estimators, max_depth, random_state
        Feature scales and forest parameters; the result is deterministic for a given seed.

    Returns
    -------
    LipidClassifier
    """
    if len(images) != len(sparse_labels) or not images:
        raise ConfigError("need one label image per training image (and at least one)",
                          "train_lipid_classifier")
    X, y = [], []
    for img, lab in zip(images, sparse_labels):
        lab = np.asarray(lab)
        if lab.shape != np.shape(img):
            raise ConfigError(f"label shape {lab.shape} differs from image shape "
                              f"{np.shape(img)}", "train_lipid_classifier")
        keep = lab >= 0
        feats = pixel_features(img, pixel_size_um, sigmas_um)
        X.append(feats[keep])
        y.append((lab[keep] > 0).astype(np.int8))
    X_all, y_all = np.concatenate(X), np.concatenate(y)
    if np.unique(y_all).size < 2:
        raise ConfigError("sparse labels must include both droplet (1) and background (0) "
                          "pixels", "train_lipid_classifier")
    forest = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                    min_samples_leaf=2, class_weight="balanced",
                                    random_state=random_state, n_jobs=1)
    forest.fit(X_all, y_all)
    return LipidClassifier(forest, float(pixel_size_um), tuple(float(s) for s in sigmas_um),
                           [np.asarray(i, dtype=np.float32) for i in images],
                           [np.asarray(lab, dtype=np.int8) for lab in sparse_labels])


@lru_cache(maxsize=1)
def default_lipid_classifier() -> LipidClassifier:
    """The shipped classifier, rebuilt from its training data on first use (then cached).

    Trained on max projections of simulated fibroblast lipid fluorescence with sparse labels
    sampled from the ground-truth droplet masks (``scripts/train_segmentation.py``).
    """
    path = _DEFAULTS_DIR / "lipid2d.npz"
    if not path.exists():
        from ..errors import ModelError

        raise ModelError("the default lipid-droplet classifier is missing", path,
                         "reinstall ri2fl, or train one with train_lipid_classifier")
    return LipidClassifier.load(path)


def segment_lipid_droplets_2d(lipid: np.ndarray, voxel_size_um: Sequence[float] | float,
                              classifier: LipidClassifier | None = None,
                              threshold: float = DEFAULT_THRESHOLD,
                              min_area_um2: float = DEFAULT_MIN_AREA_UM2,
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Segment lipid droplets on the max projection of a lipid channel.

    Parameters
    ----------
    lipid : (Z, Y, X) or (Y, X) array
        The inferred lipid-droplet fluorescence (a 3D volume is max-projected along z).
    voxel_size_um : (z, y, x) or (y, x) or float
        Voxel or pixel size in µm (y and x must be equal).
    classifier : LipidClassifier, optional
        Default: :func:`default_lipid_classifier`.
    threshold : float
        Probability above which a pixel is droplet (paper: 0.9).
    min_area_um2 : float
        Segments smaller than this are removed (paper: 0.5 µm²).

    Returns
    -------
    labels : (Y, X) int32
        One label per droplet, 0 = background.
    probability : (Y, X) float32
        The classifier's droplet probability.
    """
    lipid = np.asarray(lipid, dtype=np.float32)
    image = lipid.max(axis=0) if lipid.ndim == 3 else lipid
    vs = np.atleast_1d(np.asarray(voxel_size_um, dtype=float))
    pixel = float(vs[-1])
    if vs.size > 1 and not np.isclose(vs[-1], vs[-2], rtol=1e-3):
        raise InputError(f"anisotropic pixels {tuple(vs[-2:])} µm", "lipid classifier",
                         "resample y and x to the same pixel size first")
    clf = classifier if classifier is not None else default_lipid_classifier()
    proba = clf.predict_proba(image, pixel)
    mask = proba > threshold
    min_pixels = int(np.ceil(min_area_um2 / pixel**2))
    mask = remove_small(mask, min_pixels)
    return label(mask, connectivity=1).astype(np.int32), proba
