"""Image and instance metrics of the RI2FL paper (shared/spec/system.md, section 5).

All intensity metrics compare volumes on the fixed, quantitative fluorescence scale (about
[0, 1]); nothing is normalised per volume here, so a model that gets the brightness wrong
loses PSNR/SSIM even when its PCC is perfect.

Instance matching follows StarDist's ``matching`` definitions (Hungarian assignment on IoU,
true positives are pairs with IoU >= threshold; "average precision" is
TP / (TP + FP + FN)), so numbers are comparable with the segmentation literature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment

from ..errors import InputError

#: SSIM window: a Gaussian truncated at 3.5 sigma with a radius of 3 voxels (7 voxels wide),
#: the convention of scikit-image's ``gaussian_weights=True``.
SSIM_WINDOW = 7
SSIM_TRUNCATE = 3.5
SSIM_SIGMA = (SSIM_WINDOW // 2) / SSIM_TRUNCATE
SSIM_K1 = 0.01
SSIM_K2 = 0.03

#: Floor of the standard deviations in :func:`pcc`: a flat volume correlates with nothing.
DEFAULT_MIN_STD = 1e-6


def _pair(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if true.shape != pred.shape:
        raise InputError(f"shapes differ: true {true.shape} vs predicted {pred.shape}",
                         hint="resample the prediction onto the grid of the ground truth")
    if true.size == 0:
        raise InputError("empty arrays cannot be compared")
    return true, pred


def mse(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error."""
    true, pred = _pair(true, pred)
    return float(np.mean((true - pred) ** 2))


def mae(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error."""
    true, pred = _pair(true, pred)
    return float(np.mean(np.abs(true - pred)))


def psnr(true: np.ndarray, pred: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range² / MSE)``.

    With the default ``data_range=1`` this is the paper's ``10 log10(1 / l_MSE)``.
    Identical volumes give ``inf``.
    """
    err = mse(true, pred)
    if err == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / err))


def pcc(true: np.ndarray, pred: np.ndarray, min_std: float = DEFAULT_MIN_STD) -> float:
    """Pearson correlation coefficient with a minimum non-zero standard deviation.

    Each standard deviation is floored at ``min_std`` so that a constant volume (an empty
    channel, a network that predicts nothing) gives a correlation near 0 instead of NaN.
    ri2fl's one Pearson correlation: ``min_std=0`` gives the plain coefficient (NaN for a
    constant input), as structure matching, stitching and profile validation use it.
    """
    true, pred = _pair(true, pred)
    dt = true - true.mean()
    dp = pred - pred.mean()
    cov = float(np.mean(dt * dp))
    sd_t = max(float(np.sqrt(np.mean(dt**2))), min_std)
    sd_p = max(float(np.sqrt(np.mean(dp**2))), min_std)
    if sd_t * sd_p == 0:
        return float("nan")
    return float(np.clip(cov / (sd_t * sd_p), -1.0, 1.0))


def ssim_map(true: np.ndarray, pred: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Voxel-wise SSIM with a 7-voxel Gaussian window (population covariances).

    Written out rather than calling scikit-image so that it also works on volumes thinner
    than the window (scikit-image refuses them) and returns the map for figures; where
    scikit-image runs, :func:`ssim` equals its ``structural_similarity`` to 1e-10 (tested).
    """
    true, pred = _pair(true, pred)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(a, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    ux, uy = blur(true), blur(pred)
    vx = blur(true * true) - ux * ux
    vy = blur(pred * pred) - uy * uy
    vxy = blur(true * pred) - ux * uy
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def ssim(true: np.ndarray, pred: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity, 3D Gaussian window of 7 voxels, c1 = 0.01², c2 = 0.03².

    As in scikit-image, a strip of half a window along each border is left out of the mean
    (where the window would reach outside the volume); axes too short for that keep all
    voxels.
    """
    smap = ssim_map(true, pred, data_range)
    pad = SSIM_WINDOW // 2
    crop = tuple(slice(pad, n - pad) if n > 2 * pad else slice(None) for n in smap.shape)
    return float(smap[crop].mean(dtype=np.float64))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient ``2|A∩B| / (|A| + |B|)`` of two binary masks (1 if both are empty)."""
    a = np.asarray(a).astype(bool)
    b = np.asarray(b).astype(bool)
    if a.shape != b.shape:
        raise InputError(f"mask shapes differ: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return float(2.0 * np.logical_and(a, b).sum() / total)


def iou_matrix(true_labels: np.ndarray, pred_labels: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (true, predicted) instance pair; 0 is background.

    Returns
    -------
    iou : ndarray, shape (n_true, n_pred)
    true_ids, pred_ids : ndarray
        The label values of the rows and columns.
    """
    true_labels = np.asarray(true_labels)
    pred_labels = np.asarray(pred_labels)
    if true_labels.shape != pred_labels.shape:
        raise InputError(f"label shapes differ: {true_labels.shape} vs {pred_labels.shape}")
    true_ids, t_inv = np.unique(true_labels, return_inverse=True)
    pred_ids, p_inv = np.unique(pred_labels, return_inverse=True)
    nt, npred = len(true_ids), len(pred_ids)
    overlap = np.bincount(t_inv.ravel() * npred + p_inv.ravel(),
                          minlength=nt * npred).reshape(nt, npred).astype(np.float64)
    # drop the background row/column (label 0) if present
    keep_t = true_ids != 0
    keep_p = pred_ids != 0
    size_t = overlap.sum(axis=1, keepdims=True)
    size_p = overlap.sum(axis=0, keepdims=True)
    union = size_t + size_p - overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, overlap / union, 0.0)
    return iou[np.ix_(keep_t, keep_p)], true_ids[keep_t], pred_ids[keep_p]


