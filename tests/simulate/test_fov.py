"""Simulated fields of view: families, ground truth consistency, determinism, data sets."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

from ri2fl.constants import RI_CLIP, TARGETS
from ri2fl.errors import ConfigError
from ri2fl.io import read_paired
from ri2fl.simulate import CELL_TYPES, simulate_dataset, simulate_fov
from ri2fl.simulate.optics import reconstruct_fast

SMALL = (40, 96, 96)


def test_cell_types_start_with_the_fibroblast_and_cover_six_families():
    assert CELL_TYPES[0] == "fibroblast"
    assert {"epithelial", "hek293", "mda_mb_231", "astrocyte", "macrophage"} <= set(CELL_TYPES)


@pytest.fixture(scope="module")
def families():
    return {ct: simulate_fov(ct, seed=3, shape=SMALL, physics="none", variant="normal")
            for ct in CELL_TYPES}


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_every_family_has_cells_with_nuclei_inside_and_consistent_masks(families, cell_type):
    fov = families[cell_type]
    cells, nuclei = fov.cell_labels, fov.nucleus_labels
    assert cells.dtype == np.int32 and nuclei.dtype == np.int32
    assert cells.max() >= 1 and (nuclei > 0).sum() > 1000
    # a nucleus carries its cell's label and lies inside it
    assert np.array_equal(nuclei[nuclei > 0], cells[nuclei > 0])
    m = fov.masks
    assert np.array_equal(m["membrane"], cells > 0)
    assert np.array_equal(m["nucleus"], nuclei > 0)
    assert not (m["nucleolus"] & ~m["nucleus"]).any()
    assert not (m["lipid_droplets"] & ~m["membrane"]).any()
    assert m["nucleolus"].any()
    assert set(fov.fl) == set(TARGETS)
    assert all(a.shape == SMALL and a.dtype == np.float32 for a in fov.fl.values())


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_ri_values_follow_the_optics_md_table(families, cell_type):
    fov = families[cell_type]
    dn = fov.ri_true - fov.medium_index
    m = fov.masks
    organelles = m["nucleus"] | m["lipid_droplets"] | (fov.fl["mitochondria"] > 0.05)
    cyto = np.median(fov.ri_true[m["membrane"] & ~organelles & ndimage.binary_erosion(
        m["membrane"], iterations=3)])
    nucleoplasm = np.median(fov.ri_true[ndimage.binary_erosion(
        m["nucleus"] & ~m["nucleolus"], iterations=2)])
    assert 1.35 <= cyto <= 1.375
    assert 0.002 <= cyto - nucleoplasm <= 0.012  # nucleus BELOW cytoplasm
    assert 1.365 <= np.median(fov.ri_true[ndimage.binary_erosion(m["nucleolus"])]) <= 1.395
    assert dn.min() >= -1e-6


def test_fluorescence_is_on_a_fixed_scale_and_marks_its_structure(families):
    fov = families["fibroblast"]
    for name, img in fov.fl.items():
        assert img.min() >= 0 and 0.3 < img.max() < 2.0, name
    nuc = fov.fl["nucleus"]
    assert nuc[fov.masks["nucleus"]].mean() > 10 * nuc[~fov.masks["membrane"]].mean()
    # not min-max normalised per volume: maxima differ between fields
    other = families["macrophage"].fl["nucleus"]
    assert abs(nuc.max() - other.max()) > 1e-3


def test_fast_physics_reproduces_the_prototype_numbers_of_optics_md():
    # optics.md: correlation 0.94-0.955 between true and reconstructed Δn; cytoplasm /
    # nucleolus / droplet read 0.020 / 0.034 / 0.068 for true 0.023 / 0.038 / 0.083.
    # Compact cells that fit in the field, as in that prototype (flat cells lose more of
    # their contrast in the missing cone).
    fov = simulate_fov("macrophage", seed=1, shape=(64, 128, 128))
    assert fov.ri.min() >= RI_CLIP[0] and fov.ri.max() <= RI_CLIP[1]
    assert fov.ri.dtype == np.float32 and fov.voxel_size_um == (0.2, 0.15, 0.15)
    assert fov.ri_true.max() > 1.40  # lipid droplets are denser than the window
    true, rec = np.clip(fov.ri_true, *RI_CLIP), fov.ri
    assert np.corrcoef(true.ravel(), rec.ravel())[0, 1] > 0.9
    m = fov.masks
    cyto = m["membrane"] & ~m["nucleus"] & ~m["lipid_droplets"] & (fov.fl["mitochondria"] < 0.1)
    dn_rec, dn_true = fov.ri - fov.medium_index, fov.ri_true - fov.medium_index
    assert dn_rec[cyto].mean() == pytest.approx(dn_true[cyto].mean(), rel=0.25)
    assert dn_rec[m["nucleolus"]].mean() == pytest.approx(dn_true[m["nucleolus"]].mean(),
                                                          rel=0.2)
    assert dn_rec[m["lipid_droplets"]].mean() < 0.95 * dn_true[m["lipid_droplets"]].mean()


def test_same_seed_same_data_other_seed_other_data():
    a = simulate_fov("macrophage", seed=11, shape=(24, 64, 64))
    b = simulate_fov("macrophage", seed=11, shape=(24, 64, 64))
    c = simulate_fov("macrophage", seed=12, shape=(24, 64, 64))
    assert np.array_equal(a.ri, b.ri) and np.array_equal(a.cell_labels, b.cell_labels)
    assert all(np.array_equal(a.fl[t], b.fl[t]) for t in TARGETS)
    assert not np.array_equal(a.ri, c.ri)


def test_mitotic_cell_has_chromosomes_but_no_nucleoli_and_binucleate_has_two_nuclei():
    mit = simulate_fov("hek293", seed=2, shape=(64, 112, 112), variant="mitotic", n_cells=1,
                       physics="none")
    assert mit.masks["nucleus"].any() and not mit.masks["nucleolus"].any()
    # condensed chromosomes: brighter and denser than an interphase nucleus
    chrom = mit.masks["nucleus"]
    # a human metaphase plate holds tens of µm³ of chromatin (chromosomes ~1.4 µm wide, 2-10 µm
    # long); the simulator's earlier 7-8 µm³ were too small for any network to find
    assert 20 < chrom.sum() * np.prod(mit.voxel_size_um) < 150
    assert np.median(mit.ri_true[chrom]) > np.median(mit.ri_true[mit.masks["membrane"] & ~chrom])
    two = simulate_fov("hepatocyte", seed=2, shape=(40, 160, 160), variant="binucleate",
                       n_cells=1, physics="none")
    _, n = ndimage.label(two.nucleus_labels == 1)
    assert n == 2


def test_mitotic_plate_stands_out_of_the_reconstructed_tomogram():
    # what a network can learn from: tens of µm³ of chromatin above the cytoplasm after the
    # band limit (the simulator's earlier chromosomes gave 6-8 µm³ of small rods, which no
    # network told apart from the mitochondrial fragments around them)
    mit = simulate_fov("epithelial", seed=7, shape=(48, 160, 160), variant="mitotic", n_cells=1)
    chrom = mit.masks["nucleus"]
    rest = mit.masks["membrane"] & ~chrom
    bright = chrom & (mit.ri > np.median(mit.ri[rest]) + 0.005)
    assert bright.sum() * np.prod(mit.voxel_size_um) > 15


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="unknown cell type"):
        simulate_fov("neuronz", 0, shape=(16, 32, 32))
    with pytest.raises(ConfigError, match="variant"):
        simulate_fov("fibroblast", 0, shape=(16, 32, 32), variant="apoptotic")
    with pytest.raises(ConfigError, match="physics"):
        simulate_fov("fibroblast", 0, shape=(16, 32, 32), physics="exact")


def test_dataset_writes_paired_files_and_a_manifest(tmp_path):
    manifest = simulate_dataset(tmp_path, ["fibroblast", "macrophage"], n_per_type=3, seed=4,
                                shape=(16, 48, 48), split_fractions=(0.34, 0.33, 0.33))
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["cell_type"] for r in rows] == ["fibroblast"] * 3 + ["macrophage"] * 3
    assert {r["split"] for r in rows if r["cell_type"] == "fibroblast"} == {"train", "val",
                                                                            "test"}
    assert len({r["seed"] for r in rows}) == 6
    sample = read_paired(tmp_path / rows[4]["path"])
    assert list(sample.fl) == list(TARGETS)
    assert sample.ri.shape == (16, 48, 48) and "ri_true" in sample.extra
    assert set(sample.masks) == {"nucleus", "nucleolus", "membrane", "lipid_droplets"}
    again = simulate_fov("macrophage", int(rows[4]["seed"]), shape=(16, 48, 48))
    np.testing.assert_array_equal(sample.ri, again.ri)


def test_tiles_reassemble_the_full_field_at_their_offsets():
    from ri2fl.simulate import simulate_tiles

    tiles, offsets, full = simulate_tiles(seed=2, grid=(2, 3), tile_shape=(24, 64, 64),
                                          overlap=16, cell_type="macrophage", physics="none",
                                          n_cells=4)
    assert len(tiles) == 6 and offsets.shape == (6, 3)
    assert not np.array_equal(offsets[1, 1:] - offsets[0, 1:], [0, 48])  # stage jitter
    for tile, (oz, oy, ox) in zip(tiles, offsets):
        window = full[oz:oz + 24, oy:oy + 64, ox:ox + 64]
        np.testing.assert_allclose(tile, np.clip(window, *RI_CLIP), atol=1e-6)
    # neighbours really overlap: the right edge of tile 0 reappears in tile 1
    shift = offsets[1] - offsets[0]
    assert 0 < shift[2] < 64


def test_round_cells_have_the_refractive_index_of_a_measured_cell(hl60_path):
    # the real HL60 cell (PBS, n_m = 1.335): its in-cell Δn distribution and a simulated
    # suspension cell in the same medium must overlap (same order of dry-mass density)
    from ri2fl.io import read

    real = np.asarray(read(hl60_path).data)
    inside = ndimage.binary_opening(real > 1.340, iterations=2)
    real_dn = np.percentile(real[inside] - 1.335, [25, 50, 75])
    sim = simulate_fov("suspension", seed=1, shape=(64, 112, 112), n_cells=1,
                       medium_index=1.335)
    sim_dn = np.percentile(sim.ri[sim.masks["membrane"]] - 1.335, [25, 50, 75])
    assert abs(sim_dn[1] - real_dn[1]) < 0.01
    assert sim_dn[0] < real_dn[2] and real_dn[0] < sim_dn[2]


def test_dataset_can_misalign_fluorescence_along_z(tmp_path):
    manifest = simulate_dataset(tmp_path, ["macrophage"], n_per_type=2, seed=1,
                                shape=(16, 48, 48), physics="none", max_fl_shift_um=0.4)
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    shifts = [float(read_paired(tmp_path / r["path"]).attrs["fl_shift_z_um"]) for r in rows]
    assert all(0 < abs(s) <= 0.4 for s in shifts) and shifts[0] != shifts[1]


def test_z_margin_and_padding_z_keep_the_contrast_of_a_plate_that_fills_a_thin_field():
    # a mitotic hepatocyte whose plate fills slices 7-26 of a 32-slice field: on the periodic
    # grid (wrap=True, the fast path before issue #30) the top of the volume meets the bottom
    # and the missing cone wipes the plate out; the default z margin and pad_z keep it
    kwargs = {"seed": 106001, "shape": (32, 192, 192)}
    plain = simulate_fov("hepatocyte", **kwargs)
    padded = simulate_fov("hepatocyte", **kwargs, pad_z=True)
    assert padded.metadata["pad_z"] and "pad_z" not in plain.metadata
    dn_true = plain.ri_true - np.float32(plain.medium_index)
    wrapped = np.clip(plain.medium_index + reconstruct_fast(
        dn_true, plain.voxel_size_um, plain.medium_index, rng=np.random.default_rng(1),
        wrap=True), *RI_CLIP)  # as simulate_fov clips its ri
    chrom = plain.masks["nucleus"]
    rest = plain.masks["membrane"] & ~chrom
    assert chrom.sum() > 1000  # the field does hold the plate

    def contrast(ri):
        return np.median(ri[chrom]) - np.median(ri[rest])

    true = contrast(plain.ri_true)  # 0.0063; wrapped 0.0013, margin 0.0051, pad_z 0.0049
    assert contrast(wrapped) < 0.4 * true < 0.6 * true < min(contrast(plain.ri),
                                                              contrast(padded.ri))
    r_wrapped, r_plain, r_padded = (np.corrcoef(ri.ravel(), dn_true.ravel())[0, 1]
                                    for ri in (wrapped, plain.ri, padded.ri))
    assert r_wrapped < min(r_plain, r_padded)


def test_lipid_loaded_cells_hold_more_droplets():
    kwargs = {"seed": 4, "shape": (32, 128, 128), "n_cells": 1, "physics": "none",
              "fl_noise": False}
    plain = simulate_fov("fibroblast", **kwargs)
    loaded = simulate_fov("fibroblast", **kwargs, droplets_per_cell=(40, 40))
    assert loaded.metadata["droplets_per_cell"] == [40, 40]
    assert "droplets_per_cell" not in plain.metadata
    few, many = (ndimage.label(f.masks["lipid_droplets"])[1] for f in (plain, loaded))
    # some of the 40 do not fit into a 6.4 µm field or touch a neighbour
    assert few <= 10 and many >= 3 * few
    assert loaded.masks["lipid_droplets"].sum() > 3 * plain.masks["lipid_droplets"].sum()
    with pytest.raises(ConfigError, match="droplets_per_cell"):
        simulate_fov("fibroblast", **kwargs, droplets_per_cell=(5, 2))


def test_dataset_rejects_a_bad_droplet_range_before_simulating(tmp_path, monkeypatch):
    import ri2fl.simulate.sets as sets

    started = []
    monkeypatch.setattr(sets, "_write_field", lambda *job: started.append(job))
    with pytest.raises(ConfigError, match="droplets_per_cell"):
        simulate_dataset(tmp_path / "sim", ["fibroblast"], n_per_type=2, shape=(16, 48, 48),
                         droplets_per_cell=(5, 2))
    assert started == []  # not one field simulated (or one worker started) first


def test_uniform_stain_changes_only_each_cells_brightness():
    """The validation's control: the same cells and RI, every cell stained equally."""
    kw = {"seed": 3, "shape": (16, 64, 64), "physics": "none", "fl_noise": False}
    a = simulate_fov("hek293", **kw)
    b = simulate_fov("hek293", uniform_stain=True, **kw)
    np.testing.assert_array_equal(a.ri, b.ri)
    np.testing.assert_array_equal(a.cell_labels, b.cell_labels)
    for target in ("nucleus", "mitochondria"):
        for label in range(1, int(a.cell_labels.max()) + 1):
            inside = (a.cell_labels == label) & (b.fl[target] > 0.2)
            if inside.sum() > 20:
                ratio = np.median(a.fl[target][inside] / b.fl[target][inside])
                assert 0.74 < ratio < 1.0  # the cell's brightness, drawn in 0.75-1
