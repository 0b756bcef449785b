"""Procedural cells: a distribution of morphologies beyond the eight families (issue #30).

``simulate_fov("procedural", seed=..., shape=...)`` fills a field with cells whose every
morphological parameter is drawn at random from the ranges below (module-level constants),
instead of from one family's. The cells are :class:`ProceduralCell` objects, a
:class:`~ri2fl.simulate.phantoms.CellSpec` whose outline is a tabulated radius r(θ), so
placement, rendering, the six fluorescence targets, masks and labels work unchanged; the
mitochondria, stress fibres and filopodia are drawn by the families' own helpers.

===========================  =====================================================
parameter                    range (lengths in µm, Δn = n - n_medium)
===========================  =====================================================
outline                      round 0.25, lobed 0.30, polygonal 0.25, elongated 0.20
size                         equivalent-area diameter 8-20 (``DIAMETER_UM``)
round                        elongation 1-1.15, harmonics k = 2-5 of amplitude ~0.02
lobed                        elongation 1-1.6, one dominant harmonic k = 2-5 of
                             amplitude 0.1-0.3 + a random Fourier radius (k = 1-8,
                             amplitude 0.08 / k)
polygonal                    4-8 vertices, radius jitter ±15 %, angle jitter ±25 % of
                             the spacing, elongation 1-1.5, corners rounded over 1.5°
elongated                    elongation 2-4, a k = 1 taper of 0-0.2
height                       flat 2-4, dome 4-8 (profile power 1.6-3.5, dome over
                             0.6-1 of the outline, lamella 0.3-1 with p = 0.6); round
                             outlines are suspension spheres with p = 0.5 (vertical
                             semi-axis 0.85-1 of the radius, resting on the dish)
nucleus shape                ellipsoid 0.5 (aspect 1-1.6), kidney 0.25 (arc 150-220°,
                             thickness 0.3-0.42 of its radius), lobed 0.25 (2-4 lobes
                             of 0.5-0.62 of the radius, centres 0.75-0.95 lobe radii
                             out)
nucleus size                 equivalent diameter 0.35-0.65 of the cell (spheres
                             0.55-0.8), shrunk until it fits inside the cell
nucleus position             eccentric with p = 0.35 (0.25-0.6 of the free room),
                             else central (0-0.1)
nuclear contrast             -0.015 .. +0.005 against the cytoplasm
nucleoli                     none p = 0.2, else 1-4 of radius 0.4-1.1; invisible
                             (Δn -0.001 .. +0.002 against the nucleoplasm) p = 0.25,
                             else +0.006 .. +0.03
vacuoles                     none p = 0.5, else 1-6, radius 0.5-2, Δn 0-0.006
lipid droplets               0-80 per cell, log-uniform in n + 1 (p(0) ≈ 0.16);
                             radius and RI as the families (median 0.55, n 1.40-1.48)
cytoplasm                    C = 0.08-0.15 g/mL
mitochondria                 0.06-0.2 µm of tubule per µm³ of cell (≤ 350 µm),
                             fragmented p = 0.35
stress fibres / filopodia    flat 2-12 / 0-10, dome 0-6 / 0-10, sphere 0 / 0-4
field: clusters              p = 0.4, 2-4 touching cells, centres at 0.85-0.95 of the
                             summed radii along the line between them; all spheres or
                             none (a sphere over a lamella would enclose medium)
field: edge                  p = 0.5, one cell centred on the field border
field: cover                 0.3-0.55 of the field area (other cells keep their
                             outlines, grown by 5 %, apart)
===========================  =====================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..constants import ALPHA_ML_PER_G, CANONICAL_VOXEL_SIZE_UM
from ..errors import ConfigError
from .phantoms import (
    PROCEDURAL,
    CellSpec,
    Chain,
    FamilyParams,
    _add_actin,
    _add_mitochondria,
    _build_lookup,
    _local_height,
    _random_cyto_point,
    conc_to_dn,
    draw_organelle_contrasts,
)

# -- outline -------------------------------------------------------------------------------
OUTLINE_KINDS: tuple[str, ...] = ("round", "lobed", "polygonal", "elongated")
OUTLINE_P: tuple[float, ...] = (0.25, 0.30, 0.25, 0.20)
DIAMETER_UM = (8.0, 20.0)  # equivalent-area diameter of the outline
ROUND_ELONGATION = (1.0, 1.15)
ROUND_RIPPLE = 0.02
LOBED_ELONGATION = (1.0, 1.6)
LOBE_ORDER = (2, 5)
LOBE_AMPLITUDE = (0.1, 0.3)
LOBE_NOISE = 0.08  # amplitude / k of the random Fourier radius, k = 1..8
POLYGON_VERTICES = (4, 8)
POLYGON_RADIUS_JITTER = 0.15
POLYGON_ANGLE_JITTER = 0.25  # of the angular spacing of the vertices
POLYGON_ELONGATION = (1.0, 1.5)
POLYGON_CORNER_DEG = 1.5
ELONGATED_ELONGATION = (2.0, 4.0)
ELONGATED_TAPER = (0.0, 0.2)
OUTLINE_SAMPLES = 720
# -- height --------------------------------------------------------------------------------
FLAT_HEIGHT_UM = (2.0, 4.0)
DOME_HEIGHT_UM = (4.0, 8.0)
SPHERE_P = 0.5  # of round outlines
SPHERE_SEMI_AXIS = (0.85, 1.0)  # vertical semi-axis / radius
PROFILE_POWER = (1.6, 3.5)
DOME_FRACTION = (0.6, 1.0)
LAMELLA_P = 0.6
LAMELLA_UM = (0.3, 1.0)
# -- nucleus -------------------------------------------------------------------------------
NUCLEUS_KINDS: tuple[str, ...] = ("ellipsoid", "kidney", "lobed")
NUCLEUS_P: tuple[float, ...] = (0.5, 0.25, 0.25)
NUCLEUS_FRACTION = (0.35, 0.65)
SPHERE_NUCLEUS_FRACTION = (0.55, 0.8)
NUCLEUS_ASPECT = (1.0, 1.6)
NUCLEUS_THICKNESS = (0.7, 1.0)  # vertical / lateral semi-axis (before fitting the height)
KIDNEY_ARC_DEG = (150.0, 220.0)
KIDNEY_THICKNESS = (0.3, 0.42)  # half-width / radius of the arc
NUCLEUS_LOBES = (2, 4)
LOBE_RADIUS = (0.5, 0.62)  # of the nucleus' equivalent radius
LOBE_DISTANCE = (0.75, 0.95)  # lobe centre from the nucleus centre / lobe radius
ECCENTRIC_P = 0.35
ECCENTRICITY = (0.25, 0.6)
CENTRAL_ECCENTRICITY = (0.0, 0.1)
NUCLEAR_CONTRAST_DN = (-0.015, 0.005)
BASAL_GAP_UM = 0.3  # cytoplasm under the nucleus of an adherent cell
# -- nucleoli, vacuoles, droplets ---------------------------------------------------------
NO_NUCLEOLI_P = 0.2
NUCLEOLI = (1, 4)
NUCLEOLUS_RADIUS_UM = (0.4, 1.1)
INVISIBLE_NUCLEOLI_P = 0.25
NUCLEOLUS_CONTRAST_DN = (0.006, 0.03)
INVISIBLE_NUCLEOLUS_DN = (-0.001, 0.002)
VACUOLE_P = 0.5
VACUOLES = (1, 6)
VACUOLE_RADIUS_UM = (0.5, 2.0)
VACUOLE_DN = (0.0, 0.006)
DROPLETS = (0, 80)
DROPLET_N_TRUE = (1.40, 1.48)
# -- composition and cytoskeleton ---------------------------------------------------------
CYTO_CONC = (0.08, 0.15)
MITO_DENSITY = (0.06, 0.2)  # µm of tubule per µm³ of cell
MITO_MAX_UM = 350.0
MITO_FRAGMENTED_P = 0.35
FIBRES = {"flat": (2, 12), "dome": (0, 6), "sphere": (0, 0)}
FILOPODIA = {"flat": (0, 10), "dome": (0, 10), "sphere": (0, 4)}
# -- field ---------------------------------------------------------------------------------
CLUSTER_P = 0.4
CLUSTER_SIZE = (2, 4)
CLUSTER_CONTACT = (0.85, 0.95)  # centre distance / summed radii of touching cells
FREE_GAP = 1.05  # the same ratio for cells that do not touch
EDGE_P = 0.5
COVER = (0.3, 0.55)

_THETA = np.linspace(0.0, 2 * np.pi, OUTLINE_SAMPLES, endpoint=False)
_MEDIUM_REF = 1.337  # droplet Δn reference, as in the families


@dataclass
class ProceduralCell(CellSpec):
    """A cell with a tabulated outline r(θ) (µm, cell frame) and a record of its draw."""

    outline_um: np.ndarray = field(default_factory=lambda: np.ones(OUTLINE_SAMPLES))
    outline_kind: str = "round"
    height_kind: str = "dome"
    nucleus_kind: str = "ellipsoid"
    eccentricity: float = 0.0
    nuclear_contrast_dn: float = 0.0
    nucleolus_contrast_dn: float = 0.0
    role: str = "free"  # "free", "cluster" or "edge"

    def outline_radius(self, theta: np.ndarray) -> np.ndarray:
        """Outline radius (µm) at angles ``theta`` of the cell frame (periodic interpolation)."""
        return np.interp(theta, _THETA, self.outline_um, period=2 * np.pi)

    def radius_towards(self, direction: float) -> float:
        """Outline radius (µm) along the world direction ``direction`` (atan2(dy, dx))."""
        return float(self.outline_radius(np.array([direction - self.angle]))[0])


# ---------------------------------------------------------------------------------------
# outlines
# ---------------------------------------------------------------------------------------
def _ellipse(elongation: float) -> np.ndarray:
    """Radius of an ellipse of unit geometric-mean radius, long axis at θ = 0."""
    e = elongation
    return e / np.sqrt(np.cos(_THETA) ** 2 + (e * np.sin(_THETA)) ** 2) / math.sqrt(e)


def _fourier(rng: np.random.Generator, orders: range, scale: float) -> np.ndarray:
    """1 + Σ a_k cos(kθ + φ_k) with a_k ~ N(0, scale / k)."""
    mod = np.ones(OUTLINE_SAMPLES)
    for k in orders:
        mod += rng.normal(0, scale / k) * np.cos(k * _THETA + rng.uniform(0, 2 * np.pi))
    return mod


def _polygon(rng: np.random.Generator, elongation: float) -> np.ndarray:
    """Radius of a random star-convex polygon stretched by ``elongation``, corners rounded."""
    n = int(rng.integers(POLYGON_VERTICES[0], POLYGON_VERTICES[1] + 1))
    phi = (np.arange(n) + rng.uniform(-POLYGON_ANGLE_JITTER, POLYGON_ANGLE_JITTER, n)) \
        * 2 * np.pi / n + rng.uniform(0, 2 * np.pi)
    r = 1 + rng.uniform(-POLYGON_RADIUS_JITTER, POLYGON_RADIUS_JITTER, n)
    s = math.sqrt(elongation)
    u, v = r * np.cos(phi) * s, r * np.sin(phi) / s
    ang, rad = np.mod(np.arctan2(v, u), 2 * np.pi), np.hypot(u, v)
    order = np.argsort(ang)
    ang, rad = ang[order], rad[order]
    a0, r0 = ang, rad
    a1, r1 = np.roll(ang, -1), np.roll(rad, -1)
    a1 = np.where(a1 <= a0, a1 + 2 * np.pi, a1)
    i = np.searchsorted(ang, _THETA, side="right") - 1  # edge from vertex i to i + 1
    t = np.where(i < 0, _THETA + 2 * np.pi, _THETA)
    a0i, a1i, r0i, r1i = a0[i], a1[i], r0[i], r1[i]
    out = r0i * r1i * np.sin(a1i - a0i) / (r0i * np.sin(t - a0i) + r1i * np.sin(a1i - t))
    sigma = POLYGON_CORNER_DEG / 360 * OUTLINE_SAMPLES
    return ndimage.gaussian_filter1d(out, sigma, mode="wrap")


def draw_outline(kind: str, rng: np.random.Generator, r0: float) -> tuple[np.ndarray, float]:
    """Outline radius table (µm, equivalent-area radius ``r0``) and elongation for ``kind``."""
    if kind == "round":
        e = rng.uniform(*ROUND_ELONGATION)
        r = _ellipse(e) * _fourier(rng, range(2, 6), ROUND_RIPPLE * 2)
    elif kind == "lobed":
        e = rng.uniform(*LOBED_ELONGATION)
        k = int(rng.integers(LOBE_ORDER[0], LOBE_ORDER[1] + 1))
        mod = _fourier(rng, range(1, 9), LOBE_NOISE) + rng.uniform(*LOBE_AMPLITUDE) * np.cos(
            k * _THETA + rng.uniform(0, 2 * np.pi))
        r = _ellipse(e) * np.maximum(mod, 0.35)
    elif kind == "polygonal":
        e = rng.uniform(*POLYGON_ELONGATION)
        r = _polygon(rng, e)
    elif kind == "elongated":
        e = rng.uniform(*ELONGATED_ELONGATION)
        taper = 1 + rng.uniform(*ELONGATED_TAPER) * np.cos(_THETA)
        r = _ellipse(e) * taper * _fourier(rng, range(2, 6), ROUND_RIPPLE * 2)
    else:
        raise ValueError(f"unknown outline kind {kind!r}")
    r = np.maximum(r, 0.05)
    return r * (r0 / math.sqrt(float(np.mean(r ** 2)))), float(e)


# ---------------------------------------------------------------------------------------
# one cell
# ---------------------------------------------------------------------------------------
def _choice(rng: np.random.Generator, kinds: tuple[str, ...], p: tuple[float, ...]) -> str:
    return kinds[int(rng.choice(len(kinds), p=np.asarray(p) / np.sum(p)))]


def draw_body(rng: np.random.Generator, center: tuple[float, float], z_base: float,
              max_height: float | None = None, sphere: bool | None = None) -> ProceduralCell:
    """Outline and height profile of one cell (no organelles yet; see :func:`furnish`).

    ``sphere`` forces (True) or forbids (False) a round suspension cell; None draws it.
    """
    kind = "round" if sphere else _choice(rng, OUTLINE_KINDS, OUTLINE_P)
    r0 = rng.uniform(*DIAMETER_UM) / 2
    outline, e = draw_outline(kind, rng, r0)
    if sphere is None:
        sphere = kind == "round" and rng.random() < SPHERE_P
    height_kind = "sphere" if sphere else ("flat" if rng.random() < 0.5 else "dome")
    power, dome, lamella, z_offset = 2.0, 1.0, 0.0, 0.0
    if sphere:
        height = z_offset = r0 * rng.uniform(*SPHERE_SEMI_AXIS)
        if max_height is not None and 2 * height > max_height:
            height = z_offset = max_height / 2
    else:
        height = rng.uniform(*(FLAT_HEIGHT_UM if height_kind == "flat" else DOME_HEIGHT_UM))
        if max_height is not None:
            height = min(height, max_height)
        power = rng.uniform(*PROFILE_POWER)
        if rng.random() < LAMELLA_P:
            lamella = min(rng.uniform(*LAMELLA_UM), 0.5 * height)
            dome = rng.uniform(*DOME_FRACTION)
    return ProceduralCell(
        family=PROCEDURAL, center=center, z_base=z_base, angle=rng.uniform(0, 2 * np.pi),
        r0=r0, elongation=e, harmonics=[], height=height, profile_power=power,
        lamella_height=lamella, dome_fraction=dome, z_offset=z_offset,
        cyto_conc=rng.uniform(*CYTO_CONC), outline_um=outline.astype(np.float32),
        outline_kind=kind, height_kind=height_kind)


def furnish(cell: ProceduralCell, rng: np.random.Generator,
            droplets: tuple[int, int] | None = None,
            neighbours: tuple[CellSpec, ...] = ()) -> ProceduralCell:
    """Draw the composition, nucleus, nucleoli, vacuoles, droplets, mitochondria and actin.

    ``droplets`` replaces the log-uniform 0-80 droplets per cell by a uniform range; the
    nucleus keeps out of the bodies of ``neighbours`` (touching cells).
    """
    cell.nuclear_contrast_dn = rng.uniform(*NUCLEAR_CONTRAST_DN)
    cell.nucleus_offset_dn = -cell.nuclear_contrast_dn
    draw_organelle_contrasts(cell, rng)
    _add_nucleus(cell, rng, neighbours)
    _add_nucleoli(cell, rng)
    _build_lookup(cell)
    _add_vacuoles(cell, rng)
    _add_droplets(cell, rng, droplets)
    params = _cytoskeleton_params(cell, rng)
    _add_mitochondria(cell, params, rng)
    _add_actin(cell, params, rng)
    return cell


def make_procedural_cell(rng: np.random.Generator, center: tuple[float, float], z_base: float,
                         max_height: float | None = None,
                         droplets: tuple[int, int] | None = None) -> ProceduralCell:
    """Draw one procedural cell centred at ``center`` (y, x) µm on the substrate ``z_base``."""
    return furnish(draw_body(rng, center, z_base, max_height), rng, droplets)


# ---------------------------------------------------------------------------------------
# nucleus
# ---------------------------------------------------------------------------------------
_Element = tuple[np.ndarray, np.ndarray, float]  # lateral offset (y, x), (c, b, a), angle


def _rotate(u: float, v: float, phi: float) -> np.ndarray:
    """Local (u, v) rotated by ``phi`` -> world offset (y, x)."""
    return np.array([u * math.sin(phi) + v * math.cos(phi),
                     u * math.cos(phi) - v * math.sin(phi)])


def _nucleus_elements(kind: str, rng: np.random.Generator, radius: float,
                      c: float) -> list[_Element]:
    """Ellipsoids whose union is a nucleus of equivalent lateral radius ``radius``."""
    phi = rng.uniform(0, 2 * np.pi)
    if kind == "ellipsoid":
        aspect = rng.uniform(*NUCLEUS_ASPECT)
        b = radius / math.sqrt(aspect)
        return [(np.zeros(2), np.array([c, b, b * aspect]), phi)]
    if kind == "kidney":
        arc = math.radians(rng.uniform(*KIDNEY_ARC_DEG))
        k = rng.uniform(*KIDNEY_THICKNESS)
        big_r = radius * math.sqrt(math.pi / (2 * k * arc + math.pi * k ** 2))
        w = k * big_r
        psi = np.linspace(-arc / 2, arc / 2, max(int(arc * big_r / (0.4 * w)) + 1, 5))
        pts = np.stack([big_r * np.cos(psi), big_r * np.sin(psi)], axis=1)
        pts -= pts.mean(axis=0)
        return [(_rotate(u, v, phi), np.array([c, w, 1.2 * w]), phi + p + np.pi / 2)
                for (u, v), p in zip(pts, psi)]
    n = int(rng.integers(NUCLEUS_LOBES[0], NUCLEUS_LOBES[1] + 1))
    rho = radius * rng.uniform(*LOBE_RADIUS)
    out = []
    for j in range(n):
        t = 2 * np.pi * (j + rng.uniform(-0.15, 0.15)) / n
        d = rho * rng.uniform(*LOBE_DISTANCE)
        out.append((_rotate(d * math.cos(t), d * math.sin(t), phi),
                    np.array([c, rho, rho * rng.uniform(1.0, 1.3)]), phi + t))
    centroid = np.mean([o for o, _, _ in out], axis=0)
    return [(o - centroid, ax, a) for o, ax, a in out]


def _unit_sphere(n: int = 48) -> np.ndarray:
    """``n`` nearly uniform directions (Fibonacci sphere), (n, 3) as (z, y, x)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z ** 2)
    t = np.pi * (1 + 5 ** 0.5) * i
    return np.stack([z, r * np.sin(t), r * np.cos(t)], axis=1)


