"""Imaging domains (issue #30): every knob drawn within its written range, and each does what
it says on a case whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ri2fl.errors import ConfigError
from ri2fl.io import read_paired, write_paired
from ri2fl.simulate import domain as dm
from ri2fl.simulate import optics
from ri2fl.simulate.domain import ImagingDomain, sample_domain
from ri2fl.simulate.fov import reconstruct, simulate_fov

VOXEL = (0.2, 0.15, 0.15)
SMALL = (16, 64, 64)


@pytest.fixture(scope="module")
def draws() -> list[ImagingDomain]:
    rng = np.random.default_rng(0)
    return [sample_domain(rng) for _ in range(600)]


def _within(values, bounds) -> bool:
    return min(values) >= bounds[0] and max(values) <= bounds[1]


def test_sampled_optics_and_reconstruction_stay_in_their_ranges(draws):
    assert _within([d.wavelength_um for d in draws], dm.WAVELENGTH_RANGE_UM)
    assert _within([d.na for d in draws], dm.NA_RANGE)
    for d in draws:
        top = min(d.na, dm.NA_ILL_MAX)
        assert dm.NA_ILL_FRACTION_RANGE[0] * top <= d.na_ill <= top
    assert _within([d.n_angles for d in draws], dm.N_ANGLES_RANGE)
    assert _within([d.rotation_span_deg for d in draws], dm.ROTATION_SPAN_RANGE_DEG)
    assert _within([d.gp_iterations for d in draws], dm.GP_ITERATIONS_RANGE)
    tv = [d.tv_weight for d in draws if d.tv_weight]
    assert _within(tv, dm.TV_WEIGHT_RANGE)
    # every discrete choice is drawn, "disc" (the default instrument) never
    assert {d.scan for d in draws} == set(dm.SCAN_P)
    assert {d.rotation_axis for d in draws} == set(dm.ROTATION_AXES)
    assert {d.approximation for d in draws} == set(dm.APPROXIMATIONS)
    assert {d.gp_nonneg for d in draws} == {True, False}
    assert 0 in {d.gp_iterations for d in draws} and 0.0 in {d.tv_weight for d in draws}


def test_sampled_noise_calibration_and_sampling_stay_in_their_ranges(draws):
    assert _within([d.noise_std for d in draws], dm.NOISE_STD_RANGE)
    for name, bounds in (("corr_noise_std", dm.CORR_NOISE_STD_RANGE),
                         ("ringing", dm.RINGING_RANGE), ("n_spikes", dm.N_SPIKES_RANGE),
                         ("n_debris", dm.N_DEBRIS_RANGE)):
        values = [getattr(d, name) for d in draws]
        assert 0 in values and _within([v for v in values if v], bounds), name
    assert _within([d.noise_corr_um for d in draws], dm.NOISE_CORR_RANGE_UM)
    assert _within([d.background_offset for d in draws], dm.BACKGROUND_OFFSET_RANGE)
    assert _within([g for d in draws for g in d.background_tilt_per_um], dm.TILT_RANGE_PER_UM)
    assert _within([d.ringing_cutoff for d in draws], dm.RINGING_CUTOFF_RANGE)
    assert {d.quantisation for d in draws} == set(dm.QUANTISATIONS)
    assert _within([d.medium_offset for d in draws], dm.MEDIUM_OFFSET_RANGE)
    assert _within([d.ri_scale for d in draws], dm.RI_SCALE_RANGE)
    voxels = [d.voxel_size_um for d in draws]
    assert dm.VOXEL_40X_UM in voxels
    other = [v for v in voxels if v != dm.VOXEL_40X_UM]
    assert _within([v[0] for v in other], dm.AXIAL_VOXEL_RANGE_UM)
    assert _within([v[1] for v in other], dm.LATERAL_VOXEL_RANGE_UM)
    assert all(v[1] == v[2] for v in voxels)


def test_a_domain_survives_json_and_bad_knobs_are_refused(draws):
    assert ImagingDomain.from_dict(json.loads(draws[3].to_json())) == draws[3]
    with pytest.raises(ConfigError):
        ImagingDomain(scan="helix")
    with pytest.raises(ConfigError):
        ImagingDomain(quantisation="int4")
    with pytest.raises(ConfigError):
        dm.resolve_domain("sometimes", 0)


# --- optics ------------------------------------------------------------------------------
def _support_fraction(scan: str, n: int) -> float:
    beams = dm.illumination_pattern(scan, n, 1.08, 0.532)
    assert len(beams) == n
    assert np.hypot(beams[:, 0], beams[:, 1]).max() <= 1.08 / 0.532 + 1e-9
    return float(optics.scan_support((32, 64, 64), VOXEL, beams).mean())


@pytest.mark.parametrize("scan", ["ring", "spiral", "raster"])
def test_more_beams_fill_more_of_the_support_and_stay_inside_the_continuum(scan):
    fractions = [_support_fraction(scan, n) for n in (20, 50, 100)]
    assert fractions[0] < fractions[1] < fractions[2]
    disc = optics.support_mask((32, 64, 64), VOXEL)
    beams = dm.illumination_pattern(scan, 100, 1.08, 0.532)
    m = optics.scan_support((32, 64, 64), VOXEL, beams)
    assert (m & ~disc).sum() < 0.03 * m.sum()  # the same caps, up to voxel rounding
    assert fractions[2] < disc.mean()


def test_the_support_follows_the_domains_wavelength_and_apertures():
    shape = (32, 128, 128)
    for wavelength, na, na_ill in ((0.45, 0.8, 0.6), (0.65, 1.2, 1.0)):
        beams = dm.illumination_pattern("spiral", 80, na_ill, wavelength)
        m = optics.scan_support(shape, VOXEL, beams, 1.337, na, wavelength)
        _, fy, fx = optics.fft_freqs(shape, VOXEL)
        kr = np.broadcast_to(np.hypot(fy, fx), m.shape)[m]
        assert kr.max() == pytest.approx((na + na_ill) / wavelength, abs=0.1)


def _full(half: np.ndarray, nx: int) -> np.ndarray:
    """The full spectrum of a Hermitian-symmetric half-spectrum mask."""
    neg = np.roll(np.flip(half, axis=(0, 1)), 1, axis=(0, 1))[..., 1:(nx + 1) // 2][..., ::-1]
    return np.concatenate([half[..., : nx // 2 + 1], neg], axis=-1)[..., :nx]


def test_rotation_support_is_an_apple_core_about_the_rotation_axis():
    shape = (64, 96, 96)
    m = _full(optics.rotation_support(shape, VOXEL, 60, 360.0, "y"), shape[2])
    fz, fy, fx = (np.fft.fftfreq(n, v) for n, v in zip(shape, VOXEL))
    far = np.abs(fy) > 1.0
    assert not m[0, far, 0].any()  # empty along the rotation axis, beyond the origin
    # but the k_z axis is measured (no cone; 60 angles leave gaps only farther out)
    assert m[:8, 0, 0].all() and m[0, 0, :16].all()
    for j in np.nonzero((fy > 0.8) & (fy < 2.0))[0][::4]:
        # the hole about the axis is as wide along k_x as along k_z (a solid of revolution)
        core_x = np.abs(fx[m[0, j, :]]).min()
        core_z = np.abs(fz[m[:, j, 0]]).min()
        assert core_x > 0.1 and core_x == pytest.approx(core_z, abs=0.09)
        # and the same on both sides of the axis
        assert m[0, j, :].sum() == pytest.approx(m[0, -j, :].sum(), abs=2)
    m_x = _full(optics.rotation_support(shape, VOXEL, 60, 360.0, "x"), shape[2])
    assert not m_x[0, 0, np.abs(fx) > 1.0].any() and m_x[:8, 0, 0].all()
    # a scanning tomograph is the other way round: a cone about k_z, the k_y axis full
    scan = _full(optics.support_mask(shape, VOXEL), shape[2])
    assert scan[0, :, 0].all() and not scan[3:8, 0, 0].any()


def test_more_rotation_angles_and_a_wider_span_fill_more():
    shape = (32, 64, 64)
    f = [optics.rotation_support(shape, VOXEL, n, span).mean()
         for n, span in ((20, 360.0), (80, 360.0), (80, 120.0))]
    assert f[0] < f[1] and f[2] < f[1]


def test_born_keeps_weak_phase_and_turns_a_column_into_sin_phi():
    dz, wavelength = 0.05, 0.532
    k0 = 2 * np.pi / wavelength
    weak = np.full((40, 1, 1), 1e-4, np.float32)
    assert np.allclose(dm.born_bias(weak, dz, wavelength), weak, rtol=1e-3)
    slab = np.full((200, 1, 1), 0.03, np.float32)  # 10 µm: phase 3.5 rad
    phi = k0 * 0.03 * 200 * dz
    column = dm.born_bias(slab, dz, wavelength).sum() * dz
    assert column == pytest.approx(np.sin(phi) / k0, abs=2e-4)
    assert dm.born_bias(slab, dz, wavelength)[0, 0, 0] == pytest.approx(0.03, rel=1e-3)


# --- reconstruction ----------------------------------------------------------------------
def _bead(shape=SMALL, r=1.0, dn=0.03) -> np.ndarray:
    z, y, x = (np.arange(n)[:, None, None] * v if i == 0 else
               (np.arange(n)[None, :, None] if i == 1 else np.arange(n)[None, None, :]) * v
               for i, (n, v) in enumerate(zip(shape, VOXEL)))
    c = [n * v / 2 for n, v in zip(shape, VOXEL)]
    d = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
    return (dn * np.clip(0.5 - (d - r) / 0.15, 0, 1)).astype(np.float32)


def test_the_default_domain_is_the_default_fast_path():
    dn = _bead()
    a = reconstruct(dn, VOXEL, 1.336, "fast", np.random.default_rng(1))
    b = dm.measure(dn, VOXEL, 1.336, ImagingDomain(), np.random.default_rng(1))
    assert np.array_equal(a, b)


def test_an_empty_missing_cone_and_gp_without_non_negativity():
    dn = _bead()
    rng = np.random.default_rng(0)
    common = {"noise_std": 0.0, "scan": "ring", "n_angles": 30}
    empty = dm.tomograph(dn, VOXEL, 1.337, ImagingDomain(gp_iterations=0, **common), rng)
    gp = dm.tomograph(dn, VOXEL, 1.337, ImagingDomain(gp_iterations=60, **common), rng)
    box = dm.tomograph(dn, VOXEL, 1.337,
                       ImagingDomain(gp_iterations=60, gp_nonneg=False, **common), rng)
    # the cone left empty: nothing outside the support (on the padded grid)
    grid = optics.padded_shape(SMALL, VOXEL)
    padded = np.zeros(grid, np.float32)
    padded[:SMALL[0]] = dn
    support = dm.domain_support(ImagingDomain(**common), VOXEL, 1.337)(grid)
    rec = optics.reconstruct_fast(padded, VOXEL, noise_std=0.0, n_iter=0, wrap=True,
                                  support=lambda g: support)
    spec = np.abs(np.fft.rfftn(rec))
    assert spec[~support].max() < 1e-4 * spec[support].max()
    assert np.allclose(rec[:SMALL[0]], empty, atol=1e-6)
    # non-negativity fills the cone most: the negative halo shrinks, the bead gains contrast
    assert empty.min() < box.min() <= gp.min() + 1e-4
    assert gp.max() > empty.max()
    assert not np.array_equal(box, empty)


def test_tv_smooths_noise_but_keeps_an_edge():
    rng = np.random.default_rng(0)
    step = np.zeros(SMALL, np.float32)
    step[..., 32:] = 0.02
    noisy = step + rng.normal(0, 1e-3, SMALL).astype(np.float32)
    assert dm.tv_denoise(noisy, 0.0) is noisy
    out = dm.tv_denoise(noisy, 2e-3)
    assert out[..., 4:28].std() < 0.5 * noisy[..., 4:28].std()
    assert out[..., 36:60].mean() - out[..., 4:28].mean() == pytest.approx(0.02, abs=2e-3)


def test_ringing_is_a_ripple_at_the_cutoff_that_grows_with_its_strength():
    step = np.zeros(SMALL, np.float32)
    step[..., 16:48] = 1.0
    assert dm.add_ringing(step, VOXEL, 0.0, 1.0) is step
    weak = dm.add_ringing(step, VOXEL, 0.2, 1.0)
    strong = dm.add_ringing(step, VOXEL, 0.5, 1.0)
    assert 0 < weak.max() - 1 < strong.max() - 1  # Gibbs overshoot
    profile = strong[0, 0] - step[0, 0]
    # ripple period ≈ 1/cutoff = 1 µm: the overshoot inside the edge and the undershoot
    # after it are about half a period apart
    over = np.argmax(profile[16:32]) + 16
    under = np.argmin(profile[16:32]) + 16
    assert abs(over - under) * VOXEL[2] == pytest.approx(0.5, abs=0.2)


def test_spikes_are_sparse_axial_needles_of_the_given_amplitude():
    out = dm.add_spikes(np.zeros((40, 64, 64), np.float32), VOXEL, 1,
                        np.random.default_rng(3))
    peak = np.unravel_index(np.argmax(np.abs(out)), out.shape)
    assert dm.SPIKE_AMPLITUDE_RANGE[0] * 0.9 <= np.abs(out).max() <= dm.SPIKE_AMPLITUDE_RANGE[1]
    half = np.abs(out) > 0.5 * np.abs(out).max()
    extent_z = half[:, peak[1], peak[2]].sum() * VOXEL[0]
    extent_x = half[peak[0], peak[1], :].sum() * VOXEL[2]
    assert extent_z > 2 * extent_x
    assert half.mean() < 0.01
    many = dm.add_spikes(np.zeros((40, 64, 64), np.float32), VOXEL, 20,
                         np.random.default_rng(4))
    assert (many > 0).any() and (many < 0).any()


def _lag_correlation(noise: np.ndarray, lag: int = 2) -> float:
    return float(np.corrcoef(noise[..., :-lag].ravel(), noise[..., lag:].ravel())[0, 1])


def test_noise_has_its_level_and_a_correlation_length_that_grows_with_the_filter():
    rng = np.random.default_rng(0)
    noises = [dm.correlated_noise((16, 64, 64), VOXEL, 1e-3, c, rng) for c in (0.0, 0.2, 0.5)]
    assert all(n.std() == pytest.approx(1e-3, rel=1e-3) for n in noises)
    lags = [_lag_correlation(n) for n in noises]
    assert abs(lags[0]) < 0.05 and lags[0] < lags[1] < lags[2]


def test_the_background_tilt_is_a_plane_and_calibration_scales_and_offsets():
    plane = dm.background_plane(SMALL, VOXEL, 0.001, (2e-5, -3e-5))[0]
    assert plane.mean() == pytest.approx(0.001, abs=1e-7)
    assert np.allclose(np.diff(plane, 2, axis=0), 0, atol=1e-8)
    assert np.allclose(np.diff(plane, 2, axis=1), 0, atol=1e-8)
    assert np.diff(plane, axis=0).mean() == pytest.approx(2e-5 * VOXEL[1], rel=1e-3)
    assert np.diff(plane, axis=1).mean() == pytest.approx(-3e-5 * VOXEL[2], rel=1e-3)
    d = ImagingDomain(medium_offset=-0.003, ri_scale=1.05)
    ri = dm.calibrate(np.full(SMALL, 0.02, np.float32), VOXEL, 1.337, d)
    assert np.allclose(ri, 1.337 - 0.003 + 1.05 * 0.02, atol=1e-6)


# --- debris ------------------------------------------------------------------------------
def test_debris_above_the_field_shows_only_as_defocused_light_near_its_top():
    d = ImagingDomain(noise_std=0.0, n_debris=4, gp_iterations=10)
    zero = np.zeros((32, 64, 64), np.float32)
    rec = dm.tomograph(zero, VOXEL, 1.337, d, np.random.default_rng(0),
                       np.random.default_rng(5))
    top, bottom = np.abs(rec[-8:]).max(), np.abs(rec[:8]).max()
    assert top > 0.005 and top > 10 * bottom


# --- storage and sampling ----------------------------------------------------------------
def test_quantisation_gives_the_levels_of_a_tcf_file(tmp_path):
    from ri2fl.io.tcf import read_tcf, write_tcf

    rng = np.random.default_rng(0)
    ri = (1.337 + 0.03 * rng.random((8, 16, 16))).astype(np.float32)
    u16 = dm.quantise(ri, "uint16")
    assert np.allclose(u16 * 1e4, np.round(u16 * 1e4), atol=0.01)
    assert np.abs(u16 - ri).max() <= 0.5e-4 + 1e-6
    u8 = dm.quantise(ri, "uint8")
    levels = np.unique(np.round((u8 - u8.min()) * 1000, 3))
    assert np.allclose(levels, np.round(levels)) and len(levels) <= 256
    assert np.abs(u8 - ri).max() <= 0.5e-3 + 1e-6
    assert dm.quantise(ri, "float") is ri
    for kind, kwargs in (("uint16", {}), ("uint8", {"layout": "ldm", "scalar_type": "uint8"})):
        path = write_tcf(tmp_path / f"{kind}.TCF", ri, VOXEL, mip=False, **kwargs)
        stored = np.asarray(read_tcf(path).data)
        assert np.array_equal(stored, dm.quantise(ri, kind)), kind


def test_a_40x_round_trip_returns_the_model_grid():
    shape = (32, 96, 96)
    z = np.arange(shape[0])[:, None, None] * VOXEL[0] - 3.2
    y = np.arange(shape[1])[None, :, None] * VOXEL[1] - 7.2
    x = np.arange(shape[2])[None, None, :] * VOXEL[2] - 7.2
    ri = (1.337 + 0.02 * np.exp(-(z / 1.5) ** 2 - (y ** 2 + x ** 2) / 8)).astype(np.float32)
    out = dm.sample_on_grid(ri, VOXEL, dm.VOXEL_40X_UM, "uint16")
    assert out.shape == shape and out.dtype == np.float32
    assert np.abs(out - ri).max() < 0.004  # smooth: little lost on a 0.875 µm axial grid
    fine = dm.sample_on_grid(ri, VOXEL, (0.15, 0.1, 0.1))
    assert fine.shape == shape
    assert dm.sample_on_grid(ri, VOXEL, VOXEL) is ri


# --- simulate_fov ------------------------------------------------------------------------
def test_simulate_fov_records_a_random_domain_and_keeps_its_cells(tmp_path):
    plain = simulate_fov("macrophage", seed=4, shape=(32, 64, 64), n_cells=1)
    same = simulate_fov("macrophage", seed=4, shape=(32, 64, 64), n_cells=1,
                        domain=ImagingDomain())
    assert np.array_equal(plain.ri, same.ri)
    assert "imaging_domain" not in plain.metadata
    rand = simulate_fov("macrophage", seed=4, shape=(32, 64, 64), n_cells=1, domain="random")
    assert np.array_equal(rand.ri_true, plain.ri_true)
    assert all(np.array_equal(rand.fl[t], plain.fl[t]) for t in plain.fl)
    assert not np.array_equal(rand.ri, plain.ri) and rand.ri.shape == plain.ri.shape
    recorded = ImagingDomain.from_dict(json.loads(rand.metadata["imaging_domain"]))
    assert recorded == dm.resolve_domain("random", 4)
    path = write_paired(tmp_path / "f.h5", rand.to_paired())
    assert json.loads(read_paired(path).attrs["imaging_domain"]) == recorded.to_dict()
    with pytest.raises(ConfigError):
        simulate_fov("macrophage", seed=4, shape=(16, 32, 32), physics="none",
                     domain="random")


def test_the_physical_paths_born_field_is_the_scattered_field():
    from ri2fl.simulate.physical import born_field, rytov_phase

    phi = np.linspace(0, 3, 16, dtype=np.float32).reshape(4, 4)
    u0 = np.full((4, 4), 0.8 + 0.6j, np.complex64)
    u = (u0 * np.exp(1j * phi)).astype(np.complex64)
    assert np.allclose(born_field(u, u0), np.exp(1j * phi) - 1, atol=1e-5)
    weak = (u0 * np.exp(1e-3j * phi)).astype(np.complex64)
    assert np.allclose(born_field(weak, u0), rytov_phase(weak, u0), atol=1e-5)
