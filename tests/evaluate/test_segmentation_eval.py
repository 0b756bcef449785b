"""ri2fl.evaluate.segmentation: the segmentation routes scored on a simulated field."""

from __future__ import annotations

import pandas as pd
import pytest

from ri2fl.cli.main import main
from ri2fl.evaluate.segmentation import evaluate_segmentation, summary_markdown


def test_summary_markdown_rows_and_digits():
    table = pd.DataFrame({"dice_nucleus": [0.91234]}, index=["all (mean)"])
    assert summary_markdown(table).splitlines() == [
        "|  | dice_nucleus |", "|---|---|", "| all (mean) | 0.912 |"]


@pytest.mark.slow
def test_routes_are_scored_per_field_and_summarised(tmp_path):
    sim = tmp_path / "sim"
    assert main(["simulate", "-o", str(sim), "--cell-types", "macrophage", "--n", "1",
                 "--shape", "32", "128", "128"]) == 0
    summary = evaluate_segmentation(sim, tmp_path / "out", split=None, with_fl=False)
    rows = pd.read_csv(tmp_path / "out" / "segmentation.csv")
    assert len(rows) == 1 and rows["cell_type"].tolist() == ["macrophage"]
    assert {"dice_nucleus", "f1_network", "f1_watershed_ri", "n_cells"} <= set(rows.columns)
    assert summary.loc["all (mean)", "dice_nucleus"] > 0.5
    assert "| macrophage |" in (tmp_path / "out" / "segmentation.md").read_text()