_DIRS = _unit_sphere()


def ellipsoid_surface(center: np.ndarray, axes: np.ndarray, angle: float,
                      dirs: np.ndarray = _DIRS) -> np.ndarray:
    """Points (n, 3) (z, y, x) on an ellipsoid as :func:`phantoms.ellipsoid_sdf` draws it."""
    p = dirs * np.asarray(axes)[None, :]  # (w, v, u) in the ellipsoid frame
    c, s = math.cos(angle), math.sin(angle)
    dx = c * p[:, 2] - s * p[:, 1]
    dy = s * p[:, 2] + c * p[:, 1]
    return np.stack([center[0] + p[:, 0], center[1] + dy, center[2] + dx], axis=1)


def nucleus_inside(cell: CellSpec, nuclei: list | None = None, margin: float = 0.25,
                   neighbours: tuple[CellSpec, ...] = ()) -> bool:
    """Whether every nuclear ellipsoid's surface lies ``margin`` µm inside the cell body
    (and ``margin`` µm outside the bodies of ``neighbours``)."""
    pts = np.concatenate([ellipsoid_surface(*n) for n in (nuclei or cell.nuclei)])
    z, y, x = (pts[:, i].astype(np.float32) for i in range(3))
    return bool(np.all(cell.body_sdf(z, y, x) < -margin)
                and all(np.all(o.body_sdf(z, y, x) > margin) for o in neighbours))


