"""Fields of view: several cells on a coverslip, seen by the tomograph and the fluorescence
microscope, with every ground truth (true RI, six targets, masks, instance labels)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.fft as sfft

from ..constants import CANONICAL_VOXEL_SIZE_UM, RI_CLIP, TARGETS
from ..errors import ConfigError
from ..io.paired import PairedSample
from . import fluorescence, optics
from .domain import ImagingDomain, resolve_domain
from .domain import measure as measure_in_domain
from .phantoms import (
    CELL_TYPES,
    FAMILIES,
    PROCEDURAL,
    VARIANTS,
    CellMaps,
    CellSpec,
    FamilyParams,
    cell_bbox,
    conc_to_dn,
    make_cell,
    render_cell,
)

PHYSICS = ("fast", "physical", "none")
MODALITIES = ("bf", "dic")

#: Probability that a field holds a touching cluster, per family.
CLUSTER_P = {"epithelial": 0.5, "hek293": 0.6, "hepatocyte": 0.5, "macrophage": 0.3}


@dataclass
class SimulatedFOV:
    """One simulated field of view; all arrays (z, y, x) on the RI grid.

    Attributes
    ----------
    ri : ndarray
        Reconstructed RI as the tomograph gives it, clipped to ``RI_CLIP`` (float32).
    ri_true : ndarray
        True RI (float32), n = n_m + α·C.
    fl : dict
        Target -> recorded fluorescence (float32, fixed scale of about [0, 1]).
    masks : dict
        "nucleus", "nucleolus", "membrane" (whole cell), "lipid_droplets" -> bool.
    cell_labels, nucleus_labels : ndarray
        int32 instance labels; a nucleus carries the label of its cell (so binucleate cells
        have two nuclei with one label).
    bf, dic : ndarray or None
        Brightfield / DIC z-stacks when requested through ``modalities``.
    """

    ri: np.ndarray
    ri_true: np.ndarray
    fl: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    cell_labels: np.ndarray
    nucleus_labels: np.ndarray
    voxel_size_um: tuple[float, float, float]
    medium_index: float
    cell_type: str
    seed: int
    physics: str = "fast"
    bf: np.ndarray | None = None
    dic: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.ri.shape)

    def to_paired(self) -> PairedSample:
        """This field as a :class:`ri2fl.io.PairedSample` (for ``ri2fl.io.write_paired``)."""
        extra = {"ri_true": self.ri_true}
        if self.bf is not None:
            extra["bf"] = self.bf
        if self.dic is not None:
            extra["dic"] = self.dic
        attrs = {"cell_type": self.cell_type, "seed": int(self.seed), "physics": self.physics,
                 "simulator": "ri2fl.simulate"}
        for k, v in self.metadata.items():
            if isinstance(v, (int, float, str, bool, np.integer, np.floating)):
                attrs[k] = v
            elif isinstance(v, (list, tuple)) and all(isinstance(x, int) for x in v):
                attrs[k] = np.asarray(v, np.int64)
        return PairedSample(ri=self.ri, fl=dict(self.fl), voxel_size_um=self.voxel_size_um,
                            medium_index=self.medium_index, masks=dict(self.masks),
                            cell_labels=self.cell_labels, nucleus_labels=self.nucleus_labels,
                            extra=extra, attrs=attrs)


# ---------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------
def check_args(cell_type: str, shape: tuple[int, ...], physics: str,
               modalities: tuple[str, ...] = ()) -> tuple[int, int, int]:
    """Validate user-facing options; returns the shape as a tuple of ints."""
    if cell_type not in (*CELL_TYPES, PROCEDURAL):
        raise ConfigError(f"unknown cell type {cell_type!r}", "cell_type",
                          f"choose one of {', '.join((*CELL_TYPES, PROCEDURAL))}")
    if physics not in PHYSICS:
        raise ConfigError(f"unknown physics {physics!r}", "physics",
                          "choose 'fast' (default) or 'physical'")
    bad = [m for m in modalities if m not in MODALITIES]
    if bad:
        raise ConfigError(f"unknown modalities {bad}", "modalities", "choose from bf, dic")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ConfigError(f"shape must be three sizes (z, y, x) of at least 8, got {shape}",
                          "shape")
    return shape


def layout_cells(cell_type: str, rng: np.random.Generator, shape: tuple[int, int, int],
                 voxel: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM,
                 n_cells: int | None = None, variant: str | None = None,
                 cluster: bool | None = None, edge: bool | None = None,
                 params: FamilyParams | None = None) -> list[CellSpec]:
    """Place cells of ``cell_type`` in a field of ``shape``.

    The first cell sits near the centre and takes ``variant`` ("normal", "mitotic",
    "binucleate"; None: random). ``cluster`` puts touching neighbours around it, ``edge`` puts
    one cell across the field border; both also happen at random when None. ``params``
    replaces the family's ranges.
    """
    fp = FAMILIES[cell_type] if params is None else params
    lz, ly, lx = (n * v for n, v in zip(shape, voxel))
    z_base = min(rng.uniform(1.0, 2.0), 0.15 * lz)
    max_h = max(lz - z_base - 0.8, 1.5)
    d_mean = float(np.mean(fp.diameter))
    if n_cells is None:
        area = math.pi * (d_mean / 2) ** 2 * np.mean(fp.elongation) ** 0.3
        n_cells = int(np.clip(round(rng.uniform(0.35, 0.6) * ly * lx / area), 1, 40))
    if cluster is None:
        cluster = rng.random() < CLUSTER_P.get(cell_type, 0.15)
    if edge is None:
        edge = rng.random() < 0.5
    cells = [make_cell(cell_type, rng, (ly / 2 + rng.normal(0, 0.05 * ly),
                                        lx / 2 + rng.normal(0, 0.05 * lx)),
                       z_base, variant, max_h, fp)]
    tries = 0
    edge_done = False
    while len(cells) < n_cells and tries < 50 * n_cells:
        tries += 1
        if cluster and len(cells) < 1 + min(3, n_cells - 1):
            anchor = cells[rng.integers(len(cells))]
            t = rng.uniform(0, 2 * np.pi)
            dist = 0.9 * (anchor.r0 + d_mean / 2)
            c = (anchor.center[0] + dist * math.sin(t), anchor.center[1] + dist * math.cos(t))
            min_sep = 0.7
        elif edge and not edge_done:
            side = rng.integers(4)
            c = [rng.uniform(0, ly), rng.uniform(0, lx)]
            c[side % 2] = 0.0 if side < 2 else (ly, lx)[side % 2]
            c, min_sep = tuple(c), 0.9
        else:
            c, min_sep = (rng.uniform(-0.1, 1.1) * ly, rng.uniform(-0.1, 1.1) * lx), 0.9
        cand = make_cell(cell_type, rng, c, z_base, None, max_h, fp)
        if all(math.hypot(c[0] - o.center[0], c[1] - o.center[1]) > min_sep * (o.r0 + cand.r0)
               for o in cells):
            cells.append(cand)
            edge_done = edge_done or (edge and min_sep == 0.9 and (
                min(c) <= 0.0 or c[0] >= ly or c[1] >= lx))
    return cells


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------
def _texture(rng: np.random.Generator, shape: tuple[int, int, int],
             sigma: tuple[float, float, float],
             shift: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Unit-variance Gaussian random field with correlation length ``sigma`` (voxels).

    White noise filtered by a Gaussian transfer function in Fourier space (periodic): one
    FFT pair, whatever the correlation length; ``shift`` (voxels) translates the field
    (a phase ramp), so time-lapse frames can move it with the stage drift.
    """
    from .optics import FFT_WORKERS

    noise = rng.standard_normal(shape, dtype=np.float32)
    spec = sfft.rfftn(noise, workers=FFT_WORKERS)
    for axis, (n, s) in enumerate(zip(shape, sigma)):
        f = np.fft.rfftfreq(n) if axis == 2 else np.fft.fftfreq(n)
        g = np.exp(-2 * (np.pi * s * f) ** 2 - 2j * np.pi * f * shift[axis])
        spec *= g.astype(np.complex64).reshape([-1 if i == axis else 1 for i in range(3)])
    field_ = sfft.irfftn(spec, s=shape, workers=FFT_WORKERS, overwrite_x=True)
    field_ /= max(float(field_[::2, ::3, ::3].std()), 1e-6)  # a subsample is plenty
    return field_.astype(np.float32, copy=False)


