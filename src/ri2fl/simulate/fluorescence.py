"""Fluorescence ground truth as a widefield-deconvolved microscope records it.

Per-target densities (mask x brightness x texture, built in :mod:`ri2fl.simulate.fov`) are
blurred by the residual PSF of a deconvolved widefield microscope (Gaussian approximation),
optionally bleached, mixed (bleed-through), shifted along z (RI/FL misregistration) and
corrupted by Poisson and Gaussian noise. Intensities stay on a fixed scale where a fully
stained, fully bright voxel reads about 1: nothing is normalised per volume.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: FWHM (µm) of the residual PSF after widefield deconvolution, (axial, lateral).
PSF_FWHM_UM: tuple[float, float] = (0.7, 0.25)

#: Photons collected from a voxel of intensity 1 (sets the Poisson noise).
PHOTONS_AT_ONE: float = 400.0

#: Standard deviation of the additive (camera / background) noise on the [0, 1] scale.
READ_NOISE: float = 0.006


def psf_sigma_vox(voxel_size_um: tuple[float, float, float],
                  fwhm_um: tuple[float, float] = PSF_FWHM_UM) -> tuple[float, float, float]:
    """Gaussian sigma of the residual PSF in voxels (z, y, x)."""
    k = 2 * math.sqrt(2 * math.log(2))
    return (fwhm_um[0] / k / voxel_size_um[0], fwhm_um[1] / k / voxel_size_um[1],
            fwhm_um[1] / k / voxel_size_um[2])


def blur(density: np.ndarray, voxel_size_um: tuple[float, float, float],
         fwhm_um: tuple[float, float] = PSF_FWHM_UM) -> np.ndarray:
    """Blur a density by the residual PSF (separable Gaussian, float32).

    Only the bounding box of the non-zero density (plus the kernel's reach) is filtered:
    with zero padding that is exactly the full result, and sparse targets (droplets,
    nucleoli) cost a fraction.
    """
    density = density.astype(np.float32, copy=False)
    sigma = psf_sigma_vox(voxel_size_um, fwhm_um)
    out = np.zeros_like(density)
    box = []
    for axis, s in enumerate(sigma):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(density.any(axis=other))
        if idx.size == 0:
            return out
        reach = int(3.0 * s + 0.5) + 1
        box.append(slice(max(idx[0] - reach, 0), min(idx[-1] + reach + 1, density.shape[axis])))
    box = tuple(box)
    out[box] = ndimage.gaussian_filter(density[box], sigma, truncate=3.0, mode="constant")
    return out


def bleach_factor(frame: int, half_life_frames: float | None) -> float:
    """Remaining fraction of fluorophores after ``frame`` exposures (exponential bleaching)."""
    if not half_life_frames or half_life_frames <= 0:
        return 1.0
    return float(0.5 ** (frame / half_life_frames))


def add_noise(image: np.ndarray, rng: np.random.Generator,
              photons_at_one: float = PHOTONS_AT_ONE, read_noise: float = READ_NOISE
              ) -> np.ndarray:
    """Shot noise (``photons_at_one`` photons for intensity 1) plus Gaussian noise.

    Shot noise uses the Gaussian approximation of the Poisson law (variance = mean), exact
    enough at tens of photons and far faster than drawing Poisson variates.
    """
    img = np.maximum(image, np.float32(0), dtype=np.float32)
    std = np.sqrt(img * np.float32(1.0 / photons_at_one) + np.float32(read_noise ** 2))
    noisy = rng.standard_normal(img.shape, dtype=np.float32)
    noisy *= std
    noisy += img
    return np.maximum(noisy, np.float32(0), out=noisy)


def shift_z(image: np.ndarray, shift_vox: float) -> np.ndarray:
    """Shift along z by a (sub-)voxel amount with linear interpolation (edge values kept)."""
    if shift_vox == 0:
        return image
    return ndimage.shift(image, (shift_vox, 0, 0), order=1, mode="nearest").astype(np.float32)


def record(densities: dict[str, np.ndarray], voxel_size_um: tuple[float, float, float],
           rng: np.random.Generator, *, bleach: float = 1.0, noise: bool = True,
           shift_z_um: float = 0.0, bleed_through: float = 0.0,
           order: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Turn per-target densities into recorded fluorescence volumes.

    Parameters
    ----------
    densities : dict
        Target -> fluorophore density on the RI grid (fixed scale, about [0, 1]).
    bleach : float
        Fraction of fluorophores left (1: none bleached).
    noise : bool
        Add Poisson and Gaussian noise.
    shift_z_um : float
        Axial RI/FL misregistration applied to every channel.
    bleed_through : float
        Fraction of each channel leaking into the next one in ``order`` (spectral neighbours).
    """
    names = list(order or densities)
    out = {n: blur(densities[n], voxel_size_um) for n in names}
    if bleach != 1.0:
        for n in names:
            out[n] *= np.float32(bleach)
    if bleed_through > 0:
        leaked = {n: out[n] + np.float32(bleed_through) * out[names[i - 1]]
                  for i, n in enumerate(names) if i > 0}
        out.update(leaked)
    for n in names:
        img = shift_z(out[n], shift_z_um / voxel_size_um[0])
        out[n] = add_noise(img, rng) if noise else np.clip(img, 0, None).astype(np.float32)
    return out
