"""``ri2fl predict`` end to end: a file in, an OME-Zarr with the asked channels out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from ri2fl.cli.main import main

models = pytest.importorskip("ri2fl.models")
io = pytest.importorskip("ri2fl.io")
if not hasattr(io, "read") or not hasattr(models, "save_checkpoint"):
    pytest.skip("needs ri2fl.io.read and ri2fl.models.save_checkpoint", allow_module_level=True)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    config = {"model": {"features": 4, "depth": 2, "dropout": 0.2},
              "targets": ["membrane", "nucleus"], "patch_size": [16, 32, 32]}
    net = models.build(config)
    with torch.no_grad():  # fluorescence-like, mostly positive (outputs are clipped at 0)
        net.head.bias.fill_(1.0)
    return models.save_checkpoint(tmp_path / "tiny.pt", net, config)


def test_predict_writes_readable_ome_zarr_with_uncertainty(tmp_path, checkpoint, rng):
    ri = (1.337 + 0.03 * rng.random((10, 30, 26))).astype(np.float32)
    np.save(tmp_path / "cell.npy", ri)
    rc = main(["predict", str(tmp_path / "cell.npy"), "-o", str(tmp_path / "out"),
               "--model", str(checkpoint), "--voxel-size", "0.25", "0.1", "0.1",
               "--tta", "2", "--mc", "2", "--serial", "--device", "cpu"])
    assert rc == 0
    vol = io.read(tmp_path / "out" / "cell.ome.zarr", modality="fl")
    assert vol.axes == "czyx" and vol.spatial_shape == ri.shape
    assert vol.voxel_size_um == pytest.approx((0.25, 0.1, 0.1))
    assert vol.channel_names == ["membrane", "nucleus", "membrane_uncertainty_data",
                                 "nucleus_uncertainty_data", "membrane_uncertainty_model",
                                 "nucleus_uncertainty_model"]
    data = np.asarray(vol.data)
    assert np.isfinite(data).all() and data[4:].max() > 0
    attrs = zarr.open_group(tmp_path / "out" / "cell.ome.zarr", mode="r").attrs["ri2fl"]
    assert attrs["tta"] == 2 and attrs["mc"] == 2 and attrs["medium_index"] == 1.337
    assert attrs["tile_size"] == [12, 20, 17]  # 16 x 32 x 32 cut to the resampled volume


def test_timelapse_is_predicted_frame_by_frame(tmp_path, checkpoint, rng):
    ri = (1.337 + 0.03 * rng.random((3, 8, 20, 20))).astype(np.float32)
    np.save(tmp_path / "movie.npy", ri)
    rc = main(["predict", str(tmp_path / "movie.npy"), "-o", str(tmp_path / "out"),
               "--model", str(checkpoint), "--voxel-size", "0.2", "0.15", "0.15",
               "--targets", "nucleus", "--serial", "--device", "cpu"])
    assert rc == 0
    vol = io.read(tmp_path / "out" / "movie.ome.zarr", modality="fl")
    assert vol.axes == "tczyx" and vol.shape == (3, 1, 8, 20, 20)
    frames = np.asarray(vol.data)
    assert not np.allclose(frames[0], frames[1])  # each frame its own prediction


def test_user_errors_are_one_line(tmp_path, checkpoint, capsys):
    rc = main(["predict", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "out"),
               "--model", str(checkpoint), "--serial"])
    assert rc == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["predict", "x.npy", "-o", str(tmp_path), "--mc", "1"]) == 2


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    assert "ri2fl predict cell.TCF -o predictions/ --tta 8 --mc 8" in out
    assert "ri2fl predict cell.TCF -o cell_fl.ome.zarr" in out


def test_write_tcf_adds_the_channels_to_a_copy(tmp_path, checkpoint, rng):
    tcf = pytest.importorskip("ri2fl.io.tcf")
    ri = (1.337 + 0.03 * rng.random((8, 20, 20))).astype(np.float32)
    src = tcf.write_tcf(tmp_path / "cell.TCF", ri, (0.2, 0.15, 0.15))
    rc = main(["predict", str(src), "-o", str(tmp_path / "out"), "--model", str(checkpoint),
               "--write-tcf", "--serial", "--device", "cpu"])
    assert rc == 0
    copy = tmp_path / "out" / "cell_ri2fl.TCF"
    fl = io.read(copy, modality="fl")
    assert fl.spatial_shape == ri.shape and len(fl.channel_names) == 2
    np.testing.assert_allclose(np.asarray(io.read(copy).data), np.asarray(io.read(src).data))
    zarr_fl = np.asarray(io.read(tmp_path / "out" / "cell.ome.zarr", modality="fl").data)
    expected = np.round(np.clip(zarr_fl, 0, 1) * 255)
    assert np.abs(np.asarray(fl.data, np.float32) - expected).max() <= 1


def test_rerun_skips_same_weights_and_redoes_retrained_ones(tmp_path, checkpoint, rng):
    np.save(tmp_path / "cell.npy", (1.337 + 0.03 * rng.random((8, 24, 24))).astype(np.float32))
    args = ["predict", str(tmp_path / "cell.npy"), "-o", str(tmp_path / "out"),
            "--model", str(checkpoint), "--voxel-size", "0.25", "0.1", "0.1", "--serial"]
    out = tmp_path / "out" / "cell.ome.zarr"

    def prediction() -> np.ndarray:
        return np.asarray(io.read(out, modality="fl").data)

    assert main(args) == 0
    first, mtime = prediction(), (out / "zarr.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "zarr.json").stat().st_mtime_ns == mtime  # same weights: skipped

    torch.manual_seed(1)  # "retrained" weights saved under the same file name
    config = {"model": {"features": 4, "depth": 2, "dropout": 0.2},
              "targets": ["membrane", "nucleus"], "patch_size": [16, 32, 32]}
    models.save_checkpoint(checkpoint, models.build(config), config, overwrite=True)
    assert main(args) == 0
    assert not np.allclose(prediction(), first)


def _predict(tmp_path, checkpoint, inputs, output, *extra):
    return main(["predict", *map(str, inputs), "-o", str(output), "--model", str(checkpoint),
                 "--voxel-size", "0.25", "0.1", "0.1", "--serial", "--device", "cpu", *extra])


def test_one_input_writes_exactly_the_named_store(tmp_path, checkpoint, rng, capsys):
    np.save(tmp_path / "cell.npy", (1.337 + 0.03 * rng.random((8, 20, 20))).astype(np.float32))
    out = tmp_path / "pred.ome.zarr"
    assert _predict(tmp_path, checkpoint, [tmp_path / "cell.npy"], out) == 0
    assert capsys.readouterr().out.split() == [str(out)]
    vol = io.read(out, modality="fl")  # a store, not a folder holding cell.ome.zarr
    assert vol.axes == "czyx" and vol.spatial_shape == (8, 20, 20)
    assert not (out / "cell.ome.zarr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.npy", "pred.ome.zarr", "tiny.pt"]
    # an existing output is replaced only with --overwrite
    assert _predict(tmp_path, checkpoint, [tmp_path / "cell.npy"], out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _predict(tmp_path, checkpoint, [tmp_path / "cell.npy"], out, "--overwrite") == 0


def test_many_inputs_to_one_named_store_are_refused(tmp_path, checkpoint, rng, capsys):
    inputs = [tmp_path / "a.npy", tmp_path / "b.npy"]
    for path in inputs:
        np.save(path, (1.337 + 0.03 * rng.random((8, 20, 20))).astype(np.float32))
    assert _predict(tmp_path, checkpoint, inputs, tmp_path / "pred.ome.zarr") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 inputs" in err and "folder" in err
    assert not (tmp_path / "pred.ome.zarr").exists()
    assert _predict(tmp_path, checkpoint, inputs, tmp_path / "preds") == 0  # a folder
    assert {p.name for p in (tmp_path / "preds").glob("*.ome.zarr")} == {"a.ome.zarr",
                                                                          "b.ome.zarr"}


def test_write_tcf_next_to_a_named_store(tmp_path, checkpoint, rng):
    tcf = pytest.importorskip("ri2fl.io.tcf")
    ri = (1.337 + 0.03 * rng.random((8, 20, 20))).astype(np.float32)
    src = tcf.write_tcf(tmp_path / "cell.TCF", ri, (0.2, 0.15, 0.15))
    out = tmp_path / "res" / "fl.ome.zarr"
    rc = main(["predict", str(src), "-o", str(out), "--model", str(checkpoint), "--write-tcf",
               "--serial", "--device", "cpu"])
    assert rc == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["fl.ome.zarr", "fl_ri2fl.TCF"]
    assert io.read(out.parent / "fl_ri2fl.TCF", modality="fl").spatial_shape == ri.shape
