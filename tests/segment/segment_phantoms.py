"""Small synthetic cells with exact ground truth for the segmentation tests.

Cells are ellipsoids of cytoplasm (RI above the medium) around a nucleus of LOWER RI than the
cytoplasm (as in most cell lines and in the real HL60 cell), with a brighter membrane shell,
sub-resolution texture and noise; touching cells share a flat boundary (nearest-centre
split). Shapes are tiny so that every test runs in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

VS = (0.4, 0.3, 0.3)  # the working grid of the classical route: no resampling in tests


@dataclass
class Phantom:
    ri: np.ndarray
    fl: dict
    cell_labels: np.ndarray
    nucleus_labels: np.ndarray
    voxel_size_um: tuple = VS


def ellipsoid(shape, centre_um, radii_um, vs=VS):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g * v - c) / r) ** 2 for g, v, c, r in zip(grids, vs, centre_um, radii_um)) <= 1


def make_phantom(cells, shape=(20, 64, 64), seed=0, chromosomes=None, medium=1.337):
    """``cells``: list of (centre_um, cell radii_um, nucleus radii_um or None).

    ``chromosomes``: list of (cell index, list of small blob centres) replacing that cell's
    nucleus by condensed fragments (a mitotic cell).
    """
    rng = np.random.default_rng(seed)
    cell_masks = [ellipsoid(shape, c, r) for c, r, _ in cells] or [np.zeros(shape, bool)]
    # touching cells: each voxel goes to the nearest centre among the cells covering it
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist = np.stack([sum(((g * v - cc) / rr) ** 2 for g, v, cc, rr in zip(grids, VS, c, r))
                     for c, r, _ in cells] or [np.full(shape, np.inf)])
    dist[~np.stack(cell_masks)] = np.inf
    cell_labels = np.where(np.isfinite(dist.min(0)), dist.argmin(0) + 1, 0).astype(np.int32)
    nucleus_labels = np.zeros(shape, np.int32)
    for i, (c, _, nr) in enumerate(cells, start=1):
        if nr is not None:
            nucleus_labels[ellipsoid(shape, c, nr) & (cell_labels == i)] = i
    for i, blobs in chromosomes or []:
        nucleus_labels[nucleus_labels == i] = 0
        for b in blobs:
            nucleus_labels[ellipsoid(shape, b, (1.0, 0.8, 0.8)) & (cell_labels == i)] = i
    inside = cell_labels > 0
    shell = inside & ~ndi.binary_erosion(inside) | (
        ndi.morphological_gradient(cell_labels, size=2) > 0) & inside
    ri = np.full(shape, medium, np.float32)
    ri[inside] = 1.362
    ri[nucleus_labels > 0] = 1.356
    ri[shell] += 0.004
    ri += (0.003 * ndi.gaussian_filter(rng.standard_normal(shape), 1) * inside).astype(np.float32)
    ri = ndi.gaussian_filter(ri, (1.0, 0.8, 0.8)) + 0.0008 * rng.standard_normal(shape)
    fl = {
        "nucleus": ndi.gaussian_filter((nucleus_labels > 0).astype(np.float32), 1.0),
        "membrane": ndi.gaussian_filter(shell.astype(np.float32), 0.8) * 2,
    }
    for v in fl.values():
        v += 0.02 * rng.standard_normal(shape).astype(np.float32)
    return Phantom(ri.astype(np.float32), fl, cell_labels, nucleus_labels)


def sparse_classes(ph: Phantom, rng, n=400):
    """Sparse voxel labels (0 bg, 1 cytoplasm, 2 nucleus, -1 unlabelled) from the truth."""
    classes = np.where(ph.nucleus_labels > 0, 2, np.where(ph.cell_labels > 0, 1, 0))
    lab = np.full(classes.shape, -1, np.int8)
    for k in range(3):
        idx = np.flatnonzero(classes == k)
        lab.flat[rng.choice(idx, min(n, idx.size), replace=False)] = k
    return lab


def two_touching(seed=0, shape=(20, 64, 64)):
    return make_phantom([((4.0, 9.6, 6.6), (3.0, 6.0, 5.4), (2.0, 2.4, 2.4)),
                         ((4.0, 9.6, 15.6), (3.0, 6.0, 5.4), (2.0, 2.4, 2.4))],
                        shape=shape, seed=seed)
