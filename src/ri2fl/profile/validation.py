"""Do features measured on inferred fluorescence agree with those on the real one?

The paper (Jo et al. 2021) computed its single-cell features once from inferred and once
from measured fluorescence and found r = 0.97 over all features and channels. Here the same
cells (the same instance labels) are measured twice, with the true and the inferred
fluorescence, and only the features that depend on fluorescence are compared: the
fluorescence family, and the lipid-droplet and nucleolus features whose masks come from the
thresholded fluorescence channels.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..constants import TARGETS
from ..evaluate import pcc
from .features import feature_dictionary, measure_cells


def fluorescence_dependent_features(channels: Sequence[str] | None = None) -> list[str]:
    """Names of the features whose value depends on the fluorescence channels."""
    d = feature_dictionary(**({"channels": channels} if channels is not None else {}))
    fl_family = d["family"].isin(["fluorescence", "lipid droplets"])
    nucleolar = d["name"].str.startswith(("nucleolus_", "nucleoli_"))
    return list(d.loc[fl_family | nucleolar, "name"])


def measure_pair(ri: np.ndarray, cell_labels: np.ndarray, nucleus_labels: np.ndarray,
                 fl_true: Mapping[str, np.ndarray], fl_inferred: Mapping[str, np.ndarray],
                 voxel_size_um: Sequence[float], medium_index: float,
                 **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same cells measured with the true and with the inferred fluorescence.

    Organelle masks are not passed, so lipid droplets and nucleoli come from each
    fluorescence (thresholded) and their features are compared too.
    """
    kwargs = {"voxel_size_um": voxel_size_um, "medium_index": medium_index, **options}
    true = measure_cells(ri, cell_labels, nucleus_labels, dict(fl_true), **kwargs)
    inferred = measure_cells(ri, cell_labels, nucleus_labels, dict(fl_inferred), **kwargs)
    return true, inferred


def feature_agreement(true: pd.DataFrame, inferred: pd.DataFrame,
                      features: Sequence[str] | None = None) -> tuple[float, pd.DataFrame]:
    """Pooled and per-feature Pearson correlation between two tables of the same cells.

    Each feature is z-scored within each table (so features of every unit pool together,
    as they do in the z-scored analyses downstream: a uniform intensity scale of the
    inferred channels does not count as disagreement), and the correlation is taken over
    all (cell, feature) pairs: the paper's "over all features and channels".

    Parameters
    ----------
    true, inferred : pandas.DataFrame
        Tables of the same cells in the same order (e.g. from :func:`measure_pair`).
    features : sequence of str, optional
        Columns to compare (default: :func:`fluorescence_dependent_features`).

    Returns
    -------
    r : float
        Pooled Pearson correlation.
    per_feature : pandas.DataFrame
        ``feature``, ``r``, ``n`` for every feature with spread in both tables.
    """
    if len(true) != len(inferred):
        raise ValueError("the two tables must hold the same cells")
    cols = [c for c in (features or fluorescence_dependent_features())
            if c in true.columns and c in inferred.columns]
    a = true[cols].astype(float).to_numpy()
    b = inferred[cols].astype(float).to_numpy()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mu_a, sd_a = np.nanmean(a, axis=0), np.nanstd(a, axis=0)
        mu_b, sd_b = np.nanmean(b, axis=0), np.nanstd(b, axis=0)
    keep = np.isfinite(sd_a) & (sd_a > 0) & np.isfinite(sd_b) & (sd_b > 0)
    za = (a[:, keep] - mu_a[keep]) / sd_a[keep]
    zb = (b[:, keep] - mu_b[keep]) / sd_b[keep]
    ok = np.isfinite(za) & np.isfinite(zb)
    r = pcc(za[ok], zb[ok], min_std=0.0) if ok.sum() > 2 else float("nan")
    rows = []
    for j, name in enumerate(np.asarray(cols)[keep]):
        m = ok[:, j]
        if m.sum() > 2 and np.std(zb[m, j]) > 0:
            rows.append((name, pcc(za[m, j], zb[m, j], min_std=0.0), int(m.sum())))
    return r, pd.DataFrame(rows, columns=["feature", "r", "n"])


def channel_agreement(fl_true: Mapping[str, np.ndarray], fl_inferred: Mapping[str, np.ndarray],
                      cell_labels: np.ndarray) -> dict[str, float]:
    """Voxel-wise Pearson r of each inferred channel with the truth, inside the cells."""
    inside = np.asarray(cell_labels) > 0
    out = {}
    for name, truth in fl_true.items():
        if name in fl_inferred and inside.any():
            a = np.asarray(truth)[inside].astype(np.float64)
            b = np.asarray(fl_inferred[name])[inside].astype(np.float64)
            out[name] = pcc(a, b, min_std=0.0) if a.std() > 0 and b.std() > 0 else np.nan
    return out


def _channel_of(feature: str, channels: Sequence[str]) -> str:
    if feature.startswith(("lipid_droplet", "lipid_droplets")):
        return "lipid_droplets"
    if feature.startswith(("nucleolus_", "nucleoli_")):
        return "nucleolus"
    return next((c for c in channels if f"_{c}_" in f"_{feature}_"), "")