def _add_nucleus(cell: ProceduralCell, rng: np.random.Generator,
                 neighbours: tuple[CellSpec, ...] = ()) -> None:
    """One nucleus (a union of ellipsoids), shrunk and centred until it fits the cell."""
    cell.nucleus_kind = _choice(rng, NUCLEUS_KINDS, NUCLEUS_P)
    frac = rng.uniform(*(SPHERE_NUCLEUS_FRACTION if cell.z_offset > 0 else NUCLEUS_FRACTION))
    short = cell.r0 / math.sqrt(cell.elongation)
    radius = min(frac * cell.r0, 0.85 * short * cell.dome_fraction)
    c = radius * rng.uniform(*NUCLEUS_THICKNESS)
    elements = _nucleus_elements(cell.nucleus_kind, rng, radius, 1.0)
    eccentric = rng.random() < ECCENTRIC_P
    cell.eccentricity = ecc = rng.uniform(*(ECCENTRICITY if eccentric else
                                            CENTRAL_ECCENTRICITY))
    direction = rng.uniform(0, 2 * np.pi)
    scale = 1.0
    for _ in range(40):
        room = cell.radius_towards(direction) * cell.dome_fraction - scale * radius
        off = ecc * max(room, 0.0)
        yc = cell.center[0] + off * math.sin(direction)
        xc = cell.center[1] + off * math.cos(direction)
        if cell.z_offset > 0:
            cz = min(c, cell.height - 0.6)
            zc = cell.z_base + cell.z_offset
        else:
            h_here, _ = _local_height(cell, yc, xc)
            cz = max(min(c, 0.5 * (h_here - BASAL_GAP_UM - 0.4)), 0.5)
            zc = cell.z_base + BASAL_GAP_UM + cz
        nuclei = [(np.array([zc, yc + scale * o[0], xc + scale * o[1]]),
                   np.array([cz, scale * ax[1], scale * ax[2]]), a) for o, ax, a in elements]
        if nucleus_inside(cell, nuclei, neighbours=neighbours):
            break
        scale *= 0.93
        ecc *= 0.8
        c = max(0.93 * c, 0.5)
    cell.nuclei = nuclei


