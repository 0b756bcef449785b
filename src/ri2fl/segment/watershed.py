"""The classical cell route of RI2FL: voxel classifier, nucleus threshold, seeded watershed.

A random forest gives background / cytoplasm / nucleus probabilities per voxel from
multi-scale filter features of the inferred nucleus and membrane fluorescence (or of the RI
itself when no fluorescence is given); nuclei are the thresholded nucleus probability, split
into instances as in :func:`ri2fl.segment.cells.nucleus_instances`; cells are grown from the
nuclei by marker-controlled watershed (:func:`skimage.segmentation.watershed`) over the
cell foreground. The work is done on a coarser working grid (default 0.4 x 0.3 x 0.3 µm),
which is ample for cell-scale decisions and keeps the forest's cost small.

A classifier is stored as a plain ``.npz`` of its sampled training features, their classes
and its parameters, and refitted deterministically on load: no pickle is ever read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed
from sklearn.ensemble import RandomForestClassifier

from .._atomic import atomic_path
from ..errors import ConfigError, InputError, ModelError
from .cells import MIN_NUCLEUS_VOXELS, NUCLEUS_MERGE_GAP_UM, finalize_cells, nucleus_instances

#: Classes of the voxel classifier, in the order of its probability output.
VOXEL_CLASSES: tuple[str, ...] = ("background", "cytoplasm", "nucleus")
#: Voxel size (z, y, x) µm of the working grid of the classical route.
WORKING_VOXEL_SIZE_UM: tuple[float, float, float] = (0.4, 0.3, 0.3)
#: Feature scales (Gaussian sigmas) in µm.
DEFAULT_SIGMAS_UM: tuple[float, ...] = (0.3, 0.6, 1.2, 2.4)
#: Weight (per µm) of the distance to the nearest nucleus in the watershed landscape.
DISTANCE_WEIGHT_PER_UM = 0.02
#: Extra nucleus seeds from the inferred nucleus fluorescence (:func:`fluorescence_seeds`):
#: its level, the smallest blob (µm³) and the least distance (µm) to a classified nucleus.
FL_SEED_THRESHOLD = 0.3
FL_SEED_MIN_VOLUME_UM3 = 6.0
FL_SEED_GAP_UM = 1.0
_DEFAULTS_DIR = Path(__file__).with_name("_defaults")


def voxel_features(channels: np.ndarray, voxel_size_um: Sequence[float],
                   sigmas_um: Sequence[float] = DEFAULT_SIGMAS_UM) -> np.ndarray:
    """Multi-scale features of a (C, Z, Y, X) stack: (Z, Y, X, F) float32.

    Per channel: the value, and at every scale the Gaussian smoothing, the gradient
    magnitude and the Laplacian of Gaussian. Sigmas are anisotropic in voxels so that they
    are isotropic in µm.
    """
    channels = np.asarray(channels, dtype=np.float32)
    if channels.ndim != 4:
        raise InputError(f"expected (C, Z, Y, X) channels, got shape {channels.shape}",
                         "voxel classifier")
    feats = []
    for ch in channels:
        feats.append(ch)
        for s in sigmas_um:
            sigma = [s / v for v in voxel_size_um]
            feats.append(ndi.gaussian_filter(ch, sigma))
            feats.append(ndi.gaussian_gradient_magnitude(ch, sigma))
            feats.append(ndi.gaussian_laplace(ch, sigma))
    return np.stack(feats, axis=-1)


@dataclass
class VoxelClassifier:
    """A trained background / cytoplasm / nucleus voxel classifier.

    Attributes
    ----------
    forest : RandomForestClassifier
    channels : tuple of str
        Names of the input channels in order, e.g. ``("nucleus", "membrane")`` or ``("ri",)``.
    voxel_size_um : (z, y, x)
        The grid the classifier works on.
    sigmas_um : tuple of float
        Feature scales.
    """

    forest: RandomForestClassifier
    channels: tuple[str, ...]
    voxel_size_um: tuple[float, float, float] = WORKING_VOXEL_SIZE_UM
    sigmas_um: tuple[float, ...] = DEFAULT_SIGMAS_UM
    intensity_scale: tuple[float, float] | None = None
    training_features: np.ndarray | None = field(default=None, repr=False)
    training_targets: np.ndarray | None = field(default=None, repr=False)

    def predict_proba(self, channels: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
        """Class probabilities (3, Z, Y, X) of a (C, Z, Y, X) stack on the working grid."""
        if len(channels) != len(self.channels):
            raise InputError(f"classifier expects channels {self.channels}, got "
                             f"{len(channels)} channel(s)", "voxel classifier")
        feats = voxel_features(channels, self.voxel_size_um, self.sigmas_um)
        flat = feats.reshape(-1, feats.shape[-1])
        out = np.zeros((flat.shape[0], len(VOXEL_CLASSES)), np.float32)
        cols = [int(c) for c in self.forest.classes_]  # the classes present in training
        for start in range(0, flat.shape[0], chunk):
            out[start:start + chunk][:, cols] = self.forest.predict_proba(flat[start:start + chunk])
        return np.moveaxis(out.reshape(*feats.shape[:-1], -1), -1, 0)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the sampled training features, their classes and the parameters (.npz).

        ``overwrite`` replaces a file ri2fl wrote (anything else is never replaced).
        """
        from .. import __version__

        arrays: dict[str, np.ndarray] = {
            "ri2fl_version": np.asarray(__version__),  # first member: ri2fl's mark
            "channels": np.asarray(self.channels),
            "voxel_size_um": np.asarray(self.voxel_size_um, dtype=np.float64),
            "sigmas_um": np.asarray(self.sigmas_um, dtype=np.float64),
            "n_estimators": np.int64(self.forest.n_estimators),
            "max_depth": np.int64(self.forest.max_depth or 0),
            "random_state": np.int64(self.forest.random_state or 0),
            "intensity_scale": np.asarray(self.intensity_scale or (1.0, 1.0), np.float64),
            "features": np.asarray(self.training_features, np.float32),
            "targets": np.asarray(self.training_targets, np.int8),
        }
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> VoxelClassifier:
        """Rebuild a classifier written by :meth:`save` (refitted deterministically)."""
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"not a saved voxel classifier ({exc})", path) from None
        with z:
            if not {"channels", "features", "targets"} <= set(z.files):
                raise InputError("not a saved voxel classifier (no training features)", path)
            channels = tuple(str(c) for c in z["channels"])
            sigmas = tuple(float(s) for s in z["sigmas_um"])
            X = z["features"]
            if X.shape[1] != n_features(len(channels), len(sigmas)):
                raise InputError(f"saved features ({X.shape[1]}) do not match this version's "
                                 "feature set", path, "retrain the classifier")
            scale = tuple(float(v) for v in z["intensity_scale"]) \
                if "intensity_scale" in z.files else (1.0, 1.0)
            return fit_voxel_classifier(
                X, z["targets"], channels, tuple(float(v) for v in z["voxel_size_um"]), sigmas,
                n_estimators=int(z["n_estimators"]), max_depth=int(z["max_depth"]) or None,
                random_state=int(z["random_state"]),
                intensity_scale=None if scale == (1.0, 1.0) else scale)


