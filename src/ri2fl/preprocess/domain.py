"""Is an RI tomogram like the data a model was trained on? Domain statistics and checks.

ri2fl's networks learn from simulated fields only, and on data unlike them they fail without
a sign. :func:`domain_statistics` measures, on the input's own grid, what sets such data
apart: the native voxel size; the background's level (against the stated medium index), its
noise, its darkest voxels (halos the simulator's tomograph does not make) and its grain
(white noise means no tomograph made the volume); and the cells' RI (median and 99th
percentile above the background), fine lateral texture (organelles) and axial detail: the
cells' fine axial texture (residual of an axial Gaussian of 0.2 µm) as a share of their
coarser one (0.4 µm). A tomograph measures Δn only up to its axial band limit,
(n_m - sqrt(n_m² - NA²)) / λ (about 1.4 cycles/µm for the training instrument's 532 nm and
NA 1.2; 0.6 for 750 nm and NA 1.0), so the share falls with a coarser axial resolution,
largely whatever the cells' contrast or the noise level (both residuals scale with them); it
is measured along z only, which big volumes never stride.
:func:`check_domain` compares them with a model's reference (:func:`load_reference`, the
JSON ``<model>.domain.json`` beside its weights, made by ``scripts/make_domain_reference.py``
from the training fields and fields of every simulated family) and returns the reasons an
input is unlike it, each with its measured value and the trained range;
:func:`warn_if_off_domain` issues them as one :class:`OffDomainWarning`.

Nuclear contrast is not measured: without a nucleus mask, a darker interior cannot be told
from thin cytoplasm or partial volume cheaply and robustly (the simulated nuclei are darker
than their cytoplasm already, as in textbook and real cells).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.stats import median_abs_deviation

from ..constants import RI_CLIP

__all__ = ["STATISTICS", "OffDomainWarning", "check_domain", "domain_reasons",
           "domain_statistics", "load_reference", "reference_path", "warn_if_off_domain",
           "warn_off_domain"]


class OffDomainWarning(UserWarning):
    """An input unlike the data the model was trained on: its outputs may not be trusted."""


#: Δn above the background (after a 0.3 µm Gaussian) that counts as cell.
CELL_DN = 0.005
#: Voxels closer than this (µm, per axis) to a cell are not background.
BACKGROUND_MARGIN_UM = 2.0
#: Lateral Gaussian (µm) whose residual is the cells' fine texture (organelles, noise).
TEXTURE_SIGMA_UM = 0.3
#: Axial Gaussians (µm) whose residuals are the cells' fine and coarse axial texture: the
#: ratio of their s.d.s (``cell_axial_detail``) follows the tomograph's axial band limit.
AXIAL_SIGMA_UM: tuple[float, float] = (0.2, 0.4)
#: Statistics are measured on at most this many voxels (larger volumes are strided in y, x).
MAX_VOXELS = 1 << 24
#: Fewest background / cell voxels for their statistics (else they are not measured).
MIN_VOXELS = 2000
#: A background with more of its voxels at its minimum is clipped: its grain is not measured.
CLIPPED_FRACTION = 0.02

#: Checked statistics: name -> what the warning calls it.
STATISTICS: dict[str, str] = {
    "background_offset": "background level minus medium index",
    "background_noise": "background noise",
    "background_low_tail": "darkest background (1st percentile below its level)",
    "background_z_correlation": "correlation of background noise between z slices",
    "cell_dn_p50": "median cell RI above background",
    "cell_dn_p99": "99th-percentile cell RI above background",
    "cell_texture": "fine lateral texture inside cells (s.d.)",
    "cell_axial_detail": "axial detail inside cells (fine over coarse axial texture: the "
                         "axial resolution)",
}
#: Statistics without a unit (the others are in RI).
UNITLESS = frozenset({"background_z_correlation", "cell_axial_detail"})


def _strided(ri: Any, max_voxels: int = MAX_VOXELS) -> tuple[np.ndarray, int]:
    """``ri`` as float32, strided in y and x to at most ``max_voxels``; and the stride."""
    shape = tuple(int(n) for n in ri.shape)
    step = max(1, math.ceil(math.sqrt(float(np.prod(shape, dtype=float)) / max_voxels)))
    view = ri[:, ::step, ::step] if step > 1 else ri[...]
    return np.asarray(view, dtype=np.float32), step


def _mode(values: np.ndarray, width: float = 1e-4) -> float:
    """The most frequent value (histogram of ``width`` bins, lightly smoothed)."""
    lo, hi = np.percentile(values, [0.5, 60])
    edges = np.arange(lo - 1e-3, hi + 1e-3 + width, width)
    counts = ndimage.uniform_filter1d(np.histogram(values, edges)[0].astype(float), 3)
    i = int(np.argmax(counts))
    return float(0.5 * (edges[i] + edges[i + 1]))


def _cell_mask(ri: np.ndarray, voxel: Sequence[float], level: float) -> np.ndarray:
    smooth = ndimage.gaussian_filter(ri, [0.3 / v for v in voxel])
    return smooth > level + CELL_DN


def _background_stats(ri: np.ndarray, cells: np.ndarray, voxel: Sequence[float],
                      medium_index: float) -> tuple[dict[str, float], float]:
    """Level (against ``medium_index``), noise, low tail and grain of the voxels far from
    cells.

    The noise is the robust s.d. of the differences of neighbouring voxels along x, over
    sqrt(2): smooth halos of crowded fields do not count, and a clipped background (simulated
    training fields in medium below 1.337 are clipped at it) has none.
    """
    size = [2 * round(BACKGROUND_MARGIN_UM / v) + 1 for v in voxel]
    background = ~ndimage.maximum_filter(cells.view(np.uint8), size=size).astype(bool)
    values = ri[background]
    if values.size < MIN_VOXELS:
        return dict.fromkeys(("background_offset", "background_noise", "background_low_tail",
                              "background_z_correlation"), math.nan), math.nan
    p1, p50 = (float(v) for v in np.percentile(values, [1, 50]))
    pairs = background[..., 1:] & background[..., :-1]
    steps = np.abs(ri[..., 1:][pairs] - ri[..., :-1][pairs])
    noise = 1.4826 * float(np.median(steps)) / math.sqrt(2) if steps.size else math.nan
    return {"background_offset": p50 - medium_index, "background_noise": noise,
            "background_low_tail": p1 - p50,
            "background_z_correlation": _z_correlation(ri, background, values, p50)}, p50


def _z_correlation(ri: np.ndarray, background: np.ndarray, values: np.ndarray,
                   level: float) -> float:
    """Correlation of the background's fluctuations between neighbouring z slices: the grain
    of a tomograph's noise (white noise: 0). NaN where the background is clipped (a simulated
    field in medium below 1.337) or flat; ``values`` is ``ri[background]``."""
    if np.count_nonzero(values <= values.min()) > CLIPPED_FRACTION * values.size:
        return math.nan
    both = background[1:] & background[:-1]
    upper, lower = ri[1:][both] - level, ri[:-1][both] - level
    scale = math.sqrt(float(np.mean(upper * upper)) * float(np.mean(lower * lower)))
    if upper.size < MIN_VOXELS or scale < 1e-12:
        return math.nan
    return float(np.mean(upper * lower)) / scale


def _cell_stats(ri: np.ndarray, cells: np.ndarray, voxel: Sequence[float],
                level: float) -> dict[str, float]:
    """Δn percentiles of the cell voxels, the robust s.d. of their fine lateral texture and
    their axial detail (robust s.d. of the residual of an axial Gaussian of 0.2 µm over that
    of 0.4 µm).

    RI above 1.390 counts as 1.390: the networks' input window ends there, and the
    simulated training fields are clipped at it.
    """
    keys = ("cell_dn_p50", "cell_dn_p99", "cell_texture", "cell_axial_detail")
    if int(cells.sum()) < MIN_VOXELS:
        return dict.fromkeys(keys, math.nan)
    ri = np.minimum(ri, np.float32(RI_CLIP[1]))
    p50, p99 = (float(v) - level for v in np.percentile(ri[cells], [50, 99]))
    sigma = (0.0, TEXTURE_SIGMA_UM / voxel[1], TEXTURE_SIGMA_UM / voxel[2])
    residual = ri - ndimage.gaussian_filter(ri, sigma)
    eroded = ndimage.binary_erosion(cells, iterations=2)
    inner = residual[eroded]
    texture = axial = math.nan
    if inner.size >= MIN_VOXELS:
        texture = float(median_abs_deviation(inner, scale="normal"))
        fine, coarse = (
            float(median_abs_deviation((ri - ndimage.gaussian_filter1d(ri, s / voxel[0],
                                                                      axis=0))[eroded],
                                       scale="normal")) for s in AXIAL_SIGMA_UM)
        axial = fine / coarse if coarse > 0 else math.nan
    return dict(zip(keys, (p50, p99, texture, axial)))


def domain_statistics(ri: Any, voxel_size_um: Sequence[float],
                      medium_index: float) -> dict[str, float]:
    """Statistics of an RI tomogram that tell whether a model has seen data like it.

    Parameters
    ----------
    ri : array-like
        (Z, Y, X) absolute RI on its own grid (NumPy, zarr, h5py or dask).
    voxel_size_um : (z, y, x)
        Its voxel size in µm.
    medium_index : float
        The medium index the model will be given.

    Returns
    -------
    dict
        ``voxel_z_um``, ``voxel_yx_um`` (native sampling); ``background_offset`` (median of
        the voxels over 2 µm from cells, i.e. from anything 0.005 above the medium index or
        the histogram's mode, whichever is lower, minus ``medium_index``),
        ``background_noise`` (robust s.d. of their steps along x over sqrt(2)),
        ``background_low_tail``
        (1st minus 50th), ``background_z_correlation`` (of their fluctuations between
        neighbouring slices: the tomograph's grain);
        ``cell_dn_p50``, ``cell_dn_p99`` (RI above the background of the voxels 0.005 above
        it), ``cell_texture`` (robust s.d. inside cells of RI minus its lateral Gaussian
        of 0.3 µm: organelles and noise) and ``cell_axial_detail`` (robust s.d. inside
        cells of RI minus its axial Gaussian of 0.2 µm, over that of 0.4 µm: the axial
        resolution);
        ``cell_fraction``. A statistic without enough voxels is NaN.

    Examples
    --------
    >>> from ri2fl.simulate import simulate_fov                      # doctest: +SKIP
    >>> fov = simulate_fov("hek293", seed=100000, shape=(32, 128, 128))  # doctest: +SKIP
    >>> domain_statistics(fov.ri, fov.voxel_size_um, fov.medium_index)   # doctest: +SKIP
    """
    data, step = _strided(ri)
    if not np.isfinite(data).all():  # NaN / inf (e.g. outside a reconstruction) as medium
        data = np.nan_to_num(data, nan=medium_index, posinf=medium_index,
                             neginf=medium_index)
    voxel = (float(voxel_size_um[0]), float(voxel_size_um[1]) * step,
             float(voxel_size_um[2]) * step)
    # cells stand 0.005 above the medium, or above the histogram's mode where that is lower
    # (a medium index given too high); in a field crowded with cells the mode is cytoplasm
    guess = min(_mode(data), float(medium_index))
    cells = _cell_mask(data, voxel, guess)
    stats, level = _background_stats(data, cells, voxel, float(medium_index))
    # too little background (a crowded field): the lower of mode and medium stands for it
    stats.update(_cell_stats(data, cells, voxel, level if math.isfinite(level) else guess))
    stats["cell_fraction"] = float(cells.mean())
    stats["voxel_z_um"] = float(voxel_size_um[0])
    stats["voxel_yx_um"] = float(np.sqrt(float(voxel_size_um[1]) * float(voxel_size_um[2])))
    return stats


def reference_path(checkpoint_path: str | Path) -> Path:
    """The domain reference beside a checkpoint: ``weights/default.pt`` ->
    ``weights/default.domain.json``."""
    path = Path(checkpoint_path)
    return path.with_name(f"{path.name.split('.')[0]}.domain.json")


def load_reference(source: str | Path | Any) -> dict[str, Any] | None:
    """A model's domain reference, or None when it has none.

    ``source`` is a reference JSON, a checkpoint path, or a loaded network (its
    ``checkpoint_path`` attribute).
    """
    path = getattr(source, "checkpoint_path", source)
    if path is None or not isinstance(path, str | Path):
        return None
    path = Path(path)
    if not path.name.endswith(".domain.json"):
        path = reference_path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _voxel_reason(stats: Mapping[str, float], reference: Mapping[str, Any]) -> str | None:
    """Why the native sampling is far from the training grid's, if it is."""
    trained = [float(v) for v in reference["voxel_size_um"]]
    factor = float(reference.get("voxel_tolerance", 1.25))
    pairs = ((stats["voxel_z_um"], trained[0]), (stats["voxel_yx_um"], trained[1]))
    if all(1 / factor <= got / want <= factor for got, want in pairs):
        return None
    z, yx = stats["voxel_z_um"], stats["voxel_yx_um"]
    shown = f"{z:.3g} µm isotropic" if math.isclose(z, yx, rel_tol=1e-3) else (
        f"{z:.3g} x {yx:.3g} x {yx:.3g} µm")
    return (f"voxel size {shown} (trained {' x '.join(f'{v:g}' for v in trained)} µm, "
            f"within a factor {factor:g} per axis; other sampling is resampled, but the "
            "optics behind it differ)")


def domain_reasons(stats: Mapping[str, float], reference: Mapping[str, Any]) -> list[str]:
    """The reasons ``stats`` (:func:`domain_statistics`) fall outside ``reference``.

    Returns
    -------
    list of str
        One "<what> <value> (trained <low> to <high>)" per statistic out of range; empty
        when the input is like the training data. Unmeasured (NaN) statistics pass.
    """
    reasons = []
    voxel = _voxel_reason(stats, reference)
    if voxel:
        reasons.append(voxel)
    for name, (lo, hi) in reference["ranges"].items():
        value = stats.get(name, math.nan)
        if math.isfinite(value) and not lo <= value <= hi:
            unit = "" if name in UNITLESS else " RI"
            reasons.append(f"{STATISTICS.get(name, name)} {value:.2g}{unit} "
                           f"(trained {lo:.2g} to {hi:.2g})")
    return reasons


def check_domain(ri: Any, voxel_size_um: Sequence[float], medium_index: float,
                 reference: Mapping[str, Any] | None) -> list[str]:
    """The reasons ``ri`` is unlike the data of ``reference`` (empty: like it, or no
    reference).

    Parameters
    ----------
    ri : array-like
        (Z, Y, X) absolute RI.
    voxel_size_um : (z, y, x)
        Its voxel size in µm.
    medium_index : float
        The medium index the model is given.
    reference : dict or None
        A model's reference (:func:`load_reference`).
    """
    if reference is None:
        return []
    return domain_reasons(domain_statistics(ri, voxel_size_um, medium_index), reference)


def warn_off_domain(reasons: Sequence[str], name: str | Path,
                    model: str = "the model") -> None:
    """One :class:`OffDomainWarning` listing ``reasons`` (nothing when there are none)."""
    if reasons:
        warnings.warn(f"{name}: unlike the data {model} was trained on: "
                      f"{'; '.join(reasons)}", OffDomainWarning, stacklevel=3)


def warn_if_off_domain(ri: Any, voxel_size_um: Sequence[float], medium_index: float,
                       model: Any, name: str | Path = "the RI volume") -> list[str]:
    """Check ``ri`` against the reference of ``model`` (a loaded network or a checkpoint
    path) and warn once (:class:`OffDomainWarning`, naming ``name``) if it is unlike it.

    Returns
    -------
    list of str
        The reasons (empty: like the training data, or the model has no reference).
    """
    reference = load_reference(model)
    reasons = check_domain(ri, voxel_size_um, medium_index, reference)
    label = f"`{reference.get('model')}`" if reference else "the model"
    warn_off_domain(reasons, name, label)
    return reasons