def _add_nucleoli(cell: ProceduralCell, rng: np.random.Generator) -> None:
    """0-4 nucleoli inside the nuclear ellipsoids, visible or of contrast ~0."""
    invisible = rng.random() < INVISIBLE_NUCLEOLI_P
    cell.nucleolus_contrast_dn = rng.uniform(*(INVISIBLE_NUCLEOLUS_DN if invisible else
                                               NUCLEOLUS_CONTRAST_DN))
    nucleoplasm = conc_to_dn(cell.cyto_conc) + cell.nuclear_contrast_dn
    cell.nucleolus_conc = (nucleoplasm + cell.nucleolus_contrast_dn) / ALPHA_ML_PER_G
    if rng.random() < NO_NUCLEOLI_P:
        return
    vol = np.array([float(np.prod(ax)) for _, ax, _ in cell.nuclei])
    for _ in range(rng.integers(NUCLEOLI[0], NUCLEOLI[1] + 1)):
        center, axes, angle = cell.nuclei[int(rng.choice(len(vol), p=vol / vol.sum()))]
        r = rng.uniform(*NUCLEOLUS_RADIUS_UM) * min(1.0, float(axes[0]) / 1.5)
        r = min(r, 0.8 * float(axes.min()))
        room = np.maximum(axes - r - 0.2, 0.0)
        u = rng.normal(0, 1, 3)
        u *= rng.uniform(0, 0.7) / np.linalg.norm(u)
        p = ellipsoid_surface(center, room, angle, u[None, :])[0]
        cell.nucleoli.append((p, float(r)))


