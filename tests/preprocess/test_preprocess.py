"""Resampling, RI normalisation and axial registration against analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM
from ri2fl.preprocess import (
    estimate_axial_shift,
    fl_to_ri_grid,
    normalize_ri,
    resample,
    resample_to_shape,
    resampled_shape,
    resampled_voxel_size,
    shift_axial,
)


def test_resample_shape_keeps_physical_extent():
    shape = (50, 64, 80)
    vs = (0.4, 0.3, 0.075)
    out = resample(np.zeros(shape, np.float32), vs)
    assert out.shape == (100, 128, 40)
    extent_in = np.multiply(shape, vs)
    extent_out = np.multiply(out.shape, CANONICAL_VOXEL_SIZE_UM)
    np.testing.assert_allclose(extent_out, extent_in)


def test_resampled_voxel_size_is_within_half_a_voxel_of_target():
    shape, vs = (140, 140, 140), (0.139,) * 3
    true = resampled_voxel_size(shape, vs)
    np.testing.assert_allclose(np.multiply(resampled_shape(shape, vs), true),
                               np.multiply(shape, vs))
    for n, t, c in zip(resampled_shape(shape, vs), true, CANONICAL_VOXEL_SIZE_UM):
        assert abs(n * t - n * c) <= c / 2


def test_linear_ramp_is_resampled_exactly():
    """A ramp in physical coordinates stays the same ramp on the new grid (linear interp)."""
    vs = (0.4, 0.3, 0.3)
    z = (np.arange(20) + 0.5) * vs[0]
    ramp = np.broadcast_to(z[:, None, None], (20, 8, 8)).astype(np.float32)
    out = resample(ramp, vs)
    z_new = (np.arange(out.shape[0]) + 0.5) * CANONICAL_VOXEL_SIZE_UM[0]
    inner = slice(2, -2)  # edges repeat the border voxel
    np.testing.assert_allclose(out[inner, 3, 3], z_new[inner], atol=1e-5)


def test_resample_preserves_mean_and_goes_back_to_input_grid(rng):
    smooth = ndimage.gaussian_filter(rng.random((30, 40, 40)), 3).astype(np.float32)
    ri = 1.337 + 0.05 * smooth
    vs = (0.139, 0.139, 0.139)
    out = resample(ri, vs)
    assert out.mean() == pytest.approx(ri.mean(), abs=1e-4)
    back = resample_to_shape(out, ri.shape)
    assert back.shape == ri.shape and back.dtype == np.float32
    assert np.abs(back - ri).max() < 2e-3


def test_labels_stay_labels_with_order_zero():
    labels = np.zeros((10, 20, 20), np.int32)
    labels[2:8, 5:15, 5:15] = 7
    out = resample(labels, (0.4, 0.3, 0.3), order=0)
    assert out.dtype == np.int32 and set(np.unique(out)) == {0, 7}


def test_resample_handles_channel_axis(rng):
    data = rng.random((3, 10, 12, 12)).astype(np.float32)
    out = resample(data, (0.2, 0.15, 0.15), (0.4, 0.3, 0.3))
    assert out.shape == (3, 5, 6, 6)
    np.testing.assert_allclose(out[1], resample(data[1], (0.2, 0.15, 0.15), (0.4, 0.3, 0.3)))


def test_normalize_ri_window_and_medium():
    ri = np.array([1.30, 1.337, 1.3635, 1.390, 1.45])
    np.testing.assert_allclose(normalize_ri(ri), [0, 0, 0.5, 1, 1], atol=1e-6)
    # PBS: the window starts at 1.335 with the same width
    np.testing.assert_allclose(normalize_ri(np.array([1.335, 1.3615]), 1.335), [0, 0.5],
                               atol=1e-5)
    assert normalize_ri(ri).dtype == np.float32


@pytest.mark.parametrize("shift", [-3.4, 0.0, 1.25, 4.0])
def test_axial_shift_is_recovered(rng, shift):
    ri = ndimage.gaussian_filter(rng.random((40, 24, 24)), (2, 1, 1)).astype(np.float32)
    fl = shift_axial(ri, -shift) ** 2 * 3  # another contrast, same structures, shifted
    est = estimate_axial_shift(ri, fl, max_shift_um=1.2, voxel_size_z_um=0.2)
    assert est == pytest.approx(shift, abs=0.25)
    aligned = shift_axial(fl, est)
    inner = slice(6, -6)
    assert np.corrcoef(aligned[inner].ravel(), (ri**2 * 3)[inner].ravel())[0, 1] > 0.98


def test_shift_axial_integer_moves_content():
    a = np.zeros((10, 2, 2), np.float32)
    a[4] = 1
    b = shift_axial(a, 3)
    assert b[7, 0, 0] == 1 and b[4, 0, 0] == 0


def test_fl_to_ri_grid_places_slices_by_offset_and_voxel_size():
    """FL slice p sits at z = offset + p * fz: a z-ramp of FL lands at the right RI depths."""
    fz, rz, offset = 0.4, 0.2, 0.6
    p = np.arange(10, dtype=np.float32)
    fl = np.broadcast_to((offset + p * fz)[:, None, None], (10, 4, 4))  # value = its z (µm)
    out = fl_to_ri_grid(fl, (fz, 0.3, 0.3), (30, 8, 8), (rz, 0.15, 0.15), offset_z_um=offset)
    z_ri = np.arange(30) * rz
    inside = (z_ri >= offset) & (z_ri <= offset + 9 * fz)
    np.testing.assert_allclose(out[inside, 2, 2], z_ri[inside], atol=1e-5)
    assert np.all(out[z_ri < offset - fz] == 0)  # above the FL stack: nothing
    assert out.shape == (30, 8, 8) and out.dtype == np.float32


def test_fl_to_ri_grid_with_tcf_metadata(tmp_path, rng):
    from ri2fl.io import read
    from ri2fl.io.tcf import write_tcf
    ri = np.full((8, 6, 6), 1.35, np.float32)
    gfp = np.zeros((4, 6, 6), np.uint16)
    gfp[1] = 1000  # FL slice 1 -> z = 0.4 + 1 * 0.4 = 0.8 µm -> RI slice 4
    path = write_tcf(tmp_path / "a.TCF", ri, (0.2, 0.15, 0.15), fl={"gfp": gfp},
                     fl_voxel_size_um=(0.4, 0.15, 0.15), fl_offset_z_um=0.4)
    fl = read(path, modality="fl")
    vol = read(path)
    out = fl_to_ri_grid(fl.data, fl.voxel_size_um, vol.spatial_shape, vol.voxel_size_um,
                        fl.metadata["fl_offset_z_um"][0])
    assert out.shape == (1, 8, 6, 6)
    assert int(np.argmax(out[0, :, 3, 3])) == 4 and out[0, 4, 3, 3] == pytest.approx(1000)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(shape=st.tuples(*[st.integers(1, 12)] * 3),
       voxel=st.tuples(*[st.floats(0.05, 0.6)] * 3), value=st.floats(1.0, 2.0))
def test_resample_properties(shape, voxel, value):
    """Any shape and voxel size: shape as promised, constants stay constant, back exactly."""
    data = np.full(shape, value, np.float32)
    out = resample(data, voxel)
    assert out.shape == resampled_shape(shape, voxel)
    np.testing.assert_allclose(out, value, rtol=1e-6)
    back = resample_to_shape(out, shape)
    assert back.shape == shape
    np.testing.assert_allclose(back, value, rtol=1e-6)


def test_hl60_resamples_to_canonical_grid_as_one_cell(hl60_path):
    """The real cell: canonical grid, same extent and mean RI, one cell of HL60 size."""
    from ri2fl.io import read
    vol = read(hl60_path)
    out = resample(vol.data, vol.voxel_size_um)
    assert out.shape == (97, 130, 130)
    np.testing.assert_allclose(np.multiply(out.shape, resampled_voxel_size(
        vol.shape, vol.voxel_size_um)), np.multiply(vol.shape, vol.voxel_size_um))
    assert out.mean() == pytest.approx(vol.data.mean(), abs=2e-4)
    mask = normalize_ri(ndimage.gaussian_filter(out, 1), vol.medium_index) > 0.1
    _, n = ndimage.label(mask)
    assert n == 1
    volume_um3 = mask.sum() * np.prod(CANONICAL_VOXEL_SIZE_UM)
    diameter = (6 * volume_um3 / np.pi) ** (1 / 3)
    assert 10 < diameter < 18  # HL60 cells are 12-15 µm across


def test_axial_shift_is_independent_of_column_blocking(rng, monkeypatch):
    from ri2fl.preprocess import register
    ri = ndimage.gaussian_filter(rng.random((30, 16, 16)), (2, 1, 1)).astype(np.float32)
    fl = shift_axial(ri, 1.7) + 0.1 * rng.random(ri.shape).astype(np.float32)
    whole = estimate_axial_shift(ri, fl, voxel_size_z_um=0.2)
    monkeypatch.setattr(register, "_COLUMNS_PER_BLOCK", 7)  # 256 columns in 37 blocks
    assert estimate_axial_shift(ri, fl, voxel_size_z_um=0.2) == pytest.approx(whole, abs=1e-9)
    assert whole == pytest.approx(-1.7, abs=0.25)
