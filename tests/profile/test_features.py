"""Single-cell features on phantoms whose true values are known analytically."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from ri2fl.constants import RI_CLIP
from ri2fl.errors import InputError
from ri2fl.profile import feature_columns, feature_dictionary, measure_cells, shape_features

SPACING = (0.2, 0.15, 0.15)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def _grid(shape, spacing=SPACING):
    return np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")


def _ellipsoid(shape, centre, semi, spacing=SPACING):
    z, y, x = _grid(shape, spacing)
    return sum(((c - c0) / a) ** 2 for c, c0, a in zip((z, y, x), centre, semi)) <= 1


def _ellipsoid_area(a, b, c):
    p = 1.6075  # Knud Thomsen's formula, relative error < 1.1 %
    return 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


@pytest.mark.parametrize("semi", [(3.0, 3.0, 3.0), (2.0, 3.0, 4.5), (1.5, 1.5, 1.5)])
def test_shape_of_spheres_and_ellipsoids_within_3_percent(semi):
    shape = tuple(int(2 * a / s) + 8 for a, s in zip(semi, SPACING))
    centre = [(n - 1) / 2 * s for n, s in zip(shape, SPACING)]
    f = shape_features(_ellipsoid(shape, centre, semi), SPACING)
    volume = 4 / 3 * np.pi * np.prod(semi)
    area = _ellipsoid_area(*semi)
    sphericity = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area
    assert f["volume_um3"] == pytest.approx(volume, rel=0.03)
    assert f["surface_area_um2"] == pytest.approx(area, rel=0.03)
    assert f["sphericity"] == pytest.approx(sphericity, rel=0.03)
    assert f["equivalent_diameter_um"] == pytest.approx((6 * volume / np.pi) ** (1 / 3),
                                                        rel=0.03)
    assert sorted([f["major_axis_um"], f["intermediate_axis_um"], f["minor_axis_um"]]) == \
        pytest.approx(sorted(2 * np.asarray(semi)), rel=0.03)
    assert f["solidity"] == pytest.approx(1.0, abs=0.03)
    assert f["extent"] == pytest.approx(np.pi / 6, rel=0.05)  # ellipsoid in its box


def test_raw_staircase_would_fail_but_smoothed_surface_passes():
    # the peers' pitfall: a perfect sphere must not read sphericity 0.89
    shape = (50, 66, 66)
    centre = [(n - 1) / 2 * s for n, s in zip(shape, SPACING)]
    f = shape_features(_ellipsoid(shape, centre, (4, 4, 4)), SPACING)
    assert f["sphericity"] == pytest.approx(1.0, abs=0.02)


def _two_cell_phantom():
    shape = (44, 90, 130)
    centre1, centre2 = (4.2, 6.5, 5.5), (4.2, 6.5, 13.5)
    cell1 = _ellipsoid(shape, centre1, (3, 3, 3))
    cell2 = _ellipsoid(shape, centre2, (2.5, 3, 4))
    nucleus1 = _ellipsoid(shape, centre1, (1.5, 1.5, 1.5))
    labels = np.zeros(shape, np.int32)
    labels[cell1], labels[cell2] = 1, 2
    nuclei = nucleus1.astype(np.int32)
    ri = np.full(shape, 1.337, np.float32)
    ri[cell1 | cell2] = 1.360
    ri[nucleus1] = 1.352
    return ri, labels, nuclei, (cell1, cell2, nucleus1)


def test_dry_mass_and_density_match_uniform_ri_within_2_percent():
    ri, labels, nuclei, _ = _two_cell_phantom()
    table = measure_cells(ri, labels, nuclei, None, SPACING, medium_index=1.337, alpha=0.190)
    v_cell, v_nuc = 4 / 3 * np.pi * 27, 4 / 3 * np.pi * 1.5**3
    expected = (0.023 * (v_cell - v_nuc) + 0.015 * v_nuc) / 0.190
    row = table.set_index("label").loc[1]
    assert row["cell_dry_mass_pg"] == pytest.approx(expected, rel=0.02)
    assert row["nucleus_dry_mass_pg"] == pytest.approx(0.015 / 0.190 * v_nuc, rel=0.02)
    assert row["cytoplasm_dry_mass_density_pg_per_um3"] == pytest.approx(0.023 / 0.19, rel=1e-6)
    assert row["nucleus_to_cell_volume_ratio"] == pytest.approx(0.125, rel=0.03)
    # medium index matters: PBS (1.335) adds mass
    pbs = measure_cells(ri, labels, nuclei, None, SPACING, medium_index=1.335)
    assert pbs["cell_dry_mass_pg"].iloc[0] > row["cell_dry_mass_pg"]


def test_at_least_65_documented_features_with_units():
    ri, labels, nuclei, _ = _two_cell_phantom()
    table = measure_cells(ri, labels, nuclei, None, SPACING)
    features = feature_columns(table)
    assert len(features) >= 65
    dictionary = feature_dictionary()
    assert list(table.columns) == list(dictionary["name"])
    for name in ("cell_volume_um3", "cell_surface_area_um2", "cell_sphericity",
                 "cell_dry_mass_pg", "nucleus_volume_um3", "cytoplasm_actin_mean_au",
                 "cell_dry_mass_density_pg_per_um3", "lipid_droplet_count"):
        assert name in table.columns
    # every dimensional quantity says its unit in its name
    for _, entry in dictionary.iterrows():
        unit_tag = {"µm³": "_um3", "µm²": "_um2", "µm": "_um", "pg": "_pg",
                    "pg/µm³": "_pg_per_um3", "a.u.": "_au", "a.u. µm³": "_au_um3",
                    "1/µm": "_per_um"}.get(entry["unit"])
        if unit_tag and entry["family"] != "identifier":
            assert entry["name"].endswith(unit_tag), entry["name"]


def test_feature_dictionary_is_in_the_docs():
    if not DOCS.exists():
        pytest.skip("docs/features.md not written yet")
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z0-9_<>]+)`", text))
    generic = set(feature_dictionary(channels=("<channel>",))["name"])
    missing = [n for n in generic if n not in documented]
    assert not missing, missing


def test_fluorescence_per_compartment_and_fraction():
    ri, labels, nuclei, (cell1, _, nucleus1) = _two_cell_phantom()
    actin = np.where(cell1 & ~nucleus1, 0.8, 0.0).astype(np.float32)
    nucleus_fl = np.where(nucleus1, 1.0, 0.0).astype(np.float32)
    table = measure_cells(ri, labels, nuclei, {"actin": actin, "nucleus": nucleus_fl}, SPACING)
    row = table.set_index("label").loc[1]
    assert row["cytoplasm_actin_mean_au"] == pytest.approx(0.8)
    assert row["nucleus_actin_mean_au"] == pytest.approx(0.0)
    assert row["nucleus_nucleus_fraction"] == pytest.approx(1.0)
    assert row["nucleus_actin_fraction"] == pytest.approx(0.0)
    vv = np.prod(SPACING)
    assert row["cell_actin_integrated_au_um3"] == pytest.approx(0.8 * (cell1 & ~nucleus1).sum()
                                                                * vv)
    # a channel not given is NaN, not zero
    assert np.isnan(row["cell_mitochondria_mean_au"])


def test_organelle_counts_from_masks_and_from_fluorescence():
    ri, labels, nuclei, _ = _two_cell_phantom()
    shape = ri.shape
    droplets = (_ellipsoid(shape, (4.2, 6.5, 12.0), (0.6, 0.6, 0.6))
                | _ellipsoid(shape, (4.2, 6.5, 15.0), (0.6, 0.6, 0.6)))
    nucleoli = _ellipsoid(shape, (4.2, 6.5, 5.0), (0.5, 0.5, 0.5))
    ri[droplets] = 1.40
    masks = {"lipid_droplets": droplets, "nucleolus": nucleoli}
    table = measure_cells(ri, labels, nuclei, None, SPACING, masks=masks).set_index("label")
    assert table.loc[2, "lipid_droplet_count"] == 2
    assert table.loc[1, "lipid_droplet_count"] == 0
    assert table.loc[1, "nucleolus_count"] == 1
    assert table.loc[2, "lipid_droplets_ri_mean"] == pytest.approx(1.40)
    assert table.loc[2, "lipid_droplets_volume_um3"] == pytest.approx(
        2 * 4 / 3 * np.pi * 0.6**3, rel=0.1)
    # without masks the fluorescence thresholded at 0.5 stands in
    fl = {"lipid_droplets": droplets.astype(np.float32)}
    from_fl = measure_cells(ri, labels, nuclei, fl, SPACING).set_index("label")
    assert from_fl.loc[2, "lipid_droplet_count"] == 2


def test_cell_without_nucleus_and_one_voxel_cell():
    ri, labels, nuclei, _ = _two_cell_phantom()
    labels[0, 0, 0] = 7  # a one-voxel cell in the corner of the field
    table = measure_cells(ri, labels, nuclei, None, SPACING).set_index("label")
    assert list(table.index) == [1, 2, 7]
    no_nucleus = table.loc[2]
    assert no_nucleus["nucleus_volume_um3"] == 0
    assert no_nucleus["nucleus_count"] == 0
    assert np.isnan(no_nucleus["nucleus_sphericity"])
    assert no_nucleus["cytoplasm_volume_um3"] == no_nucleus["cell_volume_um3"]
    tiny = table.loc[7]
    assert tiny["cell_volume_um3"] == pytest.approx(np.prod(SPACING))
    assert tiny["cell_surface_area_um2"] > 0
    assert tiny["cut_by_edge"]
    assert not table.loc[1, "cut_by_edge"]


def test_neighbours_and_texture():
    ri, labels, nuclei, _ = _two_cell_phantom()
    rng = np.random.default_rng(0)
    ri[labels == 2] += rng.normal(0, 0.004, (labels == 2).sum()).astype(np.float32)
    table = measure_cells(ri, labels, nuclei, None, SPACING,
                          neighbour_radius_um=10).set_index("label")
    assert table.loc[1, "nearest_neighbour_distance_um"] == pytest.approx(8.0, abs=0.1)
    assert table.loc[1, "neighbours_within_10um_count"] == 1
    assert table.loc[1, "touching_neighbours_count"] == 0
    # a speckled cell has more GLCM contrast and less energy than a uniform one
    assert table.loc[2, "cell_glcm_contrast"] > table.loc[1, "cell_glcm_contrast"]
    assert table.loc[2, "cell_glcm_energy"] < table.loc[1, "cell_glcm_energy"]
    assert table.loc[2, "cell_ri_gradient_mean_per_um"] > 0.01


def test_touching_cells_are_neighbours():
    labels = np.zeros((6, 10, 10), np.int32)
    labels[1:5, 2:8, 1:5], labels[1:5, 2:8, 5:9] = 1, 2
    table = measure_cells(np.full(labels.shape, 1.35), labels, voxel_size_um=0.2)
    assert list(table["touching_neighbours_count"]) == [1, 1]


def _glcm_direct(levels, mask, n=16):
    """Haralick features of the 3D GLCM counted over shifted copies of the whole volume."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    per_direction = []
    for off in itertools.product((-1, 0, 1), repeat=3):
        if off <= (0, 0, 0):
            continue
        src = tuple(slice(max(0, -o), s - max(0, o)) for o, s in zip(off, mask.shape))
        dst = tuple(slice(max(0, o), s - max(0, -o)) for o, s in zip(off, mask.shape))
        valid = mask[src] & mask[dst]
        if not valid.any():
            continue
        c = np.bincount(levels[src][valid] * n + levels[dst][valid], minlength=n * n)
        c = c.reshape(n, n)
        p = (c + c.T) / (2 * c.sum())
        mu = (i * p).sum()
        var = ((i - mu) ** 2 * p).sum()
        nz = p[p > 0]
        per_direction.append([((i - j) ** 2 * p).sum(),
                              ((i - mu) * (j - mu) * p).sum() / var if var > 0 else 1.0,
                              (p**2).sum(), (p / (1 + (i - j) ** 2)).sum(),
                              -(nz * np.log2(nz)).sum()])
    return np.mean(per_direction, axis=0)