def n_features(n_channels: int, n_sigmas: int) -> int:
    """Number of features :func:`voxel_features` computes."""
    return n_channels * (1 + 3 * n_sigmas)


def train_voxel_classifier(volumes: Sequence[np.ndarray], sparse_labels: Sequence[np.ndarray],
                           channels: Sequence[str] = ("nucleus", "membrane"),
                           voxel_size_um: Sequence[float] = WORKING_VOXEL_SIZE_UM,
                           sigmas_um: Sequence[float] = DEFAULT_SIGMAS_UM,
                           n_estimators: int = 40, max_depth: int | None = 14,
                           random_state: int = 0,
                           intensity_scale: tuple[float, float] | None = None
                           ) -> VoxelClassifier:
    """Train the voxel classifier from sparsely labelled volumes.

    Parameters
    ----------
    volumes : sequence of (C, Z, Y, X) arrays
        Input channels on the working grid (``voxel_size_um``).
    sparse_labels : sequence of (Z, Y, X) int arrays
        0 background, 1 cytoplasm, 2 nucleus, negative = unlabelled.
    channels : sequence of str
        Names of the C channels, kept with the classifier.
    voxel_size_um, sigmas_um, n_estimators, max_depth, random_state
        Grid, feature scales and forest parameters (deterministic for a given seed).
    intensity_scale : (float, float), optional
        Also learn from the training voxels with their intensities scaled by random factors
        in this range (log-uniform), so that the forest relies on relative contrast: RI
        contrast differs between cell types (a round HL60 is denser than a flat fibroblast).
        Exact and cheap, since every feature is proportional to the input intensity.
    """
    if len(volumes) != len(sparse_labels) or not volumes:
        raise ConfigError("need one label volume per training volume (and at least one)",
                          "train_voxel_classifier")
    X, y = [], []
    for vol, lab in zip(volumes, sparse_labels):
        vol = np.asarray(vol, np.float32)
        lab = np.asarray(lab)
        if vol.ndim != 4 or lab.shape != vol.shape[1:] or len(vol) != len(channels):
            raise ConfigError(f"volume {vol.shape} / labels {lab.shape} do not fit channels "
                              f"{tuple(channels)}", "train_voxel_classifier")
        keep = lab >= 0
        X.append(voxel_features(vol, voxel_size_um, sigmas_um)[keep])
        y.append(lab[keep].astype(np.int8))
    return fit_voxel_classifier(np.concatenate(X), np.concatenate(y), channels,
                                voxel_size_um, sigmas_um, n_estimators, max_depth,
                                random_state, intensity_scale)


