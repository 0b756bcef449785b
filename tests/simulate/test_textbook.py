"""Textbook cells (issue #30): their own ground truth is what a textbook says a cell is."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM
from ri2fl.errors import ConfigError
from ri2fl.evaluate.runner import PredictionMaps, evaluate_fovs, find_fovs
from ri2fl.io import read_paired
from ri2fl.simulate.textbook import textbook_cell, write_textbook_set

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module", params=SEEDS)
def cell(request):
    return textbook_cell(request.param)


def _cytoplasm(cell):
    """Cell voxels away from the surface, the nucleus and the droplets (true RI is flat)."""
    m = cell.masks
    inner = ndimage.binary_erosion(m["membrane"], iterations=3)
    away = ~ndimage.binary_dilation(m["nucleus"] | m["lipid_droplets"], iterations=3)
    return inner & away


def test_grid_medium_and_cell_index_are_the_textbook_ones(cell):
    assert cell.voxel_size_um == CANONICAL_VOXEL_SIZE_UM
    assert cell.medium_index == 1.337 and cell.ri.dtype == np.float32
    assert cell.ri.shape == cell.ri_true.shape == (32, 160, 160)
    assert np.median(cell.ri_true[_cytoplasm(cell)]) == pytest.approx(1.36, abs=1e-4)
    assert np.all(cell.ri_true[~ndimage.binary_dilation(cell.masks["membrane"])]
                  == np.float32(1.337))


def test_nucleus_nucleolus_and_droplets_lie_where_they_belong(cell):
    m = cell.masks
    assert m["nucleus"].sum() > 5000 and m["nucleolus"].sum() > 100
    assert not (m["nucleus"] & ~ndimage.binary_erosion(m["membrane"], iterations=2)).any()
    assert not (m["nucleolus"] & ~m["nucleus"]).any()
    assert not (m["lipid_droplets"] & (m["nucleus"] | ~m["membrane"])).any()
    _, n_droplets = ndimage.label(m["lipid_droplets"])
    assert n_droplets == 6
    _, n_nucleoli = ndimage.label(m["nucleolus"])
    assert n_nucleoli == 1
    nucleolus = cell.ri_true[ndimage.binary_erosion(m["nucleolus"])]
    assert nucleolus.min() > 1.365  # bright


def test_nucleus_is_darker_than_the_cytoplasm_by_the_requested_contrast(cell):
    m = cell.masks
    nucleus = ndimage.binary_erosion(m["nucleus"], iterations=2) & ~ndimage.binary_dilation(
        m["nucleolus"], iterations=2)
    contrast = np.median(cell.ri_true[nucleus]) - np.median(cell.ri_true[_cytoplasm(cell)])
    assert -0.008 <= cell.params.nucleus_contrast <= -0.005
    assert contrast == pytest.approx(cell.params.nucleus_contrast, abs=2e-4)


def test_cell_mask_has_no_inner_hole(cell):
    cm = cell.masks["membrane"]
    assert not (ndimage.binary_fill_holes(cm) & ~cm).any()
    assert not any((ndimage.binary_fill_holes(s) & ~s).any() for s in cm)  # xy slices too


def test_ri_is_the_truth_blurred_anisotropically_with_noise_of_5e_4():
    cell = textbook_cell(4, noise_std=0.0)
    noisy = textbook_cell(4)
    noise = noisy.ri - cell.ri
    assert float(noise.std()) == pytest.approx(5e-4, rel=0.05)
    # a droplet is smeared more along z (σ 0.4 µm) than across (σ 0.12 µm)
    z, y, x = np.round(cell.droplet_centers_um[0] / np.array(cell.voxel_size_um)).astype(int)
    dn = cell.ri - cell.medium_index
    true = cell.ri_true - cell.medium_index
    assert dn[z, y, x] < true[z, y, x]
    axial = np.sum(dn[:, y, x] > 0.5 * dn[z, y, x]) * cell.voxel_size_um[0]
    lateral = np.sum(dn[z, y, :] > 0.5 * dn[z, y, x]) * cell.voxel_size_um[2]
    assert axial > lateral


def test_fluorescence_targets_are_the_blurred_truth_on_the_simulator_scale(cell):
    fl, m = cell.fl, cell.masks
    assert set(fl) == {"nucleus", "nucleolus", "lipid_droplets", "membrane"}
    for name, image in fl.items():
        assert image.dtype == np.float32 and image.min() >= 0.0 and image.max() <= 1.0, name
    assert fl["nucleus"][m["nucleus"]].mean() > 5 * fl["nucleus"][~m["nucleus"]].mean()
    assert fl["lipid_droplets"][m["lipid_droplets"]].mean() > 0.3
    rim = m["membrane"] & ~ndimage.binary_erosion(m["membrane"], iterations=2)
    assert fl["membrane"][rim].mean() > 3 * fl["membrane"][_cytoplasm(cell)].mean()


def test_parameters_are_drawn_from_the_seed_or_set():
    a, b = textbook_cell(7), textbook_cell(7)
    assert a.params == b.params and np.array_equal(a.ri, b.ri)
    assert textbook_cell(8).params != a.params
    fixed = textbook_cell(7, (40, 192, 192), nucleus_contrast=-0.005, dome_radius_um=7.0,
                          dome_height_um=5.5)
    assert fixed.ri.shape == (40, 192, 192)
    assert (fixed.params.nucleus_contrast, fixed.params.dome_radius_um,
            fixed.params.dome_height_um) == (-0.005, 7.0, 5.5)
    top = np.flatnonzero(fixed.masks["membrane"].any(axis=(1, 2)))[-1]
    assert top * fixed.voxel_size_um[0] == pytest.approx(0.9 + 5.5, abs=0.25)
    with pytest.raises(ConfigError, match="too small"):
        textbook_cell(0, (16, 64, 64))


def test_set_is_written_as_paired_files_that_evaluate_reads(tmp_path):
    manifest = write_textbook_set(tmp_path / "tb", n=2, seed=3)
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["cell_type"], r["seed"], r["split"]) for r in rows] == [
        ("textbook", "3", "test"), ("textbook", "4", "test")]
    sample = read_paired(manifest.parent / rows[1]["path"])
    cell = textbook_cell(4)
    assert np.array_equal(sample.ri, cell.ri) and np.array_equal(sample.fl["nucleus"],
                                                                 cell.fl["nucleus"])
    assert np.array_equal(sample.masks["nucleus"], cell.masks["nucleus"])
    assert sample.attrs["nucleus_contrast"] == cell.params.nucleus_contrast
    fovs = find_fovs(manifest)
    table = evaluate_fovs(fovs, lambda s: PredictionMaps(fl=dict(s.fl)), structures=False)
    assert set(table["target"]) == {"nucleus", "nucleolus", "lipid_droplets", "membrane"}
    assert np.allclose(table["pcc"], 1.0)
