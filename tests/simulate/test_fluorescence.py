"""Fluorescence recording: PSF, noise statistics, bleaching, misregistration."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.simulate import fluorescence as fl

VOXEL = (0.2, 0.15, 0.15)


def test_psf_has_the_stated_widths_and_keeps_the_signal():
    point = np.zeros((41, 41, 41), np.float32)
    point[20, 20, 20] = 1.0
    img = fl.blur(point, VOXEL)
    assert img.sum() == pytest.approx(1.0, rel=1e-3)
    # second moments of the blurred point: sigma = FWHM / 2.355
    z = (np.arange(41) - 20)[:, None, None] * VOXEL[0]
    x = (np.arange(41) - 20)[None, None, :] * VOXEL[2]
    sz = np.sqrt((img * z ** 2).sum()) * 2.355
    sx = np.sqrt((img * x ** 2).sum()) * 2.355
    assert sz == pytest.approx(fl.PSF_FWHM_UM[0], rel=0.1)
    assert sx == pytest.approx(fl.PSF_FWHM_UM[1], rel=0.15)


def test_noise_is_shot_plus_read_noise_around_the_signal():
    rng = np.random.default_rng(0)
    level = np.full((20, 100, 100), 0.5, np.float32)
    noisy = fl.add_noise(level, rng)
    assert noisy.mean() == pytest.approx(0.5, abs=2e-3)
    expected = np.sqrt(0.5 / fl.PHOTONS_AT_ONE + fl.READ_NOISE ** 2)
    assert noisy.std() == pytest.approx(expected, rel=0.03)
    assert fl.add_noise(np.zeros((4, 8, 8), np.float32), rng).min() >= 0


def test_bleaching_halves_the_signal_every_half_life_and_shift_moves_along_z():
    assert fl.bleach_factor(0, 10) == 1.0
    assert fl.bleach_factor(10, 10) == pytest.approx(0.5)
    assert fl.bleach_factor(30, None) == 1.0
    dens = {"nucleus": np.zeros((32, 16, 16), np.float32)}
    dens["nucleus"][10:14, 6:10, 6:10] = 1.0
    still = fl.record(dens, VOXEL, np.random.default_rng(0), noise=False)["nucleus"]
    moved = fl.record(dens, VOXEL, np.random.default_rng(0), noise=False,
                      shift_z_um=0.6, bleach=0.5)["nucleus"]
    zc = np.arange(32)
    com = [float((a.sum(axis=(1, 2)) * zc).sum() / a.sum()) for a in (still, moved)]
    assert com[1] - com[0] == pytest.approx(3.0, abs=0.1)  # 0.6 µm = 3 slices
    assert moved.sum() == pytest.approx(0.5 * still.sum(), rel=0.02)
