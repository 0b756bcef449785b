"""scripts/pool_evaluations.py: pooling `ri2fl evaluate` runs on different fields."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


def _run(folder: Path, fovs: dict[str, tuple[int, int, int]]) -> Path:
    """metrics.csv of two models; per FOV: true fragments, matched by 'a', matched by 'b'."""
    rows = []
    for fov, (n_true, a, b) in fovs.items():
        for model, matched in (("a", a), ("b", b)):
            rows.append({"model": model, "fov": fov, "cell_type": "x", "target": "mitochondria",
                         "pcc": 0.9 if model == "a" else 0.8, "n_true": n_true, "n_pred": n_true,
                         "fraction_matched": matched / n_true,
                         "fraction_within_0.5um": matched / n_true,
                         "mean_distance_um": 0.1, "intensity_r": 0.5})
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    return folder


def test_pooling_adds_counts_across_runs(load_script, tmp_path):
    one = _run(tmp_path / "one", {"f1": (10, 9, 5), "f2": (10, 8, 8)})
    two = _run(tmp_path / "two", {"f3": (80, 40, 40)})
    pool = load_script("pool_evaluations")
    pool.main([str(one), str(two), "--reference", "b", "-o", str(tmp_path / "out")])
    summary = pd.read_csv(tmp_path / "out" / "structures_summary.csv").set_index("model")
    # pooled: (9 + 8 + 40) / 100, not the mean of the runs' fractions (0.85 and 0.5)
    assert summary.loc["a", "matched_within_0.5um"] == pytest.approx(0.57)
    assert summary.loc["a", "n_true"] == 100
    diff = pd.read_csv(tmp_path / "out" / "structures_differences.csv")
    assert diff.loc[0, "difference"] == pytest.approx(0.04)


def test_a_field_in_two_runs_is_refused(load_script, tmp_path):
    one = _run(tmp_path / "one", {"f1": (10, 9, 5)})
    two = _run(tmp_path / "two", {"f1": (10, 9, 5)})
    with pytest.raises(SystemExit, match="more than one run"):
        load_script("pool_evaluations").main([str(one), str(two)])
