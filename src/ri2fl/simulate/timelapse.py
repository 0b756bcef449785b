"""Time-lapses of living cells: drift, motion, shape change, mitosis, stimulation, bleaching.

The phantom of every frame is derived from one layout: the stage drifts, cells crawl and
turn a little, their outline and organelles move; an optional event (mitosis of the central
cell, or stimulation: lamellipodia and actin remodelling) unfolds over the frames. The
fluorescence ground truth bleaches exponentially with the number of exposures; RI does not.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from ..constants import CANONICAL_VOXEL_SIZE_UM
from ..errors import ConfigError
from .fov import SimulatedFOV, check_args, layout_cells, simulate_fov
from .phantoms import CellSpec, Chain, _add_chromosomes, _build_lookup, make_cell

EVENTS = (None, "mitosis", "stimulation")


def translate(cell: CellSpec, dz: float, dy: float, dx: float) -> CellSpec:
    """A copy of ``cell`` moved by (dz, dy, dx) µm."""
    c = copy.deepcopy(cell)
    d3 = np.array([dz, dy, dx])
    c.center = (cell.center[0] + dy, cell.center[1] + dx)
    c.z_base = cell.z_base + dz
    c.nuclei = [(p + d3, a, g) for p, a, g in c.nuclei]
    c.chromosomes = [(p + d3, a, g) for p, a, g in c.chromosomes]
    c.nucleoli = [(p + d3, r) for p, r in c.nucleoli]
    c.droplets = [(p + d3, r, v) for p, r, v in c.droplets]
    for chains in (c.mito, c.fibres, c.filopodia):
        for ch in chains:
            ch.points = ch.points + d3
    c.processes = [(p + d3[1:], w, h) for p, w, h in c.processes]
    c._lookup = None
    c._proc_raster = None
    return c


def _jitter(cell: CellSpec, rng: np.random.Generator, step_um: float) -> None:
    """Organelle motion: droplets, nucleoli and mitochondria wander by about ``step_um``."""
    cell.droplets = [(p + rng.normal(0, step_um, 3) * [0.3, 1, 1], r, v)
                     for p, r, v in cell.droplets]
    for ch in cell.mito:
        ch.points = ch.points + rng.normal(0, step_um, 3) * [0.3, 1, 1]
    if cell.nuclei:
        cell.nucleoli = [(p + rng.normal(0, 0.3 * step_um, 3) * [0.3, 1, 1], r)
                         for p, r in cell.nucleoli]


def _mitosis(cell: CellSpec, f: float, seed: int, max_height: float) -> list[CellSpec]:
    """The central cell at mitotic progress ``f`` in [0, 1]: interphase and rounding,
    nuclear envelope breakdown and metaphase, anaphase, then two daughter cells."""
    rng = np.random.default_rng(seed)
    r_round = 0.6 * cell.r0 + 2.0  # radius of the rounded mitotic cell
    h_round = min(1.6 * r_round, max_height)
    if f < 0.2:  # G2 / prophase: the cell rounds up, nucleoli fade
        c = copy.deepcopy(cell)
        k = f / 0.2
        c.lamella_height *= 1 - k
        c.dome_fraction = c.dome_fraction + (1 - c.dome_fraction) * k
        c.elongation = 1 + (c.elongation - 1) * (1 - k)
        if c.z_offset == 0:  # spreading cells round up; floating ones already are round
            c.height = c.height + (h_round - c.height) * k
        if k > 0.5:
            c.nucleoli = []
        c._lookup = None
        return [c]
    if f < 0.65:  # prometaphase .. anaphase: no envelope, condensed chromosomes
        c = make_cell(cell.family, rng, cell.center, cell.z_base, "mitotic", max_height)
        c.r0 = min(c.r0, r_round)
        if c.z_offset > 0:
            c.height = c.z_offset = min(c.r0, max_height / 2)
        else:
            c.height = min(1.6 * c.r0, max_height)
        c.chromosomes = []
        sub = np.random.default_rng(seed + 1)
        _add_chromosomes(c, sub, anaphase=f >= 0.45, separation=2.0 + 12 * max(f - 0.45, 0))
        _build_lookup(c)
        return [c]
    # telophase / cytokinesis: two daughters moving apart
    sep = 0.5 * cell.r0 * (0.6 + 0.8 * (f - 0.65) / 0.35)
    t = rng.uniform(0, np.pi)
    out = []
    for sign in (-1, 1):
        center = (cell.center[0] + sign * sep * math.sin(t),
                  cell.center[1] + sign * sep * math.cos(t))
        d = make_cell(cell.family, np.random.default_rng([seed, sign + 2]), center,
                      cell.z_base, "normal", max_height)
        d.r0 = 0.55 * d.r0 / max(d.elongation, 1.0) ** 0.25
        d.elongation = 1.0 + 0.3 * (d.elongation - 1.0)
        d.lamella_height = 0.0
        d.dome_fraction = 1.0
        d.processes = []
        d = _rebuild(d, np.random.default_rng([seed, sign + 5]), nucleoli=f > 0.85)
        out.append(d)
    return out


def _rebuild(cell: CellSpec, rng: np.random.Generator, nucleoli: bool) -> CellSpec:
    """Redraw the organelles of a resized cell so they fit inside it."""
    from .phantoms import (
        FAMILIES,
        _add_actin,
        _add_droplets,
        _add_mitochondria,
        _add_nuclei,
        _add_nucleoli,
    )
    fp = FAMILIES[cell.family]
    for name in ("nuclei", "nucleoli", "droplets", "mito", "fibres", "filopodia",
                 "chromosomes"):
        setattr(cell, name, [])
    cell._proc_raster = None
    _add_nuclei(cell, fp, rng, 1)
    if nucleoli:
        _add_nucleoli(cell, rng)
    _build_lookup(cell)
    _add_droplets(cell, fp, rng)
    _add_mitochondria(cell, fp, rng)
    _add_actin(cell, fp, rng)
    return cell


def _stimulate(cell: CellSpec, f: float, seed: int) -> CellSpec:
    """Lamellipodia spreading towards one side and actin remodelling, progress ``f``."""
    c = copy.deepcopy(cell)
    c.harmonics = [*c.harmonics, (1, 0.35 * f, 0.0)]
    c.lamella_height = max(c.lamella_height, 0.6)
    c.r0 = cell.r0 * (1 + 0.15 * f)
    rng = np.random.default_rng(seed)
    # new filopodia and cortical actin at the leading edge
    c._lookup = None
    c._proc_raster = None
    _build_lookup(c)
    n_new = round(12 * f)
    for _ in range(n_new):
        theta = rng.normal(0.0, 0.5)
        r_edge = float(c.outline_radius(np.array([theta]))[0])
        rr = np.linspace(r_edge - 1.5, r_edge + rng.uniform(1.5, 4.0), 20)
        cs, sn = math.cos(c.angle), math.sin(c.angle)
        pts = np.array([[c.z_base + 0.3, c.center[0] + sn * r * math.cos(theta)
                         + cs * r * math.sin(theta),
                         c.center[1] + cs * r * math.cos(theta) - sn * r * math.sin(theta)]
                        for r in rr])
        c.filopodia.append(Chain(pts, np.linspace(0.16, 0.1, len(pts)).astype(np.float32)))
    c.actin_dn = cell.actin_dn * (1 + 0.5 * f)
    c.brightness = dict(cell.brightness, actin=cell.brightness["actin"] * (1 + 0.3 * f))
    return c


def simulate_timelapse(cell_type: str = "fibroblast", seed: int = 0, n_frames: int = 8,
                       shape: tuple[int, int, int] = (64, 256, 256),
                       event: str | None = None, bleach_half_life_frames: float | None = 20.0,
                       drift_um_per_frame: float = 0.2, physics: str = "fast",
                       modalities: tuple[str, ...] = (), n_cells: int | None = None,
                       **fov_options) -> list[SimulatedFOV]:
    """Simulate ``n_frames`` frames of one field of living cells.

    Parameters
    ----------
    cell_type, seed, shape, physics, modalities, n_cells
        As in :func:`ri2fl.simulate.simulate_fov`.
    event : {None, "mitosis", "stimulation"}
        What the central cell does over the frames: divide (rounding, nuclear envelope
        breakdown, condensed chromosomes without nucleoli, anaphase, two daughters) or spread
        lamellipodia with actin remodelling.
    bleach_half_life_frames : float or None
        Fluorescence halves every this many frames (None: no bleaching). RI never bleaches.
    drift_um_per_frame : float
        Lateral stage drift per frame (µm), in one random direction, plus a little z drift.

    Returns
    -------
    list of SimulatedFOV
        One per frame; ``metadata["timepoint"]`` is the frame index.
    """
    if event not in EVENTS:
        raise ConfigError(f"unknown event {event!r}", "event",
                          "choose 'mitosis', 'stimulation' or none")
    if n_frames < 1:
        raise ConfigError(f"n_frames must be at least 1, got {n_frames}", "n_frames")
    shape = check_args(cell_type, shape, physics, tuple(modalities))
    rng = np.random.default_rng([seed, 7])
    variant = "normal" if event else fov_options.pop("variant", None)
    base = layout_cells(cell_type, rng, shape, CANONICAL_VOXEL_SIZE_UM, n_cells, variant,
                        fov_options.pop("cluster", None), fov_options.pop("edge", None))
    max_height = max(shape[0] * CANONICAL_VOXEL_SIZE_UM[0] - base[0].z_base - 0.8, 1.5)
    direction = rng.uniform(0, 2 * np.pi)
    velocities = [rng.normal(0, 0.15, 2) for _ in base]
    frames = []
    for t in range(n_frames):
        f = t / max(n_frames - 1, 1)
        drift = (drift_um_per_frame * t * math.sin(direction),
                 drift_um_per_frame * t * math.cos(direction))
        cells: list[CellSpec] = []
        frame_rng = np.random.default_rng([seed, 11, t])
        for i, cell in enumerate(base):
            if i == 0 and event == "mitosis":
                moved = _mitosis(cell, f, seed * 7919 + 1 + int(f >= 0.65), max_height)
            elif i == 0 and event == "stimulation":
                moved = [_stimulate(cell, f, seed * 7919 + 3)]
            else:
                moved = [copy.deepcopy(cell)]
            for c in moved:
                v = velocities[i] * t
                c2 = translate(c, 0.05 * math.sin(0.3 * t), drift[0] + v[0], drift[1] + v[1])
                _jitter(c2, frame_rng, 0.15)
                cells.append(c2)
        frames.append(simulate_fov(cell_type, seed, shape, physics, modalities=modalities,
                                   timepoint=t, cells=cells,
                                   texture_shift_um=(0.0, drift[0], drift[1]),
                                   bleach_half_life_frames=bleach_half_life_frames,
                                   **fov_options))
    return frames
