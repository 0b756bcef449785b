"""Population analysis of feature tables: z-scores, embeddings, statistics, tracking.

The paper's workflow (Jo et al. 2021, Fig. 6): z-score every feature, embed the cells with
UMAP (5 neighbours, min_dist 0.5), rank features by their one-way ANOVA F-value across
conditions, compare groups with unpaired two-sided t-tests, and follow features over time
in time-lapses. Here the t-tests are corrected for multiple testing (Benjamini-Hochberg),
which the paper did not do.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..errors import ConfigError
from .features import feature_columns

_CENTROID = ["centroid_z_um", "centroid_y_um", "centroid_x_um"]


def _columns(table: pd.DataFrame, columns: Sequence[str] | None) -> list[str]:
    cols = feature_columns(table) if columns is None else list(columns)
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ConfigError(f"features not in the table: {missing[:5]}", "columns",
                          "see docs/features.md for the column names")
    return cols


def _require(table: pd.DataFrame, column: str) -> None:
    if column not in table.columns:
        raise ConfigError(f"no column {column!r} in the feature table "
                          f"(has {', '.join(map(str, table.columns[:8]))}, ...)", column,
                          "give --condition when profiling, or group by another column")


def zscore(table: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Z-score each feature over all cells: (x - mean) / s.d.

    Constant features become 0; NaN stays NaN.

    Returns
    -------
    pandas.DataFrame
        The z-scored feature columns, same index as ``table``.
    """
    cols = _columns(table, columns)
    x = table[cols].astype(float)
    sd = x.std(ddof=0)
    return (x - x.mean()) / sd.where(sd > 0, np.inf)


def nonredundant_features(table: pd.DataFrame, columns: Sequence[str] | None = None,
                          max_abs_correlation: float = 0.95) -> list[str]:
    """Drop features that repeat another: a minimally redundant subset.

    Features are visited in table order (the feature dictionary puts morphology first);
    one is kept unless its absolute Pearson correlation with an already kept feature over
    the cells exceeds ``max_abs_correlation``. Constant and all-missing features are
    dropped. The paper embedded 65 "minimally redundant" features; this is a transparent
    rule for any table.
    """
    cols = _columns(table, columns)
    x = table[cols].astype(float)
    x = x.loc[:, x.notna().sum() > 1]
    x = x.loc[:, x.std(ddof=0) > 0]
    corr = x.corr().abs().to_numpy()
    kept: list[int] = []
    for j in range(corr.shape[0]):
        if all(not (corr[j, k] > max_abs_correlation) for k in kept):
            kept.append(j)
    return [x.columns[j] for j in kept]


def _design_matrix(table: pd.DataFrame, columns: Sequence[str] | None) -> np.ndarray:
    z = zscore(table, columns)
    z = z.loc[:, z.notna().any() & (z.abs().sum() > 0)]
    return z.fillna(0.0).to_numpy()  # a missing value sits at the mean of its feature


def embed(table: pd.DataFrame, columns: Sequence[str] | None = None, *,
          n_neighbors: int = 5, min_dist: float = 0.5, random_state: int = 0,
          method: str = "umap") -> pd.DataFrame:
    """Two-dimensional embedding of the cells from their z-scored features.

    UMAP with the paper's settings (5 neighbours, min_dist 0.5). With fewer than
    ``2 * n_neighbors`` cells UMAP's neighbourhood graph is meaningless, so the first two
    principal components are returned instead, with a warning.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table.
    columns : sequence of str, optional
        Features to use (default: every numeric feature column).
    n_neighbors, min_dist, random_state : UMAP parameters.
    method : {"umap", "pca"}

    Returns
    -------
    pandas.DataFrame
        Columns ``embedding_1``, ``embedding_2`` (index of ``table``); ``.attrs["method"]``
        says which method made it.
    """
    if method not in ("umap", "pca"):
        raise ConfigError(f"unknown embedding method {method!r}", "method", "use umap or pca")
    x = _design_matrix(table, columns)
    n = len(x)
    if method == "umap" and n < 2 * n_neighbors:
        warnings.warn(f"{n} cells are too few for UMAP with {n_neighbors} neighbours; "
                      "showing the first two principal components instead", stacklevel=2)
        method = "pca"
    if n == 0 or x.shape[1] == 0:
        y = np.zeros((n, 2))
    elif method == "umap":
        import umap  # slow to import (numba): only when asked for

        y = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state,
                      n_jobs=1).fit_transform(x)
    else:
        from sklearn.decomposition import PCA

        k = min(2, n, x.shape[1])
        y = np.zeros((n, 2))
        y[:, :k] = PCA(n_components=k, random_state=random_state).fit_transform(x)
    out = pd.DataFrame(y, columns=["embedding_1", "embedding_2"], index=table.index)
    out.attrs["method"] = method
    return out


