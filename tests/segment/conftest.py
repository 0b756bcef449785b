"""Fixtures of the segmentation tests (the phantoms themselves: ``segment_phantoms``)."""

from __future__ import annotations

import numpy as np
import pytest
from segment_phantoms import VS, make_phantom, sparse_classes, two_touching


@pytest.fixture(scope="session")
def training_phantoms():
    """Three phantoms (single, touching, edge-cut cells) for training voxel classifiers."""
    return [
        two_touching(seed=11),
        make_phantom([((4.0, 9.0, 9.0), (3.0, 6.5, 6.5), (2.0, 2.7, 2.7))], seed=12),
        make_phantom([((4.0, 9.0, 1.0), (3.0, 6.0, 6.0), (2.0, 2.4, 2.4)),
                      ((4.0, 10.0, 15.0), (3.0, 5.0, 5.0), (2.0, 2.0, 2.0))], seed=13),
    ]


@pytest.fixture(scope="session")
def fl_classifier(training_phantoms):
    from ri2fl.segment import train_voxel_classifier

    rng = np.random.default_rng(0)
    vols = [np.stack([p.fl["nucleus"], p.fl["membrane"]]) for p in training_phantoms]
    labs = [sparse_classes(p, rng) for p in training_phantoms]
    return train_voxel_classifier(vols, labs, ("nucleus", "membrane"), VS, n_estimators=15)


@pytest.fixture(scope="session")
def ri_classifier(training_phantoms):
    from ri2fl.preprocess import normalize_ri
    from ri2fl.segment import train_voxel_classifier

    rng = np.random.default_rng(1)
    vols = [normalize_ri(p.ri, 1.337)[None] for p in training_phantoms]
    labs = [sparse_classes(p, rng) for p in training_phantoms]
    return train_voxel_classifier(vols, labs, ("ri",), VS, n_estimators=15)
