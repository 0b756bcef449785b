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
)

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
    cyto_conc: tuple[float, float] = (0.10, 0.15)
    binucleate_p: float = 0.03
    mitotic_p: float = 0.04


FAMILIES: dict[str, FamilyParams] = {
    "fibroblast": FamilyParams((30, 55), (3.5, 6.0), (1.8, 3.5), 0.18, (1.3, 2.0), (0.35, 0.5),
                               (2, 10), (150, 300), 0.2, (8, 20), (4, 12)),
    "epithelial": FamilyParams((22, 45), (4.0, 8.0), (1.0, 1.5), 0.10, (2.5, 4.0), (0.35, 0.5),
                               (3, 12), (150, 300), 0.2, (3, 10), (2, 8)),
    "hek293": FamilyParams((12, 18), (6.0, 9.0), (1.0, 1.4), 0.08, (2.0, 3.0), (0.5, 0.65),
                           (1, 6), (60, 140), 0.3, (0, 4), (1, 5)),
    "mda_mb_231": FamilyParams((22, 40), (4.0, 7.0), (1.6, 2.6), 0.22, (1.5, 2.5), (0.4, 0.55),
                               (3, 14), (120, 250), 0.3, (3, 10), (6, 16)),
    "astrocyte": FamilyParams((16, 24), (5.0, 8.0), (1.0, 1.3), 0.10, (2.0, 3.0), (0.45, 0.6),
                              (1, 6), (120, 250), 0.2, (2, 6), (0, 4),
                              n_processes=(4, 8), process_length=(10, 26)),
    "macrophage": FamilyParams((8, 12), (6.0, 10.0), (1.0, 1.2), 0.06, (2.0, 2.0), (0.6, 0.8),
                               (3, 12), (40, 90), 0.4, (0, 2), (4, 12), cyto_conc=(0.11, 0.16)),
    "hepatocyte": FamilyParams((20, 32), (6.0, 9.0), (1.0, 1.4), 0.12, (2.5, 3.5), (0.3, 0.4),
                               (20, 60), (200, 350), 0.2, (2, 6), (0, 4), binucleate_p=0.25),
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
    nuclei: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    nucleoli: list[tuple[np.ndarray, float]] = field(default_factory=list)
    droplets: list[tuple[np.ndarray, float, float]] = field(default_factory=list)
    chromosomes: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    mito: list[Chain] = field(default_factory=list)
    fibres: list[Chain] = field(default_factory=list)
    filopodia: list[Chain] = field(default_factory=list)
    processes: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
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
        dy, dx = y[:, None] - self.center[0], x[None, :] - self.center[1]
        c, s = math.cos(self.angle), math.sin(self.angle)
        u, v = c * dx + s * dy, -s * dx + c * dy
        return np.hypot(u, v), np.arctan2(v, u)

    def body_sdf(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Approximate signed distance (µm, negative inside) to the cell body, on a grid."""
        rho, theta = self._polar(y, x)
        r = self.outline_radius(theta).astype(np.float32)
        s = (rho / r).astype(np.float32)
        p = self.profile_power
        zr = (z - self.z_base).astype(np.float32)[:, None, None]
        sp = s ** p
        q = np.sqrt(sp[None] + (zr / self.height) ** 2)
        # first-order distance (q - 1) / |grad q| of the dome q = 1
        g_rho = (0.5 * p * s ** (p - 1) / r)[None]
        g_z = zr / self.height ** 2
        grad = np.sqrt(g_rho ** 2 + g_z ** 2) / np.maximum(q, 1e-3)
        d = (q - 1.0) / np.maximum(grad, 0.05)
        if self.processes:
            d = np.minimum(d, _processes_sdf(zr, y, x, self.processes))
        return np.maximum(d, -zr)

    def nucleus_sdf(self, z: np.ndarray, y: np.ndarray, x: np.ndarray,
                    index: int) -> np.ndarray:
        center, axes, angle = self.nuclei[index]
        return ellipsoid_sdf(z, y, x, center, axes, angle)


def ellipsoid_sdf(z: np.ndarray, y: np.ndarray, x: np.ndarray, center: np.ndarray,
                  axes: np.ndarray, angle: float) -> np.ndarray:
    """First-order signed distance (µm) to an ellipsoid with semi-axes (c, b, a) (z, y, x)
    rotated by ``angle`` in the xy plane."""
    dy, dx = (y - center[1])[:, None], (x - center[2])[None, :]
    c, s = math.cos(angle), math.sin(angle)
    u = ((c * dx + s * dy) / axes[2]).astype(np.float32)
    v = ((-s * dx + c * dy) / axes[1]).astype(np.float32)
    w = ((z - center[0]) / axes[0]).astype(np.float32)[:, None, None]
    q = np.sqrt(u[None] ** 2 + v[None] ** 2 + w ** 2)
    grad = np.sqrt((u / axes[2])[None] ** 2 + (v / axes[1])[None] ** 2
                   + (w / axes[0]) ** 2) / np.maximum(q, 1e-3)
    return (q - 1.0) / np.maximum(grad, 1.0 / float(np.max(axes)))


def _segment_distance_2d(y: np.ndarray, x: np.ndarray, pts: np.ndarray,
                         width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance in the xy plane to a polyline and the interpolated width there."""
    best = np.full((y.size, x.size), np.inf, np.float32)
    wbest = np.zeros_like(best)
    yy, xx = y[:, None], x[None, :]
    for i in range(len(pts) - 1):
        a, b = pts[i], pts[i + 1]
        ab = b - a
        t = ((yy - a[0]) * ab[0] + (xx - a[1]) * ab[1]) / max(float(ab @ ab), 1e-9)
        t = np.clip(t, 0.0, 1.0)
        d = np.hypot(yy - a[0] - t * ab[0], xx - a[1] - t * ab[1]).astype(np.float32)
        closer = d < best
        best = np.where(closer, d, best)
        wbest = np.where(closer, width[i] + t * (width[i + 1] - width[i]), wbest)
    return best, wbest


def _processes_sdf(zr: np.ndarray, y: np.ndarray, x: np.ndarray,
                   processes: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """Flat tapered processes (astrocyte arms) lying on the substrate.

    The nearest process is chosen in the xy plane (2-D work), so only one 3-D pass is needed.
    """
    lateral = np.full((y.size, x.size), np.inf, np.float32)
    height = np.zeros_like(lateral)
    for pts, width, hz in processes:
        dxy, w = _segment_distance_2d(y, x, pts, width)
        lat = dxy - w
        closer = lat < lateral
        lateral = np.where(closer, lat, lateral)
        height = np.where(closer, np.maximum(hz * w / max(float(width[0]), 1e-3), 0.4), height)
    return np.maximum(lateral[None], zr - height[None])


def occupancy(d: np.ndarray, h: float) -> np.ndarray:
    """Fraction of a voxel of width ``h`` inside the surface at signed distance ``d``."""
    return np.clip(0.5 - d / h, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------
# random cells
# ---------------------------------------------------------------------------------------
def make_cell(family: str, rng: np.random.Generator, center: tuple[float, float],
              z_base: float, variant: str | None = None,
              max_height: float | None = None) -> CellSpec:
    """Draw one cell of ``family`` centred at ``center`` (y, x) µm on the substrate ``z_base``.

    ``variant`` is "normal", "mitotic" or "binucleate"; ``None`` draws one with the family's
    probabilities. ``max_height`` caps the cell height (to fit the field of view).
    """
    fp = FAMILIES[family]
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
        diameter = rng.uniform(12, 18) if family != "macrophage" else diameter
        height, elong, power = 0.8 * diameter, 1.0, 2.0
        harmonics = [(k, a * 0.1, p) for k, a, p in harmonics]
    if max_height is not None:
        height = min(height, max_height)
    cell = CellSpec(family=family, center=center, z_base=z_base, angle=rng.uniform(0, np.pi),
                    r0=diameter / 2, elongation=elong, harmonics=harmonics, height=height,
                    profile_power=power, mitotic=mitotic, variant=variant,
                    cyto_conc=rng.uniform(*fp.cyto_conc))
    cell.nucleus_offset_dn = rng.uniform(0.003, 0.01)
    cell.nucleolus_conc = rng.uniform(0.17, 0.26)
    cell.mito_dn = rng.uniform(0.058, 0.07)
    cell.membrane_dn = rng.uniform(0.003, 0.008)
    cell.actin_dn = rng.uniform(0.01, 0.03)
    cell.brightness = {t: float(rng.uniform(0.75, 1.0)) for t in
                       ("membrane", "actin", "mitochondria", "lipid_droplets", "nucleus",
                        "nucleolus")}
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
    s = float(rho[0, 0] / cell.outline_radius(theta)[0, 0])
    if s >= 1:
        return 0.0, s
    return cell.height * math.sqrt(max(1 - s ** cell.profile_power, 0.0)), s


def _to_world(cell: CellSpec, u: float, v: float) -> tuple[float, float]:
    c, s = math.cos(cell.angle), math.sin(cell.angle)
    return cell.center[0] + s * u + c * v, cell.center[1] + c * u - s * v


def _add_nuclei(cell: CellSpec, fp: FamilyParams, rng: np.random.Generator, n: int) -> None:
    short = 2 * cell.r0 / math.sqrt(cell.elongation)
    for i in range(n):
        frac = rng.uniform(*fp.nucleus_fraction) * (0.8 if n == 2 else 1.0)
        a = 0.5 * frac * short * rng.uniform(1.1, 1.5)  # along the long axis
        b = 0.5 * frac * short
        offset = (i - (n - 1) / 2) * 2.1 * a + rng.normal(0, 0.08 * cell.r0)
        y, x = _to_world(cell, offset, rng.normal(0, 0.05 * cell.r0))
        h_local, _ = _local_height(cell, y, x)
        c = min(rng.uniform(0.3, 0.45) * cell.height, 0.5 * h_local - 0.6, b)
        c = max(c, 1.0)
        zc = cell.z_base + 0.4 + c
        cell.nuclei.append((np.array([zc, y, x]), np.array([c, b, a]),
                            cell.angle + rng.normal(0, 0.15)))


def _add_nucleoli(cell: CellSpec, rng: np.random.Generator) -> None:
    for center, axes, _angle in cell.nuclei:
        for _ in range(rng.integers(1, 5)):
            r = float(rng.uniform(0.45, 1.1)) * min(1.0, float(axes[0]) / 1.5)
            off = rng.uniform(-1, 1, 3) * np.maximum(axes - r - 0.4, 0.0) * 0.7
            cell.nucleoli.append((center + off, r))


def _add_chromosomes(cell: CellSpec, rng: np.random.Generator) -> None:
    """Condensed chromosomes on a metaphase plate, or two anaphase sets."""
    zc = cell.z_base + 0.5 * cell.height
    plate_normal = rng.uniform(0, np.pi)
    anaphase = rng.random() < 0.4
    sets = [-1.8, 1.8] if anaphase else [0.0]
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
            axes = np.array([rng.uniform(0.3, 0.45), rng.uniform(0.3, 0.45),
                             rng.uniform(0.6, 1.2)])
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
    n = np.ceil(np.array([cell.height + 1.0, 2 * ext, 2 * ext]) / st).astype(int) + 1
    z, y, x = (np.float32(o + st * np.arange(k)) for o, k in zip(origin, n))
    body = cell.body_sdf(z, y, x)
    nuc = np.full(body.shape, np.inf, np.float32)
    for center, axes, angle in cell.nuclei + cell.chromosomes:
        nuc = np.minimum(nuc, ellipsoid_sdf(z, y, x, center, axes, angle))
    cell._lookup = (origin, body, nuc)


def _lookup(cell: CellSpec, p: np.ndarray) -> tuple[float, float]:
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
        start = _random_cyto_point(cell, rng, 0.35, near_nucleus=2.5 + 0.1 * cell.r0)
        if start is None:
            break
        length = min(rng.exponential(mean_len) + 0.5, 15.0)
        pts = _walk(cell, rng, start, length, persistence, 0.2, flat, True)
        done += max(length, 0.5)
        if len(pts) < 2:
            continue
        pts = _densify(pts)
        radius = np.full(len(pts), rng.uniform(0.15, 0.3), np.float32)
        cell.mito.append(Chain(pts, radius))


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


def cell_bbox(cell: CellSpec, shape: tuple[int, int, int],
              voxel: tuple[float, float, float]) -> tuple[slice, slice, slice] | None:
    """Voxel bounding box of ``cell`` clipped to the field, or None when outside it."""
    ext = cell.extent
    lo = [cell.z_base - 0.5, cell.center[0] - ext, cell.center[1] - ext]
    hi = [cell.z_base + cell.height + 0.5, cell.center[0] + ext, cell.center[1] + ext]
    sl = []
    for a, b, v, n in zip(lo, hi, voxel, shape):
        i0, i1 = max(math.floor(a / v) - 1, 0), min(math.ceil(b / v) + 2, n)
        if i1 <= i0:
            return None
        sl.append(slice(i0, i1))
    return tuple(sl)


def _block_mean(a: np.ndarray, s: int) -> np.ndarray:
    """Mean over s x s x s blocks (sums of strided views: much faster than a 6-D reshape)."""
    if s == 1:
        return a
    for axis in range(3):
        idx = [slice(None)] * 3
        parts = []
        for k in range(s):
            idx[axis] = slice(k, None, s)
            parts.append(a[tuple(idx)])
        a = np.add.reduce(parts, dtype=np.float32) if s > 2 else parts[0] + parts[1]
    return (a / np.float32(s ** 3)).astype(np.float32)


def render_cell(cell: CellSpec, bbox: tuple[slice, slice, slice],
                voxel: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM,
                supersample: int = 2) -> CellMaps:
    """Occupancy maps of ``cell`` on the tomogram voxels of ``bbox``.

    The cell body, nuclei and chromosomes are evaluated on a grid ``supersample`` times finer
    and block-averaged (partial-volume effects); tubes and small spheres get analytic
    partial-volume occupancy from exact distances on the tomogram grid.
    """
    s = max(int(supersample), 1)
    n = tuple(b.stop - b.start for b in bbox)
    fine = Grid(tuple(b.start * v - 0.5 * v + 0.5 * v / s for b, v in zip(bbox, voxel)),
                tuple(v / s for v in voxel), tuple(k * s for k in n))
    coarse = Grid(tuple(b.start * v for b, v in zip(bbox, voxel)), voxel, n)
    z, y, x = fine.axes()
    h = fine.h
    d_cell = cell.body_sdf(z, y, x)
    occ_cell = occupancy(d_cell, h)
    shell_t = 0.3
    shell = occ_cell - occupancy(d_cell + shell_t, h)
    nuc = np.zeros_like(occ_cell)
    for center, axes, angle in cell.nuclei:
        nuc = np.maximum(nuc, _ellipsoid_local(fine, center, axes, angle, d_cell, 0.5))
    chrom = np.zeros_like(occ_cell)
    for center, axes, angle in cell.chromosomes:
        chrom = np.maximum(chrom, _ellipsoid_local(fine, center, axes, angle, d_cell, 0.3))
    maps = [_block_mean(a, s) for a in (occ_cell, shell, nuc, chrom)]
    nucleolus = np.zeros(n, np.float32)
    for center, r in cell.nucleoli:
        _sphere_into(nucleolus, coarse, center, r, np.maximum)
    nucleolus = np.minimum(nucleolus, maps[2])
    d_occ = np.zeros(n, np.float32)
    d_dn = np.zeros(n, np.float32)
    for center, r, dn in cell.droplets:
        _sphere_into(d_occ, coarse, center, r, np.maximum, value_out=d_dn, value=dn)
    d_occ = np.minimum(d_occ, maps[0])
    tubes = [render_chains(chains, coarse) for chains in (cell.mito, cell.fibres,
                                                          cell.filopodia)]
    tubes[0] = np.minimum(tubes[0], np.clip(maps[0] - maps[2], 0, 1))
    tubes[1] = np.minimum(tubes[1], maps[0])
    cell_occ = np.maximum(maps[0], tubes[2])  # filopodia belong to the cell
    return CellMaps(bbox, cell_occ, np.maximum(maps[1], tubes[2]), maps[2], nucleolus,
                    maps[3], tubes[0], tubes[1], tubes[2], d_occ, d_dn)


def _ellipsoid_local(grid: Grid, center, axes, angle, d_cell, margin: float) -> np.ndarray:
    """Occupancy of an ellipsoid kept ``margin`` µm inside the cell, evaluated in its box."""
    z, y, x = grid.axes()
    out = np.zeros(grid.shape, np.float32)
    r = float(np.max(axes)) + 2 * grid.h
    sl = tuple(slice(int(np.searchsorted(a, c - r)), int(np.searchsorted(a, c + r)))
               for a, c in zip((z, y, x), center))
    if any(s.stop <= s.start for s in sl):
        return out
    d = ellipsoid_sdf(z[sl[0]], y[sl[1]], x[sl[2]], center, axes, angle)
    out[sl] = occupancy(np.maximum(d, d_cell[sl] + margin), grid.h)
    return out


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