# ---------------------------------------------------------------------------------------
# vacuoles, droplets, cytoskeleton
# ---------------------------------------------------------------------------------------
def _clear_of(p: np.ndarray, r: float, spheres: list, gap: float = 0.2) -> bool:
    return all(np.linalg.norm(p - c) > r + rc + gap for c, rc, _ in spheres)


def _add_vacuoles(cell: ProceduralCell, rng: np.random.Generator) -> None:
    """Fluid vacuoles (Δn near the medium's) in the cytoplasm, not overlapping each other."""
    if rng.random() >= VACUOLE_P:
        return
    top = conc_to_dn(cell.cyto_conc) - 0.008
    for _ in range(rng.integers(VACUOLES[0], VACUOLES[1] + 1)):
        r = rng.uniform(*VACUOLE_RADIUS_UM)
        dn = min(rng.uniform(*VACUOLE_DN), top)
        for _try in range(3):
            p = _random_cyto_point(cell, rng, r + 0.3, tries=30)
            if p is not None and _clear_of(p, r, cell.vacuoles):
                cell.vacuoles.append((p, float(r), float(dn)))
                break
            r = max(0.7 * r, VACUOLE_RADIUS_UM[0])


def _n_droplets(rng: np.random.Generator, droplets: tuple[int, int] | None) -> int:
    if droplets is not None:
        return int(rng.integers(droplets[0], droplets[1] + 1))
    lo, hi = DROPLETS
    return int(np.clip(math.floor(math.exp(rng.uniform(0, math.log(hi + 2)))) - 1, lo, hi))