def test_texture_and_contacts_match_the_whole_volume_formulas():
    # measured on crops, voxel subsets and flat indices (issue 32, speed): the same values
    # as the direct formulas on the whole volume, on cells that touch each other and the
    # faces of the field, with holes, and one a single voxel thick (no interior)
    rng = np.random.default_rng(5)
    shape = (10, 18, 22)
    seeds = rng.uniform(0, 1, (6, 3)) * shape
    grid = np.indices(shape).reshape(3, -1).T
    labels = np.argmin(((grid[:, None] - seeds[None]) ** 2).sum(-1), axis=1) + 1
    labels = labels.reshape(shape).astype(np.int32)
    labels[rng.random(shape) < 0.15] = 0
    labels[:, 0, :] = 7  # a plate one voxel thick on a face of the field
    nuclei = (rng.random(shape) < 0.6).astype(np.int32)
    ri = rng.normal(1.36, 0.01, shape).astype(np.float32)
    table = measure_cells(ri, labels, nuclei, None, SPACING, medium_index=1.337)
    table = table.set_index("label")
    width = RI_CLIP[1] - RI_CLIP[0]
    levels = np.clip(np.floor((ri.astype(float) - 1.337) / width * 16), 0, 15).astype(int)
    slices = ndimage.find_objects(labels)
    for lab in range(1, 8):
        cell = labels == lab
        sl = slices[lab - 1]
        padded = np.pad(ri[sl].astype(float), 1, mode="edge")
        grad = np.sqrt(sum(g**2 for g in np.gradient(padded, *SPACING)))[1:-1, 1:-1, 1:-1]
        for comp, mask in (("cell", cell), ("nucleus", cell & (nuclei > 0))):
            glcm = table.loc[lab, [f"{comp}_glcm_{k}" for k in (
                "contrast", "correlation", "energy", "homogeneity", "entropy")]]
            assert list(glcm) == pytest.approx(list(_glcm_direct(levels, mask)), rel=1e-9)
            interior = ndimage.binary_erosion(mask[sl])
            interior = interior if interior.any() else mask[sl]
            assert table.loc[lab, f"{comp}_ri_gradient_mean_per_um"] == pytest.approx(
                grad[interior].mean(), rel=1e-12)
        partners = set()
        for axis in range(3):
            a, b = np.moveaxis(labels, axis, 0)[:-1], np.moveaxis(labels, axis, 0)[1:]
            partners |= set(b[(a == lab) & (b > 0) & (b != lab)].tolist())
            partners |= set(a[(b == lab) & (a > 0) & (a != lab)].tolist())
        assert table.loc[lab, "touching_neighbours_count"] == len(partners)
    assert table.loc[7, "touching_neighbours_count"] >= 3


