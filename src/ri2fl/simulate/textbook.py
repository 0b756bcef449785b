"""Textbook cells: a dome on the dish with a darker nucleus, blurred by a Gaussian.

A test of generalisation written apart from the training phantoms
(:mod:`ri2fl.simulate.phantoms`) and without the tomograph (issue #30): one cell as a
textbook draws it. A dome of RI 1.36 on the dish in medium of 1.337, an ellipsoidal nucleus
0.005-0.008 darker than the cytoplasm, one bright nucleolus and six lipid droplets; the RI is
blurred by an anisotropic Gaussian (σ 0.4 µm axial, 0.12 µm lateral) and carries white
noise of 5e-4. The fluorescence targets are the simulator's densities (see
:mod:`ri2fl.simulate.fov`) with brightness 1 and textures at their mean, blurred by the
simulator's residual PSF (:func:`ri2fl.simulate.fluorescence.blur`), without noise.

Examples
--------
>>> cell = textbook_cell(seed=0)                        # doctest: +SKIP
>>> cell.ri.shape, sorted(cell.masks)                   # doctest: +SKIP
>>> write_textbook_set("textbook", n=4)                 # doctest: +SKIP
>>> # then: ri2fl evaluate --data textbook/manifest.csv --model default
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..constants import CANONICAL_VOXEL_SIZE_UM, MEDIUM_INDEX
from ..errors import ConfigError
from ..io.paired import PairedSample, write_paired
from .fluorescence import blur
from .phantoms import occupancy

#: Field (z, y, x) voxels of a textbook cell unless told otherwise.
DEFAULT_SHAPE: tuple[int, int, int] = (32, 160, 160)

#: Thickness (µm) of the membrane shell inside the cell surface (the simulator's).
SHELL_UM: float = 0.3

Sdf = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TextbookParams:
    """Geometry and refractive indices of one textbook cell (lengths in µm).

    The dome is the upper half of an ellipsoid standing on the dish at ``z_base_um`` in the
    middle of the field; its lateral semi-axes are ``dome_radius_um`` times
    sqrt(``elongation``) and divided by it, turned by ``angle`` (rad) in the yx plane.
    """

    dome_radius_um: float
    dome_height_um: float
    elongation: float
    angle: float
    nucleus_contrast: float
    nucleus_fraction: float
    nucleolus_radius_um: float
    cell_index: float = 1.36
    nucleolus_index: float = 1.372
    droplet_radii_um: tuple[float, ...] = ()
    droplet_indices: tuple[float, ...] = ()
    z_base_um: float = 0.9  # between two slices: the bottom slice is wholly cell
    blur_sigma_um: tuple[float, float] = (0.4, 0.12)
    noise_std: float = 5e-4


@dataclass
class TextbookCell:
    """One textbook cell; arrays (z, y, x) on the canonical grid.

    Attributes
    ----------
    ri : ndarray
        Blurred, noisy RI (float32, not clipped): what a model is given.
    ri_true : ndarray
        RI before blur and noise.
    fl : dict
        "nucleus", "nucleolus", "lipid_droplets", "membrane" -> blurred true fluorescence
        (float32, fixed scale of about [0, 1]).
    masks : dict
        "membrane" (the whole cell, as in the simulator and :mod:`ri2fl.segment`),
        "nucleus", "nucleolus", "lipid_droplets" -> bool.
    """

    ri: np.ndarray
    ri_true: np.ndarray
    fl: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    params: TextbookParams
    seed: int
    voxel_size_um: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM
    medium_index: float = MEDIUM_INDEX
    droplet_centers_um: list[np.ndarray] = field(default_factory=list)

    def to_paired(self) -> PairedSample:
        """This cell as a :class:`ri2fl.io.PairedSample` (for ``ri2fl.io.write_paired``)."""
        attrs: dict[str, Any] = {"cell_type": "textbook", "seed": int(self.seed),
                                 "physics": "textbook", "simulator": "ri2fl.simulate.textbook"}
        for k, v in asdict(self.params).items():
            attrs[k] = np.asarray(v, np.float64) if isinstance(v, tuple) else v
        return PairedSample(ri=self.ri, fl=dict(self.fl), voxel_size_um=self.voxel_size_um,
                            medium_index=self.medium_index, masks=dict(self.masks),
                            cell_labels=self.masks["membrane"].astype(np.int32),
                            nucleus_labels=self.masks["nucleus"].astype(np.int32),
                            extra={"ri_true": self.ri_true}, attrs=attrs)


def draw_params(rng: np.random.Generator, shape: tuple[int, int, int] = DEFAULT_SHAPE,
                voxel_size_um: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM,
                n_droplets: int = 6, **fixed: Any) -> TextbookParams:
    """Draw the parameters of a textbook cell that fits a field of ``shape``.

    Parameters
    ----------
    rng : Generator
        Source of the random draws.
    shape, voxel_size_um
        The field; the dome is kept 0.8 µm under its top and inside 84 % of its width.
    n_droplets : int
        Number of lipid droplets (radius 0.3-0.6 µm, RI 1.40-1.46).
    **fixed
        Fields of :class:`TextbookParams` to set instead of drawing (e.g.
        ``nucleus_contrast=-0.006``).

    Returns
    -------
    TextbookParams
        Dome radius 6-9 µm, height 3.5-5 µm, elongation 1-1.4, nucleus contrast -0.008 to
        -0.005, nucleus semi-axes 0.4-0.55 of the dome's, nucleolus radius 0.6-0.9 µm.
    """
    lz, ly, lx = (n * v for n, v in zip(shape, voxel_size_um))
    z_base = float(fixed.get("z_base_um", 0.9))
    if lz - z_base - 0.8 < 3.0 or min(ly, lx) < 15.0:
        raise ConfigError(f"a field of {shape} voxels is too small for a textbook cell",
                          "shape", "give at least 4.7 µm over 15 x 15 µm, e.g. 32 160 160")
    elong = float(rng.uniform(1.0, 1.4))
    drawn = {
        "dome_radius_um": min(float(rng.uniform(6.0, 9.0)),
                              0.42 * min(ly, lx) / math.sqrt(elong)),
        "dome_height_um": min(float(rng.uniform(3.5, 5.0)), lz - z_base - 0.8),
        "elongation": elong,
        "angle": float(rng.uniform(0, np.pi)),
        "nucleus_contrast": float(rng.uniform(-0.008, -0.005)),
        "nucleus_fraction": float(rng.uniform(0.4, 0.55)),
        "nucleolus_radius_um": float(rng.uniform(0.6, 0.9)),
        "droplet_radii_um": tuple(float(r) for r in rng.uniform(0.3, 0.6, n_droplets)),
        "droplet_indices": tuple(float(n) for n in rng.uniform(1.40, 1.46, n_droplets)),
    }
    drawn.update(fixed)
    return TextbookParams(**drawn)


def ellipsoid_sdf(center: np.ndarray, axes: np.ndarray, angle: float) -> Sdf:
    """First-order signed distance (µm, negative inside) to an ellipsoid.

    ``axes`` are the (z, y, x) semi-axes before the turn by ``angle`` in the yx plane; the
    returned function takes (z, y, x) coordinates that broadcast against each other.
    """
    c, s = math.cos(angle), math.sin(angle)
    a = np.asarray(axes, np.float64)

    def sdf(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        dy, dx = y - center[1], x - center[2]
        w = (z - center[0]) / a[0]
        v = (c * dy - s * dx) / a[1]
        u = (s * dy + c * dx) / a[2]
        q = np.sqrt(u ** 2 + v ** 2 + w ** 2)
        grad = np.sqrt((u / a[2]) ** 2 + (v / a[1]) ** 2 + (w / a[0]) ** 2)
        return ((q - 1.0) / np.maximum(grad / np.maximum(q, 1e-3), 1.0 / a.max())
                ).astype(np.float32)

    return sdf


def _dome(p: TextbookParams, center: np.ndarray) -> Sdf:
    """Signed distance to the dome: the ellipsoid cut by the dish (z >= z_base)."""
    r, e = p.dome_radius_um, math.sqrt(p.elongation)
    half = ellipsoid_sdf(center, np.array([p.dome_height_um, r / e, r * e]), p.angle)
    return lambda z, y, x: np.maximum(half(z, y, x), np.float32(p.z_base_um) - z)


def _nucleus(p: TextbookParams, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and (z, y, x) semi-axes of the nucleus: low in the dome, under its middle."""
    r, e = p.dome_radius_um, math.sqrt(p.elongation)
    c = max(0.3 * p.dome_height_um, 0.8)
    axes = np.array([c, p.nucleus_fraction * r / e, p.nucleus_fraction * r * e])
    return np.array([p.z_base_um + 0.4 + c, center[1], center[2]]), axes


