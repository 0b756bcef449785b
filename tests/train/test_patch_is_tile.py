"""A training patch and an inference tile of the same voxels are the same array.

Training (``load_pair`` + ``PatchDataset``) and inference (``predict_volume``) resample and
normalise the RI with the one resampler and the one normalisation of ``ri2fl.preprocess``;
a network must see the same numbers in both, also off the canonical grid and in another
medium.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import pytest
import torch

from ri2fl.data import PatchDataset, load_pair
from ri2fl.infer import predict_volume
from ri2fl.infer.tiling import tile_grid
from ri2fl.io import write_paired

from .conftest import synthetic_sample

#: Off the canonical 0.2 x 0.15 x 0.15 µm grid on every axis, so that both sides resample.
VOXEL = (0.23, 0.13, 0.17)
MEDIUM = 1.3352


class TileRecorder(torch.nn.Module):
    """A 'network' that keeps every tile it is given (in :attr:`seen`, which survives the
    runner's copy of the module) and predicts zeros."""

    targets = ("nucleus",)
    config: ClassVar[dict] = {"input_norm": "ri"}
    seen: ClassVar[list[np.ndarray]] = []

    def __init__(self, tile: tuple[int, int, int]):
        super().__init__()
        self.tile_size = tile
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        TileRecorder.seen.extend(x[:, 0].detach().cpu().numpy().copy())
        return torch.zeros((x.shape[0], 1, *x.shape[2:]), dtype=x.dtype) + 0 * self.anchor


@pytest.fixture(scope="module")
def off_grid_file(tmp_path_factory):
    sample = replace(synthetic_sample(5, shape=(14, 36, 30)), voxel_size_um=VOXEL,
                     medium_index=MEDIUM)
    path = tmp_path_factory.mktemp("patch_tile") / "fov.h5"
    write_paired(path, sample)
    return path, sample


def _tiles(ri: np.ndarray, tile) -> list[np.ndarray]:
    TileRecorder.seen.clear()
    predict_volume(ri, VOXEL, model=TileRecorder(tile), medium_index=MEDIUM, device="cpu",
                   precision="fp32", batch_size=1, progress=False)
    return list(TileRecorder.seen)


def test_whole_field_patch_is_the_single_inference_tile(off_grid_file):
    path, sample = off_grid_file
    vol = load_pair(path, ["nucleus"])
    shape = vol.input.shape[1:]
    assert shape != sample.ri.shape  # resampled
    patch = PatchDataset([vol], shape, n_patches=1, foreground_p=0.0)[0][0].numpy()[0]
    (tile,) = _tiles(sample.ri, shape)
    assert tile.dtype == patch.dtype == np.float32
    np.testing.assert_array_equal(patch, tile)


def test_every_inference_tile_is_the_training_crop_at_its_place(off_grid_file):
    path, sample = off_grid_file
    vol = load_pair(path, ["nucleus"])
    tile = (8, 16, 16)
    tiles = _tiles(sample.ri, tile)
    grid = tile_grid(vol.input.shape[1:], tile)
    assert len(tiles) == len(grid) > 1
    for start, seen in zip(grid, tiles, strict=True):
        # the voxels under the tile (mirrored where the tiler pads the volume's border)
        index = [axis.source_index(s) for axis, s in zip(grid.axes, start)]
        np.testing.assert_array_equal(vol.input[0][np.ix_(*index)], seen)