def fit_voxel_classifier(features: np.ndarray, targets: np.ndarray, channels: Sequence[str],
                         voxel_size_um: Sequence[float] = WORKING_VOXEL_SIZE_UM,
                         sigmas_um: Sequence[float] = DEFAULT_SIGMAS_UM,
                         n_estimators: int = 40, max_depth: int | None = 14,
                         random_state: int = 0,
                         intensity_scale: tuple[float, float] | None = None,
                         copies: int = 3) -> VoxelClassifier:
    """Fit the forest on (N, F) features and their classes (0, 1, 2).

    With ``intensity_scale``, ``copies`` rescaled copies of the samples are added (see
    :func:`train_voxel_classifier`).
    """
    features = np.asarray(features, np.float32)
    targets = np.asarray(targets, np.int8)
    classes = np.unique(targets)
    if not set(classes) <= {0, 1, 2} or classes.size < 2:
        raise ConfigError("labels must be 0 (background), 1 (cytoplasm), 2 (nucleus), with "
                          "at least two classes present", "train_voxel_classifier")
    forest = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                    min_samples_leaf=3, class_weight="balanced",
                                    random_state=random_state, n_jobs=1)
    X, y = features, targets
    if intensity_scale is not None:
        rng = np.random.default_rng(random_state)
        lo, hi = np.log(intensity_scale)
        factors = np.exp(rng.uniform(lo, hi, (copies, len(features), 1))).astype(np.float32)
        X = np.concatenate([features, *(features * f for f in factors)])
        y = np.tile(targets, copies + 1)
    forest.fit(X, y)
    scale = tuple(float(v) for v in intensity_scale) if intensity_scale else None
    return VoxelClassifier(forest, tuple(channels), tuple(float(v) for v in voxel_size_um),
                           tuple(float(s) for s in sigmas_um), scale, features, targets)


@lru_cache(maxsize=2)
def default_voxel_classifier(inputs: str = "fl") -> VoxelClassifier:
    """The shipped classifier for ``inputs="fl"`` (nucleus + membrane) or ``"ri"``.

    Rebuilt on first use from the simulated fibroblast training data stored with the
    package (``scripts/train_segmentation.py`` writes it), then cached.
    """
    if inputs not in ("fl", "ri"):
        raise ConfigError(f"unknown classifier inputs {inputs!r}", "inputs", "use 'fl' or 'ri'")
    path = _DEFAULTS_DIR / f"voxel_{inputs}.npz"
    if not path.exists():
        raise ModelError("the default voxel classifier is missing", path,
                         "reinstall ri2fl, or train one with train_voxel_classifier")
    return VoxelClassifier.load(path)