def anova_ranking(table: pd.DataFrame, by: str,
                  columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank features by their one-way ANOVA F-value across the groups of column ``by``.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature``, ``F``, ``p``, ``q`` (Benjamini-Hochberg), sorted by F,
        largest first. Features constant in every group are left out.
    """
    _require(table, by)
    cols = _columns(table, columns)
    groups = [g for _, g in table.groupby(by, sort=True)]
    if len(groups) < 2:
        raise ConfigError(f"ANOVA needs at least two groups in {by!r}, found {len(groups)}",
                          by)
    rows = []
    for col in cols:
        samples = [g[col].dropna().to_numpy(float) for g in groups]
        samples = [s for s in samples if s.size]
        if len(samples) < 2 or sum(s.size for s in samples) <= len(samples):
            continue
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f, p = stats.f_oneway(*samples)
        if not np.isnan(f):  # F = inf: no spread within groups, different means
            rows.append((col, float(f), float(p)))
    result = pd.DataFrame(rows, columns=["feature", "F", "p"])
    result["q"] = stats.false_discovery_control(result["p"]) if len(result) else []
    return result.sort_values("F", ascending=False, ignore_index=True)


def ttests(table: pd.DataFrame, by: str, columns: Sequence[str] | None = None,
           reference: str | None = None, equal_var: bool = False) -> pd.DataFrame:
    """Unpaired two-sided t-tests between groups, for every feature.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table.
    by : str
        The grouping column (e.g. ``condition``).
    columns : sequence of str, optional
        Features to test (default: all).
    reference : str, optional
        Compare every group with this one; default: every pair of groups.
    equal_var : bool
        Student's t-test if true; Welch's (robust to unequal variances) by default.

    Returns
    -------
    pandas.DataFrame
        One row per (feature, group pair): ``feature``, ``group_a``, ``group_b``,
        ``n_a``, ``n_b``, ``mean_a``, ``mean_b``, ``cohen_d``, ``t``, ``p``, and ``q``,
        the Benjamini-Hochberg adjusted p over all tests of the table; sorted by ``p``.
    """
    _require(table, by)
    cols = _columns(table, columns)
    names = sorted(table[by].dropna().unique(), key=str)
    if reference is not None:
        if reference not in names:
            raise ConfigError(f"reference group {reference!r} not in {by!r} ({names})",
                              "reference")
        pairs = [(reference, g) for g in names if g != reference]
    else:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    rows = []
    for col in cols:
        for a, b in pairs:
            xa = table.loc[table[by] == a, col].dropna().to_numpy(float)
            xb = table.loc[table[by] == b, col].dropna().to_numpy(float)
            if xa.size < 2 or xb.size < 2:
                continue
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t, p = stats.ttest_ind(xa, xb, equal_var=equal_var)
            if not np.isfinite(p):
                continue
            pooled = np.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
            d = (xa.mean() - xb.mean()) / pooled if pooled > 0 else np.nan
            rows.append((col, a, b, xa.size, xb.size, xa.mean(), xb.mean(), d, t, p))
    result = pd.DataFrame(rows, columns=["feature", "group_a", "group_b", "n_a", "n_b",
                                         "mean_a", "mean_b", "cohen_d", "t", "p"])
    result["q"] = stats.false_discovery_control(result["p"]) if len(result) else []
    return result.sort_values("p", ignore_index=True)


def track_cells(table: pd.DataFrame, frame: str = "frame",
                by: Sequence[str] = ("position",), max_distance_um: float = 10.0) -> pd.DataFrame:
    """Link cells across the frames of a time-lapse: adds a ``track_id`` column.

    Frame t is linked to frame t-1 by the Hungarian algorithm on centroid distances
    (``scipy.optimize.linear_sum_assignment``); a link longer than ``max_distance_um`` is
    refused, and a cell without a link starts a new track. Tracks are separate for each
    combination of the ``by`` columns that the table has (e.g. stage position).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with an integer ``track_id`` (unique over the whole table).
    """
    _require(table, frame)
    for c in _CENTROID:
        _require(table, c)
    keys = [c for c in by if c in table.columns]
    xyz_all = table[_CENTROID].to_numpy(float)
    frames = table[frame].to_numpy()
    track = np.full(len(table), -1, dtype=np.int64)
    groups = (table.groupby(keys, sort=False).indices.values() if keys
              else [np.arange(len(table))])
    next_id = 0
    for rows_of_group in groups:
        prev_rows = None
        for t in np.unique(frames[rows_of_group]):
            rows = rows_of_group[frames[rows_of_group] == t]
            ids = np.full(len(rows), -1, dtype=np.int64)
            if prev_rows is not None and len(prev_rows) and len(rows):
                cost = cdist(xyz_all[prev_rows], xyz_all[rows])
                too_far = cost > max_distance_um
                a, b = linear_sum_assignment(np.where(too_far, 1e12, cost))
                ok = ~too_far[a, b]
                ids[b[ok]] = track[prev_rows[a[ok]]]
            new = ids < 0
            ids[new] = np.arange(next_id, next_id + new.sum())
            next_id += int(new.sum())
            track[rows] = ids
            prev_rows = rows
    out = table.copy()
    out["track_id"] = track
    return out


def time_courses(table: pd.DataFrame, features: Sequence[str], by: str | None = None,
                 frame: str = "frame") -> pd.DataFrame:
    """Mean, s.d. and count of each feature per frame (and per group of ``by``).

    Returns
    -------
    pandas.DataFrame
        Long format: ``group`` (when ``by``), ``frame``, ``feature``, ``mean``, ``sd``, ``n``.
    """
    _require(table, frame)
    cols = _columns(table, features)
    keys = ([by] if by else []) + [frame]
    if by:
        _require(table, by)
    long = table.melt(id_vars=keys, value_vars=cols, var_name="feature")
    agg = (long.groupby([*keys, "feature"], sort=True)["value"]
           .agg(mean="mean", sd="std", n="count").reset_index())
    if by:
        agg = agg.rename(columns={by: "group"})
    return agg
