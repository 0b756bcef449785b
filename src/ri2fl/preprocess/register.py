"""Axial registration of RI and fluorescence volumes of the same field of view.

RI and FL of one FOV are offset along z (aberrations, acquisition latency). The offset is the
peak of their cross-correlation along z at zero lateral shift. Written here because
``skimage.registration.phase_cross_correlation`` whitens the spectra (phase correlation),
which is fragile between two different contrasts, and searches lateral shifts we do not want.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..constants import CANONICAL_VOXEL_SIZE_UM

#: (y, x) columns transformed at once: bounds memory to about 1 MB per z-slice.
_COLUMNS_PER_BLOCK = 16384


def _axial_xcorr(a: np.ndarray, b: np.ndarray, max_shift: int) -> np.ndarray:
    """Normalised cross-correlation c[s] = corr(a[z + s], b[z]) for s in -max..max."""
    nz = a.shape[0]
    a = a.reshape(nz, -1)
    b = b.reshape(nz, -1)
    mean_a, mean_b = float(a.mean(dtype=np.float64)), float(b.mean(dtype=np.float64))
    n = 2 * nz  # zero padding: no wrap-around
    cross = np.zeros(n // 2 + 1, dtype=np.complex128)
    ea = np.zeros(nz)
    eb = np.zeros(nz)
    # the cross-power summed over columns equals the transform of the summed correlations,
    # so columns are processed block by block (memory independent of the lateral size)
    for start in range(0, a.shape[1], _COLUMNS_PER_BLOCK):
        block_a = a[:, start:start + _COLUMNS_PER_BLOCK].astype(np.float64) - mean_a
        block_b = b[:, start:start + _COLUMNS_PER_BLOCK].astype(np.float64) - mean_b
        fa = np.fft.rfft(block_a, n=n, axis=0)
        fb = np.fft.rfft(block_b, n=n, axis=0)
        cross += (fa * np.conj(fb)).sum(axis=1)
        ea += (block_a**2).sum(axis=1)
        eb += (block_b**2).sum(axis=1)
    cc = np.fft.irfft(cross, n=n)
    shifts = np.arange(-max_shift, max_shift + 1)
    # normalise by the energy of the overlapping slabs so that large shifts are not favoured
    out = np.empty(shifts.size)
    for i, s in enumerate(shifts):
        sa = ea[max(s, 0): nz + min(s, 0)].sum()
        sb = eb[max(-s, 0): nz - max(s, 0)].sum()
        out[i] = cc[s % n] / np.sqrt(sa * sb) if sa > 0 and sb > 0 else -np.inf
    return out


def estimate_axial_shift(ri: np.ndarray, fl: np.ndarray, max_shift_um: float = 2.0,
                         voxel_size_z_um: float = CANONICAL_VOXEL_SIZE_UM[0]) -> float:
    """Axial shift (voxels, sub-voxel) that aligns ``fl`` onto ``ri``.

    ``shift_axial(fl, estimate_axial_shift(ri, fl))`` is aligned with ``ri``.

    Parameters
    ----------
    ri, fl : ndarray
        (z, y, x) volumes on the same grid.
    max_shift_um : float
        Largest shift searched, in µm.
    voxel_size_z_um : float
        Axial voxel size, to convert ``max_shift_um`` to voxels.

    Returns
    -------
    float
        Shift in voxels along z (positive: FL content moves to higher z).
    """
    ri = np.asarray(ri)
    fl = np.asarray(fl)
    if ri.shape != fl.shape or ri.ndim != 3:
        raise ValueError(f"ri and fl must be (z, y, x) of one shape, got {ri.shape}, {fl.shape}")
    max_shift = int(min(np.ceil(max_shift_um / voxel_size_z_um), ri.shape[0] - 1))
    cc = _axial_xcorr(ri, fl, max_shift)
    i = int(np.argmax(cc))
    shift = float(i - max_shift)
    if 0 < i < cc.size - 1 and np.all(np.isfinite(cc[i - 1:i + 2])):
        # parabola through the peak and its neighbours: sub-voxel offset
        denom = cc[i - 1] - 2 * cc[i] + cc[i + 1]
        if denom < 0:
            shift += float(0.5 * (cc[i - 1] - cc[i + 1]) / denom)
    return shift


def shift_axial(array: np.ndarray, shift_voxels: float, order: int = 1) -> np.ndarray:
    """Shift ``array`` along z (axis -3) by ``shift_voxels`` (sub-voxel, edges repeated).

    ``out[z] = array[z - shift]``: a positive shift moves content to higher z.
    """
    array = np.asarray(array)
    if array.ndim < 3:
        raise ValueError(f"need (..., z, y, x), got shape {array.shape}")
    shifts = [0.0] * array.ndim
    shifts[-3] = float(shift_voxels)
    dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.float32
    return ndimage.shift(array.astype(dtype, copy=False), shifts, order=order, mode="nearest",
                         prefilter=order > 1)


def fl_to_ri_grid(fl: np.ndarray, fl_voxel_size_um, ri_shape, ri_voxel_size_um,
                  offset_z_um: float = 0.0, order: int = 1) -> np.ndarray:
    """Map a fluorescence stack onto the RI voxel grid of the same field of view.

    TCF files store FL with its own voxel size and an ``OffsetZ``: the RI z coordinate (µm)
    of FL slice 0. RI voxel ``(i, j, k)`` sits at ``(i * vz, j * vy, k * vx)`` µm; FL voxel
    ``(p, q, r)`` at ``(offset_z + p * fz, q * fy, r * fx)`` µm (same lateral origin). RI
    voxels outside the FL stack get 0.

    Parameters
    ----------
    fl : ndarray
        (..., z, y, x) fluorescence (leading axes such as channels are mapped one by one).
    fl_voxel_size_um, ri_voxel_size_um : float or (z, y, x)
        Voxel sizes of the FL stack and of the RI grid.
    ri_shape : sequence of int
        (z, y, x) shape of the RI grid.
    offset_z_um : float
        ``OffsetZ`` of the FL channel (``Volume.metadata["fl_offset_z_um"][c]`` from TCF).
    order : int
        Interpolation order (1 linear).

    Returns
    -------
    ndarray
        float32 FL on the RI grid, shape ``(..., *ri_shape)``.
    """
    from ..io import voxel_size_from

    fz, fy, fx = voxel_size_from(fl_voxel_size_um, "fl_voxel_size_um")
    rz, ry, rx = voxel_size_from(ri_voxel_size_um, "ri_voxel_size_um")
    fl = np.asarray(fl, dtype=np.float32)
    ri_shape = tuple(int(s) for s in ri_shape[-3:])
    matrix = np.array([rz / fz, ry / fy, rx / fx])
    offset = np.array([-offset_z_um / fz, 0.0, 0.0])
    flat = fl.reshape((-1, *fl.shape[-3:]))
    out = np.empty((flat.shape[0], *ri_shape), np.float32)
    for c in range(flat.shape[0]):
        out[c] = ndimage.affine_transform(flat[c], matrix, offset, output_shape=ri_shape,
                                          order=order, mode="constant", cval=0.0,
                                          prefilter=order > 1)
    return out.reshape((*fl.shape[:-3], *ri_shape))
