"""The profiling report: one self-contained HTML page with embedded figures.

Sections (each an ``<section id=...>``): ``summary``, ``embedding``, ``anova``,
``boxplots``, ``ttests``, ``uncertainty`` (when the table has uncertainty columns),
``timecourses`` (time-lapses only), ``examples`` (when example fields are given) and
``features`` (per-feature summary).
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._html import png_tag, write_html_page
from ..errors import ConfigError
from ..profile import (
    anova_ranking,
    embed,
    feature_columns,
    nonredundant_features,
    time_courses,
    ttests,
)
from ..profile.features import UNCERTAINTY_SUFFIX
from .figures import box_plots, embedding_figure, example_figure, figure_png, time_course_figure

#: Group columns tried, in order, when none is given.
GROUP_CANDIDATES = ("condition", "cell_type", "source")


@dataclass
class ExampleField:
    """One field of view shown as projections in the report."""

    title: str
    ri: np.ndarray
    voxel_size_um: tuple[float, float, float]
    cell_labels: np.ndarray | None = None
    fl: Mapping[str, np.ndarray] = field(default_factory=dict)
    uncertainty: Mapping[str, np.ndarray] = field(default_factory=dict)
    medium_index: float = 1.337
    fl_label: str = "inferred fluorescence"


def _img(fig, alt: str) -> str:
    return png_tag(figure_png(fig), alt)


def _table(df: pd.DataFrame, digits: int = 4) -> str:
    return df.to_html(index=False, border=0, na_rep="–",
                      float_format=lambda v: f"{v:.{digits}g}")


def default_group(table: pd.DataFrame) -> str | None:
    """The first of ``condition``, ``cell_type``, ``source`` with at least two groups."""
    for col in GROUP_CANDIDATES:
        if col in table.columns and table[col].nunique() >= 2:
            return col
    return None


def build_report(table: pd.DataFrame, path: str | Path, *, group_by: str | None = None,
                 colour_by: Sequence[str] | None = None,
                 examples: Sequence[ExampleField] = (), top: int = 6,
                 embedding: str = "umap", title: str = "ri2fl single-cell profile",
                 exclude_edge_cells: bool = True, note: str = "",
                 overwrite: bool = False) -> Path:
    """Write the HTML report of a feature table.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table (:func:`ri2fl.profile.measure_cells` rows, plus metadata columns).
    path : str or Path
        The ``.html`` file to write (atomically).
    group_by : str, optional
        Column of the groups compared by ANOVA, t-tests and box plots (default: the first
        of ``condition``, ``cell_type``, ``source`` that has two groups or more).
    colour_by : sequence of str, optional
        Columns colouring the embedding (default: the group columns present, and the top
        ANOVA feature).
    examples : sequence of ExampleField
        Fields shown as projections with cell outlines, fluorescence and uncertainty.
    top : int
        Number of top-ranked features shown as box plots and time courses.
    embedding : {"umap", "pca"}
        Embedding method (UMAP: 5 neighbours, min_dist 0.5).
    exclude_edge_cells : bool
        Leave cells cut by the field edge out of the statistics.
    note : str
        A sentence added to the summary (e.g. a validation result).
    overwrite : bool
        Replace an existing report that ri2fl wrote (anything else is never replaced).

    Returns
    -------
    Path
        ``path``.
    """
    if group_by is not None and group_by not in table.columns:
        present = [c for c in GROUP_CANDIDATES if c in table.columns]
        hint = (f"group by one of {', '.join(present)}" if present
                else "profile with --condition NAME to add a condition column")
        raise ConfigError(f"no column {group_by!r} in the feature table", "--group-by", hint)
    edge_note = ""
    if exclude_edge_cells and "cut_by_edge" in table.columns:
        edge = table["cut_by_edge"].astype(bool)
        if (~edge).sum() >= 2:
            table = table[~edge]
            edge_note = f"{int(edge.sum())} cells cut by the field edge left out"
        elif edge.any():
            edge_note = (f"{int(edge.sum())} cells touch the field edge, kept since too few "
                         "are whole: shapes and masses of those are truncated")
    table = table.reset_index(drop=True)
    group = group_by or default_group(table)
    feats = feature_columns(table)
    sections: list[tuple[str, str, list[str]]] = []
    summary = _summary(table, edge_note, group, feats)
    if note:
        summary.insert(1, f"<p>{html.escape(note)}</p>")
    sections.append(("summary", "Summary", summary))
    ranking = None
    if group is not None and table[group].nunique() >= 2 and len(table) > 2:
        ranking = anova_ranking(table, group, feats)
    sections.append(("embedding", "Embedding",
                     _embedding(table, feats, group, colour_by, ranking, embedding)))
    if ranking is not None and len(ranking):
        best = list(ranking["feature"].head(top))
        sections.append(("anova", f"Features ranked by one-way ANOVA across {group}",
                         [_table(ranking.head(20))]))
        sections.append(("boxplots", f"Top {len(best)} features by {group}",
                         [_img(box_plots(table, best, group), "box plots")]))
        tests = ttests(table, group, feats)
        sections.append(("ttests", "Unpaired two-sided t-tests (Welch), Benjamini-Hochberg q",
                         [_table(tests.head(20))]))
    else:
        best = _most_variable(table, feats, top)
        sections.append(("anova", "Features ranked by one-way ANOVA",
                         ["<p class='note'>Only one group: no ANOVA, t-tests or box plots. "
                          "Profile several conditions (--condition) to compare them.</p>"]))
    unc_cols = [c for c in table.columns
                if c.endswith(UNCERTAINTY_SUFFIX) and table[c].notna().any()]
    if unc_cols:
        by = group if group is not None else None
        frag = ["<p>Mean inference uncertainty (s.d. over test-time augmentations and "
                "MC-dropout passes) of each channel in each cell: high values flag cells whose "
                "inferred fluorescence, and the features measured on it, are less reliable.</p>"]
        if by is not None:
            frag.append(_img(box_plots(table, unc_cols, by), "uncertainty"))
        else:
            frag.append(_table(table[unc_cols].describe().T.reset_index(names="channel")))
        sections.append(("uncertainty", "Inference uncertainty per cell", frag))
    lapse = _time_lapse_rows(table) if "frame" in table.columns else table.iloc[:0]
    if len(lapse) and lapse["frame"].nunique() > 1:
        sections.append(("timecourses", "Time courses", _timecourses(lapse, best, group)))
    if examples:
        sections.append(("examples", "Example fields (maximum projections)",
                         [_img(example_figure(e.ri, e.cell_labels, e.fl, e.uncertainty,
                                              e.voxel_size_um, e.medium_index, e.title,
                                              e.fl_label),
                               e.title) for e in examples]))
    sections.append(("features", "Feature summary", [_feature_summary(table, feats)]))
    return write_html_page(path, title, sections, nav=True, overwrite=overwrite)


def _summary(table: pd.DataFrame, edge_note: str, group: str | None,
             feats: list[str]) -> list[str]:
    edge = f" ({edge_note})" if edge_note else ""
    out = [f"<p>{len(table)} cells{edge}, {len(feats)} features. See docs/features.md for "
           "the feature dictionary.</p>"]
    keys = [c for c in ("cell_type", "condition", "frame") if c in table.columns]
    if group and group not in keys:
        keys.insert(0, group)
    if keys:
        counts = table.groupby(keys[:2]).size().rename("cells").reset_index()
        out.append(_table(counts))
    return out


def _embedding(table, feats, group, colour_by, ranking, method) -> list[str]:
    if len(table) < 3:
        return ["<p class='note'>Too few cells for an embedding.</p>"]
    used = nonredundant_features(table, feats)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emb = embed(table, used, method=method)
    notes = [f"<p class='note'>{html.escape(str(w.message))}</p>" for w in caught
             if "principal components" in str(w.message)]
    if colour_by is None:
        colour_by = [c for c in ("cell_type", "condition") if c in table.columns]
        if group and group not in colour_by:
            colour_by.insert(0, group)
        if ranking is not None and len(ranking):
            colour_by.append(ranking["feature"].iloc[0])
    what = (f"the {len(used)} z-scored features left after dropping those correlated "
            f"above 0.95 with another")
    desc = (f"UMAP (5 neighbours, min_dist 0.5) of {what}" if emb.attrs["method"] == "umap"
            else f"First two principal components of {what}")
    return [f"<p>{desc}.</p>", *notes, _img(embedding_figure(emb, table, list(colour_by)),
                                             "embedding")]


def _most_variable(table: pd.DataFrame, feats: list[str], top: int) -> list[str]:
    x = table[feats].astype(float)
    cv = (x.std() / x.mean().abs().replace(0, np.nan)).dropna()
    return list(cv.sort_values(ascending=False).index[:top])


def _time_lapse_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that belong to time-lapses (snapshots mixed in the table are frame 0 too)."""
    if "time_s" in table.columns and table["time_s"].notna().any():
        return table[table["time_s"].notna()]
    if "track_id" in table.columns and (table["track_id"] >= 0).any():
        return table[table["track_id"] >= 0]
    return table


def _timecourses(lapse: pd.DataFrame, features: list[str], group: str | None) -> list[str]:
    by = group if group and group != "frame" else None
    if "time_s" in lapse.columns and lapse["time_s"].notna().all():
        lapse = lapse.assign(time_h=lapse["time_s"] / 3600.0)
        courses = time_courses(lapse, features, by=by, frame="time_h")
        fig = time_course_figure(courses, time_column="time_h")
    else:
        fig = time_course_figure(time_courses(lapse, features, by=by))
    n_tracks = lapse["track_id"].nunique() if "track_id" in lapse.columns else None
    note = f" over {n_tracks} tracked cells" if n_tracks else ""
    return [f"<p>Mean ± s.d. per time point{note}.</p>", _img(fig, "time courses")]


def _feature_summary(table: pd.DataFrame, feats: list[str]) -> str:
    desc = table[feats].astype(float).describe().T[["count", "mean", "std", "min", "max"]]
    desc.insert(0, "feature", desc.index)
    return _table(desc.reset_index(drop=True))
