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


# --------------------------------------------------------------------------- designed comparisons

#: Fewest replicates (fields, or tracks) per group for a test: with fewer, the spread
#: between replicates is not estimable and no test is run.
MIN_REPLICATES = 3


def collapse_tracks(table: pd.DataFrame, track: str = "track_id") -> pd.DataFrame:
    """One row per biological unit: the frames of a track become one cell.

    A tracked cell imaged at several time points is one cell, not several: its features are
    averaged over its frames (a time course is not a set of replicates). Rows without a
    track (no ``track`` column, or ``track_id`` < 0) are returned as they are.

    Returns
    -------
    pandas.DataFrame
        Untracked rows, then one row per track (first row's metadata, mean features, and
        ``n_frames``).
    """
    if track not in table.columns:
        return table
    tracked = table[track].fillna(-1) >= 0
    if not tracked.any():
        return table
    rows = table[tracked]
    if not rows[track].duplicated().any():  # one row per track already
        return table
    feats = [c for c in feature_columns(rows) if c not in (track, "n_frames")]
    keys = [c for c in rows.columns if c not in feats]
    means = rows.groupby(track, sort=True)[feats].mean()
    first = rows.groupby(track, sort=True)[[c for c in keys if c != track]].first()
    per_track = pd.concat([first, means], axis=1).reset_index()
    per_track["n_frames"] = rows.groupby(track, sort=True).size().to_numpy()
    columns = [*(c for c in table.columns if c != "n_frames"), "n_frames"]
    return pd.concat([table[~tracked], per_track[columns]], ignore_index=True)


def _unit_means(values: pd.DataFrame, feature: str, replicate: str | None) -> np.ndarray:
    """The values of one group reduced to one per replicate (all cells when none)."""
    sub = values[[feature, *([replicate] if replicate else [])]].dropna()
    if replicate is None:
        return sub[feature].to_numpy(float)
    return sub.groupby(replicate, sort=True)[feature].mean().to_numpy(float)


def _compare_one(a: np.ndarray, b: np.ndarray, min_units: int,
                 confidence: float) -> dict[str, float | str | bool]:
    """Welch's t-test of b against a, the difference b - a and its confidence interval."""
    out: dict[str, float | str | bool] = {
        "mean_a": float(np.mean(a)) if a.size else np.nan,
        "mean_b": float(np.mean(b)) if b.size else np.nan,
        "difference": np.nan, "ci_low": np.nan, "ci_high": np.nan, "t": np.nan,
        "p": np.nan, "tested": False, "note": ""}
    if min(a.size, b.size) < min_units:
        out["note"] = (f"not tested: n = {a.size} vs {b.size} replicates, "
                       f"fewer than {min_units} in a group")
        return out
    out["difference"] = out["mean_b"] - out["mean_a"]
    if np.var(a) == 0 and np.var(b) == 0:
        out["note"] = "not tested: no spread between replicates"
        return out
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.ttest_ind(b, a, equal_var=False)
        ci = res.confidence_interval(confidence)
    out.update(t=float(res.statistic), p=float(res.pvalue), ci_low=float(ci.low),
               ci_high=float(ci.high), tested=bool(np.isfinite(res.pvalue)))
    return out


