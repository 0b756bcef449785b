"""The tomograph: Ewald-cap frequency support, fast (support + Gerchberg-Papoulis) path.

The measured frequency support of an illumination-scanning holotomograph is the union over
illuminations f_in (|f_in⊥| ≤ NA_ill/λ) of the Ewald caps K = f_out - f_in with
|f_out| = n_m/λ, |f_out⊥| ≤ NA/λ and f_out,z > 0 (Wolf 1969; Sung et al. 2009). It is
rotationally symmetric about k_z, so it is tabulated once on (|K⊥|, K_z) and looked up for each
grid (cached per shape). The fast path masks the spectrum of Δn with it, adds noise, and runs
Gerchberg-Papoulis non-negativity iterations (Lim et al. 2015); the physical path lives in
:mod:`ri2fl.simulate.physical`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import numpy as np
import scipy.fft as sfft

from ..constants import (
    CANONICAL_VOXEL_SIZE_UM,
    MEDIUM_INDEX,
    NA_DETECTION,
    NA_ILLUMINATION,
    WAVELENGTH_UM,
)

#: FFT worker threads (the machine's cores, at most 2 by default; RI2FL_FFT_WORKERS overrides).
FFT_WORKERS = int(os.environ.get("RI2FL_FFT_WORKERS", min(2, os.cpu_count() or 1)))

#: Medium (µm) added after the volume along (z, y, x) before the fast path's FFTs, so that
#: what the tomograph spreads past one face does not come back through the opposite one (the
#: FFT is periodic; no real reconstruction wraps). z: the missing cone's axial tails (a bead
#: at the top slice put 0.007 into the bottom slice of a 64-slice field without it); 3.2 µm
#: keeps a 32-slice hepatocyte field's correlation with the true Δn at 0.971 (0.930 without,
#: 0.966 padded 4x). y, x: none, as the camera's field is periodic in a real reconstruction
#: too (a cell cut by the border puts at most 0.003, RMS 2e-4, on the opposite one; a 1.5 µm
#: margin would cost 27 % more time).
WRAP_MARGIN_UM: tuple[float, float, float] = (3.2, 0.0, 0.0)

#: A frequency support as a function of the FFT grid (z, y, x): the measured ``rfftn``
#: half-spectrum, bool.
SupportFn = Callable[[tuple[int, int, int]], np.ndarray]


def band_limits(medium_index: float = MEDIUM_INDEX, na: float = NA_DETECTION,
                na_ill: float = NA_ILLUMINATION,
                wavelength: float = WAVELENGTH_UM) -> dict[str, float]:
    """Analytic band limits of the support: lateral and axial (cycles/µm), missing cone (deg).

    Near K = 0 every Ewald cap is tangent to the plane normal to its illumination, so the
    measured directions come no closer to the k_z axis than 90° - asin(NA'/n_m), with NA' the
    smaller of the two apertures (≈ 26° for NA' = 1.2, ≈ 36° for NA' = 1.08 at n_m = 1.337).
    """
    k = medium_index / wavelength
    lateral = (na_ill + na) / wavelength
    axial = (medium_index - math.sqrt(medium_index ** 2 - na ** 2)) / wavelength
    cone = 90.0 - math.degrees(math.asin(min(na, na_ill) / medium_index))
    return {"lateral": lateral, "axial": axial, "missing_cone_deg": cone, "k": k}


def support_rz(kr: np.ndarray, kz: np.ndarray, medium_index: float = MEDIUM_INDEX,
               na: float = NA_DETECTION, na_ill: float = NA_ILLUMINATION,
               wavelength: float = WAVELENGTH_UM, n_phi: int = 720) -> np.ndarray:
    """Whether object frequencies (|K⊥|, K_z) (cycles/µm, broadcastable) are measured.

    For each K the illuminations with |f_in + K| = |f_in| lie on a circle (centre -K/2,
    radius sqrt(k² - |K|²/4), in the plane normal to K); K is measured when some point of that
    circle is an allowed illumination whose scattered wave f_in + K passes the pupil. Hermitian
    symmetry (Δn is real) adds -K.
    """
    kr, kz = np.broadcast_arrays(np.asarray(kr, np.float64), np.asarray(kz, np.float64))
    return _support_one(kr, kz, medium_index, na, na_ill, wavelength, n_phi) | \
        _support_one(kr, -kz, medium_index, na, na_ill, wavelength, n_phi)


def _support_one(kr, kz, n_m, na, na_ill, lam, n_phi) -> np.ndarray:
    k = n_m / lam
    kk = np.sqrt(kr ** 2 + kz ** 2)
    out = np.zeros(kr.shape, bool)
    out[kk == 0] = True
    ok = (kk > 0) & (kk < 2 * k)
    kr, kz, kk = kr[ok], kz[ok], kk[ok]
    rc = np.sqrt(np.maximum(k ** 2 - kk ** 2 / 4, 0.0))
    # K = (kr, 0, kz) in (x, y, z); basis of the plane normal to K
    cx, cz = -0.5 * kr, -0.5 * kz
    e1x, e1z = -kz / kk, kr / kk
    hit = np.zeros(kr.shape, bool)
    for phi in np.linspace(0, 2 * np.pi, n_phi, endpoint=False):
        c, s = math.cos(phi), math.sin(phi)
        fx = cx + rc * c * e1x
        fy = rc * s
        fz = cz + rc * c * e1z
        gx, gz = fx + kr, fz + kz
        good = ((fz > 0) & (fx ** 2 + fy ** 2 <= (na_ill / lam) ** 2)
                & (gz > 0) & (gx ** 2 + fy ** 2 <= (na / lam) ** 2))
        hit |= good
    out[ok] = hit
    return out


def fft_freqs(shape: tuple[int, int, int],
              voxel_size_um: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    """Frequencies (cycles/µm) of an ``rfftn`` of ``shape``: (fz, fy, fx) broadcastable."""
    fz = np.fft.fftfreq(shape[0], voxel_size_um[0])[:, None, None]
    fy = np.fft.fftfreq(shape[1], voxel_size_um[1])[None, :, None]
    fx = np.fft.rfftfreq(shape[2], voxel_size_um[2])[None, None, :]
    return fz, fy, fx


@functools.lru_cache(maxsize=16)
def support_mask(shape: tuple[int, int, int],
                 voxel_size_um: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM,
                 medium_index: float = MEDIUM_INDEX, na: float = NA_DETECTION,
                 na_ill: float = NA_ILLUMINATION,
                 wavelength: float = WAVELENGTH_UM) -> np.ndarray:
    """Boolean support on the ``rfftn`` half-spectrum of ``shape`` (cached per argument set).

    Tabulated on a fine |K⊥| axis for each K_z of the grid, then looked up by |K⊥|.
    """
    fz, fy, fx = fft_freqs(shape, voxel_size_um)
    kr = np.sqrt(fy ** 2 + fx ** 2)[0]
    lateral = (na_ill + na) / wavelength
    dkr = 0.25 * min(1 / (shape[1] * voxel_size_um[1]), 1 / (shape[2] * voxel_size_um[2]))
    table_kr = np.arange(0, lateral + 2 * dkr, dkr)
    table = support_rz(table_kr[None, :], fz[:, 0, 0][:, None], medium_index, na, na_ill,
                       wavelength, n_phi=360)
    idx = np.minimum(np.round(kr / dkr).astype(np.int64), table_kr.size - 1)
    mask = table[:, idx]
    mask[:, kr > lateral] = False
    mask.setflags(write=False)
    return mask


def scan_support(shape: tuple[int, int, int], voxel_size_um: tuple[float, float, float],
                 illuminations: np.ndarray, medium_index: float = MEDIUM_INDEX,
                 na: float = NA_DETECTION, wavelength: float = WAVELENGTH_UM) -> np.ndarray:
    """Support of an illumination-scanning tomograph with a finite set of beams.

    The union of the Ewald caps K = f_out - f_in of the beams ``illuminations`` (lateral
    (fy, fx) in cycles/µm, ``|f_in⊥| < n_m/λ``), with ``|f_out⊥| ≤ NA/λ``, plus -K. Each
    camera frequency (the lateral grid) marks the voxel of the nearest K_z, as Fourier
    mapping does (:func:`ri2fl.simulate.physical.map_to_ewald`): gaps between the caps of a
    few beams stay unmeasured. :func:`support_mask` is the limit of a continuum of beams.

    Parameters
    ----------
    shape : tuple of int
        FFT grid (z, y, x).
    voxel_size_um : tuple of float
        Voxel size (z, y, x) in µm.
    illuminations : ndarray
        (N, 2) lateral illumination frequencies (fy, fx) in cycles/µm.

    Returns
    -------
    ndarray
        Bool ``rfftn`` half-spectrum of ``shape``.
    """
    k = medium_index / wavelength
    fy = np.fft.fftfreq(shape[1], voxel_size_um[1])[:, None]
    fx = np.fft.fftfreq(shape[2], voxel_size_um[2])[None, :]
    full = np.zeros(shape, bool)
    for py, px in np.asarray(illuminations, np.float64).reshape(-1, 2):
        out2 = (fy + py) ** 2 + (fx + px) ** 2
        fz_in = math.sqrt(max(k ** 2 - py ** 2 - px ** 2, 0.0))
        kz = np.sqrt(np.maximum(k ** 2 - out2, 0.0)) - fz_in
        valid = (out2 <= (na / wavelength) ** 2) & (out2 < k ** 2)
        _mark(full, voxel_size_um, kz, fy + 0 * fx, fx + 0 * fy, valid)
    return _hermitian_half(full)


def rotation_support(shape: tuple[int, int, int], voxel_size_um: tuple[float, float, float],
                     n_angles: int = 100, span_deg: float = 360.0, axis: str = "y",
                     medium_index: float = MEDIUM_INDEX, na: float = NA_DETECTION,
                     wavelength: float = WAVELENGTH_UM, oversample: int = 2) -> np.ndarray:
    """Support of a sample-rotation tomograph: normal illumination, the sample turned.

    The Ewald cap of the normal beam turned about the lateral ``axis`` ("y" or "x") through
    ``n_angles`` angles over ``span_deg`` (360: evenly around the circle; less: symmetric
    about the optical axis, ends included), plus -K. The unmeasured region is an "apple
    core" about the rotation axis (frequencies along it, beyond the cap's reach), not a cone
    about k_z. The cap is sampled ``oversample`` times finer than the lateral grid, since a
    turned cap is no longer a function of (K_y, K_x).

    Returns
    -------
    ndarray
        Bool ``rfftn`` half-spectrum of ``shape``.
    """
    if axis not in ("y", "x"):
        raise ValueError(f"rotation axis must be 'y' or 'x', got {axis!r}")
    k = medium_index / wavelength
    step = [1.0 / (n * v * oversample) for n, v in zip(shape[1:], voxel_size_um[1:])]
    reach = min(na / wavelength, k)
    cy = np.arange(-reach, reach + step[0], step[0])[:, None]
    cx = np.arange(-reach, reach + step[1], step[1])[None, :]
    out2 = cy ** 2 + cx ** 2
    valid = out2 <= reach ** 2
    cy, cx = (cy + 0 * cx)[valid], (cx + 0 * cy)[valid]
    cz = np.sqrt(np.maximum(k ** 2 - cy ** 2 - cx ** 2, 0.0)) - k
    if span_deg >= 360.0:
        angles = np.linspace(0.0, 2 * np.pi, int(n_angles), endpoint=False)
    else:
        angles = np.radians(np.linspace(-span_deg / 2, span_deg / 2, int(n_angles)))
    full = np.zeros(shape, bool)
    for t in angles:
        c, s = math.cos(t), math.sin(t)
        if axis == "y":
            kx, ky, kz = cx * c + cz * s, cy, cz * c - cx * s
        else:
            kx, ky, kz = cx, cy * c + cz * s, cz * c - cy * s
        _mark(full, voxel_size_um, kz, ky, kx, np.ones(kz.shape, bool))
    return _hermitian_half(full)


def _mark(full: np.ndarray, voxel_size_um: tuple[float, float, float], kz: np.ndarray,
          ky: np.ndarray, kx: np.ndarray, valid: np.ndarray) -> None:
    """Set the voxels of ``full`` (full FFT grid) nearest to the frequencies (kz, ky, kx)."""
    idx = []
    for n, v, f in zip(full.shape, voxel_size_um, (kz, ky, kx)):
        i = np.round(f * n * v).astype(np.int64)
        valid = valid & (np.abs(i) <= (n - 1) // 2)  # beyond the grid's Nyquist: not kept
        idx.append(i)
    full[tuple(np.mod(i[valid], n) for i, n in zip(idx, full.shape))] = True


def _hermitian_half(full: np.ndarray) -> np.ndarray:
    """``full`` or its point reflection K -> -K (Δn is real), as an ``rfftn`` half-spectrum."""
    full = full | np.roll(np.flip(full, axis=(0, 1, 2)), 1, axis=(0, 1, 2))
    return np.ascontiguousarray(full[..., : full.shape[2] // 2 + 1])


def padded_shape(shape: tuple[int, ...], voxel_size_um: tuple[float, float, float],
                 margin_um: tuple[float, float, float] = WRAP_MARGIN_UM) -> tuple[int, ...]:
    """Grid on which the fast path reconstructs ``shape``: each axis grown by its margin.

    Parameters
    ----------
    shape : tuple of int
        (z, y, x) voxels of the volume.
    voxel_size_um : tuple of float
        Voxel size (z, y, x) in µm.
    margin_um : tuple of float
        Medium to add along each axis (µm).

    Returns
    -------
    tuple of int
        Each axis with a margin at least ``margin_um / voxel`` longer, rounded up to a fast
        FFT length; axes without one unchanged.
    """
    return tuple(int(n) if m <= 0 else
                 sfft.next_fast_len(int(n) + math.ceil(m / v - 1e-6), real=True)
                 for n, v, m in zip(shape, voxel_size_um, margin_um))


def gerchberg_papoulis(spectrum: np.ndarray, mask: np.ndarray, shape: tuple[int, int, int],
                       n_iter: int = 40, lower: float | None = 0.0,
                       upper: float | None = None) -> np.ndarray:
    """Non-negativity Gerchberg-Papoulis: x <- F⁻¹[M·F_meas + (1-M)·F{max(x, 0)}].

    ``spectrum`` is the measured ``rfftn`` half-spectrum (zero outside ``mask``). ``lower``
    and ``upper`` bound x in each iteration (default: non-negativity, x >= 0); with neither,
    the iterations change nothing (the missing cone stays empty).
    """
    measured = (spectrum * mask).astype(np.complex64)
    x = sfft.irfftn(measured, s=shape, workers=FFT_WORKERS).astype(np.float32)
    if lower is None and upper is None:
        return x
    for _ in range(n_iter):
        if upper is None:
            np.maximum(x, lower, out=x)
        else:
            np.clip(x, lower, upper, out=x)
        g = sfft.rfftn(x, workers=FFT_WORKERS)
        np.copyto(g, measured, where=mask)
        x = sfft.irfftn(g, s=shape, workers=FFT_WORKERS, overwrite_x=True)
    return x.astype(np.float32)


def reconstruct_fast(dn: np.ndarray, voxel_size_um: tuple[float, float, float],
                     medium_index: float = MEDIUM_INDEX, noise_std: float = 6e-4,
                     rng: np.random.Generator | None = None, n_iter: int = 40,
                     na: float = NA_DETECTION, na_ill: float = NA_ILLUMINATION,
                     wavelength: float = WAVELENGTH_UM, pad_z: bool = False,
                     wrap: bool = False, support: SupportFn | None = None,
                     lower: float | None = 0.0, upper: float | None = None) -> np.ndarray:
    """Band-limit Δn to the tomograph's support, add noise, fill the missing cone by GP.

    The volume is reconstructed inside medium margins (:data:`WRAP_MARGIN_UM`, see
    :func:`padded_shape`) and cropped back, so that nothing leaves one face of the volume and
    comes back through the opposite one.

    Parameters
    ----------
    dn : ndarray
        True Δn = n - n_m (z, y, x).
    noise_std : float
        Standard deviation of the noise in the reconstructed Δn (band-limited white noise).
    pad_z : bool
        Reconstruct on a volume padded with medium to twice its height (no other margin),
        then crop: more of the missing cone's axial tails kept than the default margin (a
        mitotic plate filling slices 7-26 of 32: 0.0049 above the cytoplasm, 0.0063 true,
        0.0013 on the periodic grid). Twice the time.
    wrap : bool
        Reconstruct on the periodic grid of ``dn`` itself, where the top of the volume meets
        the bottom: the fast path before issue #30, on which the shipped models were trained.
    support : callable, optional
        ``support(grid)``: the measured ``rfftn`` half-spectrum (bool) of the FFT grid
        ``grid`` (z, y, x), e.g. :func:`scan_support` or :func:`rotation_support` of an
        imaging domain; default :func:`support_mask` of ``na``, ``na_ill``, ``wavelength``
        (a continuum of illuminations filling the NA_ill disc).
    lower, upper : float or None
        Bounds on Δn in the Gerchberg-Papoulis iterations (:func:`gerchberg_papoulis`);
        default non-negativity.

    Returns
    -------
    ndarray
        Reconstructed Δn (float32), not clipped.
    """
    if pad_z or not wrap:
        return _reconstruct_padded(dn, voxel_size_um, pad_z, medium_index=medium_index,
                                   noise_std=noise_std, rng=rng, n_iter=n_iter, na=na,
                                   na_ill=na_ill, wavelength=wavelength, support=support,
                                   lower=lower, upper=upper)
    shape = tuple(int(s) for s in dn.shape)
    if support is not None:
        mask = support(shape)
    else:
        # n_m to 0.001 moves the support edge by < 0.01 /µm, far below the grid's frequency
        # step, and keeps the cache small when every field draws its own medium index
        mask = support_mask(shape, tuple(float(v) for v in voxel_size_um),
                            round(medium_index, 3), na, na_ill, wavelength)
    spec = sfft.rfftn(dn.astype(np.float32), workers=FFT_WORKERS)
    if noise_std > 0:
        rng = rng if rng is not None else np.random.default_rng()
        frac = max(float(mask.mean()), 1e-6)
        sigma = np.float32(noise_std / math.sqrt(frac))
        noise = rng.standard_normal(shape, dtype=np.float32) * sigma
        spec += sfft.rfftn(noise, workers=FFT_WORKERS)
    return gerchberg_papoulis(spec, mask, shape, n_iter, lower, upper)


def _reconstruct_padded(dn: np.ndarray, voxel_size_um: tuple[float, float, float],
                        double_z: bool, **options) -> np.ndarray:
    """:func:`reconstruct_fast` on ``dn`` placed in medium (twice its height or the margins)."""
    shape = tuple(int(s) for s in dn.shape)
    grid = ((2 * shape[0], *shape[1:]) if double_z
            else padded_shape(shape, voxel_size_um))
    padded = np.zeros(grid, np.float32)
    padded[:shape[0], :shape[1], :shape[2]] = dn
    rec = reconstruct_fast(padded, voxel_size_um, wrap=True, **options)
    return np.ascontiguousarray(rec[:shape[0], :shape[1], :shape[2]])
