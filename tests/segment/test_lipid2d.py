"""The 2D lipid-droplet pixel classifier: trained from sparse scribbles on synthetic spots."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ri2fl.errors import ConfigError
from ri2fl.segment.lipid2d import (
    LipidClassifier,
    segment_lipid_droplets_2d,
    train_lipid_classifier,
)


def spots_image(rng, shape=(96, 96), n=8, pixel=0.15):
    """Bright discs (0.4-1.0 µm radius) on a dim, textured background, with their masks."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.zeros(shape, bool)
    centres = []
    while len(centres) < n:
        c = rng.uniform(10, shape[0] - 10, 2)
        if all(np.hypot(*(c - d)) > 16 for d in centres):
            centres.append(c)
    for cy, cx in centres:
        r = rng.uniform(0.4, 1.0) / pixel
        truth |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    image = 0.8 * ndi.gaussian_filter(truth.astype(float), 1.0)
    image += 0.08 * ndi.gaussian_filter(rng.standard_normal(shape), 3) + 0.05
    image += 0.02 * rng.standard_normal(shape)
    return image.astype(np.float32), truth


def scribbles(truth, rng, n_fg=40, n_bg=120):
    """Sparse labels: a few labelled pixels per class, the rest -1."""
    lab = np.full(truth.shape, -1, np.int8)
    fg, bg = np.flatnonzero(truth), np.flatnonzero(~ndi.binary_dilation(truth, iterations=2))
    lab.flat[rng.choice(fg, n_fg, replace=False)] = 1
    lab.flat[rng.choice(bg, n_bg, replace=False)] = 0
    return lab


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(1)
    images, truths = zip(*(spots_image(rng) for _ in range(2)))
    labels = [scribbles(t, rng) for t in truths]
    return train_lipid_classifier(images, labels, n_estimators=20), rng


def test_sparse_labels_segment_unseen_droplets(trained):
    clf, _ = trained
    image, truth = spots_image(np.random.default_rng(7))
    labels, proba = segment_lipid_droplets_2d(image, (0.2, 0.15, 0.15), clf)
    assert proba.shape == image.shape and proba.min() >= 0 and proba.max() <= 1
    dice = 2 * np.sum((labels > 0) & truth) / (np.sum(labels > 0) + truth.sum())
    assert dice > 0.7
    # every droplet found once: one label per true disc
    assert labels.max() == ndi.label(truth)[1]


def test_max_projection_and_min_area(trained):
    clf, _ = trained
    image, _ = spots_image(np.random.default_rng(3))
    volume = np.stack([image - 0.3, image - 0.1, image, image - 0.2])
    lab3d, _ = segment_lipid_droplets_2d(volume, (0.2, 0.15, 0.15), clf)
    lab2d, _ = segment_lipid_droplets_2d(image, 0.15, clf)
    np.testing.assert_array_equal(lab3d, lab2d)
    # a minimum area larger than every droplet removes them all
    none, _ = segment_lipid_droplets_2d(image, 0.15, clf, min_area_um2=10.0)
    assert none.max() == 0


def test_save_load_roundtrip_is_deterministic(trained, tmp_path):
    clf, _ = trained
    path = clf.save(tmp_path / "lipid.npz")
    again = LipidClassifier.load(path)
    image, _ = spots_image(np.random.default_rng(5))
    np.testing.assert_allclose(again.predict_proba(image), clf.predict_proba(image))


def test_labels_need_both_classes():
    image, truth = spots_image(np.random.default_rng(0))
    with pytest.raises(ConfigError):
        train_lipid_classifier([image], [np.zeros(truth.shape, np.int8)])
