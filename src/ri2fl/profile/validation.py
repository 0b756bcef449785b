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