def fluorescence_seeds(nucleus_fl: np.ndarray, nuclei: np.ndarray, foreground: np.ndarray,
                       voxel_size_um: Sequence[float], threshold: float = FL_SEED_THRESHOLD,
                       min_volume_um3: float = FL_SEED_MIN_VOLUME_UM3,
                       gap_um: float = FL_SEED_GAP_UM) -> np.ndarray:
    """Add the nuclei the voxel classifier missed, from the nucleus fluorescence itself.

    The forest learns what a nucleus looks like from nuclei the fluorescence model paints
    brightly; small crowded nuclei it paints dimmer and only in part (mean 0.10-0.19 where
    others hold 0.32-0.55) get nucleus probabilities under the threshold, and their cells
    are lost or go to a neighbour. Blobs of the lightly smoothed fluorescence above
    ``threshold``, inside the cell foreground, at least ``min_volume_um3`` large and further
    than ``gap_um`` from every classified nucleus become nuclei too.

    Returns
    -------
    ndarray (Z, Y, X) int32
        ``nuclei`` with the new nuclei appended (labels ``nuclei.max() + 1``...).
    """
    vs = np.asarray(voxel_size_um, float)
    smooth = ndi.gaussian_filter(np.asarray(nucleus_fl, np.float32), 0.3 / vs)
    far = ndi.distance_transform_edt(nuclei == 0, sampling=vs) > gap_um
    blobs, n = ndi.label((smooth > threshold) & foreground & far)
    out = nuclei.astype(np.int32, copy=True)
    if n == 0:
        return out
    volume = np.bincount(blobs.ravel(), minlength=n + 1)[1:] * float(np.prod(vs))
    keep = np.flatnonzero(volume >= min_volume_um3) + 1
    lut = np.zeros(n + 1, np.int32)
    lut[keep] = out.max() + np.arange(1, len(keep) + 1)
    new = lut[blobs]
    out[new > 0] = new[new > 0]
    return out


def watershed_cells(proba: np.ndarray, voxel_size_um: Sequence[float],
                    membrane: np.ndarray | None = None, nucleus_threshold: float = 0.5,
                    foreground_threshold: float = 0.5,
                    min_nucleus_voxels: int = MIN_NUCLEUS_VOXELS,
                    merge_gap_um: float = NUCLEUS_MERGE_GAP_UM,
                    nucleus_fl: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Nuclei by threshold and cells by marker-controlled watershed.

    Parameters
    ----------
    proba : (3, Z, Y, X) float
        Background / cytoplasm / nucleus probabilities.
    voxel_size_um : (z, y, x)
        Voxel size of ``proba``.
    membrane : (Z, Y, X) float, optional
        Membrane fluorescence on the same grid: bright boundaries between touching cells
        become ridges of the watershed landscape.
    nucleus_threshold, foreground_threshold : float
        Probability thresholds for nucleus and for cell (cytoplasm + nucleus).
    min_nucleus_voxels, merge_gap_um
        See :func:`ri2fl.segment.cells.nucleus_instances`.
    nucleus_fl : (Z, Y, X) float, optional
        Inferred nucleus fluorescence on the same grid: seeds the nuclei the classifier
        missed (:func:`fluorescence_seeds`).

    Returns
    -------
    cell_labels, nucleus_labels : (Z, Y, X) int32
        Cell *i* grows from nucleus *i*; cells without a nucleus are not reported.
    """
    smooth = [ndi.gaussian_filter(p, [0.5 * 0.4 / v for v in voxel_size_um]) for p in proba]
    nuclei = nucleus_instances(smooth[2] > nucleus_threshold, voxel_size_um,
                               min_nucleus_voxels, merge_gap_um)
    cell_voxels = (smooth[1] + smooth[2]) > foreground_threshold
    if nucleus_fl is not None:
        nuclei = fluorescence_seeds(nucleus_fl, nuclei, cell_voxels, voxel_size_um)
    if nuclei.max() == 0:
        return np.zeros(nuclei.shape, np.int32), nuclei
    foreground = ndi.binary_fill_holes(cell_voxels) | (nuclei > 0)
    landscape = smooth[0].copy()
    if membrane is not None:
        m = np.asarray(membrane, np.float32)
        scale = float(np.percentile(m[foreground], 99)) if foreground.any() else 0.0
        if scale > 0:
            landscape += np.clip(m / scale, 0, 1)
    distance = ndi.distance_transform_edt(nuclei == 0, sampling=voxel_size_um)
    landscape += DISTANCE_WEIGHT_PER_UM * distance
    cells = watershed(landscape, markers=nuclei, mask=foreground)
    return finalize_cells(cells.astype(np.int32), nuclei), nuclei
