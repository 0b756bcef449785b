"""Checkpoints: round trip, metadata, checksums of shipped weights, weights-only loading."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest
import torch

from ri2fl.errors import ModelError
from ri2fl.models import (
    UNet3D,
    available,
    build,
    load,
    register_arch,
    save_checkpoint,
    write_sha256,
)
from ri2fl.models import checkpoint as ckpt

CONFIG = {"model": {"features": 4, "depth": 2}, "targets": ["nucleus", "actin"],
          "patch_size": [8, 16, 16], "voxel_size_um": [0.2, 0.15, 0.15], "task": "ri2fl",
          "input_kind": "ri"}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(1)
    net = build(CONFIG)
    path = save_checkpoint(tmp_path / "m.pt", net, CONFIG, extra={"epoch": 3})
    return net, path


def test_round_trip_restores_weights_and_metadata(saved):
    net, path = saved
    model = load(path)
    x = torch.rand(1, 1, 5, 9, 11)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), model(x))
    assert model.targets == ["nucleus", "actin"]
    assert model.patch_size == (8, 16, 16)
    assert model.tile_size == (8, 16, 16)  # no tile named: infer with the training patch
    assert model.voxel_size_um == (0.2, 0.15, 0.15)
    assert (model.task, model.input_kind) == ("ri2fl", "ri")
    assert not model.training
    assert model.config["model"]["features"] == 4


def test_checkpoint_names_its_inference_tile(tmp_path):
    net = build(CONFIG)
    path = save_checkpoint(tmp_path / "t.pt", net, {**CONFIG, "tile_size": [16, 48, 48]})
    model = load(path)
    assert model.tile_size == (16, 48, 48)
    assert model.patch_size == (8, 16, 16)


def test_half_precision_checkpoint_is_smaller_and_close(tmp_path):
    net = build(CONFIG)
    full = save_checkpoint(tmp_path / "f.pt", net, CONFIG)
    half = save_checkpoint(tmp_path / "h.pt", net, CONFIG, half=True)
    assert half.stat().st_size < 0.75 * full.stat().st_size
    x = torch.rand(1, 1, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(load(full)(x), load(half)(x), atol=1e-2, rtol=1e-2)


@pytest.fixture
def shipped(saved, monkeypatch, tmp_path):
    """Pretend the saved model is a shipped weight file 'toy' with its sidecar."""
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(saved[1], weights / "toy.pt")
    write_sha256(weights / "toy.pt")
    monkeypatch.setattr(ckpt, "WEIGHTS_DIR", weights.resolve())
    return weights / "toy.pt"


def test_shipped_name_loads_after_checksum(shipped):
    assert "toy" in available()
    assert load("toy").targets == ["nucleus", "actin"]


def test_tampered_shipped_weights_rejected(shipped):
    data = bytearray(shipped.read_bytes())
    data[-100] ^= 0xFF
    shipped.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load("toy")


def test_missing_sidecar_rejected(shipped):
    os.remove(str(shipped) + ".sha256")
    with pytest.raises(ModelError, match="sidecar missing"):
        load("toy")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"config": {}, "state_dict": Evil()}, f)
    with pytest.raises(ModelError, match="refused"):
        load(path)
    assert not (tmp_path / "pwned").exists()


def test_missing_and_corrupt_files_give_model_errors(tmp_path):
    with pytest.raises(ModelError, match="no such model"):
        load(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError):
        load(bad)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not an ri2fl checkpoint"):
        load(tmp_path / "other.pt")


def test_future_format_version_refused(tmp_path):
    net = build(CONFIG)
    path = save_checkpoint(tmp_path / "m.pt", net, CONFIG)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(ModelError, match="format_version"):
        load(path)


def test_build_dispatches_on_registered_arch():
    register_arch("tiny_unet_for_test", lambda **kw: UNet3D(features=2, depth=1, **kw))
    net = build({"arch": "tiny_unet_for_test", "model": {}, "targets": ["a"]})
    assert net.head.out_channels == 1
    with pytest.raises(ModelError, match="unknown architecture"):
        build({"arch": "os:system", "model": {}})


def test_training_folder_loads_its_best_checkpoint(saved):
    _, path = saved
    best = path.with_name("best.pt")
    path.rename(best)
    assert load(best.parent).targets == ["nucleus", "actin"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("voxel", [[1e-4, 1e-4, 1e-4], [0.2, 0.15, 1e3], 0.2])
def test_checkpoint_with_an_implausible_grid_is_refused(tmp_path, voxel):
    path = save_checkpoint(tmp_path / "m.pt", build(CONFIG), {**CONFIG, "voxel_size_um": voxel})
    if voxel == 0.2:  # one number: isotropic, like any other voxel size
        assert load(path).voxel_size_um == (0.2, 0.2, 0.2)
        return
    with pytest.raises(ModelError, match=r"m\.pt: the checkpoint's voxel_size_um: implausible"):
        load(path)
