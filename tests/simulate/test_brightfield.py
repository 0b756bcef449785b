"""Brightfield and DIC z-stacks synthesised from RI (Abbe sum over condenser points)."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.simulate import simulate_fov
from ri2fl.simulate.brightfield import synthesize

VOXEL = (0.2, 0.15, 0.15)
SHAPE = (40, 64, 64)


@pytest.fixture(scope="module")
def bead_images():
    z, y, x = (np.arange(n) * v - n * v / 2 for n, v in zip(SHAPE, VOXEL))
    r = np.sqrt(z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2)
    ri = (1.337 + 0.03 * np.clip(0.5 - (r - 1.5) / 0.15, 0, 1)).astype(np.float32)
    return synthesize(ri, VOXEL, 1.337, ("bf", "dic"), n_sources=30, shear_angle_deg=0.0)


def test_brightfield_contrast_of_a_phase_bead_reverses_through_focus(bead_images):
    bf = bead_images["bf"]
    assert bf.shape == SHAPE and bf.dtype == np.float32
    background = np.median(bf[:, :4, :4])
    assert background == pytest.approx(1.0, abs=0.02)
    centre = bf[:, 32, 32] - background
    below, above = centre[5], centre[-5]  # 3 µm on either side of the focal plane
    assert below * above < 0 and min(abs(below), abs(above)) > 0.1
    assert abs(centre[20]) < min(abs(below), abs(above))  # a phase object nearly vanishes


def test_dic_shows_antisymmetric_relief_along_the_shear(bead_images):
    dic = bead_images["dic"]
    profile = dic[20, 32, :] - np.median(dic[20, :4, :4])  # along x, the shear direction
    left, right = profile[20:32], profile[33:45][::-1]
    assert np.corrcoef(left, right)[0, 1] < -0.8  # one side bright, the other dark
    across = dic[20, :, 32] - np.median(dic[20, :4, :4])  # across the shear: no relief
    assert np.abs(across).max() < 0.5 * np.abs(profile).max()


def test_simulate_fov_returns_bf_and_dic_on_the_ri_grid():
    fov = simulate_fov("macrophage", 0, shape=(24, 48, 48), physics="none",
                       modalities=("bf", "dic"))
    assert fov.bf.shape == fov.ri.shape == fov.dic.shape
    paired = fov.to_paired()
    assert set(paired.extra) == {"ri_true", "bf", "dic"}
