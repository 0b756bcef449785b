"""Tiny synthetic paired files (a cell, its nucleus, three lipid droplets) and a manifest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ri2fl.io.paired import PairedSample, write_paired

VS = (0.2, 0.15, 0.15)
SHAPE = (12, 40, 40)


def make_sample(seed: int, cell_type: str) -> PairedSample:
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(SHAPE) * np.asarray(VS)[:, None, None, None]
    c = np.array([1.2, 3.0, 3.0]) + rng.uniform(-0.2, 0.2, 3)
    r_cell = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
    cell = r_cell < 2.4
    nucleus = r_cell < 1.2
    droplets = np.zeros(SHAPE, np.float32)
    for dy, dx in [(-1.5, 0.0), (1.5, 0.4), (0.3, 1.7)]:
        d = np.sqrt((z - c[0]) ** 2 + (y - c[1] - dy) ** 2 + (x - c[2] - dx) ** 2)
        droplets[d < 0.4] = rng.uniform(0.5, 1.0)
    ri = 1.337 + 0.01 * cell + 0.02 * nucleus + 0.04 * (droplets > 0)
    fl = {"nucleus": nucleus.astype(np.float32) * 0.8, "lipid_droplets": droplets,
          "membrane": (np.abs(r_cell - 2.3) < 0.2).astype(np.float32)}
    return PairedSample(ri=ri.astype(np.float32), fl=fl, voxel_size_um=VS,
                        masks={"membrane": cell}, extra={"bf": ri.astype(np.float32) - 1.3},
                        attrs={"cell_type": cell_type, "seed": seed})


@pytest.fixture(scope="session")
def paired_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    rows = []
    for i, (ct, split) in enumerate([("fibroblast", "test"), ("fibroblast", "test"),
                                     ("hela", "test"), ("hela", "test"), ("hela", "train")]):
        path = write_paired(root / f"{ct}_{i:03d}.h5", make_sample(i, ct))
        rows.append({"path": path.name, "cell_type": ct, "seed": i, "split": split})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root




@pytest.fixture(scope="session")
def sample_factory():
    """``make_sample(seed, cell_type)``: one synthetic paired field of view."""
    return make_sample
