"""Tiny networks for the inference tests (no trained weights needed)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

# the suite runs with pytest -n 2 on 2 cores: one thread per worker avoids oversubscription
torch.set_num_threads(1)


class TinyNet(nn.Module):
    """A small conv net with instance norm and dropout, shaped like the RI2FL U-Net's blocks."""

    def __init__(self, out_channels: int = 2, dropout: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(1, 4, 3, padding=1), nn.LeakyReLU(0.01), nn.Dropout3d(dropout),
            nn.Conv3d(4, out_channels, 3, padding=1))
        with torch.no_grad():  # fluorescence-like: mostly positive (outputs are clipped at 0)
            self.body[-1].bias.fill_(1.0)
        self.targets = ["membrane", "nucleus", "actin"][:out_channels]
        self.patch_size = (8, 16, 16)
        self.voxel_size_um = (0.2, 0.15, 0.15)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture
def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet().eval()
