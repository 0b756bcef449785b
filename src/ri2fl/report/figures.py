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
            fig.colorbar(sc, ax=ax, shrink=0.8, label=col)
        else:
            colours = _group_colours(table[col])
            for g, c in colours.items():
                sel = (table[col] == g).to_numpy()
                ax.scatter(xy[sel, 0], xy[sel, 1], s=12, color=c, label=str(g))
            ax.legend(fontsize=7, title=col, title_fontsize=7, loc="best")
        ax.set_xlabel(f"{method} 1")
        ax.set_ylabel(f"{method} 2")
        ax.set_title(f"coloured by {col}" if col else method, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def box_plots(table: pd.DataFrame, features: Sequence[str], by: str,
              ncols: int = 3) -> Figure:
    """Box plots of ``features`` per group of ``by``: median, quartiles and full range."""
    groups = sorted(table[by].dropna().unique(), key=str)
    n = max(1, len(features))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3.6 * min(n, ncols), 3.0 * nrows))
    colours = _group_colours(groups)
    for i, feat in enumerate(features):
        ax = fig.add_subplot(nrows, min(n, ncols), i + 1)
        data = [table.loc[table[by] == g, feat].dropna().to_numpy(float) for g in groups]
        # whiskers over the full range, as in the paper (median, quartiles, range)
        parts = ax.boxplot(data, whis=(0, 100), patch_artist=True, widths=0.6)
        for patch, g in zip(parts["boxes"], groups):
            patch.set_facecolor(colours[g])
            patch.set_alpha(0.6)
        rng = np.random.default_rng(0)
        for k, d in enumerate(data, start=1):
            ax.scatter(k + rng.uniform(-0.12, 0.12, d.size), d, s=5, color="0.2", zorder=3)
        ax.set_xticks(range(1, len(groups) + 1), [str(g) for g in groups], fontsize=7,
                      rotation=20)
        ax.set_title(feat, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def time_course_figure(courses: pd.DataFrame, time_column: str = "frame",
                       ncols: int = 3) -> Figure:
    """Mean ± s.d. of each feature over time, one line per group.

    ``courses`` is the long table of :func:`ri2fl.profile.time_courses`.
    """
    features = list(dict.fromkeys(courses["feature"]))
    n = max(1, len(features))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3.8 * min(n, ncols), 2.9 * nrows))
    has_group = "group" in courses.columns
    colours = _group_colours(courses["group"]) if has_group else {None: "C0"}
    for i, feat in enumerate(features):
        ax = fig.add_subplot(nrows, min(n, ncols), i + 1)
        sub = courses[courses["feature"] == feat]
        for g, colour in colours.items():
            line = sub[sub["group"] == g] if has_group else sub
            t = line[time_column].to_numpy(float)
            m, s = line["mean"].to_numpy(float), line["sd"].fillna(0).to_numpy(float)
            ax.plot(t, m, "-o", ms=3, color=colour, label=str(g) if has_group else None)
            ax.fill_between(t, m - s, m + s, color=colour, alpha=0.2)
        ax.set_title(feat, fontsize=8)
        ax.set_xlabel({"time_h": "time (h)", "time_s": "time (s)"}.get(time_column, time_column),
                      fontsize=7)
        ax.tick_params(labelsize=7)
        if has_group and i == 0:
            ax.legend(fontsize=7)
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
                   fl_label: str = "inferred fluorescence") -> Figure:
    """Maximum-intensity projections of one field: RI with cell outlines, fluorescence
    composite, and the uncertainty of the nucleus channel (or the first one given).
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
    fig = Figure(figsize=(3.6 * len(panels), 3.6))
    outline = find_boundaries(_label_mip(cell_labels)) if cell_labels is not None else None
    for i, (name, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if name == "RI":
            im = ax.imshow(img, cmap="gray", extent=extent, vmin=medium_index,
                           vmax=max(float(img.max()), medium_index + 1e-3))
            fig.colorbar(im, ax=ax, shrink=0.7, label="RI")
        elif img.ndim == 3:
            ax.imshow(img, extent=extent)
        else:
            im = ax.imshow(img, cmap="magma", extent=extent)
            fig.colorbar(im, ax=ax, shrink=0.7)
        if outline is not None:
            yy, xx = np.nonzero(outline)
            ax.scatter((xx + 0.5) * voxel_size_um[2], (yy + 0.5) * voxel_size_um[1], s=0.3,
                       c="yellow" if name == "RI" else "white", linewidths=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x (µm)", fontsize=7)
        ax.set_ylabel("y (µm)", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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