def _add_droplets(cell: ProceduralCell, rng: np.random.Generator,
                  droplets: tuple[int, int] | None) -> None:
    """Lipid droplets with the families' sizes and indices, clear of the vacuoles."""
    for _ in range(_n_droplets(rng, droplets)):
        r = float(np.clip(rng.lognormal(math.log(0.55), 0.45), 0.3, 2.0))
        p = _random_cyto_point(cell, rng, r + 0.2, near_nucleus=3.0 * (rng.random() < 0.6))
        if p is not None and _clear_of(p, r, cell.vacuoles):
            cell.droplets.append((p, r, rng.uniform(*DROPLET_N_TRUE) - _MEDIUM_REF))


def _cytoskeleton_params(cell: ProceduralCell, rng: np.random.Generator) -> FamilyParams:
    """The ranges the families' mitochondria / actin helpers read, for this one cell."""
    _origin, body, _nuc = cell._lookup
    volume = float((body < 0).sum()) * 0.2 ** 3
    length = min(rng.uniform(*MITO_DENSITY) * volume, MITO_MAX_UM)
    d = 2 * cell.r0
    return FamilyParams(
        diameter=(d, d), height=(cell.height, cell.height),
        elongation=(cell.elongation, cell.elongation), lobes=0.0,
        profile_power=(cell.profile_power, cell.profile_power), nucleus_fraction=(0.5, 0.5),
        n_droplets=(0, 0), mito_length_um=(length, length),
        mito_fragmented=MITO_FRAGMENTED_P, n_fibres=FIBRES[cell.height_kind],
        n_filopodia=FILOPODIA[cell.height_kind])


