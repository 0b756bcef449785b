"""Voxel sizes and resampled grids: implausible or too large ones refused before allocating."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.errors import InputError
from ri2fl.io._checks import voxel_size_from
from ri2fl.preprocess import (
    available_memory_bytes,
    check_grid_budget,
    free_disk_bytes,
    resample,
    resampled_shape,
)
from ri2fl.preprocess import budget as budget_module

SHAPE = (24, 40, 48)  # the reliability sweep's 186 KB file


@pytest.mark.parametrize("value", [0.01, 50, (0.2, 0.15, 0.15), [0.01, 1.0, 50.0]])
def test_microscope_voxel_sizes_are_accepted(value):
    assert len(voxel_size_from(value, "f")) == 3


@pytest.mark.parametrize("value", [1e3, 1e-4, 0.009, 50.5, (0.2, 0.15, 1e6), 0, -0.2,
                                   float("nan"), float("inf")])
def test_implausible_voxel_sizes_are_refused(value):
    with pytest.raises(InputError, match=r"f: .*voxel size") as err:
        voxel_size_from(value, "f")
    assert "µm" in str(err.value)


@pytest.mark.timeout(60)
def test_5um_voxels_name_the_grid_they_would_need():
    with pytest.raises(InputError) as err:
        check_grid_budget(SHAPE, 5.0, channels=6, where="cell.h5")
    msg = str(err.value)
    assert msg.startswith("cell.h5: resampling 24 x 40 x 48 voxels of 5 µm to the model's "
                          "0.2 x 0.15 x 0.15 µm grid needs 600 x 1333 x 1600 voxels (1.3e9, "
                          "31 GB)")
    assert "--voxel-size" in msg and "RI2FL_MAX_VOXELS" in msg and "\n" not in msg


@pytest.mark.timeout(60)
def test_10um_voxels_are_refused():
    with pytest.raises(InputError, match="1200 x 2667 x 3200 voxels"):
        check_grid_budget(SHAPE, 10.0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("voxel, target", [(1e3, 0.2), (0.2, 1e-4)])
def test_absurd_voxel_sizes_are_refused_before_any_grid(voxel, target):
    with pytest.raises(InputError, match=r"outside 0.01-50 µm"):
        check_grid_budget(SHAPE, voxel, target)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("voxel", [5.0, 10.0, 1e3, 1e-4])
def test_resample_refuses_before_allocating(voxel):
    with pytest.raises(InputError, match="voxel"):
        resample(np.full(SHAPE, 1.337, np.float32), voxel)


def test_the_budget_returns_the_resampled_grid():
    assert check_grid_budget(SHAPE, 0.5, channels=6) == resampled_shape(SHAPE, 0.5)


def test_voxel_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("RI2FL_MAX_VOXELS", "1000")
    with pytest.raises(InputError, match="more than the 1000 voxels allowed"):
        check_grid_budget((10, 10, 10), 0.3)
    monkeypatch.setenv("RI2FL_MAX_VOXELS", str(10**7))
    assert check_grid_budget((10, 10, 10), 0.3) == resampled_shape((10, 10, 10), 0.3)


def test_a_small_machine_refuses_what_does_not_fit_in_memory(monkeypatch):
    monkeypatch.setattr(budget_module, "available_memory_bytes", lambda: 10**6)
    with pytest.raises(InputError, match=r"\(.*MB\), more than the 1 MB of memory available"):
        check_grid_budget((20, 64, 64), (0.2, 0.15, 0.15), channels=6)
    assert check_grid_budget((4, 8, 8), (0.2, 0.15, 0.15)) == (4, 8, 8)


def test_scratch_on_disk_is_checked_against_free_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(budget_module, "free_disk_bytes", lambda folder: 1000)
    monkeypatch.setattr(budget_module, "available_memory_bytes", lambda: 0)  # unused on disk
    with pytest.raises(InputError, match=f"free on disk in {tmp_path}"):
        check_grid_budget((8, 8, 8), 0.2, scratch_dir=tmp_path, on_disk=True)


def test_memory_and_disk_are_measured(tmp_path):
    assert available_memory_bytes() > 0
    assert free_disk_bytes(tmp_path / "not" / "made" / "yet") > 0
    assert free_disk_bytes(None) > 0