@dataclass(frozen=True)
class InstanceMatch:
    """Result of :func:`match_instances` at one IoU threshold."""

    iou_threshold: float
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    #: TP / (TP + FP + FN): StarDist's "accuracy", the per-threshold average precision.
    average_precision: float
    mean_matched_iou: float
    mean_matched_dice: float
    panoptic_quality: float
    #: (true label, predicted label, IoU) of every matched pair (IoU >= threshold).
    pairs: tuple[tuple[int, int, float], ...] = ()

    def as_dict(self) -> dict:
        """The scalar fields, for a table row."""
        d = asdict(self)
        d.pop("pairs")
        return d


def _safe_div(a: float, b: float) -> float:
    return float(a / b) if b > 0 else 0.0


def _match_from_iou(iou: np.ndarray, true_ids: np.ndarray, pred_ids: np.ndarray,
                    threshold: float) -> InstanceMatch:
    n_true, n_pred = iou.shape
    pairs: list[tuple[int, int, float]] = []
    if n_true and n_pred:
        # StarDist's cost: first maximise the number of pairs above threshold, then their IoU
        # as a tie-breaker (scaled by 1/(2n) so it can never outweigh one more pair).
        above = iou >= threshold
        n_min = min(n_true, n_pred)
        cost = -above.astype(np.float64) - iou / (2.0 * n_min)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            if above[r, c] and iou[r, c] > 0:
                pairs.append((int(true_ids[r]), int(pred_ids[c]), float(iou[r, c])))
    tp = len(pairs)
    fp, fn = n_pred - tp, n_true - tp
    ious = np.array([p[2] for p in pairs], dtype=np.float64)
    sum_iou = float(ious.sum())
    return InstanceMatch(
        iou_threshold=float(threshold), n_true=n_true, n_pred=n_pred, tp=tp, fp=fp, fn=fn,
        precision=_safe_div(tp, tp + fp), recall=_safe_div(tp, tp + fn),
        f1=_safe_div(2 * tp, 2 * tp + fp + fn),
        average_precision=_safe_div(tp, tp + fp + fn),
        mean_matched_iou=_safe_div(sum_iou, tp),
        mean_matched_dice=float(np.mean(2 * ious / (1 + ious))) if tp else 0.0,
        panoptic_quality=_safe_div(sum_iou, tp + fp / 2 + fn / 2),
        pairs=tuple(pairs),
    )


def match_instances(true_labels: np.ndarray, pred_labels: np.ndarray,
                    iou_threshold: float = 0.5) -> InstanceMatch:
    """Match predicted to true instances by Hungarian assignment on IoU.

    Parameters
    ----------
    true_labels, pred_labels : ndarray of int
        Label images of the same shape; 0 is background.
    iou_threshold : float
        A matched pair counts as a true positive when its IoU is at least this.

    Returns
    -------
    InstanceMatch
        Counts, precision, recall, F1, average precision TP/(TP+FP+FN), mean IoU and Dice of
        the matched pairs, and panoptic quality ``sum IoU / (TP + FP/2 + FN/2)``.
    """
    iou, t_ids, p_ids = iou_matrix(true_labels, pred_labels)
    return _match_from_iou(iou, t_ids, p_ids, iou_threshold)


def average_precision(true_labels: np.ndarray, pred_labels: np.ndarray,
                      thresholds: Sequence[float] = (0.5, 0.75, 0.9)) -> dict[float, float]:
    """StarDist-style average precision TP / (TP + FP + FN) at each IoU threshold."""
    iou, t_ids, p_ids = iou_matrix(true_labels, pred_labels)
    return {float(t): _match_from_iou(iou, t_ids, p_ids, t).average_precision
            for t in thresholds}


__all__ = [
    "InstanceMatch", "average_precision", "dice", "iou_matrix", "mae", "match_instances",
    "mse", "pcc", "psnr", "ssim", "ssim_map",
]
