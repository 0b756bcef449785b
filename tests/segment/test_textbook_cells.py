"""The shipped networks on textbook cells (issue #30), which the simulator did not make.

A dome of RI 1.36 with a darker ellipsoidal nucleus, one nucleolus and six droplets, blurred
by a Gaussian, no tomograph (:mod:`ri2fl.simulate.textbook`). What a person expects of any
model is written as a strict ``xfail`` where the shipped weights fail it today, so that it
turns red the day better weights pass it (then drop the mark).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ri2fl.evaluate.metrics import dice, pcc
from ri2fl.models import available
from ri2fl.simulate.textbook import textbook_cell

SEEDS = (0, 1, 2)

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*unlike the data:UserWarning")]


@pytest.fixture(scope="module")
def shipped_on_textbook_cells():
    """(cell, inferred nucleus, segmentation) of each seed, with the shipped weights."""
    from ri2fl.infer import predict_volume
    from ri2fl.segment import segment_volume

    if not {"default", "segment-default", "cell-default"} <= set(available()):
        pytest.skip("shipped weights not installed")
    out = []
    for seed in SEEDS:
        cell = textbook_cell(seed)
        nucleus = predict_volume(cell.ri, cell.voxel_size_um, medium_index=cell.medium_index,
                                 targets=["nucleus"], progress=False).fl["nucleus"]
        seg = segment_volume(cell.ri, cell.voxel_size_um, cell.medium_index)
        out.append((cell, np.asarray(nucleus), seg))
    return out


def _hole_fraction(mask: np.ndarray) -> float:
    """Share of the filled mask that filling holes adds (in 3D and in each xy slice)."""
    filled = ndimage.binary_fill_holes(mask) | np.stack(
        [ndimage.binary_fill_holes(s) for s in mask])
    return float((filled & ~mask).sum() / max(filled.sum(), 1))


def test_one_cell_is_found_around_its_nucleus(shipped_on_textbook_cells):
    for _, _, seg in shipped_on_textbook_cells:
        assert seg.n_cells == 1
        assert not (seg.masks["nucleus"] & ~seg.masks["membrane"]).any()


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "shipped default + segment-default, 2026-12-07: seeds 0, 1, 2 nucleus PCC 0.594, 0.828, "
    "0.697, Dice 0.317, 0.776, 0.550 (seeds 3-5: PCC 0.555, 0.778, 0.353; Dice 0.248, "
    "0.604, 0.318); issue #30"))
def test_a_textbook_cells_nucleus_is_found(shipped_on_textbook_cells):
    scores = [(round(pcc(cell.fl["nucleus"], nucleus), 3),
               round(dice(cell.masks["nucleus"], seg.masks["nucleus"]), 3))
              for cell, nucleus, seg in shipped_on_textbook_cells]
    assert all(p >= 0.8 and d >= 0.8 for p, d in scores), scores


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "shipped segment-default, 2026-12-07: the cell mask's xy slices have holes, 13.7 %, "
    "6.4 %, 10.2 % of the filled cell on seeds 0, 1, 2 (none in 3D; whole-cell Dice 0.700, "
    "0.854, 0.826); issue #30"))
def test_a_textbook_cells_mask_has_no_inner_hole(shipped_on_textbook_cells):
    holes = [round(_hole_fraction(seg.masks["membrane"]), 3)
             for _, _, seg in shipped_on_textbook_cells]
    assert max(holes) <= 0.01, holes
