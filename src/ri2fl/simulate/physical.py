"""The physical tomograph: multi-slice beam propagation, Rytov phase, Fourier mapping, GP.

For each of 49 illuminations (one normal, 48 on a ring at NA_ill; configurable) a plane wave
crosses the phantom slice by slice (Kamilov et al. 2016 split-step: a phase screen
exp(i k0 (n_j - n_m) Δz / cos θ_in), then free propagation over Δz in the medium). The exit
field is propagated back to the focal plane and low-passed by the pupil |f| ≤ NA/λ. Its
complex Rytov phase ψ = ln|u/u0| + i·unwrap(arg(u/u0)) is mapped onto the Ewald cap of that
illumination, V̂(K) = 2i·2π f_out,z · Ψ̂(K⊥) · exp(-2πi K_z z_ref) (Sung et al. 2009), on a
grid padded 2x along z; the scattering potential V = -k0²(n² - n_m²) is inverted to Δn and the
unmeasured frequencies are filled by Gerchberg-Papoulis non-negativity (Lim et al. 2015).
Pitfalls handled (optics.md): the z_ref phase uses the voxel-rounded K_z, the DFT origin is
index 0, and oblique beams carry the 1/cos θ_in factor.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
from skimage.restoration import unwrap_phase

from ..constants import MEDIUM_INDEX, NA_DETECTION, NA_ILLUMINATION, WAVELENGTH_UM
from . import optics


def illumination_angles(n: int = 49, na_ill: float = NA_ILLUMINATION,
                        wavelength: float = WAVELENGTH_UM) -> np.ndarray:
    """Lateral frequencies (fy, fx) in cycles/µm: one normal beam and ``n - 1`` on a ring."""
    ring = n - 1
    phi = 2 * np.pi * np.arange(ring) / max(ring, 1)
    r = na_ill / wavelength
    pts = np.column_stack([r * np.sin(phi), r * np.cos(phi)])
    return np.vstack([[0.0, 0.0], pts])


def propagate_fields(dn: np.ndarray, voxel_size_um: tuple[float, float, float],
                     f_in: tuple[float, float], medium_index: float = MEDIUM_INDEX,
                     wavelength: float = WAVELENGTH_UM, na: float = NA_DETECTION,
                     z_focus_um: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Field after the phantom, referred to the focal plane, through the pupil.

    Returns ``(u, u0)``: the sample field and the empty-medium reference (complex64, (Y, X)).
    ``f_in`` must lie on the lateral frequency grid (periodic plane wave).
    """
    nz, ny, nx = dn.shape
    dz, dy, dx = voxel_size_um
    k = medium_index / wavelength
    k0 = 2 * np.pi / wavelength
    fy = sfft.fftfreq(ny, dy)[:, None]
    fx = sfft.fftfreq(nx, dx)[None, :]
    f2 = (fy + 0 * fx) ** 2 + fx ** 2
    fz = np.sqrt(np.maximum(k ** 2 - f2, 0.0))
    kernel = np.where(f2 < k ** 2, np.exp(2j * np.pi * dz * fz), 0).astype(np.complex64)
    fz_in = math.sqrt(k ** 2 - f_in[0] ** 2 - f_in[1] ** 2)
    cos_in = fz_in / k
    y = (np.arange(ny) * dy)[:, None]
    x = (np.arange(nx) * dx)[None, :]
    carrier = np.exp(2j * np.pi * (f_in[0] * y + f_in[1] * x)).astype(np.complex64)
    u = carrier.copy()
    screen_scale = np.float32(k0 * dz / cos_in)
    for j in range(nz):
        u *= np.exp(1j * screen_scale * dn[j]).astype(np.complex64)
        u = sfft.ifft2(sfft.fft2(u, workers=optics.FFT_WORKERS) * kernel,
                       workers=optics.FFT_WORKERS)
    z_exit = nz * dz
    z_f = 0.5 * z_exit if z_focus_um is None else z_focus_um
    back = np.where(f2 < k ** 2, np.exp(-2j * np.pi * (z_exit - z_f) * fz), 0)
    pupil = f2 <= (na / wavelength) ** 2
    u = sfft.ifft2(sfft.fft2(u, workers=optics.FFT_WORKERS) * back * pupil,
                   workers=optics.FFT_WORKERS).astype(np.complex64)
    u0 = (carrier * np.exp(2j * np.pi * fz_in * z_f)).astype(np.complex64)
    return u, u0


def born_field(u: np.ndarray, u0: np.ndarray) -> np.ndarray:
    """First Born: the scattered field u/u0 - 1 in place of the Rytov phase (no unwrapping;
    equal to it while the phase is small)."""
    return (u / u0 - 1).astype(np.complex64)


def rytov_phase(u: np.ndarray, u0: np.ndarray) -> np.ndarray:
    """Complex Rytov phase ψ = ln|u/u0| + i·unwrap(arg(u/u0))."""
    ratio = u / u0
    amp = np.log(np.maximum(np.abs(ratio), 1e-6))
    phase = unwrap_phase(np.angle(ratio).astype(np.float64))
    return (amp + 1j * phase).astype(np.complex64)


