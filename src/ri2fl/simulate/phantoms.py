"""Cell phantoms: geometry of cells and organelles, rendered to concentration maps.

A cell is described by a :class:`CellSpec` (outline, height profile, nuclei, nucleoli,
lipid droplets, mitochondrial chains, actin fibres, filopodia, processes), drawn at random
by :func:`make_cell` for one of the cell-type families. :func:`render_cell` turns it into
occupancy maps (fraction of each voxel filled by each structure) on a grid that may be finer
than the tomogram grid (``supersample``) and is block-averaged back, so partial-volume effects
at boundaries are realistic. Thin tubes (mitochondria, fibres, filopodia) and small spheres are
drawn directly with analytic partial-volume occupancy from exact distances.

RI is composed from concentrations, n = n_m + α·C (α = 0.19 mL/g), in
:func:`compose_cell`, which also gives the fluorescence densities of the six targets from the
same structures, so RI -> FL is learnable but never a plain threshold.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..constants import ALPHA_ML_PER_G, CANONICAL_VOXEL_SIZE_UM

#: Cell-type families; fibroblast first (the training family of the paper).
CELL_TYPES: tuple[str, ...] = (
    "fibroblast",
    "epithelial",
    "hek293",
    "mda_mb_231",
    "astrocyte",
    "macrophage",
    "hepatocyte",
    "suspension",
)

#: A ninth "family" that is itself a distribution of morphologies: cells drawn by
#: :mod:`ri2fl.simulate.procedural` (not in :data:`CELL_TYPES`, so data sets and the CLI's
#: "all" keep the eight families and their seeds).
PROCEDURAL = "procedural"
#: Everything ``simulate_fov`` and data sets draw: the eight families, then the procedural cells
#: (last, so that the seeds of the families' fields stay what they were).
SIMULATED_KINDS: tuple[str, ...] = (*CELL_TYPES, PROCEDURAL)

#: Variants a cell can take; ``None`` draws one at random with small probabilities.
VARIANTS: tuple[str, ...] = ("normal", "mitotic", "binucleate")


@dataclass
class FamilyParams:
    """Ranges that define a cell-type family (lengths in µm, concentrations in g/mL)."""

    diameter: tuple[float, float]
    height: tuple[float, float]
    elongation: tuple[float, float]  # long / short axis of the outline
    lobes: float  # amplitude of the angular harmonics of the outline
    profile_power: tuple[float, float]  # 2: half-ellipsoid dome; larger: flatter top
    nucleus_fraction: tuple[float, float]  # nucleus diameter / cell short diameter
    n_droplets: tuple[int, int]
    mito_length_um: tuple[float, float]  # total mitochondrial length per cell
    mito_fragmented: float  # probability that the network is fragmented
    n_fibres: tuple[int, int]
    n_filopodia: tuple[int, int]
    n_processes: tuple[int, int] = (0, 0)
    process_length: tuple[float, float] = (0.0, 0.0)
    lamella: tuple[float, float] = (0.0, 0.0)  # height of the flat lamella (0: none)
    dome_fraction: tuple[float, float] = (1.0, 1.0)  # dome radius / outline radius
    cyto_conc: tuple[float, float] = (0.10, 0.15)
    binucleate_p: float = 0.03
    mitotic_p: float = 0.04
    sphere: bool = False  # floating round cell resting on the substrate (no spreading)


FAMILIES: dict[str, FamilyParams] = {
    # NIH3T3-like: spindle / polygonal, thin lamellae, many stress fibres
    "fibroblast": FamilyParams(
        diameter=(22, 36), height=(3.5, 6.0), elongation=(1.8, 3.2), lobes=0.18,
        profile_power=(1.6, 2.4), nucleus_fraction=(0.35, 0.5), n_droplets=(2, 10),
        mito_length_um=(150, 300), mito_fragmented=0.2, n_fibres=(8, 20), n_filopodia=(4, 12),
        lamella=(0.6, 1.4), dome_fraction=(0.45, 0.65)),
    # HeLa / COS-7-like: flat, roundish, star-convex outline, dome 4-8 µm high
    "epithelial": FamilyParams(
        diameter=(22, 45), height=(4.0, 8.0), elongation=(1.0, 1.5), lobes=0.10,
        profile_power=(2.5, 4.0), nucleus_fraction=(0.35, 0.5), n_droplets=(3, 12),
        mito_length_um=(150, 300), mito_fragmented=0.2, n_fibres=(3, 10), n_filopodia=(2, 8),
        lamella=(1.0, 2.0), dome_fraction=(0.6, 0.85)),
    # HEK 293-like: compact, tall, often in touching clusters
    "hek293": FamilyParams(
        diameter=(12, 18), height=(6.0, 9.0), elongation=(1.0, 1.4), lobes=0.08,
        profile_power=(2.0, 3.0), nucleus_fraction=(0.5, 0.65), n_droplets=(1, 6),
        mito_length_um=(60, 140), mito_fragmented=0.3, n_fibres=(0, 4), n_filopodia=(1, 5)),
    # MDA-MB-231-like: motile, elongated, broad leading lamellipodium
    "mda_mb_231": FamilyParams(
        diameter=(18, 30), height=(4.0, 7.0), elongation=(1.6, 2.6), lobes=0.22,
        profile_power=(1.6, 2.5), nucleus_fraction=(0.4, 0.55), n_droplets=(3, 14),
        mito_length_um=(120, 250), mito_fragmented=0.3, n_fibres=(3, 10), n_filopodia=(6, 16),
        lamella=(0.5, 1.0), dome_fraction=(0.5, 0.7)),
    # astrocyte-like: soma with 4-8 tapering processes
    "astrocyte": FamilyParams(
        diameter=(16, 24), height=(5.0, 8.0), elongation=(1.0, 1.3), lobes=0.10,
        profile_power=(2.0, 3.0), nucleus_fraction=(0.45, 0.6), n_droplets=(1, 6),
        mito_length_um=(120, 250), mito_fragmented=0.2, n_fibres=(2, 6), n_filopodia=(0, 4),
        n_processes=(4, 8), process_length=(10, 26)),
    # RAW 264.7-like / suspension: round, 8-12 µm, large nucleus
    "macrophage": FamilyParams(
        diameter=(8, 12), height=(6.0, 10.0), elongation=(1.0, 1.2), lobes=0.06,
        profile_power=(2.0, 2.0), nucleus_fraction=(0.6, 0.8), n_droplets=(3, 12),
        mito_length_um=(40, 90), mito_fragmented=0.4, n_fibres=(0, 2), n_filopodia=(4, 12),
        cyto_conc=(0.09, 0.14)),
    # hepatocyte-like: polygonal, lipid-rich (tens of droplets), often binucleate
    "hepatocyte": FamilyParams(
        diameter=(20, 32), height=(6.0, 9.0), elongation=(1.0, 1.4), lobes=0.12,
        profile_power=(2.5, 3.5), nucleus_fraction=(0.3, 0.4), n_droplets=(20, 60),
        mito_length_um=(200, 350), mito_fragmented=0.2, n_fibres=(2, 6), n_filopodia=(0, 4),
        binucleate_p=0.25, lamella=(1.5, 3.0), dome_fraction=(0.7, 0.9)),
    # HL60 / lymphocyte-like suspension cells: 8-14 µm spheres, nucleus 0.6-0.8 of the cell
    "suspension": FamilyParams(
        diameter=(8, 14), height=(4.0, 7.0), elongation=(1.0, 1.1), lobes=0.04,
        profile_power=(2.0, 2.0), nucleus_fraction=(0.6, 0.8), n_droplets=(0, 4),
        mito_length_um=(30, 80), mito_fragmented=0.5, n_fibres=(0, 0), n_filopodia=(0, 3),
        cyto_conc=(0.08, 0.12), sphere=True),
}


@dataclass
class Grid:
    """A regular grid: ``origin`` of voxel (0, 0, 0) centre and ``spacing`` in µm, (z, y, x)."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.float32(o + s * np.arange(n))
                     for o, s, n in zip(self.origin, self.spacing, self.shape))

    def axes3(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Axes shaped (Z, 1, 1), (1, Y, 1), (1, 1, X) for broadcasting."""
        z, y, x = self.axes()
        return z[:, None, None], y[None, :, None], x[None, None, :]

    @property
    def h(self) -> float:
        """Box-filter width used for analytic partial-volume occupancy."""
        return float(np.mean(self.spacing)) * 1.2


@dataclass
class Chain:
    """A tube along a polyline: points (N, 3) in µm (z, y, x) and per-point radius."""

    points: np.ndarray
    radius: np.ndarray


@dataclass
class CellSpec:
    """Geometry and composition of one cell (lengths µm, positions (z, y, x) µm)."""

    family: str
    center: tuple[float, float]
    z_base: float
    angle: float
    r0: float
    elongation: float
    harmonics: list[tuple[int, float, float]]
    height: float
    profile_power: float
    lamella_height: float = 0.0
    dome_fraction: float = 1.0
    z_offset: float = 0.0  # height of the dome's centre above the substrate (spheres)
    nuclei: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    nucleoli: list[tuple[np.ndarray, float]] = field(default_factory=list)
    droplets: list[tuple[np.ndarray, float, float]] = field(default_factory=list)
    chromosomes: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    mito: list[Chain] = field(default_factory=list)
    fibres: list[Chain] = field(default_factory=list)
    filopodia: list[Chain] = field(default_factory=list)
    processes: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    # fluid vacuoles (centre, radius, Δn near the medium); only procedural cells have them
    vacuoles: list[tuple[np.ndarray, float, float]] = field(default_factory=list)
    mitotic: bool = False
    variant: str = "normal"
    # composition (g/mL or Δn) and fluorescence brightness
    cyto_conc: float = 0.12
    nucleus_offset_dn: float = 0.006
    nucleolus_conc: float = 0.2
    mito_dn: float = 0.063
    membrane_dn: float = 0.005
    actin_dn: float = 0.02
    chromosome_conc: float = 0.19
    brightness: dict[str, float] = field(default_factory=dict)
    _lookup: tuple | None = field(default=None, repr=False)
    _proc_raster: tuple | None = field(default=None, repr=False)

    @property
    def extent(self) -> float:
        """Radius (µm) of a disc around the centre that holds the whole cell."""
        r = float(self.outline_radius(np.linspace(0, 2 * np.pi, 361)).max())
        for pts, _, _ in self.processes:
            r = max(r, float(np.max(np.hypot(pts[:, 0] - self.center[0],
                                             pts[:, 1] - self.center[1]))) + 3.0)
        for ch in self.filopodia:
            r = max(r, float(np.max(np.hypot(ch.points[:, 1] - self.center[0],
                                             ch.points[:, 2] - self.center[1]))) + 1.0)
        return r + 1.0

    # -- outline and body ---------------------------------------------------------------
    def outline_radius(self, theta: np.ndarray) -> np.ndarray:
        """Star-convex outline r(θ) in the cell frame (θ = 0 along the long axis)."""
        e = self.elongation
        r = self.r0 * e / np.sqrt(np.cos(theta) ** 2 + (e * np.sin(theta)) ** 2) / math.sqrt(e)
        mod = 1.0
        for k, a, phi in self.harmonics:
            mod = mod + a * np.cos(k * theta + phi)
        return r * np.maximum(mod, 0.3)

    def _polar(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dy, dx = y - np.float32(self.center[0]), x - np.float32(self.center[1])
        c, s = np.float32(math.cos(self.angle)), np.float32(math.sin(self.angle))
        u, v = c * dx + s * dy, -s * dx + c * dy
        return np.hypot(u, v), np.arctan2(v, u)

    def body_sdf(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Approximate signed distance (µm, negative inside) to the cell body.

        ``z``, ``y``, ``x`` broadcast against each other (a grid: shapes (Z,1,1), (1,Y,1),
        (1,1,X); points: equal shapes). The body is a dome (a superellipsoid cap over
        ``dome_fraction`` of the outline) united with a flat lamella of height
        ``lamella_height`` filling the whole outline, and with the processes, if any.
        """
        rho, theta = self._polar(y, x)
        r = self.outline_radius(theta).astype(np.float32)
        zr = (z - np.float32(self.z_base)).astype(np.float32)
        rd = r * np.float32(self.dome_fraction)
        s = (rho / rd).astype(np.float32)
        p = self.profile_power
        zd = zr - np.float32(self.z_offset)
        q = np.sqrt(s ** p + (zd / np.float32(self.height)) ** 2)
        # first-order distance (q - 1) / |grad q| of the dome q = 1
        g_rho = 0.5 * p * s ** (p - 1) / rd
        grad = np.sqrt(g_rho ** 2 + (zd / np.float32(self.height ** 2)) ** 2)
        d = (q - 1.0) / np.maximum(grad / np.maximum(q, 1e-3), 0.05)
        if self.lamella_height > 0:
            half = np.float32(self.lamella_height / 2)
            d = np.minimum(d, np.maximum(rho - r, np.abs(zr - half) - half))
        if self.processes:
            d = np.minimum(d, _processes_sdf(zr, y, x, self))
        return np.maximum(d, -zr).astype(np.float32)


def ellipsoid_sdf(z: np.ndarray, y: np.ndarray, x: np.ndarray, center: np.ndarray,
                  axes: np.ndarray, angle: float) -> np.ndarray:
    """First-order signed distance (µm) to an ellipsoid with semi-axes (c, b, a) (z, y, x)
    rotated by ``angle`` in the xy plane; inputs broadcast as in :meth:`CellSpec.body_sdf`."""
    dy, dx = y - np.float32(center[1]), x - np.float32(center[2])
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    a3 = np.asarray(axes, np.float32)
    u = (c * dx + s * dy) / a3[2]
    v = (-s * dx + c * dy) / a3[1]
    w = (z - np.float32(center[0])) / a3[0]
    q = np.sqrt(u ** 2 + v ** 2 + w ** 2)
    grad = np.sqrt((u / a3[2]) ** 2 + (v / a3[1]) ** 2 + (w / a3[0]) ** 2)
    return ((q - 1.0) / np.maximum(grad / np.maximum(q, 1e-3), 1.0 / float(a3.max()))
            ).astype(np.float32)


def _segment_distance_2d(y: np.ndarray, x: np.ndarray, pts: np.ndarray,
                         width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance in the xy plane to a polyline and the interpolated width there."""
    shape = np.broadcast_shapes(np.shape(y), np.shape(x))
    best = np.full(shape, np.inf, np.float32)
    wbest = np.zeros(shape, np.float32)
    for i in range(len(pts) - 1):
        a, b = pts[i], pts[i + 1]
        ab = b - a
        t = ((y - a[0]) * ab[0] + (x - a[1]) * ab[1]) / max(float(ab @ ab), 1e-9)
        t = np.clip(t, 0.0, 1.0)
        d = np.hypot(y - a[0] - t * ab[0], x - a[1] - t * ab[1]).astype(np.float32)
        closer = d < best
        best = np.where(closer, d, best)
        wbest = np.where(closer, width[i] + t * (width[i + 1] - width[i]), wbest)
    return best, wbest


_PROCESS_STEP = 0.075  # µm: raster spacing of the process distance map


def _process_raster(cell: CellSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lateral distance and height of the nearest process on a fine xy raster (cached).

    The processes' distance is smooth, so bilinear look-ups in this raster replace evaluating
    every polyline segment at every (sub-)voxel.
    """
    if cell._proc_raster is None:
        pts_all = np.concatenate([p for p, _, _ in cell.processes])
        lo = pts_all.min(axis=0) - 3.0
        hi = pts_all.max(axis=0) + 3.0
        y = np.arange(lo[0], hi[0], _PROCESS_STEP, dtype=np.float32)[:, None]
        x = np.arange(lo[1], hi[1], _PROCESS_STEP, dtype=np.float32)[None, :]
        lateral = np.full((y.size, x.size), np.inf, np.float32)
        height = np.zeros_like(lateral)
        for pts, width, hz in cell.processes:
            dxy, w = _segment_distance_2d(y, x, pts, width)
            lat = dxy - w
            closer = lat < lateral
            lateral = np.where(closer, lat, lateral)
            height = np.where(closer, np.maximum(hz * w / max(float(width[0]), 1e-3), 0.4),
                              height)
        cell._proc_raster = (lo.astype(np.float32), lateral, height)
    return cell._proc_raster


def _processes_sdf(zr: np.ndarray, y: np.ndarray, x: np.ndarray, cell: CellSpec) -> np.ndarray:
    """Flat tapered processes (astrocyte arms) lying on the substrate."""
    lo, lateral, height = _process_raster(cell)
    yy, xx = np.broadcast_arrays(y, x)
    coords = np.stack([((yy - lo[0]) / _PROCESS_STEP).ravel(),
                       ((xx - lo[1]) / _PROCESS_STEP).ravel()])
    lat = ndimage.map_coordinates(lateral, coords, order=1, mode="nearest").reshape(yy.shape)
    hgt = ndimage.map_coordinates(height, coords, order=1, mode="nearest").reshape(yy.shape)
    return np.maximum(lat, zr - hgt)


def occupancy(d: np.ndarray, h: float) -> np.ndarray:
    """Fraction of a voxel of width ``h`` inside the surface at signed distance ``d``."""
    return np.clip(0.5 - d / h, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------
# random cells
# ---------------------------------------------------------------------------------------
def draw_organelle_contrasts(cell: CellSpec, rng: np.random.Generator) -> None:
    """Draw the RI contrasts of mitochondria, membrane and actin and the six targets'
    brightness, in this order (the families' seeds depend on it)."""
    cell.mito_dn = rng.uniform(0.058, 0.07)
    cell.membrane_dn = rng.uniform(0.003, 0.008)
    cell.actin_dn = rng.uniform(0.01, 0.03)
    cell.brightness = {t: float(rng.uniform(0.75, 1.0)) for t in
                       ("membrane", "actin", "mitochondria", "lipid_droplets", "nucleus",
                        "nucleolus")}


def make_cell(family: str, rng: np.random.Generator, center: tuple[float, float],
              z_base: float, variant: str | None = None,
              max_height: float | None = None,
              params: FamilyParams | None = None) -> CellSpec:
    """Draw one cell of ``family`` centred at ``center`` (y, x) µm on the substrate ``z_base``.

    ``variant`` is "normal", "mitotic" or "binucleate"; ``None`` draws one with the family's
    probabilities. ``max_height`` caps the cell height (to fit the field of view). ``params``
    replaces the family's ranges (e.g. a lipid-loaded variant with more droplets).
    """
    fp = FAMILIES[family] if params is None else params
    if variant is None:
        u = rng.random()
        variant = ("mitotic" if u < fp.mitotic_p else
                   "binucleate" if u < fp.mitotic_p + fp.binucleate_p else "normal")
    mitotic = variant == "mitotic"
    diameter = rng.uniform(*fp.diameter)
    height = rng.uniform(*fp.height)
    elong = rng.uniform(*fp.elongation)
    power = rng.uniform(*fp.profile_power)
    harmonics = [(k, rng.normal(0, fp.lobes / k ** 0.5), rng.uniform(0, 2 * np.pi))
                 for k in range(2, 7)]
    if family == "mda_mb_231":  # a broad leading lamella on one side
        harmonics.append((1, rng.uniform(0.1, 0.25), 0.0))
    if mitotic:  # rounded up
        diameter = rng.uniform(12, 18) if family not in ("macrophage", "suspension") \
            else diameter
        height, elong, power = 0.8 * diameter, 1.0, 2.0
        harmonics = [(k, a * 0.1, p) for k, a, p in harmonics]
    z_offset = 0.0
    if fp.sphere:  # a resting sphere: semi-axis ≈ radius, centre one semi-axis up
        height = diameter / 2 * rng.uniform(0.85, 1.0)
        z_offset = height
        if max_height is not None and 2 * height > max_height:
            height = z_offset = max_height / 2
    if max_height is not None:
        height = min(height, max_height)
    lamella = 0.0 if mitotic else min(rng.uniform(*fp.lamella), 0.5 * height)
    dome = 1.0 if mitotic else rng.uniform(*fp.dome_fraction)
    cell = CellSpec(family=family, center=center, z_base=z_base, angle=rng.uniform(0, np.pi),
                    r0=diameter / 2, elongation=elong, harmonics=harmonics, height=height,
                    profile_power=power, lamella_height=lamella, dome_fraction=dome,
                    z_offset=z_offset,
                    mitotic=mitotic, variant=variant, cyto_conc=rng.uniform(*fp.cyto_conc))
    cell.nucleus_offset_dn = rng.uniform(0.003, 0.01)
    cell.nucleolus_conc = rng.uniform(0.17, 0.26)
    draw_organelle_contrasts(cell, rng)
    if fp.n_processes[1] > 0 and not mitotic:
        _add_processes(cell, fp, rng)
    if mitotic:
        _add_chromosomes(cell, rng)
    else:
        n_nuclei = 2 if variant == "binucleate" else 1
        _add_nuclei(cell, fp, rng, n_nuclei)
        _add_nucleoli(cell, rng)
    _build_lookup(cell)
    _add_droplets(cell, fp, rng)
    _add_mitochondria(cell, fp, rng)
    _add_actin(cell, fp, rng)
    return cell


def _local_height(cell: CellSpec, y: float, x: float) -> tuple[float, float]:
    """Height of the cell body above (y, x) and the normalised radius there."""
    rho, theta = cell._polar(np.array([y]), np.array([x]))
    s = float(rho.ravel()[0] / cell.outline_radius(theta).ravel()[0])
    if s >= 1:
        return 0.0, s
    sd = s / cell.dome_fraction
    dome = cell.height * math.sqrt(max(1 - sd ** cell.profile_power, 0.0)) if sd < 1 else 0.0
    return max(dome + cell.z_offset if sd < 1 else 0.0, cell.lamella_height), s


def _to_world(cell: CellSpec, u: float, v: float) -> tuple[float, float]:
    c, s = math.cos(cell.angle), math.sin(cell.angle)
    return cell.center[0] + s * u + c * v, cell.center[1] + c * u - s * v


def _add_nuclei(cell: CellSpec, fp: FamilyParams, rng: np.random.Generator, n: int) -> None:
    short = 2 * cell.r0 / math.sqrt(cell.elongation)
    for i in range(n):
        frac = rng.uniform(*fp.nucleus_fraction) * (0.8 if n == 2 else 1.0)
        frac = min(frac, 0.8 * cell.dome_fraction)
        a = 0.5 * frac * short * rng.uniform(1.1, 1.5)  # along the long axis
        b = 0.5 * frac * short
        offset = (i - (n - 1) / 2) * 2.5 * a + rng.normal(0, 0.03 * cell.r0)
        y, x = _to_world(cell, offset, rng.normal(0, 0.05 * cell.r0))
        h_local, _ = _local_height(cell, y, x)
        if cell.z_offset > 0:  # round cell: round nucleus at its centre
            c = min(b * rng.uniform(0.85, 1.0), cell.height - 0.8)
            zc = cell.z_base + cell.z_offset
        else:
            c = max(min(rng.uniform(0.3, 0.45) * cell.height, 0.5 * h_local - 0.6, b), 1.0)
            zc = cell.z_base + 0.4 + c
        cell.nuclei.append((np.array([zc, y, x]), np.array([c, b, a]),
                            cell.angle + rng.normal(0, 0.15)))


def _add_nucleoli(cell: CellSpec, rng: np.random.Generator) -> None:
    for center, axes, _angle in cell.nuclei:
        for _ in range(rng.integers(1, 5)):
            r = float(rng.uniform(0.45, 1.1)) * min(1.0, float(axes[0]) / 1.5)
            off = rng.uniform(-1, 1, 3) * np.maximum(axes - r - 0.4, 0.0) * 0.7
            cell.nucleoli.append((center + off, r))


def _add_chromosomes(cell: CellSpec, rng: np.random.Generator, anaphase: bool | None = None,
                     separation: float = 3.6) -> None:
    """Condensed chromosomes on a metaphase plate, or two anaphase sets ``separation`` µm
    apart.

    Each set is 14-23 ellipsoids of 0.9-1.4 µm width and 2-4.4 µm length (human metaphase
    chromosomes are about 1.4 µm wide and 2-10 µm long, so the plate holds 25-80 µm³ of
    chromatin and stands out of the tomogram as a dense plate several µm across).
    """
    zc = cell.z_base + (cell.z_offset if cell.z_offset > 0 else 0.5 * cell.height)
    plate_normal = rng.uniform(0, np.pi)
    if anaphase is None:
        anaphase = rng.random() < 0.4
    sets = [-separation / 2, separation / 2] if anaphase else [0.0]
    for off in sets:
        cy = cell.center[0] + off * math.sin(plate_normal)
        cx = cell.center[1] + off * math.cos(plate_normal)
        for _ in range(rng.integers(14, 24)):
            r = rng.uniform(0.0, 3.2)
            t = rng.uniform(0, 2 * np.pi)
            along = rng.normal(0, 0.25)
            dy = along * math.sin(plate_normal) + r * math.cos(plate_normal) * math.cos(t)
            dx = along * math.cos(plate_normal) - r * math.sin(plate_normal) * math.cos(t)
            dz = r * math.sin(t) * 0.8
            axes = np.array([rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.7),
                             rng.uniform(1.0, 2.2)])
            cell.chromosomes.append((np.array([zc + dz, cy + dy, cx + dx]), axes,
                                     rng.uniform(0, np.pi)))


def _add_processes(cell: CellSpec, fp: FamilyParams, rng: np.random.Generator) -> None:
    n = rng.integers(fp.n_processes[0], fp.n_processes[1] + 1)
    for k in range(n):
        phi = 2 * np.pi * (k + rng.uniform(-0.3, 0.3)) / n
        length = rng.uniform(*fp.process_length)
        steps = 8
        pts = [np.array(cell.center) + 0.6 * cell.r0 * np.array([np.sin(phi), np.cos(phi)])]
        for _ in range(steps):
            phi += rng.normal(0, 0.25)
            pts.append(pts[-1] + length / steps * np.array([np.sin(phi), np.cos(phi)]))
        pts = np.array(pts)
        w0 = rng.uniform(1.2, 2.2)
        width = np.linspace(w0, 0.35, len(pts))
        cell.processes.append((pts, width, rng.uniform(0.8, 1.4)))


_LOOKUP_STEP = 0.2  # µm: spacing of the distance maps used while placing organelles


def _build_lookup(cell: CellSpec) -> None:
    """Tabulate the cell body and nuclear distances on a coarse grid once, so that placing
    thousands of organelle points costs a lookup each."""
    ext = cell.extent
    st = _LOOKUP_STEP
    origin = np.array([cell.z_base - 0.5, cell.center[0] - ext, cell.center[1] - ext])
    n = np.ceil(np.array([cell.z_offset + cell.height + 1.0, 2 * ext, 2 * ext]) / st
                ).astype(int) + 1
    z, y, x = (np.float32(o + st * np.arange(k)) for o, k in zip(origin, n))
    body = cell.body_sdf(z[:, None, None], y[None, :, None], x[None, None, :])
    nuc = np.full(body.shape, np.inf, np.float32)
    for center, axes, angle in cell.nuclei + cell.chromosomes:
        r = float(np.max(axes)) + 1.0
        sl = tuple(slice(int(np.searchsorted(a, c - r)), int(np.searchsorted(a, c + r)))
                   for a, c in zip((z, y, x), center))
        if all(b.stop > b.start for b in sl):
            nuc[sl] = np.minimum(nuc[sl], ellipsoid_sdf(
                z[sl[0]][:, None, None], y[sl[1]][None, :, None], x[sl[2]][None, None, :],
                center, axes, angle))
    cell._lookup = (origin, body, nuc)


def _lookup(cell: CellSpec, p: np.ndarray) -> tuple[float, float]:
    """Body and nuclear distances (µm) at point ``p`` (z, y, x), from the coarse tables."""
    origin, body, nuc = cell._lookup
    i = np.round((np.asarray(p) - origin) / _LOOKUP_STEP).astype(int)
    if np.any(i < 0) or np.any(i >= body.shape):
        return np.inf, np.inf
    i = tuple(i)
    return float(body[i]), float(nuc[i])


def _inside(cell: CellSpec, p: np.ndarray, margin: float = 0.0) -> bool:
    return _lookup(cell, p)[0] < -margin


def _in_nucleus(cell: CellSpec, p: np.ndarray, margin: float = 0.0) -> bool:
    return _lookup(cell, p)[1] < margin


def _random_cyto_point(cell: CellSpec, rng: np.random.Generator, margin: float,
                       near_nucleus: float = 0.0, tries: int = 60) -> np.ndarray | None:
    """A random point in the cytoplasm, biased towards the nucleus when ``near_nucleus`` > 0."""
    ext = cell.r0 * max(cell.elongation, 1.0) ** 0.5
    for _ in range(tries):
        if near_nucleus > 0 and cell.nuclei:
            nc, axes, _ = cell.nuclei[rng.integers(len(cell.nuclei))]
            d = float(axes[1:].max()) + rng.exponential(near_nucleus)
            t = rng.uniform(0, 2 * np.pi)
            y, x = nc[1] + d * math.sin(t), nc[2] + d * math.cos(t)
        else:
            u, v = rng.uniform(-1, 1, 2) * ext * np.array([cell.elongation ** 0.5, 1.0])
            y, x = _to_world(cell, u, v)
        h, _s = _local_height(cell, y, x)
        if h < 2 * margin + 0.2:
            continue
        z = cell.z_base + rng.uniform(margin, h - margin)
        p = np.array([z, y, x])
        if _inside(cell, p, margin) and not _in_nucleus(cell, p, margin + 0.2):
            return p
    return None


def _add_droplets(cell: CellSpec, fp: FamilyParams, rng: np.random.Generator) -> None:
    for _ in range(rng.integers(fp.n_droplets[0], fp.n_droplets[1] + 1)):
        r = float(np.clip(rng.lognormal(math.log(0.55), 0.45), 0.3, 2.0))
        p = _random_cyto_point(cell, rng, r + 0.2, near_nucleus=3.0 * (rng.random() < 0.6))
        if p is not None:
            n_true = rng.uniform(1.40, 1.48)
            cell.droplets.append((p, r, n_true - 1.337))


def _walk(cell: CellSpec, rng: np.random.Generator, start: np.ndarray, length: float,
          persistence: float, step: float, flat: bool, stay_out_of_nucleus: bool) -> np.ndarray:
    """A worm-like chain confined to the cytoplasm (points (N, 3))."""
    d = rng.normal(0, 1, 3)
    d[0] *= 0.2 if flat else 1.0
    d /= np.linalg.norm(d)
    pts = [start]
    sigma = math.sqrt(2 * step / persistence)
    for _ in range(int(length / step)):
        d = d + rng.normal(0, sigma, 3)
        if flat:
            d[0] *= 0.5
        d /= np.linalg.norm(d)
        nxt = pts[-1] + step * d
        if not _inside(cell, nxt, 0.15) or (stay_out_of_nucleus and _in_nucleus(cell, nxt, 0.1)):
            d = -d + rng.normal(0, 0.5, 3)
            d /= np.linalg.norm(d)
            continue
        pts.append(nxt)
    return np.array(pts)


def _densify(pts: np.ndarray, spacing: float = 0.04) -> np.ndarray:
    if len(pts) < 2:
        return pts
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.arange(0, s[-1] + 1e-9, spacing)
    return np.stack([np.interp(t, s, pts[:, i]) for i in range(3)], axis=1)


def _add_mitochondria(cell: CellSpec, fp: FamilyParams, rng: np.random.Generator) -> None:
    total = rng.uniform(*fp.mito_length_um) * (0.6 if cell.mitotic else 1.0)
    fragmented = rng.random() < fp.mito_fragmented or cell.mitotic
    mean_len = rng.uniform(0.8, 2.0) if fragmented else rng.uniform(3.0, 8.0)
    persistence = rng.uniform(2.0, 5.0)
    flat = cell.height < 7 and not cell.mitotic
    done = 0.0
    while done < total:
        if not fragmented and cell.mito and rng.random() < 0.4:
            # networked: a branch grows out of an existing tubule
            parent = cell.mito[rng.integers(len(cell.mito))]
            start = parent.points[rng.integers(len(parent.points))]
            r = float(parent.radius[0])
        else:
            start = _random_cyto_point(cell, rng, 0.35, near_nucleus=2.5 + 0.1 * cell.r0)
            r = rng.uniform(0.15, 0.3)
        if start is None:
            break
        length = min(rng.exponential(mean_len) + 0.5, 15.0)
        pts = _walk(cell, rng, start, length, persistence, 0.2, flat, True)
        done += max(length, 0.5)
        if len(pts) < 2:
            continue
        pts = _densify(pts)
        cell.mito.append(Chain(pts, np.full(len(pts), r, np.float32)))


def _add_actin(cell: CellSpec, fp: FamilyParams, rng: np.random.Generator) -> None:
    if cell.mitotic:
        return
    # basal stress fibres: roughly along the long axis, just above the substrate
    for _ in range(rng.integers(fp.n_fibres[0], fp.n_fibres[1] + 1)):
        v0 = rng.uniform(-0.7, 0.7) * cell.r0 / math.sqrt(cell.elongation)
        half = cell.r0 * rng.uniform(0.4, 0.9)
        tilt = rng.normal(0, 0.25)
        u = np.linspace(-half, half, 40) * cell.elongation ** 0.5
        v = v0 + np.tan(tilt) * u
        yx = np.array([_to_world(cell, a, b) for a, b in zip(u, v)])
        z = np.full(len(u), cell.z_base + rng.uniform(0.25, 0.5))
        pts = np.column_stack([z, yx])
        keep = np.array([_inside(cell, p, 0.1) for p in pts])
        if keep.sum() < 5:
            continue
        pts = _densify(pts[keep])
        cell.fibres.append(Chain(pts, np.full(len(pts), rng.uniform(0.12, 0.22), np.float32)))
    # filopodia: thin straight protrusions from the outline
    for _ in range(rng.integers(fp.n_filopodia[0], fp.n_filopodia[1] + 1)):
        theta = rng.uniform(0, 2 * np.pi)
        r_edge = float(cell.outline_radius(np.array([theta]))[0])
        length = rng.uniform(2.0, 7.0)
        rr = np.linspace(r_edge - 1.5, r_edge + length, 30)
        yx = np.array([_to_world(cell, r * math.cos(theta), r * math.sin(theta)) for r in rr])
        z = np.full(len(rr), cell.z_base + 0.3)
        pts = _densify(np.column_stack([z, yx]))
        cell.filopodia.append(Chain(pts, np.linspace(0.16, 0.1, len(pts)).astype(np.float32)))


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------
@dataclass
class CellMaps:
    """Occupancy maps of one cell on the tomogram grid, inside ``bbox`` (tuple of slices)."""

    bbox: tuple[slice, slice, slice]
    cell: np.ndarray
    shell: np.ndarray
    nucleus: np.ndarray
    nucleolus: np.ndarray
    chromosomes: np.ndarray
    mito: np.ndarray
    fibres: np.ndarray
    filopodia: np.ndarray
    droplet_occ: np.ndarray
    droplet_dn: np.ndarray
    vacuole_occ: np.ndarray | None = None  # None: no vacuoles (the eight families)
    vacuole_dn: np.ndarray | None = None


def cell_bbox(cell: CellSpec, shape: tuple[int, int, int],
              voxel: tuple[float, float, float]) -> tuple[slice, slice, slice] | None:
    """Voxel bounding box of ``cell`` clipped to the field, or None when outside it."""
    ext = cell.extent
    lo = [cell.z_base - 0.5, cell.center[0] - ext, cell.center[1] - ext]
    hi = [cell.z_base + cell.z_offset + cell.height + 0.5, cell.center[0] + ext,
          cell.center[1] + ext]
    sl = []
    for a, b, v, n in zip(lo, hi, voxel, shape):
        i0, i1 = max(math.floor(a / v) - 1, 0), min(math.ceil(b / v) + 2, n)
        if i1 <= i0:
            return None
        sl.append(slice(i0, i1))
    return tuple(sl)


def render_cell(cell: CellSpec, bbox: tuple[slice, slice, slice],
                voxel: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM,
                supersample: int = 2) -> CellMaps:
    """Occupancy maps of ``cell`` on the tomogram voxels of ``bbox``.

    The cell body (and its 0.3 µm membrane / cortex shell), nuclei and chromosomes are
    sampled ``supersample``³ times per voxel wherever a surface passes through the voxel
    (the same result as rendering on a ``supersample`` times finer grid and block-averaging,
    at a fraction of the cost); tubes and small spheres get analytic partial-volume occupancy
    from exact distances.
    """
    n = tuple(b.stop - b.start for b in bbox)
    grid = Grid(tuple(b.start * v for b, v in zip(bbox, voxel)), voxel, n)
    shell_t = 0.3
    occ_cell, inner = _refined_occupancy(cell.body_sdf, grid, supersample, (0.0, shell_t))
    shell = occ_cell - inner

    def in_cell(fn, margin):
        return lambda z, y, x: np.maximum(fn(z, y, x), cell.body_sdf(z, y, x) + margin)

    nuc = np.zeros(n, np.float32)
    for center, axes, angle in cell.nuclei:
        fn = in_cell(functools.partial(ellipsoid_sdf, center=center, axes=axes, angle=angle),
                     0.5)
        _box_max(nuc, grid, center, float(np.max(axes)), fn, supersample)
    chrom = np.zeros(n, np.float32)
    for center, axes, angle in cell.chromosomes:
        fn = in_cell(functools.partial(ellipsoid_sdf, center=center, axes=axes, angle=angle),
                     0.3)
        _box_max(chrom, grid, center, float(np.max(axes)), fn, supersample)
    nucleolus = np.zeros(n, np.float32)
    for center, r in cell.nucleoli:
        _sphere_into(nucleolus, grid, center, r, np.maximum)
    nucleolus = np.minimum(nucleolus, nuc)
    d_occ = np.zeros(n, np.float32)
    d_dn = np.zeros(n, np.float32)
    for center, r, dn in cell.droplets:
        _sphere_into(d_occ, grid, center, r, np.maximum, value_out=d_dn, value=dn)
    d_occ = np.minimum(d_occ, occ_cell)
    tubes = [render_chains(chains, grid) for chains in (cell.mito, cell.fibres,
                                                        cell.filopodia)]
    tubes[0] = np.minimum(tubes[0], np.clip(occ_cell - nuc, 0, 1))
    tubes[1] = np.minimum(tubes[1], occ_cell)
    vacuoles = _render_vacuoles(cell, grid, np.clip(occ_cell - nuc, 0, 1))
    if vacuoles[0] is not None:  # vacuoles displace mitochondria and droplets
        tubes[0] = np.minimum(tubes[0], 1 - vacuoles[0])
        d_occ = np.minimum(d_occ, 1 - vacuoles[0])
    cell_occ = np.maximum(occ_cell, tubes[2])  # filopodia belong to the cell
    return CellMaps(bbox, cell_occ, np.maximum(shell, tubes[2]), nuc, nucleolus, chrom,
                    tubes[0], tubes[1], tubes[2], d_occ, d_dn, *vacuoles)


def _render_vacuoles(cell: CellSpec, grid: Grid, cytoplasm: np.ndarray
                     ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Occupancy and Δn of the cell's vacuoles inside its cytoplasm (None, None: none)."""
    if not cell.vacuoles:
        return None, None
    occ = np.zeros(grid.shape, np.float32)
    dn = np.zeros(grid.shape, np.float32)
    for center, r, value in cell.vacuoles:
        _sphere_into(occ, grid, center, r, np.maximum, value_out=dn, value=value)
    return np.minimum(occ, cytoplasm), dn


def _refined_occupancy(fn, grid: Grid, s: int, shifts: tuple[float, ...]
                       ) -> list[np.ndarray]:
    """Occupancy of {fn + shift < 0} for each shift, supersampled near the surfaces.

    ``fn(z, y, x)`` is a signed distance (µm). Voxels farther than about a voxel from the
    surface are fully in or out; the others are sampled at ``s``³ sub-voxel points with
    analytic partial volume at the sub-voxel scale.
    """
    d = np.broadcast_to(fn(*grid.axes3()), grid.shape)
    reach = 0.5 * float(np.linalg.norm(grid.spacing)) + grid.h
    outs = [(d + np.float32(sh) < 0).astype(np.float32) for sh in shifts]
    band = np.zeros(grid.shape, bool)
    for sh in shifts:
        band |= np.abs(d + np.float32(sh)) < reach
    idx = np.nonzero(band)
    if idx[0].size == 0:
        return outs
    s = max(int(s), 1)
    sub = (np.arange(s, dtype=np.float32) + 0.5) / s - 0.5
    off = np.stack(np.meshgrid(sub, sub, sub, indexing="ij"), -1).reshape(-1, 3)
    off = off * np.asarray(grid.spacing, np.float32)
    z, y, x = grid.axes()
    h_sub = grid.h / s
    step = 200_000  # points per chunk: bounds the temporary memory
    for lo in range(0, idx[0].size, step):
        part = tuple(i[lo:lo + step] for i in idx)
        pz = z[part[0]][:, None] + off[None, :, 0]
        py = y[part[1]][:, None] + off[None, :, 1]
        px = x[part[2]][:, None] + off[None, :, 2]
        ds = fn(pz, py, px)
        for out, sh in zip(outs, shifts):
            out[part] = occupancy(ds + np.float32(sh), h_sub).mean(axis=1)
    return outs


def _box_max(out: np.ndarray, grid: Grid, center: np.ndarray, radius: float, fn,
             s: int) -> None:
    """Max the occupancy of {fn < 0} into ``out`` within ``radius`` (+ a margin) of center."""
    z, y, x = grid.axes()
    r = radius + 2 * grid.h
    sl = tuple(slice(int(np.searchsorted(a, c - r)), int(np.searchsorted(a, c + r)))
               for a, c in zip((z, y, x), center))
    if any(b.stop <= b.start for b in sl):
        return
    sub = Grid(tuple(float(a[b.start]) for a, b in zip((z, y, x), sl)), grid.spacing,
               tuple(b.stop - b.start for b in sl))
    out[sl] = np.maximum(out[sl], _refined_occupancy(fn, sub, s, (0.0,))[0])


def _sphere_into(out: np.ndarray, grid: Grid, center: np.ndarray, radius: float, combine,
                 value_out: np.ndarray | None = None, value: float = 0.0) -> None:
    """Draw a sphere's occupancy into ``out`` (and its value where it dominates)."""
    z, y, x = grid.axes()
    r = radius + 2 * grid.h
    sl = tuple(slice(int(np.searchsorted(a, c - r)), int(np.searchsorted(a, c + r)))
               for a, c in zip((z, y, x), center))
    if any(s.stop <= s.start for s in sl):
        return
    d = np.sqrt((z[sl[0]][:, None, None] - center[0]) ** 2
                + (y[sl[1]][None, :, None] - center[1]) ** 2
                + (x[sl[2]][None, None, :] - center[2]) ** 2) - radius
    occ = occupancy(d, grid.h)
    if value_out is not None:
        value_out[sl] = np.where(occ > out[sl], value, value_out[sl])
    out[sl] = combine(out[sl], occ)


def render_chains(chains: list[Chain], grid: Grid) -> np.ndarray:
    """Occupancy of tubes around polylines, from exact distances to their points.

    Written by hand because no library rasterises thousands of thin variable-radius tubes
    with partial-volume occupancy; only voxels near a centreline are evaluated.
    """
    out = np.zeros(grid.shape, np.float32)
    if not chains:
        return out
    pts = np.concatenate([c.points for c in chains]).astype(np.float32)
    rad = np.concatenate([c.radius for c in chains]).astype(np.float32)
    spacing = np.asarray(grid.spacing, np.float32)
    origin = np.asarray(grid.origin, np.float32)
    reach = np.ceil((float(rad.max()) + 1.5 * grid.h) / spacing).astype(int)
    idx = np.round((pts - origin) / spacing).astype(np.int64)
    near = np.zeros(grid.shape, bool)
    ok = np.all((idx >= 0) & (idx < grid.shape), axis=1)
    near[tuple(idx[ok].T)] = True
    near = ndimage.maximum_filter(near, size=tuple(2 * reach + 1), mode="constant")
    cand = np.argwhere(near)
    if cand.size == 0:
        return out
    tree = cKDTree(pts)
    dist, nearest = tree.query(cand * spacing + origin, k=1)
    occ = occupancy(dist.astype(np.float32) - rad[nearest], grid.h)
    out[tuple(cand.T)] = occ
    return out


def conc_to_dn(conc: float | np.ndarray) -> float | np.ndarray:
    """Refractive-index increment of a dry-mass concentration (g/mL): Δn = α·C."""
    return ALPHA_ML_PER_G * conc
