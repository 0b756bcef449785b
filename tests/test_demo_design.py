"""The demo as a designed experiment: whole cells, written-down truth, agreeing counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ri2fl import demo
from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM
from ri2fl.profile.features import feature_dictionary


def test_full_plan_is_two_cell_types_by_two_conditions_with_replicate_fields():
    plan = demo.FULL
    assert set(plan.cell_types) == {"macrophage", "hek293"}
    assert plan.conditions == ("control", "stimulated")
    assert plan.timelapse_conditions is None
    for cell_type in plan.cell_types:
        # about 3 whole cells per field: >= 20 per cell type and condition
        assert plan.fields_of(cell_type) >= 6 and plan.fields_of(cell_type) * 3 >= 20
    # HEK 293 cells hold few droplets: the power analysis asks 18 fields per group
    assert plan.fields_of("hek293") >= 18


def test_layout_places_whole_cells_inside_the_field():
    for cell_type in ("macrophage", "hek293"):
        shape = demo.FULL.shape_of(cell_type)
        ly, lx = (n * v for n, v in zip(shape[1:], CANONICAL_VOXEL_SIZE_UM[1:]))
        counts = []
        for seed in range(3):
            cells = demo._layout(cell_type, np.random.default_rng(seed), shape)
            counts.append(len(cells))
            for c in cells:
                r = demo._outline_um(c)
                assert r < c.center[0] < ly - r and r < c.center[1] < lx - r
        assert min(counts) >= 3, (cell_type, counts)


def test_the_stimulus_is_written_down_and_its_features_listed():
    expected = demo.Stimulus().expected()
    assert set(expected["feature"]) == {"cytoplasm_dry_mass_density_pg_per_um3",
                                        "lipid_droplet_mean_volume_um3"}
    assert (expected["direction"] == "up").all()
    names = list(feature_dictionary()["name"])
    touched = set(demo.stimulus_features(names))
    assert set(expected["feature"]) <= touched
    assert "nucleus_dry_mass_density_pg_per_um3" in touched  # nucleus follows the cytoplasm
    # the stimulus touches no shape, no other channel, no neighbour count
    for untouched in ("cell_volume_um3", "nucleus_sphericity", "cell_actin_mean_au",
                      "cytoplasm_mitochondria_mean_au", "nucleolus_count",
                      "nearest_neighbour_distance_um"):
        assert untouched not in touched


def test_console_and_report_count_the_same_cells():
    rows = []
    for ct in ("macrophage", "hek293"):
        for cond in ("control", "stimulated"):
            for k in range(3):
                for i in range(4):
                    rows.append({"field": f"{ct}_{cond}_{k}", "cell_type": ct,
                                 "condition": cond, "frame": 0, "time_s": np.nan,
                                 "track_id": -1, "cut_by_edge": i == 3,
                                 "cell_volume_um3": 400.0 + i})
    for t in range(3):
        for i in range(5):
            rows.append({"field": f"timelapse_stimulated_t{t}", "cell_type": "macrophage",
                         "condition": "stimulated", "frame": t, "time_s": 1800.0 * t,
                         "track_id": i, "cut_by_edge": False, "cell_volume_um3": 400.0})
    counts = demo.design_counts(pd.DataFrame(rows)).set_index(
        ["experiment", "cell_type", "condition"])
    assert (counts.loc["snapshots", "whole cells"] == 9).all()
    assert (counts.loc["snapshots", "fields"] == 3).all()
    # a tracked cell counts once, not once per frame
    assert counts.loc[("time-lapse (tracks)", "macrophage", "stimulated"), "whole cells"] == 5
