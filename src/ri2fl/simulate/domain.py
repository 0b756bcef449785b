"""Imaging domains: what real holotomographs vary, drawn over ranges written down here.

A network trained on one simulated instrument learns that instrument. An
:class:`ImagingDomain` holds every knob of the measurement (optics, reconstruction, noise and
artefacts, calibration, sampling); :func:`sample_domain` draws one at random and
:func:`apply_domain` turns a field's true RI into the tomogram that instrument would write,
on the field's own (model) grid. ``simulate_fov(..., domain="random")`` uses it
(issue #30). ``ImagingDomain()`` is the default instrument of the fast path: applied, it
gives exactly what ``simulate_fov(..., domain=None)`` gives.

Ranges drawn by :func:`sample_domain` (module constants; P: probability):

============================ ================================================================
knob                         range
============================ ================================================================
``wavelength_um``            0.45 - 0.65 µm (:data:`WAVELENGTH_RANGE_UM`)
``na``                       0.7 - 1.4 (:data:`NA_RANGE`; above n_m the medium limits it)
``na_ill``                   0.6 - 1.0 x min(NA, 1.29) (:data:`NA_ILL_FRACTION_RANGE`,
                             :data:`NA_ILL_MAX`: below every medium index)
``scan``                     ring 0.3, spiral 0.25, raster 0.25, rotation 0.2
                             (:data:`SCAN_P`); "disc" (a continuum of beams, the default
                             instrument) is never drawn
``n_angles``                 20 - 100 beams or rotation angles (:data:`N_ANGLES_RANGE`)
``rotation_span_deg``        360 (P 0.5) or 120 - 360 (:data:`ROTATION_SPAN_RANGE_DEG`)
``rotation_axis``            "y" or "x"
``approximation``            rytov, born (P 0.2, :data:`P_BORN`)
``gp_iterations``            0 (P 0.15: the missing cone left empty) or 1 - 100
``gp_nonneg``                True (P 0.7); False: a relaxed box, -0.005 <= Δn <= 0.12
                             (:data:`GP_BOX`: noise may stay below the medium)
``tv_weight``                0 or (P 0.3) 5e-4 - 3e-3 (:data:`TV_WEIGHT_RANGE`)
``noise_std``                2e-4 - 2e-3, log-uniform (:data:`NOISE_STD_RANGE`)
``corr_noise_std``           0 or (P 0.5) 1e-4 - 1e-3 (:data:`CORR_NOISE_STD_RANGE`)
``noise_corr_um``            0.1 - 0.6 µm (:data:`NOISE_CORR_RANGE_UM`)
``background_offset``        -0.002 - 0.002 (:data:`BACKGROUND_OFFSET_RANGE`)
``background_tilt_per_um``   -5e-5 - 5e-5 per µm along y and x (:data:`TILT_RANGE_PER_UM`)
``ringing``                  0 or (P 0.5) 0.1 - 0.5 (:data:`RINGING_RANGE`)
``ringing_cutoff``           0.4 - 0.9 of the lateral band limit (:data:`RINGING_CUTOFF_RANGE`)
``n_spikes``                 0 or (P 0.5) 1 - 20 (:data:`N_SPIKES_RANGE`)
``n_debris``                 0 or (P 0.5) 1 - 5 (:data:`N_DEBRIS_RANGE`): spheres of
                             0.3 - 1.2 µm, Δn 0.01 - 0.05, at the field's top
``quantisation``             float 0.3, uint16 0.5, uint8 0.2 (:data:`QUANTISATION_P`)
``medium_offset``            -0.004 - 0.004 (:data:`MEDIUM_OFFSET_RANGE`)
``ri_scale``                 0.95 - 1.05 (:data:`RI_SCALE_RANGE`)
``voxel_size_um``            the 40x grid 0.875 x 0.163 x 0.163 µm (P 0.2), else 0.15 - 1.0
                             µm axial, 0.1 - 0.3 µm lateral (y = x)
============================ ================================================================

What each knob does (:func:`apply_domain`, in this order):

1. Born (``approximation="born"``): the first Born approximation takes the field inside the
   cell for the incident wave, so each voxel is seen with the phase φ(z) the wave has
   gathered below it: Δn -> Δn·cos φ(z), φ = 2π/λ ∫ Δn dz along the optical axis
   (:func:`born_bias`; its column integral is sin φ_total / k0: Born underestimates thick,
   dense cells; Rytov, the linearisation of the fast path, is left as is). The physical path
   maps the Born scattered field itself (``reconstruct_physical(approximation="born")``);
   on a sphere of Δn 0.025, radius 3 µm (1.8 rad), it gives 0.014 inside against 0.017
   here (Rytov: 0.026 / 0.025; radius 2 µm, Δn 0.02: 0.017 / 0.018).
2. Tomograph (:func:`tomograph`): the frequency support of the domain's optics
   (:func:`domain_support`: the Ewald caps of its beams, :func:`illumination_pattern`, or of
   the turned sample, whose unmeasured region is an apple core about the rotation axis),
   in-support noise ``noise_std``, Gerchberg-Papoulis, on the fast path's z-padded grid;
   ``n_debris`` out-of-focus particles float in the medium at the top of the field (in
   and above it, in the margin): mostly their defocused, missing-cone tails reach it.
3. Reconstruction artefacts: TV denoising (``denoise_tv_chambolle``), ringing (the
   tomogram blended towards its hard lateral low-pass: Gibbs ripple), residual
   phase-unwrapping spikes (thin, axially elongated ± blobs), noise correlated over
   ``noise_corr_um`` (Gaussian-filtered white noise).
4. Calibration: RI = n_m + ``medium_offset`` + ``ri_scale``·Δn + background plane
   (``background_offset``, ``background_tilt_per_um``). The field's recorded medium index
   stays the true one: the tomogram disagrees with its header, as with a mis-set instrument.
5. Sampling: the tomogram is resampled to the instrument's voxel grid
   (:func:`ri2fl.preprocess.resample`, anti-aliased), quantised as TCF files store it
   (uint16: RI x 10⁴; uint8: (RI - RIMin) x 1000), and brought back to the model grid by
   :func:`ri2fl.preprocess.resample_to_shape`, the inference's resampler.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from ..constants import (
    CANONICAL_VOXEL_SIZE_UM,
    NA_DETECTION,
    NA_ILLUMINATION,
    RI_CLIP,
    WAVELENGTH_UM,
)
from ..errors import ConfigError
from . import optics
from .phantoms import occupancy

# --- optics ------------------------------------------------------------------------------
WAVELENGTH_RANGE_UM: tuple[float, float] = (0.45, 0.65)
NA_RANGE: tuple[float, float] = (0.7, 1.4)
#: Illumination NA as a fraction of min(NA, NA_ILL_MAX).
NA_ILL_FRACTION_RANGE: tuple[float, float] = (0.6, 1.0)
#: Largest illumination NA drawn: below the lowest medium index, so every beam propagates.
NA_ILL_MAX: float = 1.29
SCANS: tuple[str, ...] = ("disc", "ring", "spiral", "raster", "rotation")
SCAN_P: dict[str, float] = {"ring": 0.3, "spiral": 0.25, "raster": 0.25, "rotation": 0.2}
N_ANGLES_RANGE: tuple[int, int] = (20, 100)
ROTATION_SPAN_RANGE_DEG: tuple[float, float] = (120.0, 360.0)
P_FULL_ROTATION: float = 0.5
ROTATION_AXES: tuple[str, ...] = ("y", "x")
APPROXIMATIONS: tuple[str, ...] = ("rytov", "born")
P_BORN: float = 0.2
# --- reconstruction ----------------------------------------------------------------------
GP_ITERATIONS_RANGE: tuple[int, int] = (0, 100)
P_EMPTY_CONE: float = 0.15
P_NONNEG: float = 0.7
#: Δn bounds of Gerchberg-Papoulis without non-negativity: a relaxed box (the background's
#: noise may stay below the medium; nothing denser than oil).
GP_BOX: tuple[float, float] = (-0.005, 0.12)
TV_WEIGHT_RANGE: tuple[float, float] = (5e-4, 3e-3)
P_TV: float = 0.3
# --- noise and artefacts -----------------------------------------------------------------
NOISE_STD_RANGE: tuple[float, float] = (2e-4, 2e-3)
CORR_NOISE_STD_RANGE: tuple[float, float] = (1e-4, 1e-3)
NOISE_CORR_RANGE_UM: tuple[float, float] = (0.1, 0.6)
BACKGROUND_OFFSET_RANGE: tuple[float, float] = (-0.002, 0.002)
TILT_RANGE_PER_UM: tuple[float, float] = (-5e-5, 5e-5)
RINGING_RANGE: tuple[float, float] = (0.1, 0.5)
RINGING_CUTOFF_RANGE: tuple[float, float] = (0.4, 0.9)
N_SPIKES_RANGE: tuple[int, int] = (1, 20)
#: Peak |Δn| of an unwrapping spike; lateral and axial Gaussian sigma (µm).
SPIKE_AMPLITUDE_RANGE: tuple[float, float] = (0.002, 0.02)
SPIKE_SIGMA_UM: tuple[tuple[float, float], tuple[float, float]] = ((0.8, 2.0), (0.15, 0.3))
N_DEBRIS_RANGE: tuple[int, int] = (1, 5)
DEBRIS_DN_RANGE: tuple[float, float] = (0.01, 0.05)
DEBRIS_RADIUS_RANGE_UM: tuple[float, float] = (0.3, 1.2)
#: Gap (µm) between the field's top and a debris particle's lower surface (< 0: it dips into
#: the field).
DEBRIS_GAP_RANGE_UM: tuple[float, float] = (-0.5, 0.5)
#: Probability that each of: correlated noise, ringing, spikes, debris is present.
P_ARTEFACT: float = 0.5
QUANTISATIONS: tuple[str, ...] = ("float", "uint16", "uint8")
QUANTISATION_P: dict[str, float] = {"float": 0.3, "uint16": 0.5, "uint8": 0.2}
# --- calibration -------------------------------------------------------------------------
MEDIUM_OFFSET_RANGE: tuple[float, float] = (-0.004, 0.004)
RI_SCALE_RANGE: tuple[float, float] = (0.95, 1.05)
# --- sampling ----------------------------------------------------------------------------
LATERAL_VOXEL_RANGE_UM: tuple[float, float] = (0.1, 0.3)
AXIAL_VOXEL_RANGE_UM: tuple[float, float] = (0.15, 1.0)
#: Voxel (z, y, x) of a 40x holotomograph's files.
VOXEL_40X_UM: tuple[float, float, float] = (0.875, 0.163, 0.163)
P_40X: float = 0.2


@dataclass(frozen=True)
class ImagingDomain:
    """One instrument and reconstruction: every knob of the measurement (see the module).

    The defaults are the fast path's instrument (λ 0.532 µm, NA 1.2, NA_ill 1.08, a
    continuum of beams, Rytov, 40 non-negative GP iterations, noise 6e-4, no artefacts,
    exact calibration, the model grid, float storage).
    """

    wavelength_um: float = WAVELENGTH_UM
    na: float = NA_DETECTION
    na_ill: float = NA_ILLUMINATION
    scan: str = "disc"
    n_angles: int = 49
    rotation_span_deg: float = 360.0
    rotation_axis: str = "y"
    approximation: str = "rytov"
    gp_iterations: int = 40
    gp_nonneg: bool = True
    tv_weight: float = 0.0
    noise_std: float = 6e-4
    corr_noise_std: float = 0.0
    noise_corr_um: float = 0.3
    background_offset: float = 0.0
    background_tilt_per_um: tuple[float, float] = (0.0, 0.0)
    ringing: float = 0.0
    ringing_cutoff: float = 0.7
    n_spikes: int = 0
    n_debris: int = 0
    quantisation: str = "float"
    medium_offset: float = 0.0
    ri_scale: float = 1.0
    voxel_size_um: tuple[float, float, float] = CANONICAL_VOXEL_SIZE_UM

    def __post_init__(self) -> None:
        for name, value, options in (("scan", self.scan, SCANS),
                                     ("rotation_axis", self.rotation_axis, ROTATION_AXES),
                                     ("approximation", self.approximation, APPROXIMATIONS),
                                     ("quantisation", self.quantisation, QUANTISATIONS)):
            if value not in options:
                raise ConfigError(f"unknown {name} {value!r}", name,
                                  f"choose one of {', '.join(options)}")
        if not (self.wavelength_um > 0 and self.na > 0 and 0 <= self.na_ill < 1.33):
            raise ConfigError(f"bad optics: wavelength {self.wavelength_um} µm, NA {self.na}, "
                              f"illumination NA {self.na_ill}", "domain",
                              "need wavelength > 0, NA > 0, 0 <= NA_ill < n_m")
        if self.n_angles < 1 or self.gp_iterations < 0 or self.ri_scale <= 0 or \
                min(self.voxel_size_um) <= 0 or len(self.voxel_size_um) != 3:
            raise ConfigError("n_angles >= 1, gp_iterations >= 0, ri_scale > 0 and three "
                              "positive voxel sizes are needed", "domain")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists), for metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self) -> str:
        """One line of JSON (the field attribute ``imaging_domain``)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ImagingDomain:
        """The domain of :meth:`to_dict` (or :meth:`to_json` parsed)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# ---------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------
def sample_domain(rng: np.random.Generator) -> ImagingDomain:
    """Draw an imaging domain over the ranges of this module (see its table)."""
    return ImagingDomain(**_sample_optics(rng), **_sample_reconstruction(rng),
                         **_sample_artefacts(rng), **_sample_calibration(rng),
                         voxel_size_um=_sample_voxel(rng))


def _choice(rng: np.random.Generator, probabilities: dict[str, float]) -> str:
    keys = list(probabilities)
    p = np.asarray([probabilities[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _sample_optics(rng: np.random.Generator) -> dict[str, Any]:
    na = _uniform(rng, NA_RANGE)
    span = 360.0 if rng.random() < P_FULL_ROTATION else _uniform(rng, ROTATION_SPAN_RANGE_DEG)
    return {"wavelength_um": _uniform(rng, WAVELENGTH_RANGE_UM), "na": na,
            "na_ill": _uniform(rng, NA_ILL_FRACTION_RANGE) * min(na, NA_ILL_MAX),
            "scan": _choice(rng, SCAN_P),
            "n_angles": int(rng.integers(N_ANGLES_RANGE[0], N_ANGLES_RANGE[1] + 1)),
            "rotation_span_deg": span,
            "rotation_axis": ROTATION_AXES[int(rng.integers(len(ROTATION_AXES)))],
            "approximation": "born" if rng.random() < P_BORN else "rytov"}


def _sample_reconstruction(rng: np.random.Generator) -> dict[str, Any]:
    lo, hi = GP_ITERATIONS_RANGE
    n_iter = 0 if rng.random() < P_EMPTY_CONE else int(rng.integers(max(lo, 1), hi + 1))
    return {"gp_iterations": n_iter, "gp_nonneg": bool(rng.random() < P_NONNEG),
            "tv_weight": _uniform(rng, TV_WEIGHT_RANGE) if rng.random() < P_TV else 0.0}


def _maybe(rng: np.random.Generator, draw) -> Any:
    """``draw()`` with probability :data:`P_ARTEFACT`, else 0 (the draw is made either way,
    so one artefact's presence does not shift the others' values)."""
    value = draw()
    return value if rng.random() < P_ARTEFACT else type(value)(0)


def _sample_artefacts(rng: np.random.Generator) -> dict[str, Any]:
    log_lo, log_hi = (math.log(v) for v in NOISE_STD_RANGE)
    return {"noise_std": float(math.exp(rng.uniform(log_lo, log_hi))),
            "corr_noise_std": _maybe(rng, lambda: _uniform(rng, CORR_NOISE_STD_RANGE)),
            "noise_corr_um": _uniform(rng, NOISE_CORR_RANGE_UM),
            "background_offset": _uniform(rng, BACKGROUND_OFFSET_RANGE),
            "background_tilt_per_um": (_uniform(rng, TILT_RANGE_PER_UM),
                                       _uniform(rng, TILT_RANGE_PER_UM)),
            "ringing": _maybe(rng, lambda: _uniform(rng, RINGING_RANGE)),
            "ringing_cutoff": _uniform(rng, RINGING_CUTOFF_RANGE),
            "n_spikes": _maybe(rng, lambda: int(rng.integers(N_SPIKES_RANGE[0],
                                                             N_SPIKES_RANGE[1] + 1))),
            "n_debris": _maybe(rng, lambda: int(rng.integers(N_DEBRIS_RANGE[0],
                                                             N_DEBRIS_RANGE[1] + 1))),
            "quantisation": _choice(rng, QUANTISATION_P)}


def _sample_calibration(rng: np.random.Generator) -> dict[str, Any]:
    return {"medium_offset": _uniform(rng, MEDIUM_OFFSET_RANGE),
            "ri_scale": _uniform(rng, RI_SCALE_RANGE)}


def _sample_voxel(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < P_40X:
        return VOXEL_40X_UM
    lateral = _uniform(rng, LATERAL_VOXEL_RANGE_UM)
    return (_uniform(rng, AXIAL_VOXEL_RANGE_UM), lateral, lateral)


def resolve_domain(domain: ImagingDomain | str | None, seed: int) -> ImagingDomain | None:
    """``simulate_fov``'s ``domain`` option: None, an :class:`ImagingDomain`, or "random"
    (drawn from ``seed`` alone, so a field's cells do not depend on it)."""
    if domain is None or isinstance(domain, ImagingDomain):
        return domain
    if domain == "random":
        return sample_domain(np.random.default_rng([int(seed), 2]))
    raise ConfigError(f"unknown imaging domain {domain!r}", "domain",
                      "give None, 'random' or an ri2fl.simulate.domain.ImagingDomain")


# ---------------------------------------------------------------------------------------
# optics
# ---------------------------------------------------------------------------------------
def illumination_pattern(scan: str, n: int, na_ill: float,
                         wavelength: float = WAVELENGTH_UM) -> np.ndarray:
    """Lateral frequencies (fy, fx) in cycles/µm of ``n`` beams scanned as ``scan``.

    "ring": one normal beam and ``n - 1`` on the circle NA_ill/λ (as the physical path);
    "spiral": a Fermat spiral filling the NA_ill disc; "raster": the ``n`` points of a
    square grid nearest the centre, its pitch chosen so they fill the disc.
    """
    radius = na_ill / wavelength
    if scan == "ring":
        from .physical import illumination_angles
        return illumination_angles(n, na_ill, wavelength)
    if scan == "spiral":
        from .brightfield import source_points
        return source_points(n, na_ill, wavelength)
    if scan == "raster":
        return _raster(n, radius)
    raise ConfigError(f"no beam pattern for scan {scan!r}", "scan",
                      "choose ring, spiral or raster")


def _raster(n: int, radius: float) -> np.ndarray:
    """The ``n`` points of a square grid nearest its centre, pitch so that they fill
    the disc of ``radius`` (the first pitch, shrinking by 2 %, that puts >= n inside)."""
    pitch = radius * math.sqrt(math.pi / max(n, 1)) * 1.2
    while True:
        m = int(radius / pitch) + 1
        g = np.arange(-m, m + 1) * pitch
        pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        pts = pts[np.hypot(pts[:, 0], pts[:, 1]) <= radius * (1 + 1e-9)]
        if len(pts) >= n:
            order = np.argsort(np.hypot(pts[:, 0], pts[:, 1]), kind="stable")
            return pts[order[:n]]
        pitch *= 0.98


def domain_support(domain: ImagingDomain, voxel_size_um: tuple[float, float, float],
                   medium_index: float) -> optics.SupportFn:
    """The domain's frequency support as a function of the FFT grid (see
    :func:`ri2fl.simulate.optics.reconstruct_fast`); cached per grid and optics, as
    :func:`ri2fl.simulate.optics.support_mask` is."""
    voxel = tuple(float(v) for v in voxel_size_um)
    n_m = round(float(medium_index), 3)  # as the fast path: the cache stays small
    d = domain
    return lambda grid: _support(tuple(int(n) for n in grid), voxel, n_m, d.scan, d.na,
                                 d.na_ill, d.wavelength_um, d.n_angles, d.rotation_span_deg,
                                 d.rotation_axis)


@functools.lru_cache(maxsize=16)
def _support(grid: tuple[int, int, int], voxel: tuple[float, float, float], n_m: float,
             scan: str, na: float, na_ill: float, wavelength: float, n_angles: int,
             span_deg: float, axis: str) -> np.ndarray:
    if scan == "disc":
        return optics.support_mask(grid, voxel, n_m, na, na_ill, wavelength)
    if scan == "rotation":
        mask = optics.rotation_support(grid, voxel, n_angles, span_deg, axis, n_m, na,
                                       wavelength)
    else:
        beams = illumination_pattern(scan, n_angles, na_ill, wavelength)
        mask = optics.scan_support(grid, voxel, beams, n_m, na, wavelength)
    mask.setflags(write=False)
    return mask


def born_bias(dn: np.ndarray, dz_um: float, wavelength: float = WAVELENGTH_UM) -> np.ndarray:
    """Δn as a first-Born reconstruction sees it: Δn·cos φ(z).

    φ(z) = 2π/λ · Σ Δn dz is the phase the wave has gathered on its way up to the middle of
    voxel z (light enters at z = 0); Born takes the internal field for the incident one.
    A column's integral becomes sin(φ_total)/k0 instead of φ_total/k0.
    """
    dn = np.asarray(dn, np.float32)
    k0 = np.float32(2 * math.pi / wavelength * dz_um)
    phase = (np.cumsum(dn, axis=0, dtype=np.float32) - np.float32(0.5) * dn) * k0
    return (dn * np.cos(phase)).astype(np.float32)


def tomograph(dn: np.ndarray, voxel_size_um: tuple[float, float, float], medium_index: float,
              domain: ImagingDomain, rng: np.random.Generator,
              artefact_rng: np.random.Generator | None = None) -> np.ndarray:
    """Reconstructed Δn of the domain's tomograph (float32, unclipped, the grid of ``dn``).

    Born bias, then the fast path (:func:`ri2fl.simulate.optics.reconstruct_fast`) on its
    z-padded grid with the domain's support, noise (drawn from ``rng``, as the default
    path draws it) and GP; ``n_debris`` particles (drawn from ``artefact_rng``) float in the
    medium margin above the field.
    """
    artefact_rng = rng if artefact_rng is None else artefact_rng
    dn = np.asarray(dn, np.float32)
    if domain.approximation == "born":
        dn = born_bias(dn, voxel_size_um[0], domain.wavelength_um)
    shape = dn.shape
    padded = np.zeros(optics.padded_shape(shape, voxel_size_um), np.float32)
    padded[:shape[0], :shape[1], :shape[2]] = dn
    if domain.n_debris:
        add_debris(padded, shape[0], voxel_size_um, domain.n_debris, artefact_rng)
    lower, upper = (0.0, None) if domain.gp_nonneg else GP_BOX
    rec = optics.reconstruct_fast(padded, voxel_size_um, medium_index, domain.noise_std, rng,
                                  domain.gp_iterations, wrap=True, lower=lower, upper=upper,
                                  support=domain_support(domain, voxel_size_um, medium_index))
    return np.ascontiguousarray(rec[:shape[0], :shape[1], :shape[2]])


def add_debris(padded: np.ndarray, top: int, voxel_size_um: tuple[float, float, float],
               n: int, rng: np.random.Generator) -> None:
    """Put ``n`` spheres (debris in the medium) into ``padded`` at and above slice ``top``.

    Radius :data:`DEBRIS_RADIUS_RANGE_UM`, Δn :data:`DEBRIS_DN_RANGE`, lower surface
    :data:`DEBRIS_GAP_RANGE_UM` above the field's top, anywhere laterally; kept within the
    lower 60 % of the medium margin above the field, so that the periodic grid does not
    bring it to the field's bottom. Not part of the true RI: debris is not a cell.
    """
    v = np.asarray(voxel_size_um, float)
    ceiling = (top + 0.6 * (padded.shape[0] - top)) * v[0]
    for _ in range(int(n)):
        r = _uniform(rng, DEBRIS_RADIUS_RANGE_UM)
        z = min(top * v[0] + r + _uniform(rng, DEBRIS_GAP_RANGE_UM), ceiling - r)
        centre = np.array([z,
                           rng.uniform(0, padded.shape[1] * v[1]),
                           rng.uniform(0, padded.shape[2] * v[2])])
        dn = np.float32(_uniform(rng, DEBRIS_DN_RANGE))
        box, coords = _local_box(padded.shape, centre, np.full(3, r + v.max()), v)
        if box is None:
            continue
        d = np.sqrt(sum(c ** 2 for c in coords))
        padded[box] = np.maximum(padded[box], dn * occupancy(d - r, float(v.min())))


def _local_box(shape: tuple[int, ...], centre_um: np.ndarray, half_um: np.ndarray,
               voxel: np.ndarray) -> tuple[tuple[slice, ...] | None, list[np.ndarray]]:
    """Slices of the voxels within ``half_um`` of ``centre_um`` and their offsets (µm,
    broadcastable) from it; (None, []) when none is inside ``shape``."""
    lo = np.maximum(np.floor((centre_um - half_um) / voxel), 0).astype(int)
    hi = np.minimum(np.ceil((centre_um + half_um) / voxel) + 1, shape).astype(int)
    if np.any(hi <= lo):
        return None, []
    coords = []
    for axis in range(3):
        c = (np.arange(lo[axis], hi[axis]) + 0.5) * voxel[axis] - centre_um[axis]
        coords.append(c.reshape([-1 if i == axis else 1 for i in range(3)]))
    return tuple(slice(a, b) for a, b in zip(lo, hi)), coords


# ---------------------------------------------------------------------------------------
# reconstruction artefacts
# ---------------------------------------------------------------------------------------
def tv_denoise(dn: np.ndarray, weight: float) -> np.ndarray:
    """Total-variation denoising (Chambolle) of Δn; ``weight`` in Δn units, 0: unchanged."""
    if weight <= 0:
        return dn
    from skimage.restoration import denoise_tv_chambolle
    return denoise_tv_chambolle(dn, weight=weight, max_num_iter=50).astype(np.float32)


def add_ringing(dn: np.ndarray, voxel_size_um: tuple[float, float, float], strength: float,
                cutoff_per_um: float) -> np.ndarray:
    """``dn`` blended (``strength``, 0..1) towards its hard lateral low-pass at
    ``cutoff_per_um``: the Gibbs ripple of a truncated support, period ≈ 1/cutoff."""
    if strength <= 0:
        return dn
    _, fy, fx = optics.fft_freqs(dn.shape, voxel_size_um)
    keep = (fy ** 2 + fx ** 2) <= cutoff_per_um ** 2
    spec = sfft.rfftn(dn, workers=optics.FFT_WORKERS)
    spec *= keep
    low = sfft.irfftn(spec, s=dn.shape, workers=optics.FFT_WORKERS, overwrite_x=True)
    return (dn + np.float32(strength) * (low - dn)).astype(np.float32)


def ringing_cutoff_per_um(domain: ImagingDomain, voxel_size_um: tuple[float, float, float],
                          medium_index: float) -> float:
    """Lateral cut-off of the ringing: ``ringing_cutoff`` x the lateral band limit (the
    grid's Nyquist frequency if lower)."""
    lim = (min(domain.na, medium_index) + domain.na_ill) / domain.wavelength_um
    nyquist = 0.5 / max(voxel_size_um[1], voxel_size_um[2])
    return domain.ringing_cutoff * min(lim, nyquist)


def add_spikes(dn: np.ndarray, voxel_size_um: tuple[float, float, float], n: int,
               rng: np.random.Generator) -> np.ndarray:
    """``n`` residual phase-unwrapping spikes: ± Gaussian needles along z (a 2π error in one
    projection, spread along its beam), amplitude :data:`SPIKE_AMPLITUDE_RANGE`."""
    out = np.array(dn, np.float32)
    v = np.asarray(voxel_size_um, float)
    extent = np.asarray(dn.shape) * v
    for _ in range(int(n)):
        centre = rng.uniform(0, 1, 3) * extent
        sz, sxy = (_uniform(rng, b) for b in SPIKE_SIGMA_UM)
        sigma = np.array([sz, sxy, sxy])
        amp = _uniform(rng, SPIKE_AMPLITUDE_RANGE) * (1 if rng.random() < 0.5 else -1)
        box, coords = _local_box(dn.shape, centre, 3 * sigma, v)
        if box is not None:
            g = np.exp(-0.5 * sum((c / s) ** 2 for c, s in zip(coords, sigma)))
            out[box] += np.float32(amp) * g.astype(np.float32)
    return out


def correlated_noise(shape: tuple[int, int, int], voxel_size_um: tuple[float, float, float],
                     std: float, corr_um: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of standard deviation ``std`` correlated over ``corr_um`` (the sigma of
    the Gaussian filter applied to white noise, µm; 0: white)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if corr_um > 0:
        sigma = [corr_um / v for v in voxel_size_um]
        noise = ndimage.gaussian_filter(noise, sigma, mode="wrap")
    noise *= np.float32(std / max(float(noise.std()), 1e-12))
    return noise


def background_plane(shape: tuple[int, int, int], voxel_size_um: tuple[float, float, float],
                     offset: float, tilt_per_um: tuple[float, float]) -> np.ndarray:
    """offset + g_y·(y - y_c) + g_x·(x - x_c), in RI, over the field (y, x in µm from its
    centre), broadcastable to ``shape``."""
    y = (np.arange(shape[1]) - (shape[1] - 1) / 2) * voxel_size_um[1]
    x = (np.arange(shape[2]) - (shape[2] - 1) / 2) * voxel_size_um[2]
    plane = offset + tilt_per_um[0] * y[:, None] + tilt_per_um[1] * x[None, :]
    return plane[None].astype(np.float32)


def reconstruction_artefacts(dn: np.ndarray, voxel_size_um: tuple[float, float, float],
                             medium_index: float, domain: ImagingDomain,
                             rng: np.random.Generator) -> np.ndarray:
    """TV, ringing, unwrapping spikes and correlated noise of the domain, on Δn."""
    dn = tv_denoise(dn, domain.tv_weight)
    dn = add_ringing(dn, voxel_size_um, domain.ringing,
                     ringing_cutoff_per_um(domain, voxel_size_um, medium_index))
    if domain.n_spikes:
        dn = add_spikes(dn, voxel_size_um, domain.n_spikes, rng)
    if domain.corr_noise_std > 0:
        dn = dn + correlated_noise(dn.shape, voxel_size_um, domain.corr_noise_std,
                                   domain.noise_corr_um, rng)
    return dn


# ---------------------------------------------------------------------------------------
# calibration, storage and sampling
# ---------------------------------------------------------------------------------------
def calibrate(dn: np.ndarray, voxel_size_um: tuple[float, float, float], medium_index: float,
              domain: ImagingDomain) -> np.ndarray:
    """RI as the instrument reports it: n_m + medium offset + RI scale·Δn + background."""
    ri = np.float32(medium_index + domain.medium_offset) + np.float32(domain.ri_scale) * dn
    if domain.background_offset or any(domain.background_tilt_per_um):
        ri = ri + background_plane(dn.shape, voxel_size_um, domain.background_offset,
                                   domain.background_tilt_per_um)
    return ri.astype(np.float32)


def quantise(ri: np.ndarray, kind: str) -> np.ndarray:
    """RI after storage in a TCF file (float32): "uint16" RI x 10⁴, "uint8" (RI - RIMin) x
    1000 with RIMin the minimum rounded down to 0.001 (as ``ri2fl.io.tcf`` writes them);
    "float" unchanged."""
    if kind == "float":
        return ri
    if kind == "uint16":  # encoded and decoded with the arithmetic of ri2fl.io.tcf
        v = np.clip(np.round(ri.astype(np.float64) * 1e4), 0, 65535).astype(np.uint16)
        return v.astype(np.float32) / np.float32(1e4)
    if kind == "uint8":
        ri_min = float(np.floor(ri.min() * 1000) / 1000)
        v = np.clip(np.round((ri - ri_min) * 1000), 0, 255).astype(np.uint8)
        return v.astype(np.float32) / np.float32(1000.0) + np.float32(ri_min)
    raise ConfigError(f"unknown quantisation {kind!r}", "quantisation",
                      f"choose one of {', '.join(QUANTISATIONS)}")


def sample_on_grid(ri: np.ndarray, voxel_size_um: tuple[float, float, float],
                   native_voxel_um: tuple[float, float, float],
                   quantisation: str = "float") -> np.ndarray:
    """``ri`` written by an instrument of voxel ``native_voxel_um`` and read back onto its
    own grid by the inference's path.

    Model grid -> native grid (:func:`ri2fl.preprocess.resample`, anti-aliased) ->
    :func:`quantise` -> model grid (:func:`ri2fl.preprocess.resample_to_shape`, the same
    linear resampler, to exactly the shape of ``ri``).
    """
    from ..preprocess import resample, resample_to_shape, same_grid

    if same_grid(voxel_size_um, native_voxel_um):
        return quantise(ri, quantisation)
    native = resample(ri, voxel_size_um, native_voxel_um, anti_alias=True,
                      where="domain.voxel_size_um")
    return resample_to_shape(quantise(native, quantisation), ri.shape)


# ---------------------------------------------------------------------------------------
# the whole measurement
# ---------------------------------------------------------------------------------------
def apply_domain(ri_true: np.ndarray, voxel_size_um: tuple[float, float, float],
                 medium_index: float, domain: ImagingDomain, rng: np.random.Generator,
                 artefact_rng: np.random.Generator | None = None) -> np.ndarray:
    """The tomogram an instrument of ``domain`` writes of a field, on the field's grid.

    Parameters
    ----------
    ri_true : ndarray
        True RI (z, y, x) on the model grid.
    voxel_size_um : tuple of float
        Its voxel size (z, y, x), µm.
    medium_index : float
        True medium index.
    domain : ImagingDomain
        The instrument (see the module for the order of the steps).
    rng : numpy.random.Generator
        The tomograph's noise (the draw the default fast path makes).
    artefact_rng : numpy.random.Generator, optional
        Debris, spikes and correlated noise (default ``rng``).

    Returns
    -------
    ndarray
        Measured RI (float32), unclipped, shape of ``ri_true``.
    """
    dn = np.asarray(ri_true, np.float32) - np.float32(medium_index)
    return _apply(dn, voxel_size_um, medium_index, domain, rng, artefact_rng)


def measure(dn: np.ndarray, voxel_size_um: tuple[float, float, float], medium_index: float,
            domain: ImagingDomain, rng: np.random.Generator,
            artefact_rng: np.random.Generator | None = None) -> np.ndarray:
    """:func:`apply_domain` of the true Δn, clipped to ``RI_CLIP`` as ``simulate_fov``'s
    ``ri`` (``ImagingDomain()`` gives exactly the default fast path's tomogram)."""
    ri = _apply(np.asarray(dn, np.float32), voxel_size_um, medium_index, domain, rng,
                artefact_rng)
    return np.clip(ri, *RI_CLIP).astype(np.float32)


def _apply(dn: np.ndarray, voxel_size_um: tuple[float, float, float], medium_index: float,
           domain: ImagingDomain, rng: np.random.Generator,
           artefact_rng: np.random.Generator | None) -> np.ndarray:
    artefact_rng = rng if artefact_rng is None else artefact_rng
    voxel = tuple(float(v) for v in voxel_size_um)
    rec = tomograph(dn, voxel, medium_index, domain, rng, artefact_rng)
    rec = reconstruction_artefacts(rec, voxel, medium_index, domain, artefact_rng)
    ri = calibrate(rec, voxel, medium_index, domain)
    return sample_on_grid(ri, voxel, domain.voxel_size_um, domain.quantisation)
