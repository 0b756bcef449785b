"""The tomograph's frequency support and the fast reconstruction, against optics.md."""

from __future__ import annotations

import numpy as np
import pytest

from ri2fl.constants import ALPHA_ML_PER_G
from ri2fl.simulate.optics import (
    band_limits,
    padded_shape,
    reconstruct_fast,
    support_mask,
    support_rz,
)

VOXEL = (0.2, 0.15, 0.15)


def _cone_angle(na_ill: float, k: float = 0.15) -> float:
    """Smallest angle (deg) from the k_z axis that is measured at |K| = k."""
    ang = np.radians(np.linspace(0, 90, 361))
    hit = support_rz(k * np.sin(ang), k * np.cos(ang), na_ill=na_ill)
    return float(np.degrees(ang[np.argmax(hit)]))


def test_band_limits_match_optics_md_for_full_aperture_illumination():
    # optics.md: lateral ~4.5 /µm, axial ~1.40 /µm, missing cone ~26° (NA 1.2 both ways)
    lim = band_limits(na_ill=1.2)
    assert lim["lateral"] == pytest.approx(4.5, abs=0.02)
    assert lim["axial"] == pytest.approx(1.40, abs=0.01)
    assert lim["missing_cone_deg"] == pytest.approx(26.0, abs=0.5)


@pytest.mark.parametrize("na_ill", [1.08, 1.2])
def test_support_edges_are_where_the_analytic_limits_say(na_ill):
    lim = band_limits(na_ill=na_ill)
    kr = np.linspace(3.5, 5.0, 151)[:, None]
    kz = np.linspace(-1.0, 1.0, 101)[None, :]
    lateral = support_rz(kr, kz, na_ill=na_ill, n_phi=180).any(axis=1)
    assert kr[lateral, 0].max() == pytest.approx(lim["lateral"], abs=0.03)
    kr = np.linspace(0.0, 2.0, 101)[:, None]
    kz = np.linspace(1.0, 1.8, 81)[None, :]
    axial = support_rz(kr, kz, na_ill=na_ill, n_phi=180).any(axis=0)
    assert kz[0, axial].max() == pytest.approx(lim["axial"], abs=0.03)
    # the cone around k_z is empty, directions just outside it are measured
    assert _cone_angle(na_ill) == pytest.approx(lim["missing_cone_deg"], abs=3.0)


def test_support_mask_has_no_kz_axis_but_keeps_dc_and_lateral_axis():
    m = support_mask((32, 64, 64), VOXEL)
    assert m[0, 0, 0]
    assert not m[1:4, 0, 0].any()  # low axial frequencies on the k_z axis: missing cone
    assert m[0, 0, 1:20].all()  # lateral axis up to 2 /µm is measured


def _occ(d):
    return np.clip(0.5 - d / 0.15, 0, 1).astype(np.float32)


def _axes(shape):
    z, y, x = (np.arange(n) * v - n * v / 2 for n, v in zip(shape, VOXEL))
    return z[:, None, None], y[None, :, None], x[None, None, :]


def _bead(shape, radius_um, dn):
    z, y, x = _axes(shape)
    return _occ(np.sqrt(z ** 2 + y ** 2 + x ** 2) - radius_um) * np.float32(dn)


def _fwhm(profile, spacing, baseline=0.0):
    """Full width at half maximum above ``baseline`` (linear interpolation at the edges)."""
    p = np.asarray(profile, float) - baseline
    half, i = p.max() / 2, int(np.argmax(p))
    lo, hi = i, i
    while lo > 0 and p[lo - 1] > half:
        lo -= 1
    while hi < p.size - 1 and p[hi + 1] > half:
        hi += 1
    left = lo - (p[lo] - half) / (p[lo] - p[lo - 1])
    right = hi + (p[hi] - half) / (p[hi] - p[hi + 1])
    return float((right - left) * spacing)