# ---------------------------------------------------------------------------------------
# field layout
# ---------------------------------------------------------------------------------------
def _gap(a: ProceduralCell, b: ProceduralCell, center: tuple[float, float]) -> float:
    """Centre distance over the summed outline radii along the line between them."""
    dy, dx = center[0] - a.center[0], center[1] - a.center[1]
    t = math.atan2(dy, dx)
    return math.hypot(dy, dx) / (a.radius_towards(t) + b.radius_towards(t + np.pi))


def _overlap(a: ProceduralCell, b: ProceduralCell, grow: float) -> bool:
    """Whether the outlines of ``a`` and ``b``, grown by the factor ``grow``, overlap."""
    for p, q in ((a, b), (b, a)):
        r = p.outline_radius(_THETA[::8]) * grow
        y = p.center[0] + r * np.sin(_THETA[::8] + p.angle)
        x = p.center[1] + r * np.cos(_THETA[::8] + p.angle)
        rho, theta = q._polar(y, x)
        if np.any(rho < q.outline_radius(theta) * grow):
            return True
    return False


def _fits(cells: list[ProceduralCell], body: ProceduralCell, center: tuple[float, float],
          touching: tuple[ProceduralCell, ...] = ()) -> bool:
    """Whether ``body`` at ``center`` touches ``touching`` at most as a cluster does and
    keeps clear of the other cells (it is moved there)."""
    body.center = center
    return all(_gap(o, body, center) >= CLUSTER_CONTACT[0] - 0.05
               if any(o is t for t in touching) else not _overlap(o, body, FREE_GAP)
               for o in cells)


def _cluster_member(cells: list[ProceduralCell], members: list[ProceduralCell],
                    rng: np.random.Generator, z_base: float, max_h: float,
                    size: tuple[float, float]) -> ProceduralCell | None:
    """A cell touching a random member of the cluster, centred inside the field."""
    anchor = members[int(rng.integers(len(members)))]
    # spheres cluster with spheres: a sphere's overhang over a neighbour's lamella would
    # enclose medium; unions of spread cells (height fields) cannot
    body = draw_body(rng, (0.0, 0.0), z_base, max_h, sphere=anchor.height_kind == "sphere")
    t = rng.uniform(0, 2 * np.pi)
    dist = (anchor.radius_towards(t) + body.radius_towards(t + np.pi)) * rng.uniform(
        *CLUSTER_CONTACT)
    c = (anchor.center[0] + dist * math.sin(t), anchor.center[1] + dist * math.cos(t))
    if not (0 < c[0] < size[0] and 0 < c[1] < size[1]) \
            or not _fits(cells, body, c, tuple(members)):
        return None
    body.center, body.role = c, "cluster"
    return body


def _edge_cell(cells: list[ProceduralCell], rng: np.random.Generator, z_base: float,
               max_h: float, ly: float, lx: float) -> ProceduralCell | None:
    body = draw_body(rng, (0.0, 0.0), z_base, max_h)
    side = int(rng.integers(4))
    c = [rng.uniform(0, ly), rng.uniform(0, lx)]
    c[side % 2] = 0.0 if side < 2 else (ly, lx)[side % 2]
    if not _fits(cells, body, tuple(c)):
        return None
    body.role = "edge"
    return body


