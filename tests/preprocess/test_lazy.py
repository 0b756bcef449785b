"""Lazy, blockwise resampling equals preprocess.resample_to_shape on whole arrays, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl import preprocess
from ri2fl.preprocess import LazyResampled, resample_blockwise


@pytest.mark.parametrize("shape", [(20, 40, 17), (13, 29, 31), (1, 3, 90), (4, 58, 62)])
def test_lazy_regions_equal_the_whole_array_zoom(shape, rng):
    src = rng.random((13, 29, 31), dtype=np.float32)
    ref = preprocess.resample_to_shape(src, shape, order=1)
    lazy = LazyResampled(src, shape)
    np.testing.assert_array_equal(lazy[...], ref)
    region = (slice(shape[0] // 3, shape[0]), slice(1, shape[1] // 2), slice(None, 7))
    np.testing.assert_array_equal(lazy[region], ref[region])


def test_lazy_reads_only_the_region_below(rng):
    src = rng.random((40, 50, 60), dtype=np.float32)
    reads = []

    class Spy:
        shape, ndim = src.shape, 3

        def __getitem__(self, key):
            reads.append(key)
            return src[key]

    LazyResampled(Spy(), (60, 100, 100))[10:20, 0:10, 90:100]
    (z, y, x), = reads
    assert z.stop - z.start <= 8 and y.stop - y.start <= 7 and x.stop - x.start <= 7


def test_blockwise_resampling_into_zarr(tmp_path, rng):
    zarr = pytest.importorskip("zarr")
    src = rng.random((2, 10, 30, 20), dtype=np.float32)
    out = zarr.create_array(tmp_path / "o.zarr", shape=(2, 7, 41, 25), chunks=(1, 3, 16, 25),
                            dtype="float32")
    resample_blockwise(src, out)
    ref = preprocess.resample_to_shape(src, (7, 41, 25), order=1)
    np.testing.assert_array_equal(out[...], ref)
