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


def gerchberg_papoulis(spectrum: np.ndarray, mask: np.ndarray, shape: tuple[int, int, int],
                       n_iter: int = 40) -> np.ndarray:
    """Non-negativity Gerchberg-Papoulis: x <- F⁻¹[M·F_meas + (1-M)·F{max(x, 0)}].

    ``spectrum`` is the measured ``rfftn`` half-spectrum (zero outside ``mask``).
    """
    measured = (spectrum * mask).astype(np.complex64)
    x = sfft.irfftn(measured, s=shape, workers=FFT_WORKERS).astype(np.float32)
    for _ in range(n_iter):
        np.maximum(x, 0.0, out=x)
        g = sfft.rfftn(x, workers=FFT_WORKERS)
        np.copyto(g, measured, where=mask)
        x = sfft.irfftn(g, s=shape, workers=FFT_WORKERS, overwrite_x=True)
    return x.astype(np.float32)


def reconstruct_fast(dn: np.ndarray, voxel_size_um: tuple[float, float, float],
                     medium_index: float = MEDIUM_INDEX, noise_std: float = 6e-4,
                     rng: np.random.Generator | None = None, n_iter: int = 40,
                     na: float = NA_DETECTION, na_ill: float = NA_ILLUMINATION,
                     wavelength: float = WAVELENGTH_UM, pad_z: bool = False) -> np.ndarray:
    """Band-limit Δn to the tomograph's support, add noise, fill the missing cone by GP.

    Parameters
    ----------
    dn : ndarray
        True Δn = n - n_m (z, y, x).
    noise_std : float
        Standard deviation of the noise in the reconstructed Δn (band-limited white noise).
    pad_z : bool
        Reconstruct on a volume padded with medium to twice its height, then crop. The FFT
        is periodic, so without it the top of the volume meets the bottom; in a volume barely
        taller than its cells that wipes out axial contrast (a mitotic plate filling slices
        7-26 of 32: 0.0013 above the cytoplasm without, 0.0049 with, 0.0063 true). Off by
        default: the shipped models were trained on unpadded fields. Twice the time.

    Returns
    -------
    ndarray
        Reconstructed Δn (float32), not clipped.
    """
    if pad_z:
        nz = dn.shape[0]
        padded = np.pad(np.asarray(dn, np.float32), ((0, nz), (0, 0), (0, 0)))
        return reconstruct_fast(padded, voxel_size_um, medium_index, noise_std, rng, n_iter,
                                na, na_ill, wavelength)[:nz]
    shape = tuple(int(s) for s in dn.shape)
    # n_m to 0.001 moves the support edge by < 0.01 /µm, far below the grid's frequency step,
    # and keeps the cache small when every field draws its own medium index
    mask = support_mask(shape, tuple(float(v) for v in voxel_size_um), round(medium_index, 3),
                        na, na_ill, wavelength)
    spec = sfft.rfftn(dn.astype(np.float32), workers=FFT_WORKERS)
    if noise_std > 0:
        rng = rng if rng is not None else np.random.default_rng()
        frac = max(float(mask.mean()), 1e-6)
        sigma = np.float32(noise_std / math.sqrt(frac))
        noise = rng.standard_normal(shape, dtype=np.float32) * sigma
        spec += sfft.rfftn(noise, workers=FFT_WORKERS)
    return gerchberg_papoulis(spec, mask, shape, n_iter)
