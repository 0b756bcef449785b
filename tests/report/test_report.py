"""The HTML report: its sections and embedded figures are there, and errors are clear."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ri2fl.errors import ConfigError
from ri2fl.report import ExampleField, build_report


def _table(rng, n=12, frames=3):
    rows = []
    for cond, shift in (("control", 0.0), ("stimulated", 80.0)):
        for t in range(frames):
            for i in range(n // frames):
                rows.append({"condition": cond, "cell_type": "fibroblast", "frame": t,
                             "label": i + 1, "cut_by_edge": False,
                             "cell_volume_um3": rng.normal(500 + shift + 10 * t, 20),
                             "cell_dry_mass_pg": rng.normal(60, 5),
                             "cell_ri_mean": rng.normal(1.36, 0.002),
                             "cell_nucleus_uncertainty_mean_au": rng.uniform(0, 0.1)})
    return pd.DataFrame(rows)


def _images(text: str) -> int:
    return len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', text))


def test_report_has_all_sections_and_figures(rng, tmp_path):
    shape = (8, 32, 32)
    labels = np.zeros(shape, np.int32)
    labels[2:6, 4:14, 4:14] = 1
    ri = np.where(labels > 0, 1.36, 1.337).astype(np.float32)
    example = ExampleField("field 1", ri, (0.2, 0.15, 0.15), labels,
                           {"nucleus": (labels > 0).astype(np.float32)},
                           {"nucleus": np.full(shape, 0.05, np.float32)})
    out = build_report(_table(rng), tmp_path / "report.html", group_by="condition",
                       examples=[example], embedding="pca")
    text = out.read_text(encoding="utf-8")
    for section in ("summary", "embedding", "statistics", "boxplots", "uncertainty",
                    "timecourses", "examples", "features"):
        assert f"<section id='{section}'>" in text, section
    # embedding, box plots, uncertainty, time courses, one example field
    assert _images(text) == 5
    # uncertainty is quality control: never ranked as a feature
    assert "uncertainty_mean_au" not in text.split("<section id='statistics'>")[1].split(
        "</section>")[0]
    # the feature that truly differs tops the statistics table
    ranked = text.split("<section id='statistics'>")[1]
    assert ranked.index("cell_volume_um3") < ranked.index("cell_ri_mean")
    assert not list(tmp_path.glob(".*partial*"))


def test_single_group_report_explains_missing_statistics(rng, tmp_path):
    table = _table(rng, frames=1)
    table = table[table["condition"] == "control"].drop(columns=["cell_type"])
    text = build_report(table, tmp_path / "r.html", embedding="pca").read_text()
    assert "Only one group" in text
    assert "<section id='boxplots'>" not in text


def test_unknown_group_column_is_a_config_error(rng, tmp_path):
    with pytest.raises(ConfigError, match="treatment"):
        build_report(_table(rng), tmp_path / "r.html", group_by="treatment")
    assert not (tmp_path / "r.html").exists()


def test_time_courses_leave_snapshot_fields_out(rng):
    from ri2fl.report.html import _time_lapse_rows

    lapse = _table(rng).assign(time_s=lambda t: t["frame"] * 1800.0)
    snapshots = _table(rng, frames=1).assign(time_s=np.nan)
    mixed = pd.concat([snapshots, lapse], ignore_index=True)
    assert len(_time_lapse_rows(mixed)) == len(lapse)
    assert _time_lapse_rows(mixed)["time_s"].notna().all()
