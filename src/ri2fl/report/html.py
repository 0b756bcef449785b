"""The profiling report: one self-contained HTML page with embedded figures.

Sections (each an ``<section id=...>``): ``summary`` (the n of every group), ``truth``
(when a known stimulus is given: expected beside found, and the false-positive rate),
``embedding``, ``statistics`` (conditions compared within each stratum, replicates as
units), ``boxplots``, ``uncertainty`` (when the table has uncertainty columns),
``timecourses`` (time-lapses only), ``agreement`` (when given), ``examples`` (when
example fields are given) and ``features`` (per-feature summary).
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
    compare_conditions,
    embed,
    false_positive_rate,
    feature_columns,
    group_counts,
    nonredundant_features,
    time_courses,
    track_slopes,
)
from ..profile.features import UNCERTAINTY_SUFFIX
from .figures import (
    agreement_figure,
    box_plots,
    embedding_figure,
    example_figure,
    figure_png,
    time_course_figure,
)

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
    warning: str = ""


@dataclass
class KnownTruth:
    """What a stimulus is known to do (a simulation's ground truth), shown beside what the
    statistics found.

    ``expected`` has columns ``feature``, ``direction`` ("up" / "down") and ``truth``
    (a sentence); ``touched`` lists every feature the stimulus changes, so that hits among
    the others are counted as false positives.
    """

    expected: pd.DataFrame
    touched: Sequence[str]
    description: str = ""


@dataclass
class Agreement:
    """Features measured on inferred vs true fluorescence (see
    :func:`ri2fl.profile.validation.explain_agreement`)."""

    per_feature: pd.DataFrame
    n_cells: int
    goal: float = 0.9
    channels: pd.DataFrame | None = None
    #: which cells: "whole cells" (cut by the field's edge left out) or "cells"
    cells: str = "whole cells"


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


def default_replicate(table: pd.DataFrame) -> str | None:
    """The replicate column: ``field`` if the table has one, else ``source`` (one file per
    field of view), else None (cells as units)."""
    return next((c for c in ("field", "source") if c in table.columns), None)


def build_report(table: pd.DataFrame, path: str | Path, *, group_by: str | None = None,
                 colour_by: Sequence[str] | None = None,
                 examples: Sequence[ExampleField] = (), top: int = 6,
                 embedding: str = "umap", title: str = "ri2fl single-cell profile",
                 exclude_edge_cells: bool = True, note: str = "",
                 within: str | None = None, replicate: str | None = None,
                 reference: str | None = None, truth: KnownTruth | None = None,
                 agreement: Agreement | None = None, overwrite: bool = False) -> Path:
    """Write the HTML report of a feature table.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table (:func:`ri2fl.profile.measure_cells` rows, plus metadata columns).
    path : str or Path
        The ``.html`` file to write (atomically).
    group_by : str, optional
        Column of the groups compared (default: the first of ``condition``, ``cell_type``,
        ``source`` that has two groups or more).
    colour_by : sequence of str, optional
        Columns colouring the embedding (default: the group columns present, and the top
        feature).
    examples : sequence of ExampleField
        Fields shown as projections with cell outlines, fluorescence and uncertainty.
    top : int
        Number of top-ranked features shown as box plots and time courses.
    embedding : {"umap", "pca"}
        Embedding method (UMAP: 5 neighbours, min_dist 0.5).
    exclude_edge_cells : bool
        Leave cells cut by the field edge out of the statistics.
    note : str
        A sentence added to the summary.
    within : str, optional
        Strata compared separately (default: ``cell_type`` when the table has several and
        it is not the group column).
    replicate : str, optional
        The replicate column (default: :func:`default_replicate`); ``"cell"`` treats cells
        as independent.
    reference : str, optional
        The group the others are compared with (default: the first in sorted order).
    truth : KnownTruth, optional
        A known stimulus: the report shows it beside what was found.
    agreement : Agreement, optional
        Features on inferred vs true fluorescence, shown with their explanation.
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
    table, edge_note = _whole_cells(table, exclude_edge_cells)
    group = group_by or default_group(table)
    if within is None and "cell_type" in table.columns and group != "cell_type" \
            and table["cell_type"].nunique() > 1:
        within = "cell_type"
    replicate = None if replicate == "cell" else (replicate or default_replicate(table))
    feats = feature_columns(table)
    lapse = _time_lapse_rows(table) if "frame" in table.columns else table.iloc[:0]
    snapshots = table.drop(index=lapse.index) if len(lapse) < len(table) else table
    sections: list[tuple[str, str, list[str]]] = []
    summary = _summary(snapshots, lapse, edge_note, group, within, replicate, len(feats))
    if note:
        summary.insert(1, f"<p>{html.escape(note)}</p>")
    sections.append(("summary", "Summary", summary))
    comparison = None
    if group is not None and snapshots[group].nunique() >= 2:
        comparison = compare_conditions(snapshots, group, reference=reference, within=within,
                                        replicate=replicate, columns=feats)
    if truth is not None and comparison is not None:
        sections.append(("truth", "The known stimulus: expected and found",
                         _truth(comparison, truth)))
    best = _best(comparison, snapshots, feats, top)
    sections.append(("embedding", "Embedding",
                     _embedding(table, feats, group, colour_by, best, embedding)))
    if comparison is not None:
        sections.append(("statistics", f"{group} compared" + (f" within each {within}"
                                                              if within else ""),
                         _statistics(comparison, replicate, within, truth)))
        sections.append(("boxplots", f"Top {len(best)} features by {group}",
                         [_img(box_plots(snapshots, best, group, within=within,
                                         replicate=replicate), "box plots")]))
    else:
        sections.append(("statistics", "Statistics",
                         ["<p class='note'>Only one group: no comparison or box plots. "
                          "Profile several conditions (--condition) to compare them.</p>"]))
    unc = _uncertainty(table, group)
    if unc:
        sections.append(("uncertainty", "Inference uncertainty per cell", unc))
    if len(lapse) and lapse["frame"].nunique() > 1:
        sections.append(("timecourses", "Time courses", _timecourses(lapse, best, group)))
    if agreement is not None:
        sections.append(("agreement", "Features on inferred vs true fluorescence",
                         _agreement(agreement)))
    if examples:
        sections.append(("examples", "Example fields (maximum projections)",
                         [_img(example_figure(e.ri, e.cell_labels, e.fl, e.uncertainty,
                                              e.voxel_size_um, e.medium_index, e.title,
                                              e.fl_label, e.warning),
                               e.title) for e in examples]))
    sections.append(("features", "Feature summary", [_feature_summary(table, feats)]))
    return write_html_page(path, title, sections, nav=True, overwrite=overwrite)


def _whole_cells(table: pd.DataFrame, exclude: bool) -> tuple[pd.DataFrame, str]:
    """The cells not cut by the field edge, and a sentence saying how many were left out."""
    note = ""
    if exclude and "cut_by_edge" in table.columns:
        edge = table["cut_by_edge"].astype(bool)
        if (~edge).sum() >= 2:
            table = table[~edge]
            note = f"{int(edge.sum())} cells cut by the field edge left out"
        elif edge.any():
            note = (f"{int(edge.sum())} cells touch the field edge, kept since too few "
                    "are whole: shapes and masses of those are truncated")
    return table.reset_index(drop=True), note


def _best(comparison: pd.DataFrame | None, table: pd.DataFrame, feats: list[str],
          top: int) -> list[str]:
    if comparison is None or not comparison["tested"].any():
        return _most_variable(table, feats, top)
    tested = comparison[comparison["tested"]].sort_values("p")
    return list(dict.fromkeys(tested["feature"]))[:top]


def _fmt_change(row: pd.Series) -> str:
    if not np.isfinite(row["change_pct"]):
        return "–"
    if not np.isfinite(row["change_ci_low_pct"]):
        return f"{row['change_pct']:+.1f} %"
    return (f"{row['change_pct']:+.1f} % [{row['change_ci_low_pct']:+.1f}, "
            f"{row['change_ci_high_pct']:+.1f}]")


def _versus(comparison: pd.DataFrame, column: str) -> pd.Series:
    return (comparison[f"{column}_b"].astype(str) + " vs "
            + comparison[f"{column}_a"].astype(str))


def _readable(comparison: pd.DataFrame, touched: Sequence[str] | None = None) -> pd.DataFrame:
    out = pd.DataFrame({
        "stratum": comparison["stratum"], "feature": comparison["feature"],
        "comparison": _versus(comparison, "group"), "n cells": _versus(comparison, "n_cells"),
        "n replicates": _versus(comparison, "n_replicates"),
        "change [95 % CI]": comparison.apply(_fmt_change, axis=1),
        "p": comparison["p"], "q": comparison["q"], "note": comparison["note"]})
    if touched is not None:
        out.insert(2, "stimulus touches it", comparison["feature"].isin(set(touched))
                   .map({True: "yes", False: "no"}))
    return out


def _statistics(comparison: pd.DataFrame, replicate: str | None, within: str | None,
                truth: KnownTruth | None) -> list[str]:
    unit = f"{replicate}s" if replicate else "cells (treated as independent)"
    text = (f"<p>Each feature is averaged per {replicate} and the {unit} are compared "
            "(Welch's two-sided t-test on the replicate means; a tracked cell counts once, "
            "its frames averaged)" if replicate else
            f"<p>Each of the {unit} is one observation (Welch's two-sided t-test)")
    text += (f", separately within each {within}" if within else "")
    text += (". Change: difference of the means relative to the reference, with its 95 % "
             "confidence interval; q: Benjamini-Hochberg over all tests of the table. "
             "Fewer than 3 replicates in a group: not tested (said in the note).</p>")
    tested = comparison[comparison["tested"]]
    untested = comparison[~comparison["tested"]]
    frags = [text]
    if len(tested):
        frags.append(_table(_readable(tested.head(25), truth.touched if truth else None)))
    if len(untested):
        reasons = untested["note"].value_counts()
        frags.append("<p class='note'>" + "; ".join(
            f"{k} ({v} features)" for k, v in reasons.items()) + ".</p>")
    return frags


def _truth(comparison: pd.DataFrame, truth: KnownTruth) -> list[str]:
    frags = [f"<p>{html.escape(truth.description)}</p>"] if truth.description else []
    rows = []
    for _, exp in truth.expected.iterrows():
        for _, got in comparison[comparison["feature"] == exp["feature"]].iterrows():
            sign_ok = np.sign(got["difference"]) == (1 if exp["direction"] == "up" else -1)
            verdict = ("not tested" if not got["tested"] else
                       "recovered" if sign_ok and got["p"] < 0.01 else
                       "wrong sign" if not sign_ok else "not significant (p ≥ 0.01)")
            rows.append({"stratum": got["stratum"], "feature": exp["feature"],
                         "truth": exp["truth"], "found [95 % CI]": _fmt_change(got),
                         "n cells": f"{got['n_cells_b']} vs {got['n_cells_a']}",
                         "n replicates": f"{got['n_replicates_b']} vs {got['n_replicates_a']}",
                         "p": got["p"], "q": got["q"], "verdict": verdict})
    frags.append(_table(pd.DataFrame(rows)))
    fpr = false_positive_rate(comparison, truth.touched)
    if len(fpr):
        frags.append("<p>Features the stimulus does not touch are true nulls: any hit "
                     "(q &lt; 0.05) among them is a false positive. Detection: hits among "
                     "the features it touches (some change too little to detect).</p>")
        frags.append(_table(fpr, digits=3))
    return frags


def _agreement(agreement: Agreement) -> list[str]:
    per = agreement.per_feature
    median = float(per["r"].median()) if len(per) else float("nan")
    below = per[per["r"] < agreement.goal].sort_values("r")
    frags = [f"<p>Each fluorescence-dependent feature was measured twice on the same "
             f"{agreement.n_cells} {agreement.cells} (the true instance labels"
             + ("; cells cut by the field's edge are left out, as in the statistics"
                if agreement.cells == "whole cells" else "") + "): once on the inferred "
             "and once on the simulator's true fluorescence. Each dot is one feature's "
             "Pearson r over the cells; a feature whose r is high can stand in for the "
             "fluorescence measurement. The paper (Jo et al. 2021) reported r = 0.97, "
             "measured against real fluorescence and pooled over features. Here the median "
             f"over {len(per)} features is r = {median:.2f}; {len(below)} fall below the "
             f"goal of {agreement.goal:g}.</p>",
             _img(agreement_figure(per, agreement.goal, agreement.n_cells), "agreement")]
    if agreement.channels is not None:
        frags.append("<p>Voxel-wise Pearson r of each inferred channel with the truth, "
                     "inside the cells (a channel error shows here first):</p>")
        frags.append(_table(agreement.channels, digits=3))
    if len(below):
        cols = [c for c in ("feature", "family", "channel", "r", "cause") if c in below]
        frags.append("<p>Features below the goal and why (channel error: the channel "
                     "itself is inferred poorly; threshold: a mask thresholded from the "
                     "channel moves although the intensities agree; sparsity: most cells "
                     "have none of the structure, so r rests on a few cells):</p>")
        frags.append(_table(below[cols], digits=3))
    return frags


def _uncertainty(table: pd.DataFrame, group: str | None) -> list[str]:
    unc_cols = [c for c in table.columns
                if c.endswith(UNCERTAINTY_SUFFIX) and table[c].notna().any()]
    if not unc_cols:
        return []
    frag = ["<p>Mean inference uncertainty (s.d. over test-time augmentations and "
            "MC-dropout passes) of each channel in each cell: high values flag cells whose "
            "inferred fluorescence, and the features measured on it, are less reliable.</p>"]
    if group is not None:
        frag.append(_img(box_plots(table, unc_cols, group), "uncertainty"))
    else:
        frag.append(_table(table[unc_cols].describe().T.reset_index(names="channel")))
    return frag


def _summary(snapshots: pd.DataFrame, lapse: pd.DataFrame, edge_note: str,
             group: str | None, within: str | None, replicate: str | None,
             n_feats: int) -> list[str]:
    edge = f" ({edge_note})" if edge_note else ""
    n_lapse_cells = lapse["track_id"].nunique() if "track_id" in lapse else len(lapse)
    out = [f"<p>{len(snapshots)} cells in snapshots{edge}"
           + (f", and {n_lapse_cells} tracked cells in time-lapses ({len(lapse)} cell "
              "images)" if len(lapse) else "")
           + f"; {n_feats} features. See docs/features.md for the feature dictionary.</p>"]
    keys = [k for k in (within, group) if k]
    if keys and len(snapshots):
        counts = group_counts(snapshots, keys, replicate)
        out.append("<p>Cells (not cut by the field edge) and replicates per group:</p>")
        out.append(_table(counts))
    if len(lapse) and group:
        out.append("<p>Tracked cells per time-lapse group:</p>")
        out.append(_table(group_counts(lapse, [group])))
    return out


def _embedding(table, feats, group, colour_by, best, method) -> list[str]:
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
        if best:
            colour_by.append(best[0])
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
    tracks = lapse if "track_id" in lapse.columns else None
    if "time_s" in lapse.columns and lapse["time_s"].notna().all():
        lapse = lapse.assign(time_h=lapse["time_s"] / 3600.0)
        tracks = lapse if tracks is not None else None
        courses = time_courses(lapse, features, by=by, frame="time_h")
        fig = time_course_figure(courses, time_column="time_h", tracks=tracks,
                                 group_column=by)
    else:
        fig = time_course_figure(time_courses(lapse, features, by=by), tracks=tracks,
                                 group_column=by)
    n_tracks = lapse["track_id"].nunique() if "track_id" in lapse.columns else None
    note = f" over {n_tracks} tracked cells (thin lines: each cell)" if n_tracks else ""
    frags = [f"<p>Mean ± s.d. per time point{note}. A cell's time points are one time "
             "course, not replicates.</p>", _img(fig, "time courses")]
    if n_tracks and by and "time_s" in lapse.columns and lapse[by].nunique() >= 2:
        slopes = track_slopes(lapse, features)
        if len(slopes):
            comparison = compare_conditions(slopes, by, columns=features)
            frags.append("<p>Rate of change per tracked cell (least-squares slope per "
                         "hour), compared between groups with the cells as units. Each "
                         "time-lapse is one field per group, so a field-wide change would "
                         "be confounded with the group.</p>")
            frags.append(_table(_readable(comparison)))
    return frags


def _feature_summary(table: pd.DataFrame, feats: list[str]) -> str:
    desc = table[feats].astype(float).describe().T[["count", "mean", "std", "min", "max"]]
    desc.insert(0, "feature", desc.index)
    return _table(desc.reset_index(drop=True))
