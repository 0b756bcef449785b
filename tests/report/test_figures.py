"""Figures a biologist can read: units on every axis, readable ticks, legends, n per group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ri2fl.report.figures import (
    TICK_PT,
    agreement_figure,
    box_plots,
    example_figure,
    time_course_figure,
)


def _cells(rng, n=8):
    return pd.DataFrame({
        "cell_type": np.repeat(["hek293", "macrophage"], 2 * n),
        "condition": np.tile(np.repeat(["control", "stimulated"], n), 2),
        "field": np.repeat([f"f{i}" for i in range(8)], n // 2),
        "cell_volume_um3": rng.normal(500, 50, 4 * n),
        "cell_sphericity": rng.uniform(0.6, 0.9, 4 * n)})


def _tick_sizes(fig):
    return [t.get_fontsize() for ax in fig.axes for t in
            [*ax.get_xticklabels(), *ax.get_yticklabels()] if t.get_text()]


def test_box_plots_label_units_and_count_every_group(rng):
    fig = box_plots(_cells(rng), ["cell_volume_um3", "cell_sphericity"], "condition",
                    within="cell_type", replicate="field")
    volume, sphericity = fig.axes
    assert volume.get_ylabel() == "cell_volume_um3 (µm³)"
    assert sphericity.get_ylabel() == "cell_sphericity (dimensionless)"
    labels = [t.get_text() for t in volume.get_xticklabels()]
    assert len(labels) == 4 and all("n = 8 cells" in t and "2 fields" in t for t in labels)
    assert min(_tick_sizes(fig)) >= TICK_PT


def test_composite_has_a_channel_legend_and_out_of_domain_flag():
    shape = (6, 24, 24)
    labels = np.zeros(shape, np.int32)
    labels[1:5, 4:20, 4:20] = 1
    fl = {"nucleus": np.full(shape, 0.5, np.float32), "actin": np.zeros(shape, np.float32)}
    fig = example_figure(np.where(labels > 0, 1.36, 1.337), labels, fl,
                         {"nucleus": np.full(shape, 0.1, np.float32)},
                         warning="OUT OF DOMAIN: real cell")
    composite = next(ax for ax in fig.axes if ax.get_title() == "inferred fluorescence")
    legend = composite.get_legend()
    assert legend is not None
    assert {t.get_text() for t in legend.get_texts()} == {"nucleus", "actin"}
    assert any("OUT OF DOMAIN" in t.get_text() for t in fig.texts)
    assert all(ax.get_xlabel() == "x (µm)" for ax in fig.axes if ax.get_title())
    assert min(_tick_sizes(fig)) >= TICK_PT


def test_time_courses_label_time_and_units_and_show_n():
    courses = pd.DataFrame({"group": ["a", "a", "b", "b"], "time_h": [0, 0.5, 0, 0.5],
                            "feature": "cell_dry_mass_pg", "mean": [1, 2, 1, 1.0],
                            "sd": 0.1, "n": 5})
    fig = time_course_figure(courses, time_column="time_h")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (h)" and ax.get_ylabel() == "cell_dry_mass_pg (pg)"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"a: n = 5 cells",
                                                                   "b: n = 5 cells"}


def test_agreement_figure_names_families_and_their_median():
    per = pd.DataFrame({"feature": ["a", "b", "c"], "r": [0.95, 0.5, 0.99],
                        "family": ["fluorescence", "fluorescence", "lipid droplets"]})
    fig = agreement_figure(per, goal=0.9, n_cells=120)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith("fluorescence\n2 features\nmedian 0.72")
    assert "120 cells" in ax.get_ylabel()