def compare_conditions(table: pd.DataFrame, by: str = "condition", *,
                       reference: str | None = None, within: str | None = None,
                       replicate: str | None = None, columns: Sequence[str] | None = None,
                       min_replicates: int = MIN_REPLICATES,
                       confidence: float = 0.95) -> pd.DataFrame:
    """Compare groups feature by feature with the replicate, not the cell, as the unit.

    The design of an imaging experiment: cells are nested in fields (or wells, or
    dishes), and the fields were treated, so the fields are the replicates; cells of one
    field share its preparation and are not independent. Each feature is therefore averaged
    per replicate and the replicate means are compared (Welch's t-test, two-sided): the
    summary-statistics approach to nested data, exact for a balanced design. Tracks are one
    cell each (:func:`collapse_tracks`). Groups are compared within each stratum of
    ``within`` (e.g. each cell type), never pooled across strata. With fewer than
    ``min_replicates`` replicates in a group no test is run and ``note`` says why.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table.
    by : str
        The grouping column (e.g. ``condition``).
    reference : str, optional
        The group the others are compared with (default: the first in sorted order).
    within : str, optional
        Stratum column (e.g. ``cell_type``); each stratum is tested on its own.
    replicate : str, optional
        Replicate column (e.g. ``field``); None treats every cell (or track) as
        independent, right only when cells were treated one by one.
    columns : sequence of str, optional
        Features to test (default: all).
    min_replicates : int
        Fewest replicates per group for a test.
    confidence : float
        Level of the confidence interval of the difference.

    Returns
    -------
    pandas.DataFrame
        One row per (stratum, feature, group pair): ``stratum``, ``feature``, ``group_a``
        (reference), ``group_b``, ``n_cells_a``, ``n_cells_b``, ``n_replicates_a``,
        ``n_replicates_b``, ``mean_a``, ``mean_b`` (means of replicate means),
        ``difference`` (b - a) with ``ci_low`` / ``ci_high``, ``change_pct`` (difference
        relative to the reference mean) with ``change_ci_low_pct`` / ``change_ci_high_pct``,
        ``t``, ``p``, ``q`` (Benjamini-Hochberg over every test of the table), ``tested``,
        ``note``; sorted by ``p`` (untested rows last).
    """
    _require(table, by)
    for col in (within, replicate):
        if col is not None:
            _require(table, col)
    table = collapse_tracks(table)
    cols = _columns(table, columns)
    names = sorted(table[by].dropna().unique(), key=str)
    reference = names[0] if reference is None and names else reference
    if reference not in names:
        raise ConfigError(f"reference group {reference!r} not in {by!r} ({names})",
                          "reference")
    strata = (table.groupby(within, sort=True) if within is not None
              else [("all", table)])
    rows = []
    for stratum, sub in strata:
        ref = sub[sub[by] == reference]
        for other in (g for g in names if g != reference):
            oth = sub[sub[by] == other]
            for col in cols:
                a = _unit_means(ref, col, replicate)
                b = _unit_means(oth, col, replicate)
                rows.append({"stratum": stratum, "feature": col, "group_a": reference,
                             "group_b": other, "n_cells_a": int(ref[col].notna().sum()),
                             "n_cells_b": int(oth[col].notna().sum()),
                             "n_replicates_a": a.size, "n_replicates_b": b.size,
                             **_compare_one(a, b, min_replicates, confidence)})
    return _finish_comparison(pd.DataFrame(rows))


def _finish_comparison(result: pd.DataFrame) -> pd.DataFrame:
    if result.empty:
        return result.assign(change_pct=[], change_ci_low_pct=[], change_ci_high_pct=[], q=[])
    scale = 100.0 / result["mean_a"].abs().where(result["mean_a"] != 0)
    result["change_pct"] = result["difference"] * scale
    result["change_ci_low_pct"] = result["ci_low"] * scale
    result["change_ci_high_pct"] = result["ci_high"] * scale
    tested = result["tested"].astype(bool)
    result["q"] = np.nan
    if tested.any():
        result.loc[tested, "q"] = stats.false_discovery_control(result.loc[tested, "p"])
    order = ["stratum", "feature", "group_a", "group_b", "n_cells_a", "n_cells_b",
             "n_replicates_a", "n_replicates_b", "mean_a", "mean_b", "difference", "ci_low",
             "ci_high", "change_pct", "change_ci_low_pct", "change_ci_high_pct", "t", "p",
             "q", "tested", "note"]
    return result[order].sort_values(["tested", "p"], ascending=[False, True],
                                     ignore_index=True)