def test_bad_inputs_raise_one_line_errors():
    ri, labels, nuclei, _ = _two_cell_phantom()
    with pytest.raises(InputError, match="shape"):
        measure_cells(ri, labels[:-1], nuclei, None, SPACING)
    with pytest.raises(InputError, match="voxel size"):
        measure_cells(ri, labels, nuclei, None, (0.2, 0.15))
    with pytest.raises(InputError, match="fluorescence"):
        measure_cells(ri, labels, nuclei, np.zeros((2, 3, 3, 3)), SPACING)


def test_empty_volume_gives_empty_table_with_all_columns():
    table = measure_cells(np.full((4, 5, 6), 1.337), np.zeros((4, 5, 6), int),
                          voxel_size_um=0.2)
    assert len(table) == 0
    assert len(table.columns) == len(feature_dictionary())


def test_uncertainty_becomes_a_quality_column_not_a_feature():
    ri, labels, nuclei, (cell1, _, _) = _two_cell_phantom()
    unc = {"nucleus": np.where(cell1, 0.2, 0.05).astype(np.float32)}
    table = measure_cells(ri, labels, nuclei, None, SPACING, uncertainty=unc).set_index("label")
    assert table.loc[1, "cell_nucleus_uncertainty_mean_au"] == pytest.approx(0.2)
    assert table.loc[2, "cell_nucleus_uncertainty_mean_au"] == pytest.approx(0.05)
    assert np.isnan(table.loc[1, "cell_actin_uncertainty_mean_au"])
    assert "cell_nucleus_uncertainty_mean_au" not in feature_columns(table.reset_index())