def test_fast_path_elongates_a_bead_axially_and_underestimates_small_dense_objects():
    # a 0.3 µm dense bead (lipid droplet / mitochondrion scale) inside a cytoplasm ellipsoid
    shape = (48, 64, 64)
    z, y, x = _axes(shape)
    cell = _occ((np.sqrt((z / 2.5) ** 2 + (y / 4) ** 2 + (x / 4) ** 2) - 1) * 2.5) * 0.02
    bead = _occ(np.sqrt(z ** 2 + y ** 2 + x ** 2) - 0.3)
    dn = cell * (1 - bead) + 0.08 * bead
    rec = reconstruct_fast(dn, VOXEL, noise_std=0.0)
    c = tuple(n // 2 for n in shape)
    fz = _fwhm(rec[:, c[1], c[2]], VOXEL[0], baseline=0.02)
    fx = _fwhm(rec[c[0], c[1], :], VOXEL[2], baseline=0.02)
    assert _fwhm(dn[:, c[1], c[2]], VOXEL[0], 0.02) == pytest.approx(
        _fwhm(dn[c[0], c[1], :], VOXEL[2], 0.02), rel=0.1)  # the bead itself is round
    assert fz > 1.3 * fx  # axial elongation from the missing cone and axial band limit
    inside = bead > 0.5
    assert rec[inside].mean() < 0.92 * dn[inside].mean()  # small dense objects read low
    assert rec[c[0], c[1], c[2] + 13] == pytest.approx(0.02, abs=0.004)  # cytoplasm is right


def test_missing_cone_lowers_spectral_energy_near_kz():
    shape = (48, 64, 64)
    rng = np.random.default_rng(1)
    dn = np.clip(rng.standard_normal(shape).astype(np.float32), 0, None) * 0.01
    rec = reconstruct_fast(dn, VOXEL, noise_std=0.0, n_iter=0)
    power = np.abs(np.fft.fftn(rec)) ** 2
    fz, fy, fx = np.meshgrid(*[np.fft.fftfreq(n, v) for n, v in zip(shape, VOXEL)],
                             indexing="ij")
    k = np.sqrt(fz ** 2 + fy ** 2 + fx ** 2)
    polar = np.degrees(np.arccos(np.clip(np.abs(fz) / np.maximum(k, 1e-9), 0, 1)))
    shell = (k > 0.3) & (k < 1.2)
    near_kz = power[shell & (polar < 15)].mean()
    lateral = power[shell & (polar > 75)].mean()
    assert near_kz < 0.05 * lateral


def test_dry_mass_of_a_sphere_is_recovered():
    shape = (48, 64, 64)
    radius, dn = 1.5, 0.02
    rec = reconstruct_fast(_bead(shape, radius, dn), VOXEL, noise_std=2e-4,
                           rng=np.random.default_rng(0))
    voxel_volume = float(np.prod(VOXEL))
    mass = rec.sum() * voxel_volume / ALPHA_ML_PER_G
    analytic = 4 / 3 * np.pi * radius ** 3 * dn / ALPHA_ML_PER_G
    assert mass == pytest.approx(analytic, rel=0.05)


def test_a_bead_at_the_top_slice_leaves_the_bottom_at_the_medium():
    # issue #30: the periodic FFT used to wrap the top of the volume into its bottom
    shape = (32, 64, 64)
    z, y, x = _axes(shape)
    dn = _occ(np.sqrt((z - z.max()) ** 2 + y ** 2 + x ** 2) - 1.0) * np.float32(0.03)
    assert dn[: shape[0] // 2].max() == 0  # the bead is in the top half only
    rec = reconstruct_fast(dn, VOXEL, noise_std=0.0)
    assert rec.shape == shape and rec.max() > 0.02
    assert np.abs(rec[: shape[0] // 4]).max() < 1e-3  # 0.0002 measured
    wrapped = reconstruct_fast(dn, VOXEL, noise_std=0.0, wrap=True)  # the old periodic grid
    assert np.abs(wrapped[: shape[0] // 4]).max() > 5e-3  # 0.011 measured


def test_padded_grid_grows_z_by_the_margin_to_a_fast_length():
    assert padded_shape((64, 256, 256), VOXEL) == (80, 256, 256)  # 3.2 µm = 16 slices
    assert padded_shape((32, 97, 97), VOXEL, (0.0, 0.0, 0.0)) == (32, 97, 97)
    assert padded_shape((10, 50, 50), VOXEL, (0.3, 0.3, 0.0)) == (12, 54, 50)
