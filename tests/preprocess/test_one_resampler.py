"""One resampler and one RI normalisation: the conventions they replace, kept to round-off.

Before issue #29 training, inference and segmentation each had their own version: zoom in grid
mode (preprocess), scikit-image ``resize`` with anti-aliasing (segment), zoom without grid mode
(data), and three RI normalisations. These tests pin what the one version computes.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.transform import resize

from ri2fl.data import normalize_input
from ri2fl.preprocess import (
    LazyResampled,
    normalize_ri,
    resample,
    resample_to_shape,
    resampled_shape,
    same_grid,
)

SHAPES = [((13, 29, 31), (20, 40, 17)), ((32, 64, 48), (19, 37, 60)), ((6, 9, 11), (6, 9, 5))]


@pytest.mark.parametrize(("src", "dst"), SHAPES)
def test_linear_is_the_grid_mode_zoom_to_float32_round_off(rng, src, dst):
    ri = (1.33 + 0.06 * rng.random(src)).astype(np.float32)
    zoom = ndimage.zoom(ri, [m / n for m, n in zip(dst, src)], order=1, mode="nearest",
                        grid_mode=True)
    np.testing.assert_allclose(resample_to_shape(ri, dst), zoom, rtol=0, atol=3e-7)
    # the lazy view used at inference computes the very same numbers
    np.testing.assert_array_equal(LazyResampled(ri, dst)[...], resample_to_shape(ri, dst))


@pytest.mark.parametrize(("src", "dst"), SHAPES)
def test_anti_alias_is_scikit_image_resize(rng, src, dst):
    x = rng.random(src, dtype=np.float32)
    ref = resize(x, dst, order=1, mode="edge", preserve_range=True, anti_aliasing=True)
    np.testing.assert_allclose(resample_to_shape(x, dst, anti_alias=True), ref, atol=1e-6)


@pytest.mark.parametrize(("src", "dst"), SHAPES)
def test_nearest_is_the_grid_mode_zoom_for_any_dtype(rng, src, dst):
    labels = rng.integers(0, 9, src).astype(np.int32)
    zoom = ndimage.zoom(labels, [m / n for m, n in zip(dst, src)], order=0, mode="nearest",
                        grid_mode=True)
    out = resample_to_shape(labels, dst, order=0, anti_alias=True)  # never smoothed
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, zoom)
    mask = resample_to_shape(labels > 4, dst, order=0)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, zoom > 4)


def test_on_its_grid_a_volume_is_not_resampled(rng):
    ri = rng.random((10, 12, 14), dtype=np.float32)
    near = tuple(v * 1.0005 for v in (0.2, 0.15, 0.15))
    assert same_grid(near, (0.2, 0.15, 0.15)) and not same_grid((0.202, 0.15, 0.15),
                                                               (0.2, 0.15, 0.15))
    assert resampled_shape((1000, 12, 14), near) == (1000, 12, 14)
    assert resample(ri, near) is ri
    assert resample_to_shape(ri, ri.shape) is ri
    assert resample(ri.astype(np.float64), near).dtype == np.float32


def test_only_linear_and_nearest():
    with pytest.raises(ValueError, match="order"):
        resample_to_shape(np.zeros((4, 4, 4), np.float32), (8, 8, 8), order=3)


def test_training_normalisation_is_the_inference_one(rng):
    ri = (1.33 + 0.07 * rng.random((5, 6, 7))).astype(np.float32)
    medium = np.float64(1.3352)  # a file's attribute: float64 must not change the arithmetic
    np.testing.assert_array_equal(normalize_input(ri, "ri", medium),
                                  normalize_ri(ri, medium_index=medium))
    assert normalize_input(ri, "ri", medium).dtype == np.float32
