"""Experiment (c)'s mitosis time-lapse on a tiny field with a tiny network."""

from __future__ import annotations

import numpy as np
import pandas as pd
from paper.timelapse import mitosis

from ri2fl.models import build, save_checkpoint


def test_mitosis_table_reports_absolute_and_relative_nucleus_uncertainty(tmp_path):
    cfg = {"model": {"features": 4, "depth": 2, "dropout": 0.2}, "patch_size": [16, 64, 64]}
    net = build(cfg)
    path = save_checkpoint(tmp_path / "tiny.pt", net, cfg)
    summary = mitosis(tmp_path / "out", model=str(path), n_frames=2, shape=(16, 64, 64),
                      tta=2, mc=2, batch_size=1)
    table = pd.read_csv(tmp_path / "out" / "mitosis.csv")
    assert summary["n_frames"] == len(table) == 2
    ratio = table["nucleus_uncertainty"] / table["nucleus_uncertainty_relative"]
    # the ratio is the mean inferred nucleus signal in the cell: positive and finite
    assert np.isfinite(ratio).all() and (ratio > 0).all()
    assert (tmp_path / "out" / "figures" / "mitosis_uncertainty.png").exists()
