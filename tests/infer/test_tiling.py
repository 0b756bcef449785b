"""The tiler: any shape, no seams, output on the input grid, bounded streamed writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ri2fl.infer.tiling import axis_grid, fit_tile, predict_tiled, spline_window, tile_grid


def _conv(kernel: np.ndarray):
    """A translation-equivariant fn: 3D convolution with zero padding ('same')."""
    weight = torch.as_tensor(kernel, dtype=torch.float32)[None, None]

    def fn(batch: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(batch)
        return torch.nn.functional.conv3d(x, weight, padding=kernel.shape[0] // 2).numpy()

    return fn


@pytest.mark.parametrize("shape", [(20, 45, 33), (5, 7, 70), (1, 1, 1), (17, 16, 16)])
def test_identity_fn_reproduces_any_shape_exactly(shape, rng):
    vol = rng.random(shape, dtype=np.float32)
    out = predict_tiled(lambda b: b, vol, patch_size=(8, 16, 16), overlap=0.25, batch_size=3)
    assert out.shape == (1, *shape)
    np.testing.assert_allclose(out[0], vol, atol=1e-6)


def test_tiled_equals_whole_volume_for_a_convolution(rng):
    vol = rng.random((20, 40, 28), dtype=np.float32)  # the regular grid fits: no padding
    kernel = rng.random((3, 3, 3), dtype=np.float32)
    whole = _conv(kernel)(vol[None, None])[0, 0]
    # a 3x3x3 kernel sees a patch's cut only in its outer voxel shell, which a margin of 1
    # drops; inside the volume's own border shell (zero- vs symmetric padding) it is exact
    tiled = predict_tiled(_conv(kernel), vol, patch_size=(8, 16, 16), overlap=0.25,
                          margin=1)[0]
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)  # borders included
    # with extra symmetric padding the border shell sees mirrored data, not zeros
    padded = predict_tiled(_conv(kernel), vol, patch_size=(8, 16, 16), margin=1, pad=2)[0]
    inner = (slice(1, -1),) * 3
    np.testing.assert_allclose(padded[inner], whole[inner], rtol=0, atol=1e-5)
    assert np.abs(padded - whole).max() > 0.1
    # without the margin the cut shows, but only slightly (small window weight there)
    rough = predict_tiled(_conv(kernel), vol, patch_size=(8, 16, 16), margin=0)[0]
    assert 1e-3 < np.abs(rough - whole)[inner].max() < 0.1 * np.abs(whole).max()


def test_tiled_small_net_matches_whole_volume_away_from_borders(tiny_net, rng):
    tiny_net.body[2].p = 0.0
    vol = rng.random((16, 48, 48), dtype=np.float32)

    def fn(b):
        with torch.no_grad():
            return tiny_net(torch.as_tensor(b)).numpy()

    whole = fn(vol[None, None])[0]
    # two 3x3x3 convolutions: receptive-field radius 2
    tiled = predict_tiled(fn, vol, patch_size=(12, 24, 24), overlap=0.5, margin=2)
    inner = (slice(None), slice(2, -2), slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(tiled[inner], whole[inner], atol=1e-5)


def test_window_sums_to_one_over_the_volume():
    grid = tile_grid((70, 123, 50), (16, 32, 32), overlap=0.25, pad=3)
    for a in grid.axes:
        np.testing.assert_allclose(a.weight_sum(), 1.0, atol=1e-12)
        assert a.weight_sum().shape == (a.padded_size,)
    # and in 3D: the separable weights of all patches add up to one at every voxel
    acc = np.zeros(grid.shape)
    for start in grid:
        spans = [a.output_span(s) for a, s in zip(grid.axes, start)]
        wz, wy, wx = (f[p] for f, (_, p) in zip(grid.normalized_weights(start), spans))
        acc[tuple(v for v, _ in spans)] += wz[:, None, None] * wy[:, None] * wx
    np.testing.assert_allclose(acc, 1.0, atol=1e-6)


def test_spline_window_is_symmetric_smooth_and_sums_to_one_when_shifted():
    for margin in (0, 4):
        w = spline_window(64, 16, margin)
        np.testing.assert_allclose(w, w[::-1])
        assert w.max() == 1 and (w.min() > 0) == (margin == 0)
        assert np.abs(np.diff(w)).max() < 0.3  # no jumps
        np.testing.assert_allclose(w[48:] + w[:16], 1.0)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), patch=st.integers(1, 80),
       overlap=st.sampled_from([0.0, 0.1, 0.25, 0.5]), margin=st.integers(0, 10),
       pad=st.integers(0, 20))
def test_patch_grid_covers_every_voxel_inside_the_padded_volume(size, patch, overlap, margin,
                                                                pad):
    g = axis_grid(size, patch, overlap, margin, pad)
    assert g.starts[0] == 0
    assert g.starts[-1] + patch == g.padded_size
    assert len(set(np.diff(g.starts))) <= 1  # regularly spaced
    assert min(g.pad_before, g.pad_after) >= pad  # at least the asked padding, both ends
    assert abs(g.pad_before - g.pad_after) <= 1  # symmetric
    covered = np.zeros(g.padded_size, dtype=bool)
    for s in g.starts:
        covered[s:s + patch] = True
    assert covered.all()
    np.testing.assert_allclose(g.weight_sum(), 1.0, atol=1e-9)
    idx = np.concatenate([g.source_index(s) for s in g.starts])
    assert idx.min() >= 0 and idx.max() < size


def test_a_volume_the_size_of_a_patch_is_one_patch():
    grid = tile_grid((64, 256, 256), (64, 256, 256), overlap=0.25)
    assert len(grid) == 1
    assert len(tile_grid((64, 512, 512), (64, 256, 256), overlap=0.25)) == 9  # as MONAI
    assert len(tile_grid((64, 256, 256), (64, 256, 256), overlap=0.25, pad=16)) == 8


def test_thin_volume_is_padded_not_cropped(rng):
    vol = rng.random((3, 30, 50), dtype=np.float32)
    seen = []

    def fn(b):
        seen.append(b.shape)
        return b * 3

    out = predict_tiled(fn, vol, patch_size=(16, 16, 16))
    assert all(s[2:] == (16, 16, 16) for s in seen)
    np.testing.assert_allclose(out[0], 3 * vol, atol=1e-5)


def test_zarr_output_streamed_equals_in_memory(tmp_path, rng):
    zarr = pytest.importorskip("zarr")
    vol = rng.random((12, 37, 41), dtype=np.float32)
    src = zarr.create_array(tmp_path / "in.zarr", shape=vol.shape, chunks=(4, 16, 16),
                            dtype="float32")
    src[...] = vol
    out = zarr.create_array(tmp_path / "out.zarr", shape=(2, *vol.shape), chunks=(1, 8, 16, 16),
                            dtype="float32", fill_value=0)

    def fn(b):
        return np.concatenate([b, b**2], axis=1)

    predict_tiled(fn, src, patch_size=(8, 16, 16), out=out)
    mem = predict_tiled(fn, vol, patch_size=(8, 16, 16))
    np.testing.assert_allclose(out[...], mem, atol=1e-6)
    np.testing.assert_allclose(mem[1], vol**2, atol=1e-5)


def test_multichannel_input_and_dask_input(rng):
    da = pytest.importorskip("dask.array")
    vol = rng.random((2, 9, 20, 20), dtype=np.float32)
    out = predict_tiled(lambda b: b[:, :1] - b[:, 1:], da.from_array(vol, chunks=5),
                        patch_size=(8, 16, 16))
    np.testing.assert_allclose(out[0], vol[0] - vol[1], atol=1e-6)


def test_bad_fn_output_is_reported():
    with pytest.raises(ValueError, match="spatial size"):
        predict_tiled(lambda b: b[..., :-1], np.zeros((4, 8, 8), np.float32), (4, 8, 8))


@given(tile=st.tuples(*[st.integers(1, 300)] * 3), shape=st.tuples(*[st.integers(1, 300)] * 3))
def test_fitted_tile_never_exceeds_the_volume_or_the_tile(tile, shape):
    fitted = fit_tile(tile, shape)
    assert all(1 <= f <= min(t, s) for f, t, s in zip(fitted, tile, shape))
    assert all(f == t for f, t, s in zip(fitted, tile, shape) if t <= s)
