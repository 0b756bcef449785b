"""Procedural cells (issue #30): documented ranges, and what a person would check in a field."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull

from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM, TARGETS
from ri2fl.errors import ConfigError
from ri2fl.simulate import procedural as proc
from ri2fl.simulate import simulate_fov
from ri2fl.simulate.fov import render_cells
from ri2fl.simulate.phantoms import PROCEDURAL, cell_bbox, conc_to_dn, ellipsoid_sdf, render_cell

SHAPE = (48, 192, 192)
VOXEL = np.asarray(CANONICAL_VOXEL_SIZE_UM)
ELONGATION = {"round": proc.ROUND_ELONGATION, "lobed": proc.LOBED_ELONGATION,
              "polygonal": proc.POLYGON_ELONGATION, "elongated": proc.ELONGATED_ELONGATION}


def _within(x: float, lo_hi: tuple[float, float], tol: float = 1e-6) -> bool:
    return lo_hi[0] - tol <= x <= lo_hi[1] + tol


@pytest.fixture(scope="module")
def fields():
    """Two fields with a forced touching cluster and edge cell; label i is cells[i - 1]."""
    out = []
    for seed in (0, 2):
        rng = np.random.default_rng(seed)
        cells = proc.layout_cells(rng, SHAPE, cluster=True, edge=True)
        out.append((cells, render_cells(cells, SHAPE, rng)))
    return out


def test_outlines_and_heights_stay_in_their_documented_ranges():
    rng = np.random.default_rng(0)
    bodies = [proc.draw_body(rng, (0.0, 0.0), 1.5) for _ in range(300)]
    for b in bodies:
        assert _within(2 * b.r0, proc.DIAMETER_UM)
        assert np.sqrt(np.mean(b.outline_um.astype(float) ** 2)) == pytest.approx(b.r0, 1e-4)
        assert _within(b.elongation, ELONGATION[b.outline_kind])
        if b.height_kind == "sphere":
            assert b.outline_kind == "round" and b.z_offset == b.height
            assert _within(b.height / b.r0, proc.SPHERE_SEMI_AXIS)
        else:
            rng_h = proc.FLAT_HEIGHT_UM if b.height_kind == "flat" else proc.DOME_HEIGHT_UM
            assert _within(b.height, rng_h) and b.z_offset == 0
            assert b.lamella_height <= 0.5 * b.height
            assert _within(b.dome_fraction, proc.DOME_FRACTION)
    assert {b.outline_kind for b in bodies} == set(proc.OUTLINE_KINDS)
    assert {b.height_kind for b in bodies} == {"flat", "dome", "sphere"}
    # the outline table is what the body is drawn from
    b = bodies[0]
    theta = np.array([0.3])
    assert b.outline_radius(theta)[0] == pytest.approx(
        np.interp(0.3, np.linspace(0, 2 * np.pi, proc.OUTLINE_SAMPLES, endpoint=False),
                  b.outline_um), 1e-5)


def _in_nucleus(cell: proc.ProceduralCell, p: np.ndarray) -> bool:
    return any(float(ellipsoid_sdf(*p, c, ax, a)) < 0 for c, ax, a in cell.nuclei)


def test_organelles_stay_in_their_documented_ranges():
    rng = np.random.default_rng(1)
    cells = [proc.make_procedural_cell(rng, (0.0, 0.0), 1.5) for _ in range(30)]
    for c in cells:
        assert c.family == PROCEDURAL and c.variant == "normal"
        assert _within(c.nuclear_contrast_dn, proc.NUCLEAR_CONTRAST_DN)
        assert c.nucleus_offset_dn == -c.nuclear_contrast_dn
        assert (_within(c.nucleolus_contrast_dn, proc.NUCLEOLUS_CONTRAST_DN)
                or _within(c.nucleolus_contrast_dn, proc.INVISIBLE_NUCLEOLUS_DN))
        assert c.eccentricity <= proc.ECCENTRICITY[1]
        assert proc.nucleus_inside(c)
        assert len(c.nucleoli) <= proc.NUCLEOLI[1]
        assert all(_in_nucleus(c, p) for p, _ in c.nucleoli)
        assert len(c.vacuoles) <= proc.VACUOLES[1]
        for _p, r, dn in c.vacuoles:
            assert _within(r, proc.VACUOLE_RADIUS_UM) and _within(dn, proc.VACUOLE_DN)
            assert dn < conc_to_dn(c.cyto_conc) - 0.005  # below the cytoplasm, near medium
        assert len(c.droplets) <= proc.DROPLETS[1]
        assert all(0.3 <= r <= 2.0 for _p, r, _dn in c.droplets)
        assert _within(c.cyto_conc, proc.CYTO_CONC)
        assert c.mito
    n_nucleoli = [len(c.nucleoli) for c in cells]
    n_drops = [len(c.droplets) for c in cells]
    assert 0 in n_nucleoli and max(n_nucleoli) >= 3
    assert any(_within(c.nucleolus_contrast_dn, proc.INVISIBLE_NUCLEOLUS_DN) for c in cells)
    assert 0 in n_drops and max(n_drops) >= 30
    assert any(c.vacuoles for c in cells) and not all(c.vacuoles for c in cells)
    assert {c.nucleus_kind for c in cells} == set(proc.NUCLEUS_KINDS)
    assert any(c.eccentricity >= proc.ECCENTRICITY[0] for c in cells)


def test_every_nucleus_is_one_body_inside_its_cell(fields):
    for cells, canvas in fields:
        cell_l, nuc_l = canvas.cell_labels, canvas.nucleus_labels
        assert np.array_equal(nuc_l[nuc_l > 0], cell_l[nuc_l > 0])
        for label, cell in enumerate(cells, start=1):
            assert proc.nucleus_inside(cell)
            nucleus = nuc_l == label
            if cell.role == "cluster":  # centred in the field: the nucleus is there
                assert nucleus.sum() > 500
            inner = nucleus[:, 1:-1, 1:-1].sum() == nucleus.sum()  # not cut by the edge
            if nucleus.any() and inner:
                assert ndimage.label(nucleus, np.ones((3, 3, 3)))[1] == 1


def _assert_no_holes(cells: list, canvas) -> None:
    labels = canvas.cell_labels
    union = labels > 0
    assert np.array_equal(ndimage.binary_fill_holes(union), union)
    for label in range(1, len(cells) + 1):
        mask = labels == label
        assert np.array_equal(ndimage.binary_fill_holes(mask), mask)


def test_cell_masks_have_no_inner_holes(fields):
    for cells, canvas in fields:
        _assert_no_holes(cells, canvas)


def test_vacuoles_lie_inside_the_cell_mask_not_in_holes(monkeypatch):
    monkeypatch.setattr(proc, "VACUOLE_P", 1.0)
    monkeypatch.setattr(proc, "VACUOLES", (4, 6))
    rng = np.random.default_rng(3)
    shape = (48, 160, 160)
    cells = [proc.make_procedural_cell(rng, (12.0, 12.0), 1.5, max_height=8.0)]
    canvas = render_cells(cells, shape, rng)
    _assert_no_holes(cells, canvas)
    [cell] = cells
    assert len(cell.vacuoles) >= 3
    for p, r, dn in cell.vacuoles:
        i = tuple(np.round(p / VOXEL).astype(int))
        assert canvas.cell_labels[i] == 1 and canvas.nucleus_labels[i] == 0
        assert canvas.droplets[i] < 0.5 and canvas.density["mitochondria"][i] < 0.5
        if r >= 0.6:
            assert canvas.dn[i] == pytest.approx(dn, abs=1e-4)
            assert canvas.dn[i] < conc_to_dn(cell.cyto_conc) - 0.005


def _shared_faces(labels: np.ndarray, a: int, b: int) -> int:
    n = 0
    for axis in range(3):
        lo = labels.take(np.arange(labels.shape[axis] - 1), axis)
        hi = labels.take(np.arange(1, labels.shape[axis]), axis)
        n += int((((lo == a) & (hi == b)) | ((lo == b) & (hi == a))).sum())
    return n


def test_touching_clusters_give_one_label_per_cell_with_shared_borders(fields):
    sizes = []
    for cells, canvas in fields:
        labels = canvas.cell_labels
        members = [i for i, c in enumerate(cells, start=1) if c.role == "cluster"]
        sizes.append(len(members))
        for a in members:
            comp, _ = ndimage.label(labels == a, np.ones((3, 3, 3)))
            counts = np.bincount(comp.ravel())[1:]
            assert counts.max() >= 0.995 * counts.sum()  # one body (+ filopodium specks)
            assert max(_shared_faces(labels, a, b) for b in members if b != a) >= 50
    assert all(proc.CLUSTER_SIZE[0] <= s <= proc.CLUSTER_SIZE[1] for s in sizes)
    assert max(sizes) >= 3


def test_a_cell_cut_by_the_field_edge_touches_the_border(fields):
    for cells, canvas in fields:
        [label] = [i for i, c in enumerate(cells, start=1) if c.role == "edge"]
        mask = canvas.cell_labels == label
        border = mask[:, 0].any() or mask[:, -1].any() or mask[:, :, 0].any() \
            or mask[:, :, -1].any()
        assert border and mask.sum() > 2000


def _hull_ratio(mask: np.ndarray) -> float:
    """Convex-hull volume of the voxels (their corners) over their volume."""
    shell = np.argwhere(mask & ~ndimage.binary_erosion(mask))
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T
    pts = (shell[:, None, :] + corners[None]).reshape(-1, 3) * VOXEL
    return ConvexHull(pts).volume / (mask.sum() * VOXEL.prod())


def _nucleus_of_kind(kind: str) -> np.ndarray:
    for seed in range(100):
        rng = np.random.default_rng(seed)
        cell = proc.draw_body(rng, (15.0, 15.0), 1.5, 10.0)
        if cell.height_kind == "flat":
            continue
        proc._add_nucleus(cell, rng)
        if cell.nucleus_kind == kind:
            cell.lamella_height, cell.vacuoles = 0.0, []
            maps = render_cell(cell, cell_bbox(cell, (60, 200, 200), CANONICAL_VOXEL_SIZE_UM))
            return maps.nucleus > 0.5
    raise AssertionError(kind)


def test_kidney_and_lobed_nuclei_are_not_convex():
    ellipsoid = _hull_ratio(_nucleus_of_kind("ellipsoid"))
    kidney = _hull_ratio(_nucleus_of_kind("kidney"))
    lobed = _hull_ratio(_nucleus_of_kind("lobed"))
    assert ellipsoid < 1.16  # voxelised convex body: hull of the voxel corners
    assert kidney > 1.4 and kidney > ellipsoid + 0.3
    assert lobed > ellipsoid + 0.04


def _contrast(canvas, label: int) -> float:
    """Median nucleoplasm minus median cytoplasm Δn of one cell."""
    dn, cell = canvas.dn, canvas.cell_labels == label
    nucleus = canvas.nucleus_labels == label
    organelles = nucleus | (canvas.droplets > 0.05) | (canvas.density["mitochondria"] > 0.05)
    cyto = ndimage.binary_erosion(cell, iterations=2) & ~ndimage.binary_dilation(organelles)
    plasm = ndimage.binary_erosion(nucleus & (canvas.nucleolus < 0.05))
    return float(np.median(dn[plasm]) - np.median(dn[cyto]))


@pytest.mark.parametrize("drawn", [(-0.015, -0.012), (0.004, 0.005)])
def test_nuclear_contrast_follows_the_drawn_value(monkeypatch, drawn):
    monkeypatch.setattr(proc, "NUCLEAR_CONTRAST_DN", drawn)
    shape = (48, 160, 160)
    rng = np.random.default_rng(4)
    cell = proc.make_procedural_cell(rng, (12.0, 12.0), 1.5, max_height=8.0)
    canvas = render_cells([cell], shape, rng)
    measured = _contrast(canvas, 1)
    assert np.sign(measured) == np.sign(cell.nuclear_contrast_dn)
    assert measured == pytest.approx(cell.nuclear_contrast_dn, abs=0.003)


def test_nuclear_contrast_sign_in_random_fields(fields):
    checked = 0
    for cells, canvas in fields:
        for label, cell in enumerate(cells, start=1):
            if abs(cell.nuclear_contrast_dn) >= 0.004 and (canvas.nucleus_labels == label).any():
                assert np.sign(_contrast(canvas, label)) == np.sign(cell.nuclear_contrast_dn)
                checked += 1
    assert checked >= 3


def test_simulate_fov_draws_a_procedural_field_with_consistent_ground_truth():
    shape = (32, 128, 128)
    fov = simulate_fov(PROCEDURAL, seed=5, shape=shape, physics="none")
    assert fov.cell_type == PROCEDURAL and fov.to_paired().attrs["cell_type"] == PROCEDURAL
    cells, nuclei = fov.cell_labels, fov.nucleus_labels
    assert cells.max() >= 1 and np.array_equal(nuclei[nuclei > 0], cells[nuclei > 0])
    assert np.array_equal(fov.masks["membrane"], cells > 0)
    assert not (fov.masks["nucleolus"] & ~fov.masks["nucleus"]).any()
    assert set(fov.fl) == set(TARGETS) and fov.fl["mitochondria"].max() > 0.3
    dry = simulate_fov(PROCEDURAL, seed=5, shape=shape, physics="none", fl_noise=False,
                       droplets_per_cell=(0, 0), n_cells=1)
    assert not dry.masks["lipid_droplets"].any()
    with pytest.raises(ConfigError):
        simulate_fov(PROCEDURAL, seed=0, shape=shape, variant="mitotic")
