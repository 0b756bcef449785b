"""Patches cut and augmented on the device equal the DataLoader's (tested on device "cpu")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ri2fl.data.dataset import DevicePatches, PairedVolume, PatchDataset
from ri2fl.train.config import load_config
from ri2fl.train.engine import Trainer
from ri2fl.transforms import build_augmentation

from .conftest import tiny_config


def _volumes(holes: bool = False) -> list[PairedVolume]:
    rng = np.random.default_rng(0)
    vols = []
    for i, shape in enumerate([(10, 24, 24), (6, 20, 28)]):
        target = rng.random((2, *shape), dtype=np.float32)
        if holes and i == 0:
            target[:, :, :8] = -1.0  # unregistered voxels: patches there are redrawn
        vols.append(PairedVolume(rng.random((1, *shape), dtype=np.float32), target, f"v{i}"))
    return vols


def _dataset(augment: dict, holes: bool = False, **kwargs) -> PatchDataset:
    return PatchDataset(_volumes(holes), (8, 16, 16), 12, augment=build_augmentation(augment),
                        seed=3, foreground_p=0.5, **kwargs)


@pytest.mark.parametrize("augment", [
    {"elastic": 0.0},
    {"elastic": 0.5, "gamma": [0.7, 1.3], "noise": 0.05},
    {"flip": False, "rot90": False, "gamma": None, "noise": 0.0, "elastic": 0.0},
])
@pytest.mark.parametrize("holes", [False, True])
def test_device_patches_equal_the_loader_patches(augment, holes):
    ds = _dataset(augment, holes)
    device = DevicePatches(ds, torch.device("cpu"), exact_noise=True)
    for epoch in (0, 2):
        ds.set_epoch(epoch)
        loader = list(torch.utils.data.DataLoader(ds, batch_size=4, drop_last=True))
        for b, (image, target) in enumerate(loader):
            d_image, d_target = device.batch(range(4 * b, 4 * b + 4))
            torch.testing.assert_close(d_image, image, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(d_target, target, rtol=0, atol=0)


def test_device_noise_is_the_same_distribution_not_the_same_numbers():
    ds = _dataset({"elastic": 0.0, "gamma": None, "noise": 0.05})
    plain = _dataset({"elastic": 0.0, "gamma": None, "noise": 0.0})
    fast = DevicePatches(ds, torch.device("cpu"))
    diffs = []
    for i in range(12):
        image, target = fast.sample(i)
        ref_image, ref_target = plain[i]
        torch.testing.assert_close(target, ref_target)  # same place, same flips
        diffs.append((image - ref_image).flatten())
    diff = torch.cat(diffs)
    assert diff.abs().max() > 0
    # noise s.d. uniform in [0, 0.05] on half the patches: overall s.d. well under 0.05
    assert abs(float(diff.mean())) < 2e-3 and float(diff.std()) < 0.05


def test_training_on_device_data_follows_the_loader_loss_curve(paired_folder, tmp_path):
    logs = []
    for name, on_device in (("loader", False), ("device", True)):
        cfg = load_config(tiny_config(paired_folder, tmp_path / name,
                                      augment={"elastic": 0.0, "noise": 0.0}))
        trainer = Trainer(cfg, device_data=on_device)
        assert (trainer.device_patches is not None) == on_device
        trainer.fit()
        logs.append(pd.read_csv(tmp_path / name / "log.csv"))
    np.testing.assert_allclose(logs[1]["train_loss"], logs[0]["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(logs[1]["val_loss"], logs[0]["val_loss"], rtol=1e-4)