def layout_cells(rng: np.random.Generator, shape: tuple[int, int, int],
                 voxel: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM,
                 n_cells: int | None = None, variant: str | None = None,
                 cluster: bool | None = None, edge: bool | None = None,
                 droplets: tuple[int, int] | None = None) -> list[ProceduralCell]:
    """Place procedural cells in a field of ``shape`` (the ``simulate_fov`` hook).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every draw.
    shape, voxel
        Field size (voxels) and voxel size (µm), (z, y, x).
    n_cells : int, optional
        Number of cells (default: drawn to cover ``COVER`` of the field).
    variant : {None, "normal"}
        Procedural cells have no mitotic or binucleate variant.
    cluster, edge : bool, optional
        Force (or forbid) a touching cluster of 2-4 cells around the central cell and a
        cell centred on the field border; None draws them with ``CLUSTER_P`` / ``EDGE_P``.
    droplets : (int, int), optional
        Uniform range of lipid droplets per cell instead of the log-uniform 0-80.

    Returns
    -------
    list of ProceduralCell
        Labels follow this order; ``role`` says "cluster", "edge" or "free".
    """
    if variant not in (None, "normal"):
        raise ConfigError(f"procedural cells have no variant {variant!r}", "variant",
                          "use None or 'normal' with cell_type='procedural'")
    lz, ly, lx = (n * v for n, v in zip(shape, voxel))
    z_base = min(rng.uniform(1.0, 2.0), 0.15 * lz)
    max_h = max(lz - z_base - 0.8, 1.5)
    auto = n_cells is None
    if auto:
        area = math.pi * (np.mean(DIAMETER_UM) / 2) ** 2
        n_cells = int(np.clip(round(rng.uniform(*COVER) * ly * lx / area), 1, 40))
    cluster = rng.random() < CLUSTER_P if cluster is None else cluster
    edge = rng.random() < EDGE_P if edge is None else edge
    size = int(rng.integers(CLUSTER_SIZE[0], CLUSTER_SIZE[1] + 1)) if cluster else 1
    if auto:  # a forced cluster or edge cell gets its cells
        n_cells = max(n_cells, size + int(edge))
    size = min(size, n_cells)
    first = draw_body(rng, (ly / 2 + rng.normal(0, 0.05 * ly), lx / 2 + rng.normal(0, 0.05 * lx)),
                      z_base, max_h)
    first.role = "cluster" if size > 1 else "free"
    cells = [first]
    for _ in range(30 * size):
        if len(cells) >= size:
            break
        member = _cluster_member(cells, cells, rng, z_base, max_h, (ly, lx))
        cells += [member] if member is not None else []
    for _ in range(30 if edge and len(cells) < n_cells else 0):
        body = _edge_cell(cells, rng, z_base, max_h, ly, lx)
        if body is not None:
            cells.append(body)
            break
    tries = 0
    while len(cells) < n_cells and tries < 50 * n_cells:
        tries += 1
        body = draw_body(rng, (0.0, 0.0), z_base, max_h)
        c = (rng.uniform(-0.1, 1.1) * ly, rng.uniform(-0.1, 1.1) * lx)
        if _fits(cells, body, c):
            cells.append(body)
    cells = [furnish(cell, rng, droplets, _neighbours(cell, cells)) for cell in cells]
    _trim_filopodia(cells)
    return cells


def _neighbours(cell: ProceduralCell, cells: list[ProceduralCell]) -> tuple[ProceduralCell, ...]:
    return tuple(o for o in cells if o is not cell and math.hypot(
        o.center[0] - cell.center[0], o.center[1] - cell.center[1]) < o.extent + cell.extent)


def _trim_filopodia(cells: list[ProceduralCell], margin: float = 0.5) -> None:
    """Cut each filopodium where it comes within ``margin`` µm of another cell's body."""
    for cell in cells:
        near = _neighbours(cell, cells)
        if not near or not cell.filopodia:
            continue
        kept = []
        for ch in cell.filopodia:
            p = ch.points.astype(np.float32)
            hit = np.zeros(len(p), bool)
            for o in near:
                hit |= o.body_sdf(p[:, 0], p[:, 1], p[:, 2]) < margin
            stop = int(np.argmax(hit)) if hit.any() else len(p)
            if stop >= 2:
                kept.append(Chain(ch.points[:stop], ch.radius[:stop]))
        cell.filopodia = kept