@dataclass
class _Canvas:
    """The field's arrays being painted cell by cell (tomogram grid)."""

    shape: tuple[int, int, int]
    rng: np.random.Generator
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        def zeros() -> np.ndarray:
            return np.zeros(self.shape, np.float32)

        self.dn, self.owner, self.nucleolus, self.droplets = (zeros() for _ in range(4))
        self.density = {t: zeros() for t in TARGETS}
        self.cell_labels = np.zeros(self.shape, np.int32)
        self.nucleus_labels = np.zeros(self.shape, np.int32)
        self.speckle = _texture(self.rng, self.shape, (0.7, 0.9, 0.9), self.shift)
        self.smooth = _texture(self.rng, self.shape, (6.0, 16.0, 16.0), self.shift)
        self.chromatin = _texture(self.rng, self.shape, (1.5, 2.0, 2.0), self.shift)

    def paint(self, cell: CellSpec, m: CellMaps, label: int) -> None:
        sl = m.bbox
        own = m.cell > self.owner[sl]
        sp, sm, ch = self.speckle[sl], self.smooth[sl], self.chromatin[sl]
        cyto = conc_to_dn(cell.cyto_conc) * (1 + 0.06 * sm)
        v = m.cell * cyto
        nuc_dn = cyto - cell.nucleus_offset_dn + 0.0025 * ch
        v += m.nucleus * (nuc_dn - v)
        v += m.nucleolus * (conc_to_dn(cell.nucleolus_conc) * (1 + 0.04 * ch) - v)
        v += m.chromosomes * (conc_to_dn(cell.chromosome_conc) - v)
        v += m.mito * (cell.mito_dn - v)
        v += cell.membrane_dn * m.shell + cell.actin_dn * np.minimum(m.fibres + m.filopodia, 1)
        v += 0.003 * sp * (m.cell - m.nucleus)  # sub-resolution ER / vesicle speckle
        v += m.droplet_occ * (m.droplet_dn - v)
        if m.vacuole_occ is not None:  # procedural cells: fluid vacuoles near the medium
            v += m.vacuole_occ * (m.vacuole_dn - v)
        np.copyto(self.dn[sl], v, where=own)
        b = cell.brightness
        tex = np.clip(1 + 0.15 * sm, 0.5, 1.5)
        dens = {
            "membrane": m.shell * (b["membrane"] * tex),
            "actin": b["actin"] * (0.4 * m.shell + np.minimum(m.fibres + m.filopodia, 1)
                                   + 0.05 * (m.cell - m.nucleus)),
            "mitochondria": m.mito * (b["mitochondria"] * tex),
            "lipid_droplets": m.droplet_occ * b["lipid_droplets"],
            "nucleus": b["nucleus"] * (m.nucleus * np.clip(0.75 + 0.2 * ch, 0.3, 1.2)
                                       * (1 - 0.65 * m.nucleolus) + m.chromosomes),
            "nucleolus": m.nucleolus * b["nucleolus"],
        }
        for t, d in dens.items():
            np.copyto(self.density[t][sl], d, where=own)
        np.copyto(self.nucleolus[sl], m.nucleolus, where=own)
        np.copyto(self.droplets[sl], m.droplet_occ, where=own)
        inside = own & (m.cell > 0.5)
        self.cell_labels[sl][inside] = label
        self.cell_labels[sl][own & ~inside] = 0
        nuc = inside & ((m.nucleus + m.chromosomes) > 0.5)
        self.nucleus_labels[sl][own] = 0
        self.nucleus_labels[sl][nuc] = label
        np.copyto(self.owner[sl], m.cell, where=own)


