"""Agreement of features measured on inferred and on true fluorescence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ri2fl.profile.validation import (
    feature_agreement,
    fluorescence_dependent_features,
    measure_pair,
)


def test_fluorescence_dependent_features_are_the_fl_families():
    names = fluorescence_dependent_features()
    assert "cytoplasm_actin_mean_au" in names and "lipid_droplet_count" in names
    assert "nucleolus_count" in names
    assert "cell_volume_um3" not in names and "cell_dry_mass_pg" not in names


def test_agreement_is_one_for_identical_and_drops_with_noise(rng):
    cols = ["cell_actin_mean_au", "nucleus_nucleus_mean_au", "lipid_droplet_count"]
    true = pd.DataFrame(rng.normal(size=(40, 3)), columns=cols)
    r, per = feature_agreement(true, true.copy())
    assert r == pytest.approx(1.0) and (per["r"] > 0.999).all()
    noisy = true + rng.normal(0, 1.0, true.shape)
    r_noisy, _ = feature_agreement(true, noisy)
    assert 0.5 < r_noisy < 0.85  # expected 1/sqrt(2) for unit-variance noise
    # a scale change of the inferred intensities does not lower a correlation
    r_scaled, _ = feature_agreement(true, true * 0.5 + 3)
    assert r_scaled == pytest.approx(1.0)


def test_measure_pair_measures_the_same_cells():
    shape = (10, 30, 40)
    labels = np.zeros(shape, np.int32)
    labels[2:8, 5:25, 3:18], labels[2:8, 5:25, 22:37] = 1, 2
    ri = np.where(labels > 0, 1.36, 1.337).astype(np.float32)
    fl_true = {"actin": np.where(labels == 1, 0.4, 0.8).astype(np.float32)}
    fl_inf = {"actin": fl_true["actin"] * 0.9}
    a, b = measure_pair(ri, labels, labels, fl_true, fl_inf, (0.2, 0.15, 0.15), 1.337)
    assert list(a["label"]) == list(b["label"]) == [1, 2]
    assert a["cell_volume_um3"].equals(b["cell_volume_um3"])
    assert b["cell_actin_mean_au"].to_numpy() == pytest.approx(
        0.9 * a["cell_actin_mean_au"].to_numpy())


def test_failing_features_are_named_with_their_cause(rng):
    from ri2fl.profile.validation import explain_agreement

    n = 120
    true = pd.DataFrame({
        "cell_actin_mean_au": rng.normal(size=n),          # channel badly inferred
        "cell_lipid_droplets_mean_au": rng.normal(size=n),  # channel fine ...
        "lipid_droplet_count": rng.poisson(5, n).astype(float),  # ... its mask not
        "nucleolus_count": np.where(rng.random(n) < 0.1, 1.0, 0.0),  # rare structure
        "cell_nucleus_mean_au": rng.normal(size=n)})
    inferred = true.copy()
    inferred["cell_actin_mean_au"] = rng.normal(size=n)
    inferred["lipid_droplet_count"] = rng.poisson(5, n).astype(float)
    inferred["nucleolus_count"] = np.where(rng.random(n) < 0.1, 1.0, 0.0)
    _, per = feature_agreement(true, inferred, list(true.columns))
    explained = explain_agreement(true, inferred, per, goal=0.9).set_index("feature")
    assert explained.loc["cell_nucleus_mean_au", "cause"] == ""
    assert explained.loc["cell_actin_mean_au", "cause"].startswith("channel error")
    assert explained.loc["lipid_droplet_count", "cause"].startswith("threshold")
    assert explained.loc["nucleolus_count", "cause"].startswith("sparsity")
    assert explained.loc["lipid_droplet_count", "family"] == "lipid droplets"


def test_a_feature_the_cells_hardly_differ_in_is_explained_by_its_spread(rng):
    from ri2fl.profile.validation import explain_agreement

    n = 120
    # every nucleus equally bright (CV 2 %): errors of 2 % of the level leave r ~ 0.7
    true = pd.DataFrame({"nucleus_nucleus_mean_au": 0.6 + 0.012 * rng.normal(size=n),
                         "cell_volume_um3": rng.uniform(500, 2000, n)})
    inferred = true.copy()
    inferred["nucleus_nucleus_mean_au"] += 0.012 * rng.normal(size=n)
    inferred["cell_volume_um3"] += 300 * rng.normal(size=n)  # wide spread, plain error
    _, per = feature_agreement(true, inferred, list(true.columns))
    explained = explain_agreement(true, inferred, per, goal=0.9,
                                  channel_r={"nucleus": 0.95}).set_index("feature")
    assert explained.loc["nucleus_nucleus_mean_au", "r"] < 0.9
    assert explained.loc["nucleus_nucleus_mean_au", "cause"].startswith("little spread")
    assert explained.loc["cell_volume_um3", "r"] < 0.9
    assert explained.loc["cell_volume_um3", "cause"].startswith("other (not told apart")


def test_a_channel_measured_where_its_structure_is_absent_is_named_off_compartment(rng):
    from ri2fl.profile.validation import explain_agreement

    n = 120
    true = pd.DataFrame({"nucleus_mitochondria_mean_au": rng.uniform(0, 0.02, n),
                         "cytoplasm_mitochondria_mean_au": rng.uniform(0.2, 0.6, n)})
    inferred = true + rng.normal(0, 0.02, (n, 2))  # blur: small errors, ruinous at ~0
    _, per = feature_agreement(true, inferred, list(true.columns))
    explained = explain_agreement(true, inferred, per, goal=0.9,
                                  channel_r={"mitochondria": 0.95}).set_index("feature")
    assert explained.loc["nucleus_mitochondria_mean_au", "cause"].startswith("off-compartment")
    assert explained.loc["cytoplasm_mitochondria_mean_au", "cause"] == ""


def test_a_compartment_named_like_a_channel_is_not_taken_for_the_channel():
    from ri2fl.constants import TARGETS
    from ri2fl.profile.validation import _channel_of

    assert _channel_of("nucleus_nucleolus_mean_au", TARGETS) == "nucleolus"
    assert _channel_of("nucleus_nucleus_sd_au", TARGETS) == "nucleus"
    assert _channel_of("cytoplasm_lipid_droplets_mean_au", TARGETS) == "lipid_droplets"
    assert _channel_of("lipid_droplet_count", TARGETS) == "lipid_droplets"


def test_the_blur_that_matches_an_inferred_channel_is_found(rng):
    from ri2fl.profile.validation import blur_channels, matching_blur_um

    voxel = (0.2, 0.1, 0.1)
    truth = {"membrane": (rng.random((24, 48, 48)) > 0.97).astype(np.float32)}
    inferred = blur_channels(truth, 0.3, voxel)
    labels = np.ones((24, 48, 48), np.int32)
    assert matching_blur_um(truth, inferred, labels, voxel) == {"membrane": 0.3}
    # a channel given no width is the truth itself; another channel's width does not apply
    assert np.array_equal(blur_channels(truth, {"actin": 0.3}, voxel)["membrane"],
                          truth["membrane"])


def test_failures_are_told_apart_by_the_controls(rng):
    """With the three controls, every failing feature gets a specific cause, never "other"."""
    from ri2fl.profile.validation import explain_agreement

    n, fields = 120, np.repeat(np.arange(30), 4)
    true = pd.DataFrame({"cell_membrane_sd_au": rng.normal(size=n),
                         "cell_mitochondria_mean_au": rng.normal(size=n),
                         "cell_nucleus_mean_au": rng.normal(size=n),
                         "cell_actin_mean_au": rng.normal(size=n)})
    # fine texture: blurring alone scrambles it, and so does the network
    blurred = true.copy()
    blurred["cell_membrane_sd_au"] = rng.normal(size=n)
    inferred = true.copy()
    inferred["cell_membrane_sd_au"] = rng.normal(size=n)
    # the inferred level moves with the field
    inferred["cell_mitochondria_mean_au"] += 1.2 * rng.normal(size=30)[fields]
    # independent errors cell by cell
    inferred["cell_nucleus_mean_au"] += rng.normal(size=n)
    # the truth's spread is mostly each cell's stain brightness, which the RI lacks
    stain_free = true.copy()
    brightness = rng.uniform(0.75, 1.0, n)
    stain_free["cell_actin_mean_au"] = 1.0 + 0.02 * rng.normal(size=n)
    true["cell_actin_mean_au"] = stain_free["cell_actin_mean_au"] * brightness
    blurred["cell_actin_mean_au"] = true["cell_actin_mean_au"]
    inferred["cell_actin_mean_au"] = stain_free["cell_actin_mean_au"]
    _, per = feature_agreement(true, inferred, list(true.columns))
    explained = explain_agreement(true, inferred, per, goal=0.9, blurred=blurred,
                                  stain_free=stain_free, groups={"field": fields},
                                  channel_r=dict.fromkeys(
                                      ["membrane", "mitochondria", "nucleus", "actin"], 0.95),
                                  ).set_index("feature")
    causes = explained["cause"]
    assert (explained["r"] < 0.9).all() and not causes.eq("other").any()
    assert causes["cell_membrane_sd_au"].startswith("resolution")
    assert causes["cell_mitochondria_mean_au"].startswith("field offset")
    assert explained.loc["cell_mitochondria_mean_au", "field_share"] > 0.8
    assert causes["cell_actin_mean_au"].startswith("stain brightness")
    assert causes["cell_nucleus_mean_au"].startswith("cell-to-cell error")
    assert explained.loc["cell_nucleus_mean_au", "field_share"] < 0.5


def test_the_demo_measures_agreement_on_the_whole_cells_its_statistics_use(tmp_path, rng):
    from ri2fl.demo import MIN_AGREEMENT_CELLS, _agreement

    n = 3 * MIN_AGREEMENT_CELLS
    true = pd.DataFrame({"cell_actin_mean_au": rng.normal(size=n),
                         "cut_by_edge": np.arange(n) < 2 * MIN_AGREEMENT_CELLS,
                         "field": np.repeat(np.arange(6), n // 6)})
    inferred = true.copy()
    # the cells cut by the edge are read badly; the whole ones well
    cut = true["cut_by_edge"].to_numpy()
    inferred.loc[cut, "cell_actin_mean_au"] = rng.normal(size=cut.sum())
    agreement = _agreement([(true, inferred)], [{"actin": 0.95}], tmp_path)
    assert agreement.n_cells == MIN_AGREEMENT_CELLS and agreement.cells == "whole cells"
    assert agreement.per_feature.set_index("feature").loc["cell_actin_mean_au", "r"] > 0.99
    # too few whole cells: every cell, said so
    few = _agreement([(true.assign(cut_by_edge=True), inferred)], [{"actin": 0.95}], tmp_path)
    assert few.n_cells == n and few.cells == "cells"
