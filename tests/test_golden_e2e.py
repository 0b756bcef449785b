"""Golden end-to-end test: the demo pipeline on a tiny simulated experiment.

Simulate -> (infer six channels with uncertainty -> segment) -> profile -> report, checking
that every output exists, reads back, and holds sane, stable numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ri2fl import demo
from ri2fl.cli.main import main
from ri2fl.io import read, read_labels

SECTIONS = ("summary", "truth", "embedding", "statistics", "boxplots", "timecourses",
            "agreement", "features")
CORE = ("cell_volume_um3", "cell_surface_area_um2", "cell_sphericity", "cell_dry_mass_pg",
        "cell_ri_mean", "cell_dry_mass_density_pg_per_um3")


def _check_outputs(out, volumes) -> pd.DataFrame:
    parquet = pd.read_parquet(out / "features.parquet")
    csv = pd.read_csv(out / "features.csv")
    assert len(parquet) == len(csv) > 0
    assert set(parquet["condition"]) == {"control", "stimulated"}
    text = (out / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"<section id='{section}'>" in text, section
    assert text.count("data:image/png;base64,") >= 4
    assert volumes
    for store in volumes:
        vol = read(store, modality="fl")
        assert vol.axes in ("zyx", "czyx") and np.isfinite(np.asarray(vol.data)).all()
    # the layouts of ri2fl segment (RI + NGFF labels) and ri2fl predict
    assert {p.name.rsplit("_", 1)[1] for p in volumes} == {"ri.ome.zarr", "fluorescence.ome.zarr"}
    for store in volumes:
        if store.name.endswith("_ri.ome.zarr"):
            assert {"cell_labels", "nucleus_labels"} <= set(read_labels(store))
    assert not list(out.rglob(".*.partial*"))
    return parquet


@pytest.mark.slow
def test_golden_demo_on_simulator_ground_truth(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "QUICK", demo.TINY)  # `ri2fl demo --quick`, smaller still
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--quick", "--ground-truth", "--no-hl60"]) == 0
    printed = capsys.readouterr().out
    for name in ("report.html", "features.parquet", "features.csv", "volumes"):
        assert str(out / name) in printed or f"{out.name}/{name}" in printed, name
    assert "r = 1.000" in printed  # true fluorescence measured twice agrees perfectly
    table = _check_outputs(out, sorted((out / "volumes").glob("*.ome.zarr")))
    # with the true masks every simulated cell is profiled, once
    per_field = table.groupby("field").agg(found=("label", "size"),
                                           truth=("n_cells_simulated", "first"))
    assert (per_field["found"] == per_field["truth"]).all() and len(per_field) == 6
    assert np.isfinite(table[list(CORE)].to_numpy()).all()
    assert (table["cell_volume_um3"] > 10).all()
    assert table["cell_sphericity"].between(0.2, 1.05).all()
    # the stimulus grows over the stimulated time-lapse: every tracked cell's cytoplasm
    # gets denser; the control cells stay as they are
    lapse = table[table["position"].str.startswith("timelapse")]
    density = lapse.pivot_table(index=["condition", "track_id"], columns="frame",
                                values="cytoplasm_dry_mass_density_pg_per_um3")
    growth = density[density.columns[-1]] / density[density.columns[0]] - 1
    assert (growth["stimulated"] > 0.1).all()
    assert (growth["control"].abs() < 0.05).all()
    # the time-lapse cells are tracked: one track per simulated cell, over every frame
    frames = lapse["frame"].nunique()
    assert (lapse.groupby("track_id")["frame"].nunique() == frames).all()


@pytest.fixture(scope="module")
def shipped_demo(tmp_path_factory):
    """The demo pipeline with the shipped networks on the tiniest plan (run once)."""
    models = pytest.importorskip("ri2fl.models")
    missing = {"default", "segment-default", "cell-default"} - set(models.available())
    if missing:
        pytest.skip(f"shipped models not there yet: {sorted(missing)}")
    # as small as the pipeline goes: a time-lapse of the stimulated condition only, TTA
    # uncertainty only, and no HL60 cell (tests/segment and tests/infer run it)
    # three fields per condition and three frames: the statistics and time-course sections
    # need several whole (not edge-cut) cells per group and frame; the shipped segmentation
    # finds the one cell of each tiny field, so fewer fields leave too few
    plan = dataclasses.replace(demo.TINY, timelapse_conditions=("stimulated",), mc=0,
                               fields_per_group=3, frames=3)
    result = demo.run_demo(tmp_path_factory.mktemp("demo") / "demo", plan, run_hl60=False,
                           echo=lambda _: None)
    return result, _check_outputs(result.out_dir, result.volumes)


@pytest.mark.slow
def test_golden_demo_with_shipped_models(shipped_demo):
    result, table = shipped_demo
    assert len(table) == len(result.features)
    assert np.isfinite(table[["cell_volume_um3", "cell_dry_mass_pg"]].to_numpy()).all()
    # model quality is the evaluation's business; here the number must exist and be a
    # correlation
    assert -1 <= result.validation_r <= 1
    assert (table["cell_nucleus_uncertainty_mean_au"] >= 0).all()


@pytest.mark.slow
def test_shipped_segmentation_finds_the_simulated_cells(shipped_demo):
    _, table = shipped_demo
    # the networks find the simulated cells, give or take one per field ...
    per_field = table.groupby("field").agg(found=("label", "size"),
                                           truth=("n_cells_simulated", "first"))
    assert (abs(per_field["found"] - per_field["truth"]) <= 1).all()
    # ... and they are cells, not the medium: simulated cells hold 0.10-0.16 pg/µm³ of dry
    # mass (n - n_m = 0.02-0.03); the medium holds none
    assert (table["cell_dry_mass_density_pg_per_um3"] > 0.06).all()


def test_stimulation_makes_the_same_cells_denser_with_larger_droplets():
    layout = demo._simulate("macrophage", 5, (24, 96, 96), 0.0)
    stimulated = demo._simulate("macrophage", 5, (24, 96, 96), 1.0)
    inside = layout.cell_labels > 0
    assert np.array_equal(inside, stimulated.cell_labels > 0)
    gain = (stimulated.ri_true[inside].mean() - 1.337) / (layout.ri_true[inside].mean() - 1.337)
    assert gain == pytest.approx(1.25, abs=0.05)
    assert stimulated.masks["lipid_droplets"].sum() >= layout.masks["lipid_droplets"].sum()


def test_bundled_hl60_copy_matches_the_real_cell(hl60_path):
    bundled = demo.load_hl60(demo.HL60_BUNDLED)
    real = demo.load_hl60(hl60_path)
    assert demo.HL60_BUNDLED.stat().st_size < 4e6
    assert bundled[1] == pytest.approx(real[1]) and bundled[2] == real[2] == 1.335
    assert np.abs(bundled[0] - real[0]).max() < 1e-5
