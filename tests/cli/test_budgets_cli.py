"""A tiny file with huge voxels: ``predict``, ``segment`` and ``convert`` stop at once with one
line and exit 2, and write nothing."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ri2fl.cli.main import main
from ri2fl.constants import ORGANELLE_MASKS
from ri2fl.models import build, save_checkpoint

SHAPE = (24, 40, 48)  # 184 KB of float32: the reliability sweep's file


def tiny_file(path, voxel_size_um: float):
    with h5py.File(path, "w") as f:
        f["ri"] = np.full(SHAPE, 1.337, np.float32)
        f["ri"].attrs["voxel_size_um"] = voxel_size_um
    return path


@pytest.fixture
def checkpoint(tmp_path):
    config = {"model": {"features": 2, "depth": 1}, "targets": list(ORGANELLE_MASKS),
              "patch_size": [8, 16, 16]}
    return save_checkpoint(tmp_path / "tiny.pt", build(config), config)


def run_refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "internal error" not in err
    return err


def written(folder) -> list:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".ome.zarr", ".zarr"))
                  or p.name.startswith("ri2fl-predict-"))


@pytest.mark.timeout(60)
def test_predict_refuses_5um_voxels_at_once(tmp_path, checkpoint, capsys):
    cell = tiny_file(tmp_path / "cell.h5", 5.0)
    err = run_refused(["predict", str(cell), "-o", str(tmp_path / "out"), "--model",
                       str(checkpoint), "--device", "cpu"], capsys)
    assert "cell.h5" in err and "33.3 times coarser" in err and "at most 1.6 x 1.2 x 1.2 µm" in err
    assert written(tmp_path) == []


@pytest.mark.timeout(60)
def test_segment_refuses_5um_voxels_at_once(tmp_path, checkpoint, capsys):
    cell = tiny_file(tmp_path / "cell.h5", 5.0)
    err = run_refused(["segment", str(cell), "-o", str(tmp_path / "out"), "--model",
                       str(checkpoint), "--cell-model", str(checkpoint)], capsys)
    assert "voxels of 5 µm are 33.3 times coarser" in err and "cannot resolve organelles" in err
    assert written(tmp_path) == []


@pytest.mark.timeout(60)
def test_convert_resample_refuses_10um_voxels(tmp_path, capsys):
    cell = tiny_file(tmp_path / "cell.h5", 10.0)
    out = tmp_path / "cell.ome.zarr"
    err = run_refused(["convert", str(cell), str(out), "--resample"], capsys)
    assert "1200 x 2667 x 3200 voxels" in err and not out.exists()


@pytest.mark.timeout(60)
def test_a_file_with_1e3_um_voxels_is_refused(tmp_path, checkpoint, capsys):
    cell = tiny_file(tmp_path / "cell.h5", 1e3)
    err = run_refused(["predict", str(cell), "-o", str(tmp_path / "out"), "--model",
                       str(checkpoint), "--device", "cpu"], capsys)
    assert "cell.h5" in err and "outside 0.01-50 µm" in err
    assert written(tmp_path) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["predict", "segment", "convert"])
def test_an_implausible_voxel_size_flag_is_refused(tmp_path, command, capsys):
    cell = tiny_file(tmp_path / "cell.h5", 0.2)
    out = ["-o", str(tmp_path / "out")] if command != "convert" else [str(tmp_path / "c.ome.zarr")]
    err = run_refused([command, str(cell), *out, "--voxel-size", "1e-4", "0.15", "0.15"], capsys)
    assert err.startswith(f"ri2fl {command}: error: --voxel-size: implausible voxel size")
    assert written(tmp_path) == []
