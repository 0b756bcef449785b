"""Structure-level evaluation: detect individual structures and match them by centroid.

The paper's structure test (shared/spec/system.md, section 5) detects individual lipid
droplets in inferred and real fluorescence, pairs them, and reports the fraction of real
structures matched (~90%), the mean centroid distance (0.32 µm) and the correlation of the
matched structures' intensities (r = 0.77).

Detection is a band-pass (difference of Gaussians, a close approximation of the LoG blob
detector) tuned to the expected size of each kind of structure, a threshold on the band-pass
response, connected components and a minimum volume. By default each volume gets its own
threshold, a fixed fraction of its strongest response (above an absolute floor), as each
image would be thresholded on its own: whether the structures are there and where is then
measured apart from how bright they are, which the matched pairs' intensity correlation and
the voxel metrics report. The alternative, the true volume's threshold applied to both
(``threshold="true"``), counts a globally dimmer prediction as missing structures: on
degraded copies of the truth of 16 held-out fields (blurred by 0.15 µm, x 0.8, noise 0.01)
it matched 83 % of the mitochondrial fragments, 93 % of the droplets and 95 % of the nucleoli
within 0.5 µm, against 92 / 96 / 100 % with a threshold per volume (x 0.8 alone: 95 / 96 / 98
against 100 / 100 / 100 %). Matching is a Hungarian assignment on centroid distance in µm with
a distance cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from skimage.filters import difference_of_gaussians
from skimage.measure import label, regionprops_table

from ..errors import ConfigError, InputError
from .metrics import pcc


@dataclass(frozen=True)
class StructureKind:
    """Size prior of one kind of structure.

    Attributes
    ----------
    radius_um : float
        Typical radius; sets the band-pass scale (sigma = radius / sqrt(3), the LoG optimum
        for a 3D ball).
    min_volume_um3 : float
        Smaller connected components are noise.
    rel_threshold : float
        Threshold as a fraction of the 99.9th percentile of the true band-pass response.
    max_distance_um : float
        Default cap for matching centroids.
    min_threshold : float
        Absolute floor of the threshold on the fixed fluorescence scale, so that a volume
        without any such structure yields none instead of its noise peaks.
    """

    radius_um: float
    min_volume_um3: float
    rel_threshold: float
    max_distance_um: float
    min_threshold: float = 0.02


#: Size priors of the structures the paper evaluates (droplets 0.2-1 µm, nucleoli ~1-2 µm,
#: mitochondrial fragments ~0.3 µm thick).
KINDS: dict[str, StructureKind] = {
    "lipid_droplets": StructureKind(radius_um=0.4, min_volume_um3=0.02, rel_threshold=0.3,
                                    max_distance_um=1.0),
    "nucleolus": StructureKind(radius_um=0.9, min_volume_um3=0.2, rel_threshold=0.3,
                               max_distance_um=1.5),
    "mitochondria": StructureKind(radius_um=0.25, min_volume_um3=0.02, rel_threshold=0.3,
                                  max_distance_um=1.0),
}


@dataclass
class Structures:
    """Structures found in one volume; one entry per structure, positions in µm (z, y, x)."""

    labels: np.ndarray
    centroids_um: np.ndarray
    intensity: np.ndarray
    volume_um3: np.ndarray
    #: the band-pass threshold they were detected with
    threshold: float = float("nan")

    def __len__(self) -> int:
        return len(self.intensity)


@dataclass
class StructureMatch:
    """Result of :func:`match_structures`."""

    kind: str
    max_distance_um: float
    n_true: int
    n_pred: int
    n_matched: int
    #: matched / true structures (the paper's "fraction matched").
    fraction_matched: float
    #: matched / predicted structures.
    precision: float
    mean_distance_um: float
    median_distance_um: float
    #: Pearson r of the peak intensities of matched pairs (NaN with fewer than 3 pairs).
    intensity_r: float
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int))
    distances_um: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: volume (µm³) of each true structure, in detection order (``pairs[:, 0]`` indexes it).
    true_volume_um3: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: per true structure: some of its voxels lie in a predicted structure.
    true_overlapped: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    #: per true structure: a predicted structure it overlaps covers another true one as well
    #: (the prediction joined them, so one centroid stands for several).
    true_joined: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def as_dict(self, prefix: str = "") -> dict:
        """The scalar fields, keys optionally prefixed (for a metrics table row)."""
        d = asdict(self)
        for key in ("pairs", "distances_um", "true_volume_um3", "true_overlapped",
                    "true_joined", "kind"):
            d.pop(key)
        return {f"{prefix}{k}": v for k, v in d.items()}

    def fraction_within(self, distance_um: float) -> float:
        """Fraction of true structures matched within ``distance_um`` (<= the cap)."""
        if self.n_true == 0:
            return float("nan")
        return float(np.count_nonzero(self.distances_um <= distance_um) / self.n_true)

    def matched_within(self, distance_um: float) -> np.ndarray:
        """Per true structure: matched within ``distance_um`` (bool, detection order)."""
        hit = np.zeros(self.n_true, bool)
        hit[self.pairs[self.distances_um <= distance_um, 0]] = True
        return hit


def _kind(kind: str) -> StructureKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown structure kind {kind!r}", "kind",
                          f"use one of {sorted(KINDS)}") from None


def band_pass(fl: np.ndarray, voxel_size_um: Sequence[float], radius_um: float) -> np.ndarray:
    """Difference-of-Gaussians response tuned to balls of ``radius_um`` (anisotropic voxels)."""
    vs = np.asarray(voxel_size_um, dtype=float)
    low = radius_um / np.sqrt(3) / vs
    return difference_of_gaussians(np.asarray(fl, dtype=np.float32), low, 3 * low)


def detection_threshold(fl: np.ndarray, voxel_size_um: Sequence[float],
                        kind: str = "lipid_droplets", response: np.ndarray | None = None
                        ) -> float:
    """Band-pass threshold of one volume: a fraction of its strongest response, above a floor.

    ``response`` is the volume's :func:`band_pass`, when already computed.
    """
    k = _kind(kind)
    if response is None:
        response = band_pass(fl, voxel_size_um, k.radius_um)
    top = float(np.percentile(response, 99.9))
    return max(k.rel_threshold * top, k.min_threshold)


def detect_structures(fl: np.ndarray, voxel_size_um: Sequence[float],
                      kind: str = "lipid_droplets", threshold: float | None = None,
                      response: np.ndarray | None = None) -> Structures:
    """Detect individual structures in one fluorescence volume.

    Parameters
    ----------
    fl : ndarray (Z, Y, X)
        Fluorescence on the fixed intensity scale.
    voxel_size_um : (z, y, x)
        Voxel size in µm.
    kind : {"lipid_droplets", "nucleolus", "mitochondria"}
        Sets the size prior (:data:`KINDS`).
    threshold : float, optional
        Threshold on the band-pass response; default from this volume
        (:func:`detection_threshold`).
    response : ndarray, optional
        The volume's :func:`band_pass`, when already computed.

    Returns
    -------
    Structures
        Label image, response-weighted centroids (µm), peak intensity and volume of each.
    """
    fl = np.asarray(fl, dtype=np.float32)
    if fl.ndim != 3:
        raise InputError(f"expected a (Z, Y, X) volume, got shape {fl.shape}")
    k = _kind(kind)
    vs = tuple(float(v) for v in voxel_size_um)
    if response is None:
        response = band_pass(fl, vs, k.radius_um)
    if threshold is None:
        threshold = detection_threshold(fl, vs, kind, response)
    labels = label(response > threshold)
    empty = np.zeros(0)
    if labels.max() == 0:
        return Structures(labels, np.zeros((0, 3)), empty, empty, float(threshold))
    # peak of the lightly smoothed volume: unlike a mean over the component it does not
    # depend on how far the thresholded band-pass reaches into the dark surroundings
    smooth = ndi.gaussian_filter(fl, k.radius_um / np.sqrt(3) / np.asarray(vs) / 2)
    props = regionprops_table(labels, intensity_image=np.stack([np.clip(response, 0, None),
                                                                smooth], axis=-1),
                              spacing=vs, properties=("label", "area", "centroid_weighted",
                                                      "intensity_max"))
    keep = props["area"] >= k.min_volume_um3
    kept_ids = props["label"][keep]
    # relabel so that label i+1 is structure i
    lut = np.zeros(labels.max() + 1, dtype=np.int32)
    lut[kept_ids] = np.arange(1, len(kept_ids) + 1)
    centroids = np.stack([props[f"centroid_weighted-{a}-0"][keep] for a in range(3)], axis=1)
    # regionprops' weighted centroids with spacing are in µm already
    return Structures(labels=lut[labels], centroids_um=centroids,
                      intensity=props["intensity_max-1"][keep],
                      volume_um3=props["area"][keep], threshold=float(threshold))


def match_centroids(true_um: np.ndarray, pred_um: np.ndarray, max_distance_um: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of two point sets with a distance cap.

    Returns
    -------
    pairs : ndarray (K, 2) of int
        Indices (true, pred) of the matched points.
    distances : ndarray (K,)
        Their distances, all <= ``max_distance_um``.
    """
    true_um = np.asarray(true_um, float).reshape(-1, 3)
    pred_um = np.asarray(pred_um, float).reshape(-1, 3)
    if len(true_um) == 0 or len(pred_um) == 0:
        return np.zeros((0, 2), int), np.zeros(0)
    dist = cdist(true_um, pred_um)
    # pairs beyond the cap cost more than any set of allowed pairs, then get dropped
    big = max_distance_um * (min(dist.shape) + 1) + 1.0
    cost = np.where(dist <= max_distance_um, dist, big)
    rows, cols = linear_sum_assignment(cost)
    ok = dist[rows, cols] <= max_distance_um
    return np.stack([rows[ok], cols[ok]], axis=1), dist[rows[ok], cols[ok]]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of matched structures' intensities; NaN for fewer than 3 pairs."""
    return pcc(a, b, min_std=0.0) if len(a) >= 3 else float("nan")