def _place_droplets(p: TextbookParams, dome: Sdf, nucleus: Sdf, center: np.ndarray,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """Centres of the droplets: in the cytoplasm, apart from the nucleus and each other."""
    reach = p.dome_radius_um * math.sqrt(p.elongation)
    placed: list[np.ndarray] = []
    for radius in p.droplet_radii_um:
        for _ in range(2000):
            q = center + rng.uniform(-1, 1, 3) * np.array([p.dome_height_um, reach, reach])
            q[0] = p.z_base_um + abs(q[0] - center[0])
            if (dome(*q) < -(radius + 0.3) and nucleus(*q) > radius + 0.3
                    and all(np.linalg.norm(q - o) > radius + 0.9 for o in placed)):
                placed.append(q)
                break
        else:
            raise ConfigError(f"no room for {len(p.droplet_radii_um)} droplets in this dome",
                              "n_droplets", "fewer droplets or a larger dome")
    return placed


def _sphere(axes3: tuple[np.ndarray, ...], center: np.ndarray, radius: float,
            h: float) -> np.ndarray:
    z, y, x = axes3
    d = np.sqrt((z - center[0]) ** 2 + (y - center[1]) ** 2 + (x - center[2]) ** 2) - radius
    return occupancy(d, h)


def _occupancies(p: TextbookParams, shape: tuple[int, int, int],
                 voxel: tuple[float, float, float],
                 rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Partial-volume occupancy of cell, membrane shell, nucleus, nucleolus and droplets."""
    axes3 = tuple((np.arange(n) * v).reshape([-1 if i == a else 1 for i in range(3)])
                  for a, (n, v) in enumerate(zip(shape, voxel)))
    h = float(np.prod(voxel) ** (1 / 3))
    center = np.array([p.z_base_um, shape[1] * voxel[1] / 2, shape[2] * voxel[2] / 2])
    dome = _dome(p, center)
    d_cell = dome(*axes3)
    nuc_center, nuc_axes = _nucleus(p, center)
    nucleus = ellipsoid_sdf(nuc_center, nuc_axes, p.angle)
    occ = {"cell": occupancy(d_cell, h), "shell": occupancy(d_cell, h)
           - occupancy(d_cell + np.float32(SHELL_UM), h),
           # the nucleus stays 0.5 µm inside the cell surface whatever the draw
           "nucleus": np.minimum(occupancy(nucleus(*axes3), h),
                                 occupancy(d_cell + np.float32(0.5), h))}
    room = np.maximum(nuc_axes - p.nucleolus_radius_um - 0.3, 0.0)  # the nucleolus fits
    room[1:] = room[1:].min()  # whatever the turn
    nucleolus_center = nuc_center + rng.uniform(-0.5, 0.5, 3) * room
    occ["nucleolus"] = np.minimum(
        _sphere(axes3, nucleolus_center, p.nucleolus_radius_um, h), occ["nucleus"])
    centers = _place_droplets(p, dome, nucleus, center, rng)
    occ["droplets"] = [_sphere(axes3, c, r, h) for c, r in zip(centers, p.droplet_radii_um)]
    return occ, centers


def _true_dn(p: TextbookParams, occ: dict[str, Any], medium_index: float) -> np.ndarray:
    """Δn of the cell: cytoplasm, nucleus darker by the contrast, nucleolus and droplets."""
    cyto = np.float32(p.cell_index - medium_index)
    dn = occ["cell"] * cyto
    dn += occ["nucleus"] * np.float32(p.nucleus_contrast)
    dn += occ["nucleolus"] * (np.float32(p.nucleolus_index - medium_index) - dn)
    for d, n in zip(occ["droplets"], p.droplet_indices):
        dn += d * (np.float32(n - medium_index) - dn)
    return dn.astype(np.float32)


def _blur_ri(dn: np.ndarray, p: TextbookParams, voxel: tuple[float, float, float],
             rng: np.random.Generator) -> np.ndarray:
    """The plain microscope: anisotropic Gaussian blur of Δn plus white noise."""
    sz, sl = p.blur_sigma_um
    sigma = (sz / voxel[0], sl / voxel[1], sl / voxel[2])
    out = ndimage.gaussian_filter(dn, sigma, mode="constant").astype(np.float32)
    out += rng.standard_normal(dn.shape, dtype=np.float32) * np.float32(p.noise_std)
    return out


def _targets(occ: dict[str, Any], voxel: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """The simulator's fluorescence densities (brightness 1, textures at their mean), blurred.

    As :class:`ri2fl.simulate.fov` paints them: nucleus 0.75 x (1 - 0.65 nucleolus), the
    membrane shell, droplet and nucleolus occupancies.
    """
    droplets = np.max(occ["droplets"], axis=0) if occ["droplets"] else np.zeros_like(occ["cell"])
    dens = {"membrane": occ["shell"], "lipid_droplets": np.minimum(droplets, occ["cell"]),
            "nucleus": 0.75 * occ["nucleus"] * (1 - 0.65 * occ["nucleolus"]),
            "nucleolus": occ["nucleolus"]}
    return {k: np.clip(blur(v, voxel), 0, None).astype(np.float32) for k, v in dens.items()}


def textbook_cell(seed: int = 0, shape: tuple[int, int, int] = DEFAULT_SHAPE, *,
                  medium_index: float = MEDIUM_INDEX, params: TextbookParams | None = None,
                  **fixed: Any) -> TextbookCell:
    """One textbook cell on the canonical grid (0.2 x 0.15 x 0.15 µm).

    Parameters
    ----------
    seed : int
        Seed of the drawn parameters, the placement of nucleolus and droplets, and the noise.
    shape : tuple of int
        (z, y, x) voxels of the field.
    medium_index : float
        RI of the medium.
    params : TextbookParams, optional
        All parameters at once (default: :func:`draw_params` from ``seed``).
    **fixed
        Parameters to set instead of drawing, as in :func:`draw_params` (also ``n_droplets``).

    Returns
    -------
    TextbookCell
        RI, true RI, blurred true fluorescence, true masks and the parameters used.
    """
    voxel = CANONICAL_VOXEL_SIZE_UM
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng([int(seed), 30])
    if params is None:
        params = draw_params(rng, shape, voxel, **fixed)
    elif fixed:
        params = replace(params, **fixed)
    occ, centers = _occupancies(params, shape, voxel, rng)
    dn = _true_dn(params, occ, medium_index)
    m = np.float32(medium_index)
    cell = occ["cell"] > 0.5
    droplets = np.max(occ["droplets"], axis=0) if occ["droplets"] else np.zeros_like(dn)
    masks = {"membrane": cell, "nucleus": occ["nucleus"] > 0.5,
             "nucleolus": (occ["nucleolus"] > 0.5) & (occ["nucleus"] > 0.5),
             "lipid_droplets": (droplets > 0.5) & cell}
    return TextbookCell(ri=m + _blur_ri(dn, params, voxel, rng), ri_true=m + dn,
                        fl=_targets(occ, voxel), masks=masks, params=params, seed=int(seed),
                        voxel_size_um=voxel, medium_index=float(medium_index),
                        droplet_centers_um=centers)


def write_textbook_set(out_dir: str | Path, n: int = 4, seed: int = 0,
                       shape: tuple[int, int, int] = DEFAULT_SHAPE, *,
                       overwrite: bool = False, **fixed: Any) -> Path:
    """Write ``n`` textbook cells as paired files with a ``manifest.csv``.

    Parameters
    ----------
    out_dir : path
        Output folder; gets ``textbook_<i>.h5`` (written by :func:`ri2fl.io.write_paired`)
        and ``manifest.csv`` (path, cell_type ``textbook``, seed, split ``test``), so that
        ``ri2fl evaluate --data <out_dir>/manifest.csv`` scores a model on them.
    n : int
        Number of cells; cell *i* has seed ``seed + i``.
    shape : tuple of int
        (z, y, x) voxels of each field.
    overwrite : bool
        Replace files that ri2fl wrote earlier.
    **fixed
        Parameters set for every cell (see :func:`textbook_cell`).

    Returns
    -------
    Path
        The manifest.
    """
    from .._atomic import atomic_path

    out = Path(out_dir)
    rows = []
    for i in range(int(n)):
        cell = textbook_cell(seed + i, shape, **fixed)
        name = f"textbook_{i:03d}.h5"
        write_paired(out / name, cell.to_paired(), overwrite=overwrite)
        rows.append({"path": name, "cell_type": "textbook", "seed": seed + i, "split": "test"})
    manifest = out / "manifest.csv"
    with atomic_path(manifest, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "cell_type", "seed", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest
