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
    import h5py

    with h5py.File(hl60_path) as f:
        return f["ri"][()], float(f["ri"].attrs["voxel_size_um"]), \
            float(f["ri"].attrs["medium_index"])


@pytest.fixture(scope="module")
def hl60_segmentations(hl60):
    from ri2fl.segment import segment_volume

    ri, vs, medium = hl60
    return {m: segment_volume(ri, vs, medium, method=m) for m in ("network", "watershed")}


@needs_weights
@pytest.mark.parametrize("method", ["network", "watershed"])
def test_real_hl60_cell_is_one_cell_with_its_nucleus_inside(hl60, hl60_segmentations, method):
    ri, vs, _ = hl60
    seg = hl60_segmentations[method]
    assert seg.n_cells == 1
    assert np.unique(seg.nucleus_labels[seg.nucleus_labels > 0]).tolist() == [1]
    # the nucleus lies inside the cell, and the cell is the size of an HL60 (15-19 µm)
    assert np.all(seg.cell_labels[seg.nucleus_labels > 0] == 1)
    diameter = 2 * (3 * (seg.cell_labels > 0).sum() * vs**3 / (4 * np.pi)) ** (1 / 3)
    assert 10 < diameter < 22
    nucleus_fraction = (seg.nucleus_labels > 0).sum() / (seg.cell_labels > 0).sum()
    assert 0.1 < nucleus_fraction < 0.9
    # everything is returned on the input grid
    assert seg.cell_labels.shape == ri.shape and seg.cell_labels.dtype == np.int32
    assert all(m.shape == ri.shape and m.dtype == bool for m in seg.masks.values())
    assert seg.masks["membrane"][seg.cell_labels > 0].all()


@needs_weights
def test_label_stack_names_every_channel(hl60_segmentations):
    seg = hl60_segmentations["network"]
    stack, names = seg.label_stack()
    assert names == ["cell_labels", "nucleus_labels", "nucleus", "nucleolus", "membrane",
                     "lipid_droplets"]
    assert stack.shape == (6, *seg.cell_labels.shape) and stack.dtype == np.int32
    np.testing.assert_array_equal(stack[4], seg.masks["membrane"])


def test_bad_inputs_are_one_line_errors():
    from ri2fl.segment import segment_volume

    with pytest.raises(ConfigError, match="method"):
        segment_volume(np.ones((8, 8, 8)), 0.2, method="magic")
    with pytest.raises(InputError, match="Z, Y, X"):
        segment_volume(np.ones((8, 8)), 0.2)
    with pytest.raises(InputError, match="voxel size"):
        segment_volume(np.ones((8, 8, 8)), (0.2, 0.1))
    with pytest.raises(InputError, match="NaN"):
        segment_volume(np.full((8, 8, 8), np.nan), 0.2)
