"""Inference refuses grids too large for memory, disk or the voxel limit before any work."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.errors import InputError, ModelError
from ri2fl.infer import predict_file, predict_volume
from ri2fl.preprocess import budget

SMALL = (24, 40, 48)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("voxel, match", [(5.0, "33.3 times coarser.*cannot resolve organelles"),
                                          (10.0, "66.7 times coarser"),
                                          (1e3, "outside 0.01-50 µm"),
                                          (1e-4, "outside 0.01-50 µm")])
def test_absurd_voxel_sizes_are_refused_before_predicting(tiny_net, voxel, match):
    ri = np.full(SMALL, 1.337, np.float32)
    with pytest.raises(InputError, match=match):
        predict_volume(ri, voxel, model=tiny_net, device="cpu")


@pytest.mark.timeout(60)
def test_a_resolvable_volume_whose_grid_is_too_large_is_refused(tiny_net, monkeypatch):
    monkeypatch.setenv("RI2FL_MAX_VOXELS", str(10**6))
    ri = np.full(SMALL, 1.337, np.float32)
    with pytest.raises(InputError, match=r"resampling 24 x 40 x 48 voxels of 1 µm .* more than"):
        predict_volume(ri, 1.0, model=tiny_net, device="cpu")


@pytest.mark.timeout(60)
def test_a_model_grid_of_1e4_um_voxels_is_refused(tiny_net):
    tiny_net.voxel_size_um = (1e-4, 1e-4, 1e-4)
    with pytest.raises(ModelError, match="model's implausible voxel size"):
        predict_volume(np.full((4, 8, 8), 1.337, np.float32), 0.2, model=tiny_net, device="cpu")


@pytest.mark.timeout(60)
def test_in_memory_prediction_is_checked_against_memory(tiny_net, monkeypatch):
    monkeypatch.setattr(budget, "available_memory_bytes", lambda: 10**4)
    ri = np.full((8, 32, 32), 1.337, np.float32)
    with pytest.raises(InputError, match="of memory available"):
        predict_volume(ri, (0.2, 0.15, 0.15), model=tiny_net, device="cpu")
    with pytest.raises(InputError, match=r"resampling 8 x 32 x 32 voxels of 0.1 µm"):
        predict_volume(ri, 0.1, model=tiny_net, device="cpu")


@pytest.mark.timeout(60)
def test_predict_file_refuses_before_writing_output_or_scratch(tiny_net, tmp_path, monkeypatch):
    np.save(tmp_path / "cell.npy", np.full((8, 16, 16), 1.337, np.float32))
    monkeypatch.setattr(budget, "free_disk_bytes", lambda folder: 1000)
    out = tmp_path / "out" / "cell.ome.zarr"
    with pytest.raises(InputError, match=r"cell.npy: resampling .* free on disk in"):
        predict_file(tmp_path / "cell.npy", out, model=tiny_net, voxel_size_um=(0.3, 0.3, 0.3),
                     device="cpu")
    assert not out.exists() and not (tmp_path / "out").exists()
