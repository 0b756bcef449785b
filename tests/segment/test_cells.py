"""The nucleus-conditioned cell step: how cell probabilities become cell instances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ri2fl.segment import nucleus_instances, predict_cells

SHAPE = (4, 8, 40)
VS = (0.4, 0.6, 0.6)  # the cell grid itself: no resampling


class ScriptedCellNet(torch.nn.Module):
    """Returns a fixed probability map per nucleus, chosen by the "this nucleus" channel."""

    def __init__(self, maps: dict[int, np.ndarray], nuclei: np.ndarray):
        super().__init__()
        self.maps, self.nuclei = maps, nuclei
        self.voxel_size_um = VS
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for sample in x.numpy():
            this = sample[2] > 0.5
            label = int(np.bincount(self.nuclei[this], minlength=3)[1:].argmax()) + 1
            out.append(self.maps[label][None])
        return torch.from_numpy(np.stack(out).astype(np.float32))


def _cell_with_a_process():
    """Cell 1 (x 10-19) with a thin process to x 0-9, cell 2 (x 20-29) on its right.

    The network is sure of both bodies but, on the process, slightly prefers nucleus 2, which
    can only reach it through cell 1.
    """
    nuclei = np.zeros(SHAPE, np.int32)
    nuclei[1:3, 3:5, 13:16] = 1
    nuclei[1:3, 3:5, 23:26] = 2
    p1, p2 = np.zeros(SHAPE, np.float32), np.zeros(SHAPE, np.float32)
    p1[:, :, 10:20], p2[:, :, 20:30] = 0.95, 0.95
    p1[1:3, 3:5, 0:10], p2[1:3, 3:5, 0:10] = 0.6, 0.7  # the process
    return nuclei, {1: p1, 2: p2}


@pytest.mark.parametrize("assign, process_label", [("flood", 1), ("argmax", 0)])
def test_a_cell_keeps_its_process(assign, process_label):
    nuclei, maps = _cell_with_a_process()
    ri = np.zeros(SHAPE, np.float32)
    cells = predict_cells(ri, np.ones(SHAPE, np.float32), nuclei,
                          ScriptedCellNet(maps, nuclei), VS, assign=assign)
    assert (cells[:, :, 10:20] == 1).all() and (cells[:, :, 20:30] == 2).all()
    # flood: grown from nucleus 1 through its body; argmax: given to 2, cut off as stray
    assert (cells[1:3, 3:5, 0:10] == process_label).all()
    assert (cells[0, :, 0:10] == 0).all()  # below the threshold: background


def test_unknown_assignment_is_a_config_error():
    from ri2fl.errors import ConfigError

    nuclei, maps = _cell_with_a_process()
    with pytest.raises(ConfigError, match="assign"):
        predict_cells(np.zeros(SHAPE, np.float32), np.ones(SHAPE, np.float32), nuclei,
                      ScriptedCellNet(maps, nuclei), VS, assign="nearest")


def test_nucleus_instances_drop_specks_beside_a_real_nucleus():
    mask = np.zeros((20, 60, 60), bool)
    mask[5:15, 10:40, 10:40] = True  # 9000 voxels
    mask[5:8, 50:55, 50:55] = True  # 75 voxels: under a tenth of the largest
    lab = nucleus_instances(mask, (0.4, 0.3, 0.3), min_voxels=1, merge_gap_um=0)
    assert lab.max() == 1 and lab[6, 52, 52] == 0
    assert nucleus_instances(mask, (0.4, 0.3, 0.3), min_voxels=1, merge_gap_um=0,
                             min_fraction=0).max() == 2


def test_segment_volume_passes_the_cell_assignment_on():
    from segment_phantoms import two_touching

    from ri2fl.errors import ConfigError
    from ri2fl.models import available
    from ri2fl.segment import segment_volume

    if not {"segment-default", "cell-default"} <= set(available()):
        pytest.skip("shipped segmentation weights not installed")
    ph = two_touching(seed=3)
    with pytest.raises(ConfigError, match="assign"):
        segment_volume(ph.ri, ph.voxel_size_um, cell_assign="nearest")
