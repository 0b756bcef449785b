"""Aggregations of the experiments: pooled structure matching, generalisation tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from paper.common import markdown_table, mean_sd
from paper.generalisation import (
    degraded_copies,
    generalisation_table,
    grid_copy,
    tomograph_copy,
)

from ri2fl.evaluate.structures import structure_summary


def test_structure_summary_pools_counts_not_fractions():
    # FOV a: 1 of 2 matched within 0.5 µm; FOV b: 8 of 8. Pooled: 9/10, not (0.5 + 1) / 2.
    m = pd.DataFrame({"model": "RI2FL", "target": "lipid_droplets", "fov": ["a", "b"],
                      "n_true": [2, 8], "n_pred": [3, 8], "fraction_matched": [0.5, 1.0],
                      "fraction_within_0.5um": [0.5, 1.0], "mean_distance_um": [0.4, 0.2],
                      "intensity_r": [np.nan, 0.8]})
    s = structure_summary(m).iloc[0]
    assert s["matched_within_0.5um"] == pytest.approx(0.9)
    assert (s["n_true"], s["n_pred"]) == (10, 11)
    assert s["precision_0.5um"] == pytest.approx(9 / 11)  # a painted extra counts against it
    assert s["mean_distance_um"] == pytest.approx(0.3)
    assert s["intensity_r"] == pytest.approx(0.8)


def test_generalisation_table_mean_sd_per_cell_type():
    m = pd.DataFrame({"cell_type": ["fibroblast"] * 4 + ["hela"] * 2,
                      "fov": ["f1", "f1", "f2", "f2", "h1", "h1"],
                      "target": ["nucleus", "actin"] * 3,
                      "pcc": [0.9, 0.5, 0.7, 0.3, 0.8, 0.6]})
    t = generalisation_table(m).set_index("cell type")
    assert t.loc["fibroblast", "nucleus"] == "0.800 ± 0.141"
    assert t.loc["hela", "actin"] == "0.600"  # one FOV: no s.d.
    assert t.loc["fibroblast", "mean of targets"] == "0.600 ± 0.141"
    assert t.loc["hela", "FOVs"] == 1


def test_markdown_table_and_mean_sd_formatting():
    md = markdown_table(pd.DataFrame({"a": ["x"], "p": [1.5e-7], "r": [0.12345]}))
    assert md.splitlines()[0] == "| a | p | r |"
    assert "1.5e-07" in md and "0.123" in md
    assert mean_sd(pd.Series([np.inf, 1.0, 3.0])) == "2.000 ± 1.414"


def test_bleaching_ratios_cover_the_same_targets_for_true_and_inferred():
    import pandas as pd
    from paper.timelapse import relative_to_first_frame

    rows = [(0, "nucleus", 0.4, 0.3), (1, "nucleus", 0.2, 0.3),
            (0, "lipid_droplets", 0.006, 0.004), (1, "lipid_droplets", 0.003, 0.004),
            (0, "nucleolus", 0.001, 0.02), (1, "nucleolus", 0.001, 0.02)]
    table = relative_to_first_frame(pd.DataFrame(
        rows, columns=["frame", "target", "true_mean", "inferred_mean"]), min_mean=0.005)
    last = table[table["frame"] == 1].set_index("target")
    assert last.loc["nucleus", "true_relative"] == 0.5
    assert last.loc["nucleus", "inferred_relative"] == 1.0
    # a dim inferred channel still gets its ratio when the true one holds signal
    assert last.loc["lipid_droplets", "inferred_relative"] == 1.0
    # no true signal: no ratio in either column
    assert last.loc["nucleolus", ["true_relative", "inferred_relative"]].isna().all()


def test_grid_copy_keeps_large_structures_and_loses_the_finest():
    from ri2fl.evaluate.structures import match_structures

    voxel, coarse = (0.2, 0.15, 0.15), (0.4, 0.3, 0.3)
    zz, yy, xx = np.meshgrid(*[np.arange(n) * v for n, v in zip((24, 48, 48), voxel)],
                             indexing="ij")
    fl = np.zeros((24, 48, 48), np.float32)
    for cz, cy, cx, r in ((2.4, 2.0, 2.0, 0.8), (2.4, 5.0, 5.0, 0.8)):
        fl[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2] = 1.0
    copy = grid_copy(fl, voxel, coarse)
    assert copy.shape == fl.shape
    assert match_structures(fl, copy, voxel, "lipid_droplets").fraction_within(0.5) == 1.0
    assert np.array_equal(grid_copy(fl, voxel, voxel), fl)  # the same grid changes nothing
    dot = np.zeros_like(fl)
    dot[12, 24, 24] = 1.0  # one voxel: the coarse grid smears it to a fraction of its peak
    assert grid_copy(dot, voxel, coarse).max() < 0.6


def test_tomograph_copy_keeps_the_support_and_fills_the_rest():
    import scipy.fft as sfft

    from ri2fl.simulate.optics import padded_shape, reconstruct_fast, support_mask

    voxel, shape = (0.2, 0.15, 0.15), (32, 64, 64)
    zz, yy, xx = np.meshgrid(*[np.arange(n) * v for n, v in zip(shape, voxel)], indexing="ij")
    bead = ((zz - 3.2) ** 2 + (yy - 4.8) ** 2 + (xx - 4.8) ** 2 <= 0.25 ** 2).astype(np.float32)
    seen = tomograph_copy(bead, voxel)
    # the simulator's tomograph: reconstructed on a grid with medium above the volume (no
    # wrap along z, issue #30), then cropped; the support is kept on that grid
    grid = padded_shape(shape, voxel)
    big = np.zeros(grid, np.float32)
    big[:shape[0]] = bead
    seen_big = reconstruct_fast(big, voxel, noise_std=0.0, wrap=True)
    assert np.array_equal(seen, seen_big[:shape[0]])
    inside = support_mask(grid, voxel)
    true_spectrum, seen_spectrum = sfft.rfftn(big), sfft.rfftn(seen_big)
    # what the tomograph measures is kept exactly; the rest is the non-negativity's guess
    assert np.abs(seen_spectrum[inside] - true_spectrum[inside]).max() < 1e-4
    assert np.abs(seen_spectrum[~inside] - true_spectrum[~inside]).max() > 1.0
    assert np.unravel_index(seen.argmax(), shape) == (16, 32, 32)


def test_degraded_copies_of_a_droplet_are_all_found_again():
    from ri2fl.evaluate.structures import match_structures

    voxel = (0.2, 0.15, 0.15)
    zz, yy, xx = np.meshgrid(*[np.arange(n) * v for n, v in zip((24, 48, 48), voxel)],
                             indexing="ij")
    fl = ((zz - 2.4) ** 2 + (yy - 3.6) ** 2 + (xx - 3.6) ** 2 <= 0.7 ** 2).astype(np.float32)
    copies = degraded_copies(fl, voxel, (0.4, 0.3, 0.3))
    assert set(copies) == {"x0.8", "blur0.15_x0.8_noise0.01", "blur0.3", "grid", "tomograph"}
    assert np.allclose(copies["x0.8"], 0.8 * fl)
    assert copies["blur0.3"].max() < 1.0 and abs(copies["blur0.3"].sum() - fl.sum()) < 1.0
    for copy in copies.values():
        assert copy.shape == fl.shape
        assert match_structures(fl, copy, voxel, "lipid_droplets").fraction_within(0.5) == 1.0
