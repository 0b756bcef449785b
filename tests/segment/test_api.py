"""segment_volume end to end with the shipped models, on real and simulated data."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.errors import ConfigError, InputError
from ri2fl.models import available

needs_weights = pytest.mark.skipif(
    not {"segment-default", "cell-default"} <= set(available()),
    reason="shipped segmentation weights not installed")


@pytest.fixture(scope="module")
def hl60(hl60_path):
    from ri2fl.io import read

    vol = read(hl60_path)
    return np.asarray(vol.data), vol.voxel_size_um[0], vol.medium_index


@pytest.fixture(scope="module")
def hl60_segmentations(hl60):
    from ri2fl.segment import segment_volume

    ri, vs, medium = hl60
    net = segment_volume(ri, vs, medium, method="network", return_probabilities=True)
    # the RI2FL route: the voxel classifier sees the fluorescence the default model infers
    ws = segment_volume(ri, vs, medium, method="watershed", probabilities=net.probabilities)
    return {"network": net, "watershed": ws}


@pytest.mark.slow
@needs_weights
@pytest.mark.parametrize("method", ["network", "watershed"])
def test_real_hl60_cell_goes_through_on_its_own_grid(hl60, hl60_segmentations, method):
    ri, vs, _ = hl60
    seg = hl60_segmentations[method]
    assert seg.cell_labels.shape == ri.shape and seg.cell_labels.dtype == np.int32
    assert seg.nucleus_labels.shape == ri.shape and seg.voxel_size_um == (vs, vs, vs)
    assert all(m.shape == ri.shape and m.dtype == bool for m in seg.masks.values())
    # masks nest and agree with the instances
    assert not (seg.masks["nucleus"] & ~seg.masks["membrane"]).any()
    assert not (seg.masks["nucleolus"] & ~seg.masks["nucleus"]).any()
    assert seg.masks["membrane"][seg.cell_labels > 0].all()


@pytest.mark.slow
@needs_weights
@pytest.mark.xfail(strict=True, reason=(
    "known limitation of the shipped weights, trained on flat simulated fibroblasts only: on "
    "this round 15 µm suspension cell the whole-cell channel covers 12.8 µm equivalent "
    "diameter of it (IoU 0.62 with the physical reference)"))
def test_real_hl60_whole_cell_mask_is_the_round_cell(hl60, hl60_segmentations):
    from scipy import ndimage as ndi

    _, vs, _ = hl60
    membrane = hl60_segmentations["network"].masks["membrane"]
    lab, _ = ndi.label(membrane)
    sizes = np.bincount(lab.ravel())[1:]
    assert sizes.max() > 0.9 * sizes.sum()  # one object
    diameter = 2 * (3 * sizes.max() * vs**3 / (4 * np.pi)) ** (1 / 3)
    assert 13.5 < diameter < 19  # the HL60 is round: 14.9 µm where its RI exceeds the medium


def _hl60_reference(ri: np.ndarray, medium: float) -> np.ndarray:
    """The physical cell: the round object that stands out of the medium."""
    from scipy import ndimage as ndi

    return ndi.binary_fill_holes(ndi.gaussian_filter(ri, 2) > medium + 0.006)


@pytest.mark.slow
@needs_weights
@pytest.mark.parametrize("method", ["network", "watershed"])
def test_real_hl60_is_one_cell_with_its_nucleus_inside(hl60, hl60_segmentations, method):
    ri, vs, medium = hl60
    seg = hl60_segmentations[method]
    assert seg.n_cells == 1
    assert np.unique(seg.nucleus_labels[seg.nucleus_labels > 0]).tolist() == [1]
    assert np.all(seg.cell_labels[seg.nucleus_labels > 0] == 1)
    diameter = 2 * (3 * (seg.cell_labels > 0).sum() * vs**3 / (4 * np.pi)) ** (1 / 3)
    assert 10 < diameter < 22
    nucleus_fraction = (seg.nucleus_labels > 0).sum() / (seg.cell_labels > 0).sum()
    assert 0.1 < nucleus_fraction < 0.9
    # the cell is the real one, and so is the place of its nucleus
    reference = _hl60_reference(ri, medium)
    cell, nucleus = seg.cell_labels > 0, seg.nucleus_labels > 0
    assert (cell & reference).sum() / (cell | reference).sum() > 0.55
    assert (nucleus & reference).sum() > 0.95 * nucleus.sum()


@pytest.mark.slow
@needs_weights
@pytest.mark.xfail(strict=True, reason=(
    "known limitation of the shipped weights, trained on flat simulated fibroblasts only: on "
    "this round 15 µm suspension cell (another microscope, an 'apple core' instead of a "
    "missing cone) the nucleus both routes find is not the darker interior (the true one is "
    "only ~0.004 below the cytoplasm) and the cell covers 0.62-0.72 of the physical one"))
@pytest.mark.parametrize("method", ["network", "watershed"])
def test_real_hl60_nucleus_is_the_darker_interior(hl60, hl60_segmentations, method):
    from scipy import ndimage as ndi

    ri, vs, medium = hl60
    seg = hl60_segmentations[method]
    reference = _hl60_reference(ri, medium)
    cell, nucleus = seg.cell_labels > 0, seg.nucleus_labels > 0
    assert (cell & reference).sum() / (cell | reference).sum() > 0.8
    interior = ndi.binary_erosion(reference, iterations=round(1.0 / vs))
    assert (nucleus & interior).sum() > 0.9 * nucleus.sum()
    assert ri[nucleus].mean() < ri[cell & ~nucleus].mean() - 0.002


def test_label_stack_names_every_channel():
    from ri2fl.segment import Segmentation

    shape = (4, 6, 8)
    cells = np.zeros(shape, np.int32)
    cells[:, :3] = 1
    cells[:, 3:] = 2
    masks = {m: np.zeros(shape, bool) for m in ("nucleus", "nucleolus", "membrane",
                                                 "lipid_droplets")}
    masks["membrane"][:] = True
    seg = Segmentation(masks, cells, (cells == 1).astype(np.int32), (0.2, 0.15, 0.15),
                       "network")
    stack, names = seg.label_stack()
    assert names == ["cell_labels", "nucleus_labels", "nucleus", "nucleolus", "membrane",
                     "lipid_droplets"]
    assert stack.shape == (6, *shape) and stack.dtype == np.int32
    np.testing.assert_array_equal(stack[0], cells)
    np.testing.assert_array_equal(stack[4], 1)
    assert seg.n_cells == 2


def test_bad_inputs_are_one_line_errors():
    from ri2fl.segment import segment_volume

    with pytest.raises(ConfigError, match="method"):
        segment_volume(np.ones((8, 8, 8)), 0.2, method="magic")
    with pytest.raises(InputError, match="Z, Y, X"):
        segment_volume(np.ones((8, 8)), 0.2)
    with pytest.raises(InputError, match="voxel size"):
        segment_volume(np.ones((8, 8, 8)), (0.2, 0.1))
    with pytest.raises(ConfigError, match="fl"):
        segment_volume(np.ones((8, 8, 8)), 0.2, method="watershed", fl="guess")
    with pytest.raises(InputError, match="NaN"):
        segment_volume(np.full((8, 8, 8), np.nan), 0.2)


@needs_weights
def test_watershed_route_classifies_the_fluorescence_the_default_model_infers():
    from ri2fl.infer import predict_volume
    from ri2fl.segment import segment_volume
    from ri2fl.simulate import simulate_fov

    fov = simulate_fov("fibroblast", seed=5, shape=(32, 128, 128), n_cells=2)
    args = (fov.ri, fov.voxel_size_um, fov.medium_index)
    inferred = predict_volume(*args[:2], medium_index=fov.medium_index,
                              targets=["nucleus", "membrane"]).fl
    by_default = segment_volume(*args, method="watershed")
    given = segment_volume(*args, method="watershed", fl=dict(inferred))
    ri_only = segment_volume(*args, method="watershed", fl=None)
    np.testing.assert_array_equal(by_default.cell_labels, given.cell_labels)
    assert by_default.n_cells >= 1
    assert not np.array_equal(by_default.cell_labels, ri_only.cell_labels)