#: (compartment, channel) pairs where the structure is absent in truth: their features
#: measure the channel's blur and leakage into that compartment, not the structure.
_OFF_COMPARTMENT = {"nucleus": ("membrane", "actin", "mitochondria", "lipid_droplets"),
                    "cytoplasm": ("nucleus", "nucleolus")}


def _off_compartment(feature: str, channel: str) -> str | None:
    compartment = feature.split("_", 1)[0]
    return compartment if channel in _OFF_COMPARTMENT.get(compartment, ()) else None


#: Features computed from a mask thresholded from a channel, not from its intensities.
_THRESHOLDED = ("lipid_droplet", "nucleolus_count", "nucleoli_volume", "nucleolus_mean",
                "nucleoli_to_nucleus", "nucleoli_ri", "nucleoli_dry_mass")


def explain_agreement(true: pd.DataFrame, inferred: pd.DataFrame,
                      per_feature: pd.DataFrame, *, goal: float = 0.9,
                      channel_r: Mapping[str, float] | None = None,
                      channels: Sequence[str] = TARGETS,
                      min_present: float = 0.5, max_spread: float = 0.15) -> pd.DataFrame:
    """Per-feature agreement with its feature family, channel, and, below ``goal``, a cause.

    Causes, tested in this order:

    - ``sparsity``: fewer than ``min_present`` of the cells have the structure in the
      truth (a non-zero, non-missing value), so r rests on a few cells;
    - ``channel error``: the channel itself is inferred poorly (its voxel-wise r in
      ``channel_r``, or the median r of its intensity features, is below ``goal``);
    - ``threshold``: the feature comes from a mask thresholded from the channel (lipid
      droplets, nucleoli) although the channel's intensities agree;
    - ``off-compartment``: the channel in a compartment where its structure is absent in
      truth (membrane, actin, mitochondria or droplets inside the nucleus; nucleus or
      nucleolus in the cytoplasm): the feature measures blur and leakage;
    - ``little spread``: the cells hardly differ in the feature (coefficient of variation
      of the true values below ``max_spread``), so errors small against its level still
      swamp the correlation over cells;
    - ``other``: none of these.

    Parameters
    ----------
    true, inferred : pandas.DataFrame
        The same cells measured on true and on inferred fluorescence.
    per_feature : pandas.DataFrame
        ``feature``, ``r``, ``n`` from :func:`feature_agreement`.
    goal : float
        The r a feature should reach.
    channel_r : mapping, optional
        Voxel-wise r per channel (:func:`channel_agreement`).

    Returns
    -------
    pandas.DataFrame
        ``per_feature`` with ``family``, ``channel``, ``present`` (fraction of cells with the
        structure) and ``cause`` ("" when the feature reaches the goal).
    """
    families = dict(feature_dictionary(channels)[["name", "family"]].to_numpy())
    out = per_feature.copy()
    out["family"] = [families.get(f, "other") for f in out["feature"]]
    out["channel"] = [_channel_of(f, channels) for f in out["feature"]]
    values = true[out["feature"]].astype(float)
    out["present"] = ((values.fillna(0) != 0).mean()).to_numpy()
    level = values.mean().abs().replace(0, np.nan)
    spread = (values.std() / level).to_numpy()
    error = ((inferred[out["feature"]].astype(float) - values).abs().median() / level).to_numpy()
    intensity = out[out["family"] == "fluorescence"].groupby("channel")["r"].median()
    channel_ok = {c: (channel_r or {}).get(c, intensity.get(c, np.nan)) for c in channels}
    causes = []
    for i, (_, row) in enumerate(out.iterrows()):
        ch_r = channel_ok.get(row["channel"], np.nan)
        if row["r"] >= goal:
            causes.append("")
        elif row["present"] < min_present:
            causes.append(f"sparsity ({row['present']:.0%} of cells have it)")
        elif np.isfinite(ch_r) and ch_r < goal:
            causes.append(f"channel error ({row['channel']} r = {ch_r:.2f})")
        elif row["feature"].startswith(_THRESHOLDED):
            causes.append("threshold (mask from the channel at 0.5)")
        elif (where := _off_compartment(row["feature"], row["channel"])) is not None:
            causes.append(f"off-compartment (no {row['channel']} in the {where} in truth: "
                          f"blur and leakage)")
        elif spread[i] < max_spread:
            causes.append(f"little spread across cells (CV {spread[i]:.0%}; median error "
                          f"{error[i]:.0%} of the mean)")
        else:
            causes.append("other")
    out["cause"] = causes
    return out


def agreement_summary(explained: pd.DataFrame, goal: float = 0.9) -> pd.DataFrame:
    """Median and spread of the per-feature r per feature family and per channel."""
    rows = []
    for key in ("family", "channel"):
        for name, sub in explained.groupby(key, sort=True):
            r = sub["r"]
            rows.append({"by": key, "group": name or "(none)", "features": len(sub),
                         "median_r": r.median(), "q25_r": r.quantile(0.25),
                         "min_r": r.min(), f"below_{goal:g}": int((r < goal).sum())})
    return pd.DataFrame(rows)