def overlap_with_prediction(true_labels: np.ndarray, pred_labels: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Which true structures a predicted one overlaps, and which share it with another.

    Labels are consecutive ``1..n`` (0 background), as :attr:`Structures.labels`.

    Returns
    -------
    overlapped, joined : ndarray (n_true,) of bool
    """
    n_true = int(true_labels.max(initial=0))
    both = (true_labels > 0) & (pred_labels > 0)
    true_ids, pred_ids = np.unique(np.stack([true_labels[both], pred_labels[both]]), axis=1)
    overlapped = np.zeros(n_true, bool)
    overlapped[true_ids - 1] = True
    shared, count = np.unique(pred_ids, return_counts=True)
    joined = np.zeros(n_true, bool)
    joined[true_ids[np.isin(pred_ids, shared[count > 1])] - 1] = True
    return overlapped, joined


def match_structures(true_fl: np.ndarray, pred_fl: np.ndarray,
                     voxel_size_um: Sequence[float], kind: str = "lipid_droplets",
                     max_distance_um: float | None = None, threshold: float | str = "each",
                     true_structures: Structures | None = None) -> StructureMatch:
    """Detect structures in true and inferred fluorescence and match them by centroid.

    Parameters
    ----------
    true_fl, pred_fl : ndarray (Z, Y, X)
        Real and inferred fluorescence of one target on the same grid and intensity scale.
    voxel_size_um : (z, y, x)
        Voxel size in µm.
    kind : {"lipid_droplets", "nucleolus", "mitochondria"}
        Which structures (size prior).
    max_distance_um : float, optional
        Centroids further apart are never paired; default per kind (:data:`KINDS`).
    threshold : "each", "true" or float
        Band-pass threshold: each volume its own (:func:`detection_threshold`, the default),
        the true volume's for both, or this value for both.
    true_structures : Structures, optional
        The structures of ``true_fl``, when already detected with the same ``threshold``
        rule (:func:`detect_structures`); comparing several predictions with one truth then
        detects its structures once.

    Returns
    -------
    StructureMatch

    Examples
    --------
    >>> r = match_structures(true, pred, (0.2, 0.15, 0.15), "lipid_droplets")  # doctest: +SKIP
    >>> r.fraction_matched, r.mean_distance_um, r.intensity_r  # doctest: +SKIP
    """
    k = _kind(kind)
    if np.shape(true_fl) != np.shape(pred_fl):
        raise InputError(f"shapes differ: true {np.shape(true_fl)} vs predicted "
                         f"{np.shape(pred_fl)}")
    cap = k.max_distance_um if max_distance_um is None else float(max_distance_um)
    if isinstance(threshold, str) and threshold not in ("each", "true"):
        raise ConfigError(f"unknown threshold {threshold!r}", "threshold",
                          "use 'each', 'true' or a number")
    true_s = true_structures
    if true_s is None:
        fixed = None if isinstance(threshold, str) else float(threshold)
        true_s = detect_structures(true_fl, voxel_size_um, kind, fixed)
    if isinstance(threshold, str):
        pred_threshold = None if threshold == "each" else true_s.threshold
    else:
        pred_threshold = float(threshold)
    pred_s = detect_structures(pred_fl, voxel_size_um, kind, pred_threshold)
    pairs, dist = match_centroids(true_s.centroids_um, pred_s.centroids_um, cap)
    n_m = len(pairs)
    nan = float("nan")
    overlapped, joined = overlap_with_prediction(true_s.labels, pred_s.labels)
    return StructureMatch(
        kind=kind, max_distance_um=cap, n_true=len(true_s), n_pred=len(pred_s), n_matched=n_m,
        fraction_matched=n_m / len(true_s) if len(true_s) else nan,
        precision=n_m / len(pred_s) if len(pred_s) else nan,
        mean_distance_um=float(dist.mean()) if n_m else nan,
        median_distance_um=float(np.median(dist)) if n_m else nan,
        intensity_r=_pearson(true_s.intensity[pairs[:, 0]], pred_s.intensity[pairs[:, 1]]),
        pairs=pairs, distances_um=dist, true_volume_um3=true_s.volume_um3,
        true_overlapped=overlapped, true_joined=joined,
    )


#: Volume classes (µm³) of :func:`matched_by_size`: a droplet of 0.55 µm radius is 0.7 µm³.
SIZE_BINS_UM3: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, np.inf)


def structure_records(match: StructureMatch, within_um: float = 0.5) -> list[dict]:
    """One record per true structure: its volume, whether and how far it was matched."""
    dist = np.full(match.n_true, np.nan)
    dist[match.pairs[:, 0]] = match.distances_um
    hit = match.matched_within(within_um)
    return [{"kind": match.kind, "volume_um3": float(v), "distance_um": float(d),
             f"matched_{within_um:g}um": bool(h), "overlaps_prediction": bool(o),
             "joined_in_prediction": bool(j)}
            for v, d, h, o, j in zip(match.true_volume_um3, dist, hit, match.true_overlapped,
                                     match.true_joined)]


def misses_by_cause(records: pd.DataFrame, matched: str = "matched_0.5um",
                    by: Sequence[str] = ("target",)) -> pd.DataFrame:
    """Why true structures were missed: fractions of them, per ``by`` group, summing to 1.

    ``matched``: matched within the distance; ``missed_not_painted``: no predicted structure
    overlaps it; ``missed_joined``: the prediction joined it with another true structure into
    one; ``missed_displaced``: a predicted structure of its own overlaps it, but its centroid
    is too far (the prediction cut it or shifted it). ``records`` holds
    :func:`structure_records` rows.
    """
    miss = ~records[matched].astype(bool)
    painted = records["overlaps_prediction"].astype(bool)
    joined = records["joined_in_prediction"].astype(bool)
    table = records.assign(**{
        "matched": ~miss, "missed_not_painted": miss & ~painted,
        "missed_joined": miss & painted & joined,
        "missed_displaced": miss & painted & ~joined})
    causes = ["matched", "missed_not_painted", "missed_joined", "missed_displaced"]
    return (table.groupby(list(by)).agg(n_true=("matched", "size"),
                                        **{c: (c, "mean") for c in causes}).reset_index())


def matched_by_size(records: pd.DataFrame, matched: str | Sequence[str] = "matched_0.5um",
                    by: Sequence[str] = ("target",),
                    bins: Sequence[float] = SIZE_BINS_UM3) -> pd.DataFrame:
    """Fraction of true structures matched per volume class (and ``by`` columns).

    ``records`` holds :func:`structure_records` rows (with a ``target`` column, say);
    ``matched`` names one or several boolean columns to average.
    """
    cols = [matched] if isinstance(matched, str) else list(matched)
    table = records.assign(volume_class_um3=pd.cut(records["volume_um3"], list(bins),
                                                   right=False))
    out = (table.groupby([*by, "volume_class_um3"], observed=True)
           .agg(n_true=(cols[0], "size"), **{c: (c, "mean") for c in cols}).reset_index())
    out["volume_class_um3"] = out["volume_class_um3"].astype(str)
    return out


def matched_fraction_ci(n_matched: Sequence[float], n_true: Sequence[float],
                        confidence: float = 0.95, n_resamples: int = 4999,
                        seed: int = 0) -> tuple[float, float]:
    """Confidence interval of a pooled fraction matched (sum matched / sum true) over FOVs.

    The structures of one FOV are not independent draws (one poor prediction misses many of
    them at once), so the interval comes from a bootstrap over FOVs (percentile method,
    ``scipy.stats.bootstrap``); with a single FOV, the Wilson score interval of its count.

    Parameters
    ----------
    n_matched, n_true : sequences of one number per FOV
        Structures matched and true structures.

    Returns
    -------
    (low, high) : floats, NaN without any true structure.

    Examples
    --------
    >>> matched_fraction_ci([8], [10])   # one FOV: Wilson
    (0.490..., 0.943...)
    """
    matched, true = _fovs_with_structures(n_matched, n_true)
    if len(true) == 1:
        ci = stats.binomtest(int(np.rint(matched[0])), int(true[0])).proportion_ci(
            confidence_level=confidence, method="wilson")
        return float(ci.low), float(ci.high)
    return _fov_bootstrap(_pooled, (matched, true), confidence, n_resamples, seed)


def matched_fraction_difference_ci(matched_a: Sequence[float], matched_b: Sequence[float],
                                   n_true: Sequence[float], confidence: float = 0.95,
                                   n_resamples: int = 4999,
                                   seed: int = 0) -> tuple[float, float, float]:
    """Pooled fraction matched of model A minus model B on the same FOVs, with its interval.

    Bootstrap over FOVs, paired: each resample draws FOVs, and both models' counts on them
    (no interval with a single FOV).

    Returns
    -------
    (difference, low, high) : floats
    """
    a, b, true = _fovs_with_structures(matched_a, matched_b, n_true)
    diff = float(_pooled_difference(a, b, true)) if len(true) else float("nan")
    return (diff, *_fov_bootstrap(_pooled_difference, (a, b, true), confidence, n_resamples,
                                  seed))


def _fovs_with_structures(*counts: Sequence[float]) -> list[np.ndarray]:
    """The per-FOV count arrays, restricted to FOVs with true structures (the last array)."""
    arrays = [np.asarray(c, float) for c in counts]
    keep = arrays[-1] > 0
    return [a[keep] for a in arrays]


def _fov_bootstrap(statistic: Callable[..., np.ndarray], samples: Sequence[np.ndarray],
                   confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    if len(samples[-1]) < 2:
        return float("nan"), float("nan")
    res = stats.bootstrap(samples, statistic, paired=True, vectorized=True,
                          n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _pooled(matched: np.ndarray, true: np.ndarray, axis: int = -1) -> np.ndarray:
    return matched.sum(axis) / true.sum(axis)


def _pooled_difference(a: np.ndarray, b: np.ndarray, true: np.ndarray,
                       axis: int = -1) -> np.ndarray:
    return (a.sum(axis) - b.sum(axis)) / true.sum(axis)


def structure_summary(metrics: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Structure matching pooled over FOVs, per target (and model if present).

    ``metrics`` holds one row per FOV and target (``ri2fl evaluate``'s ``metrics.csv``).
    Fractions are pooled (sum of matched / sum of true structures), with the confidence
    interval of the fraction matched within 0.5 µm (``ci_low``, ``ci_high``; bootstrap over
    FOVs, :func:`matched_fraction_ci`); ``precision_0.5um`` is the same matched count over the
    predicted structures (the fraction matched alone rises with every structure a model
    paints, true or not). Distances and intensity correlations are averaged over FOVs.
    """
    if "n_true" not in metrics.columns:
        return pd.DataFrame()
    keys = [k for k in ("model", "target") if k in metrics.columns]
    rows = []
    for key, g in metrics.dropna(subset=["n_true"]).groupby(keys, sort=False):
        n_true, n_pred = g["n_true"].sum(), g["n_pred"].sum()
        within = _counts(g)
        n_within = within.sum()
        matched = _counts(g, "fraction_matched").sum()
        low, high = matched_fraction_ci(within, g["n_true"], confidence)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), "n_fovs": len(g),
                     "n_true": int(n_true), "n_pred": int(n_pred),
                     "matched_within_cap": matched / n_true if n_true else np.nan,
                     "matched_within_0.5um": n_within / n_true if n_true else np.nan,
                     "ci_low": low, "ci_high": high,
                     "precision_0.5um": n_within / n_pred if n_pred else np.nan,
                     "mean_distance_um": g["mean_distance_um"].mean(),
                     "intensity_r": g["intensity_r"].mean()})
    return pd.DataFrame(rows)