def render_cells(cells: list[CellSpec], shape: tuple[int, int, int], rng: np.random.Generator,
                 voxel: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM,
                 supersample: int = 2,
                 texture_shift_um: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> _Canvas:
    """Paint ``cells`` into a canvas of ``shape`` (labels 1, 2, ... in the order given)."""
    canvas = _Canvas(shape, rng, tuple(s / v for s, v in zip(texture_shift_um, voxel)))
    for label, cell in enumerate(cells, start=1):
        bbox = cell_bbox(cell, shape, voxel)
        if bbox is None:
            continue
        canvas.paint(cell, render_cell(cell, bbox, voxel, supersample), label)
    return canvas


def _relabel(labels: np.ndarray, nucleus_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive labels 1..N for the cells present (cells fully outside are dropped)."""
    present = np.unique(labels)
    present = present[present > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return lut[labels], lut[nucleus_labels]


def simulate_fov(cell_type: str = "fibroblast", seed: int = 0,
                 shape: tuple[int, int, int] = (64, 512, 512), physics: str = "fast",
                 n_cells: int | None = None, medium_index: float | None = None,
                 modalities: tuple[str, ...] = (), timepoint: int = 0, *,
                 variant: str | None = None, cluster: bool | None = None,
                 edge: bool | None = None, supersample: int = 2,
                 ri_noise_std: float = 6e-4, fl_noise: bool = True,
                 fl_shift_z_um: float = 0.0, bleed_through: float = 0.0,
                 bleach_half_life_frames: float | None = None,
                 cells: list[CellSpec] | None = None,
                 texture_shift_um: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 pad_z: bool = False,
                 domain: ImagingDomain | str | None = None,
                 droplets_per_cell: tuple[int, int] | None = None,
                 uniform_stain: bool = False) -> SimulatedFOV:
    """Simulate one field of view of ``cell_type`` cells.

    Parameters
    ----------
    cell_type : str
        One of :data:`CELL_TYPES`, or "procedural": cells of random morphology drawn by
        :mod:`ri2fl.simulate.procedural` (``variant`` must be None or "normal").
    seed : int
        Random seed; the same seed (and options) gives identical data.
    shape : tuple of int
        (z, y, x) voxels at the canonical voxel size (0.2, 0.15, 0.15) µm.
    physics : {"fast", "physical", "none"}
        Tomograph model: support mask + Gerchberg-Papoulis ("fast"), beam propagation +
        Rytov + Fourier mapping + GP ("physical"), or none (``ri`` = clipped true RI).
    n_cells : int, optional
        Number of cells (default: drawn to cover about half of the field).
    medium_index : float, optional
        Medium RI (default: drawn in 1.333 .. 1.340).
    modalities : tuple of str
        Extra contrasts to synthesise from the same phantom: "bf", "dic".
    timepoint : int
        Frame index: fluorescence bleaches with ``bleach_half_life_frames`` (recorded in
        ``metadata``).
    variant, cluster, edge
        Force a mitotic / binucleate central cell, a touching cluster, a cell cut by the
        field border (None: at random).
    supersample : int
        Phantom grid refinement for partial-volume effects (2 as in optics.md).
    ri_noise_std : float
        Noise of the reconstructed RI.
    pad_z : bool
        ``physics="fast"``: reconstruct with the volume padded to twice its height instead of
        the default 3.2 µm margin of medium (see :func:`ri2fl.simulate.optics.reconstruct_fast`;
        either keeps the top of the volume from wrapping into its bottom).
    domain : ImagingDomain or "random", optional
        ``physics="fast"``: measure the field with this instrument and reconstruction
        (:mod:`ri2fl.simulate.domain`: optics, GP/TV, noise and artefacts, calibration,
        voxel grid and storage; ``ri_noise_std`` is then the domain's ``noise_std``);
        "random" draws one from ``seed`` (the cells do not change with it). Recorded as
        JSON in ``metadata["imaging_domain"]``. None (default): the fast path as it is.
    droplets_per_cell : (int, int), optional
        Range of lipid droplets drawn per cell, replacing the family's (e.g. (20, 60) for
        cells fed oleic acid); the droplet sizes and indices keep the family's distribution.
    uniform_stain : bool
        Every cell's six stains at brightness 1 instead of each cell's random brightness
        (0.75-1, drawn apart from its RI); the same cells and RI. The truth without the
        cell-to-cell staining that no RI model can infer (a control of the feature
        validation, :func:`ri2fl.profile.validation.explain_agreement`).
    fl_noise, fl_shift_z_um, bleed_through
        Fluorescence nuisance: Poisson/Gaussian noise, axial RI/FL misregistration (µm),
        spectral bleed-through fraction.
    cells : list of CellSpec, optional
        Use these cells instead of drawing a layout (used by the time-lapse).
    texture_shift_um : tuple of float
        Translation (z, y, x) of the sub-cellular textures, so that they follow the stage
        drift of a time-lapse.
    """
    shape = check_args(cell_type, shape, physics, tuple(modalities))
    if variant is not None and variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}", "variant",
                          f"choose one of {', '.join(VARIANTS)} or None (random)")
    imaging = _imaging_domain(domain, seed, physics, pad_z)  # issue #30 hook
    voxel = CANONICAL_VOXEL_SIZE_UM
    rng = np.random.default_rng(seed)
    if medium_index is None:
        medium_index = float(np.round(rng.uniform(1.333, 1.340), 4))
    if cells is None and cell_type == PROCEDURAL:  # a distribution, see procedural.py
        from .procedural import layout_cells as layout_procedural
        drops = None if droplets_per_cell is None else check_droplets_per_cell(
            droplets_per_cell)
        cells = layout_procedural(rng, shape, voxel, n_cells, variant, cluster, edge, drops)
    if cells is None:
        params = _family_params(cell_type, droplets_per_cell)
        cells = layout_cells(cell_type, rng, shape, voxel, n_cells, variant, cluster, edge,
                             params)
    if uniform_stain:
        cells = [replace(c, brightness=dict.fromkeys(c.brightness, 1.0)) for c in cells]
    canvas = render_cells(cells, shape, rng, voxel, supersample, texture_shift_um)
    rng = np.random.default_rng([seed, int(timepoint), 1])  # measurement noise of this frame
    dn = canvas.dn
    ri_true = (np.float32(medium_index) + dn).astype(np.float32)
    if imaging is None:
        ri = reconstruct(dn, voxel, medium_index, physics, rng, ri_noise_std, pad_z=pad_z)
    else:  # the tomograph's noise from rng as above, the domain's artefacts from their own
        ri = measure_in_domain(dn, voxel, medium_index, imaging, rng,
                               np.random.default_rng([seed, int(timepoint), 5]))
    bleach = fluorescence.bleach_factor(timepoint, bleach_half_life_frames)
    fl = fluorescence.record(canvas.density, voxel, rng, bleach=bleach, noise=fl_noise,
                             shift_z_um=fl_shift_z_um, bleed_through=bleed_through,
                             order=TARGETS)
    cell_labels, nucleus_labels = _relabel(canvas.cell_labels, canvas.nucleus_labels)
    masks = {"nucleus": nucleus_labels > 0,
             "nucleolus": (canvas.nucleolus > 0.5) & (nucleus_labels > 0),
             "membrane": cell_labels > 0,
             "lipid_droplets": (canvas.droplets > 0.5) & (cell_labels > 0)}
    fov = SimulatedFOV(ri=ri, ri_true=ri_true, fl=fl, masks=masks, cell_labels=cell_labels,
                       nucleus_labels=nucleus_labels, voxel_size_um=voxel,
                       medium_index=float(medium_index), cell_type=cell_type, seed=int(seed),
                       physics=physics,
                       metadata={"timepoint": int(timepoint), "bleach": bleach,
                                 "n_cells": int(cell_labels.max()),
                                 "variants": ",".join(c.variant for c in cells),
                                 "fl_shift_z_um": float(fl_shift_z_um),
                                 # recorded only when on: files written without it stay alike
                                 **({"pad_z": True} if pad_z else {}),
                                 **({"imaging_domain": imaging.to_json()}
                                    if imaging is not None else {}),
                                 **({"droplets_per_cell": list(droplets_per_cell)}
                                    if droplets_per_cell is not None else {})})
    if modalities:
        from .brightfield import synthesize
        images = synthesize(ri_true, voxel, medium_index, tuple(modalities),
                            noise=0.005 if fl_noise else 0.0, rng=rng)
        fov.bf, fov.dic = images.get("bf"), images.get("dic")
    return fov


def check_droplets_per_cell(droplets_per_cell: Sequence[int],
                            where: str = "droplets_per_cell") -> tuple[int, int]:
    """Validate a (low, high) range of droplets per cell; ``where`` names the option."""
    lo, hi = (int(n) for n in droplets_per_cell)
    if not 0 <= lo <= hi:
        raise ConfigError(f"droplets per cell must be 0 <= low <= high, got {lo} {hi}",
                          where, "give e.g. 20 60")
    return lo, hi


def _family_params(cell_type: str,
                   droplets_per_cell: Sequence[int] | None) -> FamilyParams | None:
    if droplets_per_cell is None:
        return None
    return replace(FAMILIES[cell_type], n_droplets=check_droplets_per_cell(droplets_per_cell))


def reconstruct(dn: np.ndarray, voxel: tuple[float, float, float], medium_index: float,
                physics: str, rng: np.random.Generator, noise_std: float = 6e-4,
                pad_z: bool = False) -> np.ndarray:
    """Tomograph model: true Δn -> reconstructed RI, clipped to ``RI_CLIP``."""
    if physics == "fast":
        rec = optics.reconstruct_fast(dn, voxel, medium_index, noise_std, rng, pad_z=pad_z)
    elif physics == "physical":
        from .physical import reconstruct_physical
        rec = reconstruct_physical(dn, voxel, medium_index, noise_std=noise_std, rng=rng)
    else:
        rec = dn
    return np.clip(np.float32(medium_index) + rec, *RI_CLIP).astype(np.float32)


def simulate_tiles(seed: int = 0, grid: tuple[int, int] = (2, 2),
                   tile_shape: tuple[int, int, int] = (64, 256, 256),
                   overlap: float | int = 0.15, cell_type: str = "fibroblast",
                   physics: str = "fast", jitter_vox: int = 3, **fov_options
                   ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A large field acquired as overlapping tiles, each measured and reconstructed alone.

    Parameters
    ----------
    seed : int
        Random seed.
    grid : (rows, cols)
        Tiles along y and x.
    tile_shape : (z, y, x)
        Voxels per tile.
    overlap : float or int
        Overlap between neighbouring tiles: a fraction of the tile (< 1) or voxels.
    jitter_vox : int
        Stage positioning error: each tile lands up to this many voxels (y, x) away from its
        nominal position (stitching must find the true offsets).
    **fov_options
        Passed to :func:`simulate_fov` for the ground-truth field (e.g. ``n_cells``).

    Returns
    -------
    tiles : list of ndarray
        Reconstructed, clipped RI per tile (float32), row-major.
    offsets : ndarray
        (n_tiles, 3) int: true (z, y, x) voxel position of each tile's origin in the field.
    full_volume : ndarray
        True RI of the whole field (float32); tile i equals (up to the tomograph's blur,
        noise and clipping) ``full_volume[offsets[i] + tile_shape window]``.
    """
    rows, cols = (int(g) for g in grid)
    tz, ty, tx = (int(s) for s in tile_shape)
    if rows < 1 or cols < 1:
        raise ConfigError(f"grid must be at least (1, 1), got {grid}", "grid")
    ov = [round(overlap * s) if isinstance(overlap, float) and overlap < 1 else int(overlap)
          for s in (ty, tx)]
    if not all(0 <= o < s for o, s in zip(ov, (ty, tx))):
        raise ConfigError(f"overlap {overlap} does not fit tiles of {tile_shape}", "overlap",
                          "use a fraction below 1 or fewer voxels than the tile")
    steps = (ty - ov[0], tx - ov[1])
    full_shape = (tz, (rows - 1) * steps[0] + ty + 2 * jitter_vox,
                  (cols - 1) * steps[1] + tx + 2 * jitter_vox)
    field_ = simulate_fov(cell_type, seed, full_shape, physics="none", fl_noise=False,
                          **fov_options)
    rng = np.random.default_rng([seed, 3])
    dn = field_.ri_true - np.float32(field_.medium_index)
    tiles, offsets = [], []
    for r in range(rows):
        for c in range(cols):
            jy, jx = rng.integers(-jitter_vox, jitter_vox + 1, 2) if jitter_vox else (0, 0)
            oy, ox = jitter_vox + r * steps[0] + jy, jitter_vox + c * steps[1] + jx
            crop = dn[:, oy:oy + ty, ox:ox + tx]
            tiles.append(reconstruct(crop, field_.voxel_size_um, field_.medium_index, physics,
                                     rng))
            offsets.append((0, oy, ox))
    return tiles, np.asarray(offsets, dtype=np.int64), field_.ri_true


# ---------------------------------------------------------------------------------------
# imaging-domain hook (issue #30; the domains themselves live in domain.py)
# ---------------------------------------------------------------------------------------
def _imaging_domain(domain: ImagingDomain | str | None, seed: int, physics: str,
                    pad_z: bool) -> ImagingDomain | None:
    """``simulate_fov``'s ``domain`` resolved (None: the default path), checked early."""
    imaging = resolve_domain(domain, seed)
    if imaging is not None and (physics != "fast" or pad_z):
        raise ConfigError("an imaging domain needs physics='fast' without pad_z", "domain",
                          "drop domain, or use the fast path (it has its own z margin)")
    return imaging
