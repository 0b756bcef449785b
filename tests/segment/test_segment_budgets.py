"""segment_volume refuses volumes it cannot hold before any work, and its memory stays within
the budget it checks."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from ri2fl.constants import CANONICAL_VOXEL_SIZE_UM
from ri2fl.errors import InputError
from ri2fl.preprocess import budget
from ri2fl.segment import segment_volume
from ri2fl.segment.api import OUTPUT_BYTES_PER_VOXEL, PEAK_BYTES_PER_GRID_VOXEL


class ThresholdOrganelles(nn.Module):
    """Stand-in organelle network: nucleus where the normalised RI is high, cell above 0.2."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))
        self.targets = ["nucleus", "nucleolus", "membrane", "lipid_droplets"]
        self.voxel_size_um = CANONICAL_VOXEL_SIZE_UM
        self.patch_size = (32, 64, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nucleus, cell = (x > 0.55).float(), (x > 0.2).float()
        return torch.cat([nucleus, 0 * x, cell, 0 * x], 1) + self.bias


class MembraneCells(nn.Module):
    """Stand-in cell network: the membrane channel, brighter near this nucleus."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:2] * (0.5 + 0.5 * x[:, 2:3]) + self.bias


def cells_field(shape=(32, 96, 96)) -> np.ndarray:
    """Six separate ellipsoidal cells with a denser nucleus, on the canonical grid."""
    ri = np.full(shape, 1.337, np.float32)
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in shape)]
    r = shape[1] / 7
    for i in range(6):
        cz, cy = shape[0] / 2, shape[1] * (0.25 + 0.5 * (i % 2))
        cx = shape[2] * (0.2 + 0.3 * (i // 2))
        d = ((zz - cz) / (r / 2)) ** 2 + ((yy - cy) / r) ** 2 + ((xx - cx) / r) ** 2
        ri[d < 1] = 1.355
        ri[d < 0.3] = 1.375
    return ri


def nets() -> dict:
    torch.manual_seed(0)
    return {"model": ThresholdOrganelles().eval(), "cell_model": MembraneCells().eval()}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("voxel, match", [
    (5.0, "voxels of 5 µm are 33.3 times coarser .* cannot resolve organelles"),
    (10.0, "66.7 times coarser"),
    (1e3, "outside 0.01-50 µm"),
    (1e-4, "outside 0.01-50 µm")])
def test_absurd_voxel_sizes_are_refused_before_segmenting(voxel, match):
    with pytest.raises(InputError, match=match):
        segment_volume(np.full((24, 40, 48), 1.337, np.float32), voxel, **nets())


@pytest.mark.timeout(60)
def test_a_small_machine_refuses_a_volume_it_cannot_hold(monkeypatch):
    monkeypatch.setattr(budget, "available_memory_bytes", lambda: 10**6)
    with pytest.raises(InputError, match=r"segmenting 16 x 32 x 32 voxels.*of memory available"):
        segment_volume(np.full((16, 32, 32), 1.337, np.float32), CANONICAL_VOXEL_SIZE_UM,
                       **nets())


@pytest.mark.timeout(60)
def test_peak_memory_stays_within_the_budget():
    """The network route, whose cell watershed is the peak of either route (measured)."""
    ri = cells_field()
    tracemalloc.start()
    try:
        seg = segment_volume(ri, CANONICAL_VOXEL_SIZE_UM, **nets())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seg.n_cells == 6
    # the input is the caller's, allocated before tracing: the budget counts it
    assert peak + ri.nbytes <= ri.size * (PEAK_BYTES_PER_GRID_VOXEL + OUTPUT_BYTES_PER_VOXEL)