def false_positive_rate(comparison: pd.DataFrame, touched: Sequence[str],
                        alpha: float = 0.05) -> pd.DataFrame:
    """How often features a known stimulus does not touch come out significant.

    Parameters
    ----------
    comparison : pandas.DataFrame
        The result of :func:`compare_conditions`.
    touched : sequence of str
        Features the stimulus changes (by construction, e.g. in a simulation); every other
        tested feature is a true null.
    alpha : float
        Significance level on ``q``.

    Returns
    -------
    pandas.DataFrame
        Per stratum: ``n_untouched`` (tested), ``false_positives``, ``false_positive_rate``,
        ``n_touched`` (tested), ``detected``, ``detection_rate``.
    """
    tested = comparison[comparison["tested"].astype(bool)]
    is_touched = tested["feature"].isin(set(touched))
    hit = tested["q"] < alpha
    frame = pd.DataFrame({"stratum": tested["stratum"], "touched": is_touched, "hit": hit})
    rows = []
    for stratum, sub in frame.groupby("stratum", sort=True):
        null, real = sub[~sub["touched"]], sub[sub["touched"]]
        rows.append({"stratum": stratum, "n_untouched": len(null),
                     "false_positives": int(null["hit"].sum()),
                     "false_positive_rate": null["hit"].mean() if len(null) else np.nan,
                     "n_touched": len(real), "detected": int(real["hit"].sum()),
                     "detection_rate": real["hit"].mean() if len(real) else np.nan})
    return pd.DataFrame(rows)


def track_slopes(table: pd.DataFrame, columns: Sequence[str] | None = None,
                 time: str = "time_s", track: str = "track_id",
                 per: float = 3600.0) -> pd.DataFrame:
    """The time course of each tracked cell reduced to one number per feature: its slope.

    A least-squares line through a track's time points (``numpy.polyfit``) gives the rate
    of change per ``per`` seconds (default: per hour). Only tracks seen in every frame of
    their time-lapse are kept, so that every slope spans the same time.

    Returns
    -------
    pandas.DataFrame
        One row per track: the first row's metadata, ``n_frames`` and the slope of each
        feature (same column names, units per hour).
    """
    for col in (time, track):
        _require(table, col)
    rows = table[table[track].fillna(-1) >= 0]
    cols = [c for c in _columns(rows, columns) if c not in (time, track)]
    keys = [c for c in ("position", "field") if c in rows.columns][:1]
    n_times = (rows.groupby(keys)[time].transform("nunique") if keys
               else pd.Series(rows[time].nunique(), index=rows.index))
    n_frames = rows.groupby(track)[time].transform("nunique")
    rows = rows[n_frames == n_times]
    out = []
    for tid, tr in rows.groupby(track, sort=True):
        t = tr[time].to_numpy(float) / per
        slopes = {}
        for col in cols:
            y = tr[col].to_numpy(float)
            ok = np.isfinite(y)
            slopes[col] = (np.polyfit(t[ok], y[ok], 1)[0] if ok.sum() >= 2
                           and np.ptp(t[ok]) > 0 else np.nan)
        meta = tr.drop(columns=cols).iloc[0].to_dict()
        out.append({**meta, track: tid, "n_frames": len(tr), **slopes})
    return pd.DataFrame(out)


def group_counts(table: pd.DataFrame, keys: Sequence[str],
                 replicate: str | None = None) -> pd.DataFrame:
    """Cells (and replicates, tracks counted once) per group: the n of every statement.

    Returns
    -------
    pandas.DataFrame
        ``keys`` present in the table, ``cells`` and, with ``replicate``, ``replicates``.
    """
    table = collapse_tracks(table)
    keys = [k for k in keys if k in table.columns]
    if not keys:
        counts = pd.DataFrame({"cells": [len(table)]})
        if replicate and replicate in table.columns:
            counts["replicates"] = table[replicate].nunique()
        return counts
    grouped = table.groupby(keys, sort=True)
    counts = grouped.size().rename("cells").reset_index()
    if replicate and replicate in table.columns:
        counts["replicates"] = grouped[replicate].nunique().to_numpy()
    return counts
