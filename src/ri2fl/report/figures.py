"""Figures of a profiling report: embeddings, box plots, time courses, example projections.

Every function returns a :class:`matplotlib.figure.Figure` made without pyplot (no global
state, no display needed); :func:`figure_png` turns one into PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries

_DPI = 100
#: Smallest text in any figure (pt): ticks and legends stay readable at the page's width.
TICK_PT = 9
LABEL_PT = 10


def feature_unit(feature: str) -> str:
    """The unit of a feature column, from the feature dictionary ("" if unknown)."""
    from ..profile.features import feature_dictionary

    units = _UNITS.setdefault("table", dict(zip(*feature_dictionary()[["name", "unit"]]
                                               .to_numpy().T)))
    unit = units.get(feature)
    if unit is None:  # a name outside the dictionary: its suffix carries the unit
        suffix = {"_um3": "µm³", "_um2": "µm²", "_um": "µm", "_pg": "pg", "_au": "a.u.",
                  "_pg_per_um3": "pg/µm³", "_per_um": "1/µm"}
        unit = next((u for k, u in suffix.items() if feature.endswith(k)), "")
    return "" if unit == "1" else unit


_UNITS: dict[str, dict[str, str]] = {}


def axis_label(feature: str, per: str = "") -> str:
    """``feature (unit)``, or ``feature (unit per hour)`` for a rate; dimensionless: no unit."""
    unit = feature_unit(feature)
    if per:
        unit = f"{unit}/{per}" if unit else f"1/{per}"
    return f"{feature} ({unit})" if unit else f"{feature} (dimensionless)"


def _style(ax) -> None:
    ax.tick_params(labelsize=TICK_PT)


def figure_png(fig: Figure, dpi: int = _DPI) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _group_colours(values: Sequence) -> dict:
    cmap = colormaps["tab10"]
    groups = sorted(pd.unique(pd.Series(list(values)).dropna()), key=str)
    return {g: cmap(i % 10) for i, g in enumerate(groups)}


def embedding_figure(embedding: pd.DataFrame, table: pd.DataFrame,
                     colour_by: Sequence[str]) -> Figure:
    """Scatter plots of the 2D embedding, one panel per colouring column.

    Categorical columns (condition, cell type) get one colour per group and a legend;
    numeric ones (a feature) a colour map and a colour bar.
    """
    n = max(1, len(colour_by))
    fig = Figure(figsize=(4.2 * n, 3.8))
    method = embedding.attrs.get("method", "umap").upper()
    xy = embedding.to_numpy()
    for i, col in enumerate(colour_by or [None]):
        ax = fig.add_subplot(1, n, i + 1)
        if col is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=12, c="0.3")
        elif pd.api.types.is_numeric_dtype(table[col]) and table[col].nunique() > 6:
            sc = ax.scatter(xy[:, 0], xy[:, 1], s=12, c=table[col].to_numpy(float),
                            cmap="viridis")
            bar = fig.colorbar(sc, ax=ax, shrink=0.8)
            bar.set_label(axis_label(col), fontsize=TICK_PT)
            bar.ax.tick_params(labelsize=TICK_PT)
        else:
            colours = _group_colours(table[col])
            for g, c in colours.items():
                sel = (table[col] == g).to_numpy()
                ax.scatter(xy[sel, 0], xy[sel, 1], s=12, color=c,
                           label=f"{g} (n = {int(sel.sum())})")
            ax.legend(fontsize=TICK_PT, title=col, title_fontsize=TICK_PT, loc="best")
        # embedding axes have no unit: the coordinates are arbitrary
        ax.set_xlabel(f"{method} 1 (arbitrary units)", fontsize=LABEL_PT)
        ax.set_ylabel(f"{method} 2 (arbitrary units)", fontsize=LABEL_PT)
        ax.set_title(f"coloured by {col}" if col else method, fontsize=LABEL_PT)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def box_plots(table: pd.DataFrame, features: Sequence[str], by: str, ncols: int = 3, *,
              within: str | None = None, replicate: str | None = None) -> Figure:
    """Box plots of ``features`` per group of ``by`` (and of ``within``, side by side).

    Each box shows the cells' median, quartiles and full range with every cell as a grey
    dot; with ``replicate`` each replicate's mean is a black diamond (the values the
    statistics compare). The y axis carries the feature's unit, each group its n.
    """
    keys = [within, by] if within else [by]
    groups = sorted(table.groupby(keys, sort=True).groups, key=lambda g: tuple(map(str, g))
                    if isinstance(g, tuple) else (str(g),))
    n = max(1, len(features))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(max(3.8, 1.3 * len(groups)) * min(n, ncols), 3.6 * nrows))
    colours = _group_colours(table[by])
    for i, feat in enumerate(features):
        ax = fig.add_subplot(nrows, min(n, ncols), i + 1)
        sel = [_rows(table, keys, g) for g in groups]
        data = [table.loc[m, feat].dropna().to_numpy(float) for m in sel]
        # whiskers over the full range, as in the paper (median, quartiles, range)
        parts = ax.boxplot(data, whis=(0, 100), patch_artist=True, widths=0.6)
        for patch, g in zip(parts["boxes"], groups):
            patch.set_facecolor(colours[g[-1] if isinstance(g, tuple) else g])
            patch.set_alpha(0.5)
        rng = np.random.default_rng(0)
        labels = []
        for k, (d, m) in enumerate(zip(data, sel), start=1):
            ax.scatter(k + rng.uniform(-0.12, 0.12, d.size), d, s=6, color="0.45", zorder=3)
            label = f"n = {d.size} cells"
            if replicate is not None:
                means = table.loc[m].groupby(replicate)[feat].mean().dropna()
                ax.scatter(np.full(len(means), k + 0.25), means, marker="D", s=18,
                           color="black", zorder=4)
                label += f"\n{len(means)} {replicate}s"
            name = "\n".join(map(str, g)) if isinstance(g, tuple) else str(g)
            labels.append(f"{name}\n{label}")
        ax.set_xticks(range(1, len(groups) + 1), labels, fontsize=TICK_PT)
        ax.set_title(feat, fontsize=LABEL_PT)
        ax.set_ylabel(axis_label(feat), fontsize=LABEL_PT)
        _style(ax)
    fig.tight_layout()
    return fig


def _rows(table: pd.DataFrame, keys: Sequence[str], group) -> pd.Series:
    values = group if isinstance(group, tuple) else (group,)
    mask = pd.Series(True, index=table.index)
    for k, v in zip(keys, values):
        mask &= table[k] == v
    return mask


def time_course_figure(courses: pd.DataFrame, time_column: str = "frame",
                       ncols: int = 3, tracks: pd.DataFrame | None = None,
                       group_column: str | None = None) -> Figure:
    """Mean ± s.d. of each feature over time, one line per group; with ``tracks`` (the
    rows of the time-lapse with ``track_id``), every tracked cell as a thin line too.

    ``courses`` is the long table of :func:`ri2fl.profile.time_courses`.
    """
    features = list(dict.fromkeys(courses["feature"]))
    n = max(1, len(features))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(4.2 * min(n, ncols), 3.4 * nrows))
    has_group = "group" in courses.columns
    colours = _group_colours(courses["group"]) if has_group else {None: "C0"}
    time_label = {"time_h": "time (h)", "time_s": "time (s)"}.get(time_column,
                                                                  f"{time_column} (index)")
    for i, feat in enumerate(features):
        ax = fig.add_subplot(nrows, min(n, ncols), i + 1)
        sub = courses[courses["feature"] == feat]
        for g, colour in colours.items():
            line = sub[sub["group"] == g] if has_group else sub
            _track_lines(ax, tracks, feat, time_column, group_column, g, colour)
            t = line[time_column].to_numpy(float)
            m, s = line["mean"].to_numpy(float), line["sd"].fillna(0).to_numpy(float)
            n_cells = int(line["n"].max()) if len(line) else 0
            label = f"{g}: n = {n_cells} cells" if has_group else f"n = {n_cells} cells"
            ax.plot(t, m, "-o", ms=4, lw=2, color=colour, label=label)
            ax.fill_between(t, m - s, m + s, color=colour, alpha=0.15)
        ax.set_title(feat, fontsize=LABEL_PT)
        ax.set_xlabel(time_label, fontsize=LABEL_PT)
        ax.set_ylabel(axis_label(feat), fontsize=LABEL_PT)
        _style(ax)
        if i == 0:
            ax.legend(fontsize=TICK_PT)
    fig.tight_layout()
    return fig


def _track_lines(ax, tracks, feat, time_column, group_column, group, colour) -> None:
    if tracks is None or "track_id" not in tracks.columns or feat not in tracks.columns:
        return
    sub = tracks if group_column is None or group is None else tracks[
        tracks[group_column] == group]
    for _, tr in sub.groupby("track_id"):
        tr = tr.sort_values(time_column)
        ax.plot(tr[time_column], tr[feat], "-", lw=0.7, color=colour, alpha=0.5)


def agreement_figure(per_feature: pd.DataFrame, goal: float = 0.9,
                     n_cells: int | None = None) -> Figure:
    """Per-feature Pearson r (inferred vs true fluorescence) as dots, one column per
    feature family, with each family's median and the goal line."""
    families = sorted(per_feature["family"].dropna().unique())
    fig = Figure(figsize=(max(5.0, 1.6 * len(families)), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    rng = np.random.default_rng(0)
    labels = []
    for k, fam in enumerate(families, start=1):
        r = per_feature.loc[per_feature["family"] == fam, "r"].to_numpy(float)
        ok = r >= goal
        x = k + rng.uniform(-0.15, 0.15, r.size)
        ax.scatter(x[ok], r[ok], s=14, color="tab:blue")
        ax.scatter(x[~ok], r[~ok], s=14, color="tab:red")
        ax.hlines(np.median(r), k - 0.3, k + 0.3, color="black", lw=2)
        labels.append(f"{fam}\n{r.size} features\nmedian {np.median(r):.2f}")
    ax.axhline(goal, color="0.4", ls="--", lw=1)
    ax.text(0.5, goal, f" goal {goal:g}", va="bottom", fontsize=TICK_PT, color="0.3")
    ax.set_xticks(range(1, len(families) + 1), labels, fontsize=TICK_PT)
    ax.set_xlim(0.4, len(families) + 0.6)
    ax.set_ylim(min(-0.1, float(per_feature["r"].min()) - 0.05), 1.05)
    who = f" over {n_cells} cells" if n_cells else ""
    ax.set_ylabel(f"Pearson r, inferred vs true{who} (dimensionless)", fontsize=LABEL_PT)
    ax.set_title("Features on inferred vs true fluorescence, per feature "
                 "(red: below the goal)", fontsize=LABEL_PT)
    _style(ax)
    fig.tight_layout()
    return fig


def _mip(volume: np.ndarray) -> np.ndarray:
    return np.asarray(volume, dtype=np.float32).max(axis=0)


def _label_mip(labels: np.ndarray) -> np.ndarray:
    """Top-most label along z of each (y, x) column: a projection that keeps instances."""
    labels = np.asarray(labels)
    has = labels > 0
    first = np.argmax(has, axis=0)
    proj = np.take_along_axis(labels, first[None], axis=0)[0]
    return np.where(has.any(axis=0), proj, 0)


def example_figure(ri: np.ndarray, cell_labels: np.ndarray | None = None,
                   fl: Mapping[str, np.ndarray] | None = None,
                   uncertainty: Mapping[str, np.ndarray] | None = None,
                   voxel_size_um: Sequence[float] = (0.2, 0.15, 0.15),
                   medium_index: float = 1.337, title: str = "",
                   fl_label: str = "inferred fluorescence", warning: str = "") -> Figure:
    """Maximum-intensity projections of one field: RI with cell outlines, fluorescence
    composite (with a legend of its channel colours), and the uncertainty of the nucleus
    channel (or the first one given). ``warning`` is printed in red under the title (e.g.
    an out-of-domain input the models misread).
    """
    panels = [("RI", _mip(ri))]
    fl = dict(fl or {})
    uncertainty = dict(uncertainty or {})
    if fl:
        panels.append((fl_label, _composite({k: _mip(v) for k, v in fl.items()})))
    if uncertainty:
        name = "nucleus" if "nucleus" in uncertainty else next(iter(uncertainty))
        panels.append((f"{name} uncertainty (s.d.)", _mip(uncertainty[name])))
    extent = (0, ri.shape[2] * voxel_size_um[2], ri.shape[1] * voxel_size_um[1], 0)
    fig = Figure(figsize=(4.4 * len(panels), 4.2))
    outline = find_boundaries(_label_mip(cell_labels)) if cell_labels is not None else None
    for i, (name, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if name == "RI":
            im = ax.imshow(img, cmap="gray", extent=extent, vmin=medium_index,
                           vmax=max(float(img.max()), medium_index + 1e-3))
            _colorbar(fig, im, ax, "refractive index (dimensionless)")
        elif img.ndim == 3:
            ax.imshow(img, extent=extent)
            _channel_legend(ax, fl)
        else:
            im = ax.imshow(img, cmap="magma", extent=extent)
            _colorbar(fig, im, ax, "s.d. (a.u., fluorescence scale)")
        if outline is not None:
            yy, xx = np.nonzero(outline)
            ax.scatter((xx + 0.5) * voxel_size_um[2], (yy + 0.5) * voxel_size_um[1], s=0.3,
                       c="yellow" if name == "RI" else "white", linewidths=0)
        ax.set_title(name, fontsize=LABEL_PT)
        ax.set_xlabel("x (µm)", fontsize=LABEL_PT)
        ax.set_ylabel("y (µm)", fontsize=LABEL_PT)
        _style(ax)
    if title:
        fig.suptitle(title, fontsize=LABEL_PT + 1)
    if warning:
        fig.text(0.5, 0.005, warning, ha="center", va="bottom", color="red",
                 fontsize=LABEL_PT, fontweight="bold", wrap=True)
    fig.tight_layout(rect=(0, 0.07 if warning else 0, 1, 1))
    return fig


def _colorbar(fig: Figure, im, ax, label: str) -> None:
    bar = fig.colorbar(im, ax=ax, shrink=0.7)
    bar.set_label(label, fontsize=TICK_PT)
    bar.ax.tick_params(labelsize=TICK_PT)


def _channel_legend(ax, channels: Mapping[str, np.ndarray]) -> None:
    """Which colour is which channel in a composite."""
    from matplotlib.patches import Patch

    handles = [Patch(color=CHANNEL_COLOURS.get(name, (0.7, 0.7, 0.7)), label=name)
               for name in channels]
    ax.legend(handles=handles, fontsize=TICK_PT, loc="upper left", bbox_to_anchor=(1.01, 1),
              borderaxespad=0, title="channel", title_fontsize=TICK_PT)


#: Display colours of the fluorescence targets in composites.
CHANNEL_COLOURS: dict[str, tuple[float, float, float]] = {
    "membrane": (1.0, 0.2, 0.2),
    "actin": (0.2, 1.0, 0.2),
    "mitochondria": (1.0, 0.6, 0.0),
    "lipid_droplets": (1.0, 1.0, 0.0),
    "nucleus": (0.2, 0.4, 1.0),
    "nucleolus": (1.0, 0.0, 1.0),
}


def _composite(mips: Mapping[str, np.ndarray]) -> np.ndarray:
    """Additive RGB composite; intensities on the shared quantitative scale, clipped to 1."""
    shape = next(iter(mips.values())).shape
    rgb = np.zeros((*shape, 3), np.float32)
    for name, img in mips.items():
        colour = np.asarray(CHANNEL_COLOURS.get(name, (0.7, 0.7, 0.7)), np.float32)
        rgb += np.clip(img, 0, 1)[..., None] * colour
    return np.clip(rgb, 0, 1)
