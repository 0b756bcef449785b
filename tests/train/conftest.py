"""Small synthetic paired files for the training tests: spheres whose RI predicts the targets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from ri2fl.io import PairedSample, write_paired


def synthetic_sample(seed: int, shape=(12, 32, 32)) -> PairedSample:
    """RI of a few bright blobs in medium; 'nucleus' = blurred blobs, 'membrane' = their rim."""
    rng = np.random.default_rng(seed)
    blobs = np.zeros(shape, bool)
    grid = np.indices(shape).astype(float)
    for _ in range(3):
        c = [rng.uniform(2, s - 2) for s in shape]
        r = rng.uniform(3, 6)
        d = np.sqrt(((grid[0] - c[0]) * 2) ** 2 + (grid[1] - c[1]) ** 2 + (grid[2] - c[2]) ** 2)
        blobs |= d < r
    ri = 1.337 + 0.03 * ndi.gaussian_filter(blobs.astype(float), 1.0)
    ri += rng.normal(0, 0.0005, shape)
    nucleus = ndi.gaussian_filter(blobs.astype(float), 1.5)
    rim = blobs & ~ndi.binary_erosion(blobs)
    membrane = ndi.gaussian_filter(rim.astype(float), 1.0)
    return PairedSample(ri=ri.astype(np.float32),
                        fl={"membrane": membrane.astype(np.float32),
                            "nucleus": nucleus.astype(np.float32)},
                        voxel_size_um=(0.2, 0.15, 0.15), masks={"nucleus": blobs},
                        extra={"bf": (1 - 5 * (ri - 1.337)).astype(np.float32)},
                        attrs={"cell_type": "blob", "seed": seed})


@pytest.fixture(scope="session")
def paired_folder(tmp_path_factory) -> Path:
    """A folder of 4 paired files with a manifest (3 train, 1 val)."""
    root = tmp_path_factory.mktemp("paired")
    rows = []
    for i in range(4):
        name = f"fov_{i}.h5"
        write_paired(root / name, synthetic_sample(i))
        rows.append({"path": name, "cell_type": "blob", "seed": i,
                     "split": "val" if i == 3 else "train"})
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def tiny_config(data: Path, out: Path, **extra) -> dict:
    """A configuration that trains in about a second on one core."""
    cfg = {
        "targets": ["membrane", "nucleus"],
        "data": {"path": str(data)},
        "model": {"features": 4, "depth": 2, "dropout": 0.0, "z_pool_levels": 1},
        "patch_size": [8, 16, 16], "batch_size": 2, "epochs": 2, "steps_per_epoch": 3,
        "val_patches": 4, "out": str(out), "num_threads": 1, "tensorboard": False,
        "augment": {"elastic": 0.0},
    }
    cfg.update(extra)
    return cfg
