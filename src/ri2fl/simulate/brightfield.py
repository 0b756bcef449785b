"""Brightfield and DIC z-stacks from the refractive index (the BF2FL / DIC2FL baselines).

Partially coherent imaging by the Abbe sum over condenser source points f_s (optics.md):
I(r; z) = Σ_s |F⁻¹{P(f) · exp(2πi (z - z_f) f_z(f)) · Û_s(f)}|², with Û_s the exit field of
the beam propagation for that source referred to the focal plane z_f and P the pupil.
Nomarski DIC (Mehta & Sheppard 2008) multiplies each coherent image spectrum by
-i·sin(π (f - f_s)·Δ - φ/2) (shear Δ, bias φ) before the same sum. The planes are those of
the RI grid, so a BF / DIC stack pairs voxel for voxel with the tomogram.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from ..constants import MEDIUM_INDEX, NA_DETECTION, WAVELENGTH_UM
from . import optics
from .physical import _snap, propagate_fields

#: Condenser numerical aperture of the brightfield / DIC illumination.
CONDENSER_NA: float = 0.4


def source_points(n: int = 37, condenser_na: float = CONDENSER_NA,
                  wavelength: float = WAVELENGTH_UM) -> np.ndarray:
    """About ``n`` condenser source points (fy, fx) in cycles/µm filling the condenser disc
    (a Fermat spiral: even coverage for any ``n``)."""
    i = np.arange(n)
    r = np.sqrt((i + 0.5) / n) * condenser_na / wavelength
    a = i * math.pi * (3 - math.sqrt(5))
    return np.column_stack([r * np.sin(a), r * np.cos(a)])


def synthesize(ri: np.ndarray, voxel_size_um: tuple[float, float, float],
               medium_index: float = MEDIUM_INDEX, modalities: tuple[str, ...] = ("bf",),
               n_sources: int = 37, condenser_na: float = CONDENSER_NA,
               na: float = NA_DETECTION, wavelength: float = WAVELENGTH_UM,
               shear_um: float = 0.1, shear_angle_deg: float = 45.0,
               bias_rad: float = math.pi / 2, noise: float = 0.0,
               rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Brightfield and/or DIC z-stacks (float32, (Z, Y, X); background ≈ 1 for BF).

    Parameters
    ----------
    ri : ndarray
        True refractive index (z, y, x).
    modalities : tuple of str
        Any of "bf", "dic".
    n_sources : int
        Condenser source points of the Abbe sum (30-60 suffice).
    shear_um, shear_angle_deg, bias_rad
        DIC shear length and direction (in the xy plane, from x) and bias retardation.
    noise : float
        Standard deviation of additive Gaussian noise (relative to the BF background).
    """
    dn = (ri - np.float32(medium_index)).astype(np.float32)
    nz, ny, nx = dn.shape
    dz, dy, dx = voxel_size_um
    k = medium_index / wavelength
    fy = sfft.fftfreq(ny, dy)[:, None]
    fx = sfft.fftfreq(nx, dx)[None, :]
    f2 = fy ** 2 + fx ** 2
    fz = np.sqrt(np.maximum(k ** 2 - f2, 0.0))
    pupil = f2 <= (na / wavelength) ** 2
    z_f = 0.5 * nz * dz
    zs = np.arange(nz) * dz - z_f
    defocus = (np.exp(2j * np.pi * zs[:, None, None] * fz[None]) * pupil[None]
               ).astype(np.complex64)
    theta = math.radians(shear_angle_deg)
    shear = (shear_um * math.sin(theta), shear_um * math.cos(theta))
    out = {m: np.zeros(dn.shape, np.float32) for m in modalities}
    sources = source_points(n_sources, condenser_na, wavelength)
    for f in sources:
        f_s = (float(_snap(f[0], ny, dy)), float(_snap(f[1], nx, dx)))
        u, _ = propagate_fields(dn, voxel_size_um, f_s, medium_index, wavelength, na, z_f)
        spec = sfft.fft2(u, workers=optics.FFT_WORKERS)[None] * defocus
        if "bf" in out:
            out["bf"] += np.abs(sfft.ifft2(spec, workers=optics.FFT_WORKERS)) ** 2
        if "dic" in out:
            phase = math.pi * ((fy - f_s[0]) * shear[0] + (fx - f_s[1]) * shear[1])
            dic_filter = (-1j * np.sin(phase - bias_rad / 2)).astype(np.complex64)
            out["dic"] += np.abs(sfft.ifft2(spec * dic_filter[None],
                                            workers=optics.FFT_WORKERS)) ** 2
    rng = rng if rng is not None else np.random.default_rng()
    for m in out:
        out[m] /= np.float32(len(sources))
        if noise > 0:
            out[m] += rng.standard_normal(out[m].shape, dtype=np.float32) * np.float32(noise)
    return out