def map_to_ewald(psi: np.ndarray, f_in: tuple[float, float], spectrum: np.ndarray,
                 counts: np.ndarray, voxel_size_um: tuple[float, float, float],
                 z_ref_um: float, medium_index: float = MEDIUM_INDEX,
                 wavelength: float = WAVELENGTH_UM, na: float = NA_DETECTION) -> None:
    """Add the scattering potential spectrum measured by one illumination to ``spectrum``.

    ``spectrum`` is a (Zp, Y, X) DFT grid (origin at index 0); ``counts`` tallies entries.
    """
    zp, ny, nx = spectrum.shape
    dz, dy, dx = voxel_size_um
    k = medium_index / wavelength
    qy = sfft.fftfreq(ny, dy)[:, None]
    qx = sfft.fftfreq(nx, dx)[None, :]
    oy, ox = qy + f_in[0], qx + f_in[1]
    out2 = oy ** 2 + ox ** 2
    valid = out2 <= (na / wavelength) ** 2
    fz_out = np.sqrt(np.maximum(k ** 2 - out2, 0.0))
    fz_in = math.sqrt(k ** 2 - f_in[0] ** 2 - f_in[1] ** 2)
    kz = fz_out - fz_in
    kz_idx = np.round(kz * zp * dz).astype(np.int64)
    kz_r = kz_idx / (zp * dz)  # voxel-rounded K_z for the reference phase
    psi_hat = sfft.fft2(psi, workers=optics.FFT_WORKERS)
    value = (2j * 2 * np.pi * fz_out * psi_hat * np.exp(-2j * np.pi * kz_r * z_ref_um) / dz)
    iy, ix = np.nonzero(valid)
    iz = np.mod(kz_idx[iy, ix], zp)
    np.add.at(spectrum, (iz, iy, ix), value[iy, ix].astype(np.complex64))
    np.add.at(counts, (iz, iy, ix), 1)


def _snap(f: np.ndarray, n: int, d: float) -> np.ndarray:
    step = 1.0 / (n * d)
    return np.round(f / step) * step


def reconstruct_physical(dn: np.ndarray, voxel_size_um: tuple[float, float, float],
                         medium_index: float = MEDIUM_INDEX, noise_std: float = 6e-4,
                         rng: np.random.Generator | None = None, n_illuminations: int = 49,
                         n_iter: int = 40, na: float = NA_DETECTION,
                         na_ill: float = NA_ILLUMINATION, wavelength: float = WAVELENGTH_UM,
                         field_noise: float | None = None,
                         approximation: str = "rytov") -> np.ndarray:
    """Simulate the measurement of ``dn`` and reconstruct it (Δn, float32, unclipped).

    Parameters
    ----------
    dn : ndarray
        True Δn = n - n_m (z, y, x).
    noise_std : float
        Sets the complex field noise (``field_noise`` = 20·noise_std relative to the
        incident amplitude, giving a reconstructed-RI noise of the same order) when
        ``field_noise`` is not given.
    n_illuminations : int
        Number of beams (one normal plus a ring at ``na_ill``).
    approximation : {"rytov", "born"}
        What each field is mapped as: the complex Rytov phase (default), or the first Born
        scattered field u/u0 - 1 (:func:`born_field`), which underestimates cells whose
        phase delay is not small.
    """
    rng = rng if rng is not None else np.random.default_rng()
    field_noise = 20 * noise_std if field_noise is None else field_noise
    nz, ny, nx = dn.shape
    dz, dy, dx = voxel_size_um
    zp = 2 * nz
    k0 = 2 * np.pi / wavelength
    dn32 = dn.astype(np.float32)
    spectrum = np.zeros((zp, ny, nx), np.complex64)
    counts = np.zeros((zp, ny, nx), np.int32)
    z_f = 0.5 * nz * dz
    for f in illumination_angles(n_illuminations, na_ill, wavelength):
        f_in = (float(_snap(f[0], ny, dy)), float(_snap(f[1], nx, dx)))
        u, u0 = propagate_fields(dn32, voxel_size_um, f_in, medium_index, wavelength, na, z_f)
        if field_noise > 0:
            u = u + (field_noise * (rng.standard_normal(u.shape)
                                    + 1j * rng.standard_normal(u.shape))
                     * np.abs(u0).mean() / math.sqrt(2)).astype(np.complex64)
        psi = born_field(u, u0) if approximation == "born" else rytov_phase(u, u0)
        map_to_ewald(psi, f_in, spectrum, counts, voxel_size_um, z_f,
                     medium_index, wavelength, na)
    measured = counts > 0
    spectrum[measured] /= counts[measured]
    # V = -k0²(n² - n_m²) -> linear Δn estimate, Hermitian part (Δn is real)
    dn_lin_hat = -spectrum / np.float32(2 * k0 ** 2 * medium_index)
    x = np.real(sfft.ifftn(dn_lin_hat, workers=optics.FFT_WORKERS)).astype(np.float32)
    mask = measured | np.roll(np.flip(measured, axis=(0, 1, 2)), 1, axis=(0, 1, 2))
    meas = sfft.rfftn(x, workers=optics.FFT_WORKERS)
    half = mask[..., : nx // 2 + 1]
    x = optics.gerchberg_papoulis(meas * half, half, (zp, ny, nx), n_iter)
    # exact inversion of V: n = sqrt(n_m² + 2 n_m Δn_lin)
    n = np.sqrt(np.maximum(medium_index ** 2 + 2 * medium_index * x[:nz], 0.0))
    return (n - medium_index).astype(np.float32)