def _counts(rows: pd.DataFrame, fraction: str = "fraction_within_0.5um") -> pd.Series:
    """Structures matched per row, back from a fraction of ``n_true`` (whole numbers)."""
    return (rows[fraction].fillna(0) * rows["n_true"]).round()


def structure_differences(metrics: pd.DataFrame, reference: str,
                          confidence: float = 0.95) -> pd.DataFrame:
    """Each model's fraction matched within 0.5 µm minus the reference's, paired over FOVs.

    ``metrics`` holds one row per model, FOV and target (``ri2fl evaluate``'s
    ``metrics.csv`` with several models). Both models are scored on the same true
    structures, so the difference comes with a paired bootstrap interval over FOVs
    (:func:`matched_fraction_difference_ci`): an interval that excludes 0 says the change
    is more than which FOVs happened to be drawn.

    Returns
    -------
    DataFrame
        One row per other model and target: ``model``, ``reference``, ``target``,
        ``n_fovs``, ``n_true``, ``matched_model``, ``matched_reference`` (pooled fractions),
        ``difference``, ``ci_low``, ``ci_high``.
    """
    if "n_true" not in metrics.columns or "model" not in metrics.columns:
        return pd.DataFrame()
    scored = metrics.dropna(subset=["n_true"]).assign(within=_counts)
    if reference not in set(scored["model"]):
        return pd.DataFrame()
    wide = scored.pivot_table(index=["target", "fov"], columns="model",
                              values=["within", "n_true"], aggfunc="first")
    rows = []
    for model in (m for m in scored["model"].unique() if m != reference):
        for target, g in wide.groupby(level="target", sort=False):
            g = g.dropna(subset=[("within", model), ("within", reference)])
            true = g[("n_true", reference)].to_numpy()
            a, b = g[("within", model)].to_numpy(), g[("within", reference)].to_numpy()
            diff, low, high = matched_fraction_difference_ci(a, b, true, confidence)
            total = true.sum()
            rows.append({"model": model, "reference": reference, "target": target,
                         "n_fovs": len(g), "n_true": int(total),
                         "matched_model": a.sum() / total if total else np.nan,
                         "matched_reference": b.sum() / total if total else np.nan,
                         "difference": diff, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


#: Which fluorescence target holds which kind of structure.
TARGET_KINDS: dict[str, str] = {
    "lipid_droplets": "lipid_droplets",
    "nucleolus": "nucleolus",
    "mitochondria": "mitochondria",
}

__all__ = [
    "KINDS", "SIZE_BINS_UM3", "TARGET_KINDS", "StructureKind", "StructureMatch", "Structures",
    "band_pass", "detect_structures", "detection_threshold", "match_centroids",
    "match_structures", "matched_by_size", "matched_fraction_ci",
    "matched_fraction_difference_ci", "misses_by_cause", "overlap_with_prediction",
    "structure_differences", "structure_records",
    "structure_summary",
]
