"""Evaluation figures: max-projection panels and metric box plots (matplotlib, PNG).

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so that drawing them
neither needs a display nor changes the backend of a session (napari, Jupyter) that imports
ri2fl.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from .. import __version__
from .._atomic import atomic_path
from ..constants import RI_CLIP


def _subplots(nrows: int, ncols: int, figsize: tuple[float, float]):
    # constrained layout makes room for titles and colour bars in one drawing pass
    # (bbox_inches="tight" would render every figure twice)
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    # figures live in the evaluation's folder: a rerun replaces them (ri2fl's own only)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png", metadata={"Software": f"ri2fl {__version__}"})
    return path


def panel_figure(ri: np.ndarray, true: dict[str, np.ndarray], pred: dict[str, np.ndarray],
                 uncertainty: dict[str, np.ndarray | None], path: str | Path,
                 title: str = "", input_name: str = "RI") -> Path:
    """Max projections along z: input | true | inferred | uncertainty, one row per target.

    True and inferred fluorescence share one colour scale per target (intensities are
    quantitative; nothing is rescaled per panel).
    """
    targets = [t for t in pred if t in true]
    n = max(len(targets), 1)
    fig, axes = _subplots(n, 4, (10, 2.5 * n))
    proj_in = ri.max(axis=0)
    lo, hi = (RI_CLIP if input_name == "RI" else np.percentile(proj_in, (0.5, 99.5)))
    for row, target in enumerate(targets):
        t_mip, p_mip = true[target].max(axis=0), pred[target].max(axis=0)
        vmax = max(float(np.percentile(t_mip, 99.9)), 1e-6)
        unc = uncertainty.get(target)
        panels = [(proj_in, "gray", (lo, hi), input_name),
                  (t_mip, "magma", (0, vmax), f"true {target}"),
                  (p_mip, "magma", (0, vmax), f"inferred {target}"),
                  (unc.max(axis=0) if unc is not None else None, "viridis", None,
                   "uncertainty")]
        for col, (img, cmap, lim, label) in enumerate(panels):
            ax = axes[row, col]
            ax.set_axis_off()
            if img is None:
                ax.text(0.5, 0.5, "no uncertainty\n(use --tta/--mc)", ha="center",
                        va="center", fontsize=8, transform=ax.transAxes)
                continue
            im = ax.imshow(img, cmap=cmap, vmin=lim[0] if lim else None,
                           vmax=lim[1] if lim else None)
            ax.set_title(label, fontsize=8)
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            cb.ax.tick_params(labelsize=7)
            if col == 0 and input_name == "RI":
                cb.formatter.set_useOffset(False)
                cb.ax.yaxis.set_major_formatter("{x:.3f}")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, Path(path))


def metric_boxplots(metrics: pd.DataFrame, path: str | Path, group: str = "cell_type",
                    metric_names: Sequence[str] = ("pcc", "ssim", "psnr")) -> Path:
    """Box plots of each metric per target, one box per value of ``group`` (cell type/model)."""
    metric_names = [m for m in metric_names if m in metrics.columns]
    targets = list(dict.fromkeys(metrics["target"]))
    groups = list(dict.fromkeys(metrics[group]))
    width = 0.8 / max(len(groups), 1)
    colors = colormaps["tab10"]
    fig, axes = _subplots(len(metric_names), 1,
                          (max(6, 1.4 * len(targets)), 2.6 * len(metric_names)))
    for ax, metric in zip(axes[:, 0], metric_names, strict=True):
        for gi, g in enumerate(groups):
            data = [metrics.loc[(metrics["target"] == t) & (metrics[group] == g), metric]
                    .replace([np.inf, -np.inf], np.nan).dropna().to_numpy() for t in targets]
            pos = np.arange(len(targets)) + (gi - (len(groups) - 1) / 2) * width
            bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                            showfliers=True, flierprops={"markersize": 2},
                            medianprops={"color": "black"})
            for box in bp["boxes"]:
                box.set_facecolor(colors(gi % 10))
                box.set_alpha(0.7)
            ax.plot([], [], "s", color=colors(gi % 10), label=str(g))
        ax.set_xticks(np.arange(len(targets)), targets, fontsize=8)
        ax.set_ylabel(metric.upper() if metric != "mae" else "MAE")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=min(len(groups), 4), loc="lower left")
    return _save(fig, Path(path))


def line_figure(x: Sequence[float], series: dict[str, Sequence[float]], path: str | Path,
                xlabel: str, ylabel: str, title: str = "") -> Path:
    """A small line plot (experiments: uncertainty over mitosis, bleaching, sensitivity)."""
    fig, axes = _subplots(1, 1, (5, 3.2))
    ax = axes[0, 0]
    for name, y in series.items():
        ax.plot(list(x), list(y), "o-", label=name, markersize=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, Path(path))
