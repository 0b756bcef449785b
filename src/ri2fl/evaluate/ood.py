"""The out-of-domain evaluation of issue #30: its fixed definition and the HL60 checks.

``configs/ood_eval.yaml`` defines three sets that no training, tuning or model selection may
read: (a) ``physical``, fields through the beam-propagation tomograph
(:mod:`ri2fl.simulate.physical`) with optics outside the ranges that
:mod:`ri2fl.simulate.domain` draws for training; (b) ``textbook``, cells of
:mod:`ri2fl.simulate.textbook`, a generator written apart from the training phantoms; (c)
``hl60``, the bundled real HL60 cell, judged by :func:`hl60_checks` (no fluorescence ground
truth exists for it). ``scripts/make_ood_sets.py`` builds (a) and (b), ``scripts/eval_ood.py``
scores a model on all three against the goals of the config.

Seeds: training sets use seeds below 100000 (:data:`TRAINING_SEEDS`), experiments
100000-199999 (:data:`EXPERIMENT_SEEDS`); :func:`read_ood_config` refuses a set whose seeds
meet either. Sets made beside the fixed ones use seeds of their own: the in-domain reference
of the uncertainty study from :data:`IN_DOMAIN_SEED`, the adaptation curve's "lab
microscope" from 950000 (:func:`seed_conflicts` checks a new set against all of them).

Uncertainty off-domain (issue #30, item 5): :func:`field_uncertainty` summarises one field's
uncertainty map inside its cells (mean, and a voxel sample with the absolute error for the
uncertainty-error Spearman correlation); :func:`uncertainty_table` pools the fields of each
part, and compares each part's mean uncertainty with the in-domain reference's.

>>> config = read_ood_config("configs/ood_eval.yaml")           # doctest: +SKIP
>>> field_seeds(config["parts"]["physical"])[:2]                 # doctest: +SKIP
[900000, 900001]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage, stats

from ..errors import ConfigError

__all__ = ["EXPERIMENT_SEEDS", "HL60_GOALS", "IN_DOMAIN", "IN_DOMAIN_SEED", "SIMULATED_PARTS",
           "TRAINING_SEEDS", "UNCERTAINTY_VOXELS", "FieldUncertainty", "field_seeds",
           "field_uncertainty", "hl60_checks", "hl60_reference", "in_domain_seeds",
           "measure_physical", "optics_outside_training", "rank_correlation",
           "read_ood_config", "seed_conflicts", "uncertainty_table", "write_physical_set"]

#: Seeds [low, high) of every training set (``ri2fl.simulate.sets``, the recipes).
TRAINING_SEEDS: tuple[int, int] = (0, 100_000)
#: Seeds [low, high) of the experiments (``experiments/``, ``scripts/eval_domain.py``).
EXPERIMENT_SEEDS: tuple[int, int] = (100_000, 200_000)
#: The parts of the evaluation that are simulated (each one a folder with a manifest).
SIMULATED_PARTS: tuple[str, ...] = ("physical", "textbook")
#: The in-domain reference of the uncertainty study: the ``physical`` part's fields (cell
#: types, numbers of cells, shape) through the default fast tomograph, from seeds of its own.
IN_DOMAIN = "in_domain"
#: Field i of the in-domain reference has seed ``IN_DOMAIN_SEED + i``.
IN_DOMAIN_SEED = 910_000
#: Voxels inside cells drawn per field and target for the uncertainty-error Spearman.
UNCERTAINTY_VOXELS = 20_000

#: What the real HL60 cell must show (``shared/data/hl60/README.md``, issue #30).
HL60_GOALS: dict[str, Any] = {
    "n_cells": 1,                 # one cell ...
    "max_hole_fraction": 0.01,    # ... whole: its filled mask at most 1 % holes ...
    "min_cell_iou": 0.8,          # ... and the cell the RI outlines
    "deep_um": 1.5,
    "min_nucleus_deep_fraction": 0.8,   # nucleus >= 80 % deeper than 1.5 µm
    "max_nucleus_minus_cytoplasm_ri": 0.0,  # darker than the cytoplasm
    "nucleus_fraction": (0.2, 0.8),     # 20-80 % of the cell
    "min_fl_interior_ratio": 2.0,       # inferred nucleus FL, darker interior / rest of cell
}


def field_seeds(part: Mapping[str, Any]) -> list[int]:
    """The seeds of a simulated part: ``seed``, ``seed + 1``, ... (one per entry of
    ``fields``, else ``n_fields`` of them)."""
    n = len(part["fields"]) if "fields" in part else int(part["n_fields"])
    return [int(part["seed"]) + i for i in range(n)]


def in_domain_seeds(part: Mapping[str, Any]) -> list[int]:
    """The seeds of the in-domain reference: one per field of ``part`` (``physical``), from
    :data:`IN_DOMAIN_SEED`."""
    return [IN_DOMAIN_SEED + i for i in range(len(field_seeds(part)))]


def seed_conflicts(seeds: Sequence[int], config: Mapping[str, Any],
                   in_domain: bool = True) -> list[str]:
    """Why a new set's ``seeds`` may not be used: the sets they meet (empty: none).

    Checked against :data:`TRAINING_SEEDS`, :data:`EXPERIMENT_SEEDS`, every simulated part of
    ``config`` (the fixed out-of-domain sets) and, with ``in_domain``, the in-domain
    reference (:func:`in_domain_seeds`).
    """
    parts = config["parts"]
    taken = {f"the {name} part": set(field_seeds(parts[name])) for name in SIMULATED_PARTS}
    if in_domain:
        taken["the in-domain reference"] = set(in_domain_seeds(parts["physical"]))
    out = [f"seeds of the {what} ({lo}-{hi - 1})"
           for (lo, hi), what in ((TRAINING_SEEDS, "training"),
                                  (EXPERIMENT_SEEDS, "experiments"))
           if _overlaps(seeds, (lo, hi))]
    out += [f"seeds of {what}" for what, used in taken.items() if used & set(seeds)]
    return out


def optics_outside_training(optics: Mapping[str, Any]) -> list[str]:
    """Which knobs of a physical tomograph's optics lie outside the training ranges.

    The ranges are those :func:`ri2fl.simulate.domain.sample_domain` draws (wavelength, NA,
    illumination NA as a fraction of min(NA, 1.29), number of beams).

    Parameters
    ----------
    optics : mapping
        ``wavelength_um``, ``na``, ``na_ill``, ``n_illuminations``.

    Returns
    -------
    list of str
        One line per knob outside its range, e.g. ``"wavelength_um 0.405 < 0.45"``.
    """
    from ..simulate import domain as d

    na, na_ill = float(optics["na"]), float(optics["na_ill"])
    knobs = {"wavelength_um": (float(optics["wavelength_um"]), d.WAVELENGTH_RANGE_UM),
             "na": (na, d.NA_RANGE),
             "na_ill/min(na, 1.29)": (na_ill / min(na, d.NA_ILL_MAX),
                                      d.NA_ILL_FRACTION_RANGE),
             "n_illuminations": (float(optics["n_illuminations"]), d.N_ANGLES_RANGE)}
    out = []
    for name, (value, (lo, hi)) in knobs.items():
        if value < lo:
            out.append(f"{name} {value:g} < {lo:g}")
        elif value > hi:
            out.append(f"{name} {value:g} > {hi:g}")
    return out


def _overlaps(seeds: Sequence[int], bounds: tuple[int, int]) -> bool:
    return any(bounds[0] <= s < bounds[1] for s in seeds)


def read_ood_config(path: str | Path) -> dict[str, Any]:
    """Read and check the out-of-domain evaluation's definition (``configs/ood_eval.yaml``).

    Checked: the parts ``physical``, ``textbook`` and ``hl60`` and the ``goals`` are there;
    the simulated parts' seeds meet neither :data:`TRAINING_SEEDS`, nor
    :data:`EXPERIMENT_SEEDS`, nor each other; every optics of ``physical`` has at least one
    knob outside the training ranges (:func:`optics_outside_training`).

    Returns
    -------
    dict
        The parsed YAML.

    Raises
    ------
    ConfigError
        On the first thing missing or wrong.
    """
    import yaml

    config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ConfigError(f"{path} is not a mapping", "config")
    parts = config.get("parts") or {}
    for name in (*SIMULATED_PARTS, "hl60"):
        if name not in parts:
            raise ConfigError(f"{path} has no part {name!r}", "parts")
    if "goals" not in config:
        raise ConfigError(f"{path} has no goals", "goals")
    seen: dict[int, str] = {}
    for name in SIMULATED_PARTS:
        seeds = field_seeds(parts[name])
        for bounds, what in ((TRAINING_SEEDS, "training"), (EXPERIMENT_SEEDS, "experiments")):
            if _overlaps(seeds, bounds):
                raise ConfigError(f"part {name!r} uses seeds of the {what} "
                                  f"({bounds[0]}-{bounds[1] - 1})", f"parts.{name}.seed",
                                  "use seeds from 900000")
        for s in seeds:
            if s in seen:
                raise ConfigError(f"seed {s} is in parts {seen[s]!r} and {name!r}",
                                  f"parts.{name}.seed")
            seen[s] = name
    physical = parts["physical"]
    names = [o.get("name") for o in physical.get("optics") or []]
    if not names:
        raise ConfigError("part 'physical' has no optics", "parts.physical.optics")
    for optics in physical["optics"]:
        if not optics_outside_training(optics):
            raise ConfigError(f"optics {optics.get('name', optics)!r} lie inside the training "
                              "ranges", "parts.physical.optics",
                              "move a knob outside ri2fl.simulate.domain's ranges")
    for f in physical.get("fields") or []:
        if f.get("optics") not in names:
            raise ConfigError(f"a field names optics {f.get('optics')!r}", "parts.physical"
                              ".fields", f"choose one of {names}")
    return config


def measure_physical(spec: Any, optics: Mapping[str, Any], noise_std: float = 6e-4,
                     set_name: str = "physical") -> Any:
    """Simulate the field of ``spec`` and replace its RI by the physical tomograph's.

    Parameters
    ----------
    spec : ri2fl.simulate.sets.FieldSpec
        The field, rendered without a tomograph (``physics="none"``).
    optics : mapping
        ``name``, ``wavelength_um``, ``na``, ``na_ill``, ``n_illuminations``.
    noise_std : float
        Reconstructed-RI noise (:func:`ri2fl.simulate.physical.reconstruct_physical`'s).
    set_name : str
        Recorded as the field's ``ood_set`` attribute.

    Returns
    -------
    SimulatedFOV
        The field with ``ri`` = the physical reconstruction (clipped to ``RI_CLIP`` as the
        simulator's tomographs are) and the optics in its metadata.
    """
    from ..constants import RI_CLIP
    from ..simulate.physical import reconstruct_physical

    fov = spec.simulate()
    dn = fov.ri_true - np.float32(fov.medium_index)
    rec = reconstruct_physical(
        dn, fov.voxel_size_um, fov.medium_index, noise_std=noise_std,
        rng=np.random.default_rng([spec.seed, 9]),
        n_illuminations=int(optics["n_illuminations"]), na=float(optics["na"]),
        na_ill=float(optics["na_ill"]), wavelength=float(optics["wavelength_um"]))
    fov.ri = np.clip(np.float32(fov.medium_index) + rec, *RI_CLIP).astype(np.float32)
    fov.physics = "physical"
    fov.metadata.update({"optics": str(optics.get("name", "")),
                         "wavelength_um": float(optics["wavelength_um"]),
                         "na": float(optics["na"]), "na_ill": float(optics["na_ill"]),
                         "n_illuminations": int(optics["n_illuminations"]),
                         "ood_set": set_name})
    return fov


def _write_physical(path: Path, spec: Any, optics: Mapping[str, Any], noise_std: float,
                    set_name: str) -> None:
    from ..simulate.sets import write_fov

    write_fov(path, measure_physical(spec, optics, noise_std, set_name), spec.split)


def write_physical_set(out: str | Path, fields: Sequence[tuple[Any, Mapping[str, Any]]],
                       noise_std: float = 6e-4, workers: int = 1,
                       set_name: str = "physical") -> Path:
    """Write fields measured by the physical tomograph, with a ``manifest.csv``.

    Parameters
    ----------
    out : path
        Output folder (paired files ``write_fov`` writes, and ``manifest.csv``).
    fields : sequence of (FieldSpec, mapping)
        Each field (``physics="none"``; its ``split`` goes into the manifest) and its optics.
    noise_std : float
        Reconstructed-RI noise.
    workers : int
        Processes.
    set_name : str
        Each file's ``ood_set`` attribute.

    Returns
    -------
    Path
        The manifest.
    """
    from ..simulate.sets import write_manifest

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out / spec.file, spec, dict(optics), float(noise_std), set_name)
            for spec, optics in fields]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(_write_physical, *job) for job in jobs]:
                future.result()
    else:
        for job in jobs:
            _write_physical(*job)
    return write_manifest(out, [spec for spec, _ in fields])


def hl60_reference(ri: np.ndarray, voxel_size_um: Sequence[float], medium_index: float,
                   deep_um: float = 1.5) -> dict[str, np.ndarray]:
    """The HL60 cell as its RI shows it, without any model.

    Parameters
    ----------
    ri : ndarray
        RI tomogram (z, y, x).
    voxel_size_um : sequence of float
        (z, y, x) voxel size.
    medium_index : float
        RI of the medium.
    deep_um : float
        Depth (µm under the cell surface) of the interior.

    Returns
    -------
    dict
        ``cell``: RI smoothed by 0.28 µm more than 0.006 above the medium, holes filled (the
        physical cell); ``depth_um``: distance to its surface; ``interior``: deeper than
        ``deep_um``; ``darker``: the darker interior, where the interior's RI smoothed by 1 µm
        lies below its median (where an HL60 nucleus is: ~26 % of the bundled cell, at its
        centre).
    """
    voxel = np.broadcast_to(np.asarray(voxel_size_um, float), (3,))
    ri = np.asarray(ri, np.float32)
    cell = ndimage.binary_fill_holes(
        ndimage.gaussian_filter(ri, 0.28 / voxel) > medium_index + 0.006)
    depth = ndimage.distance_transform_edt(cell, sampling=voxel)
    interior = depth > deep_um
    smooth = ndimage.gaussian_filter(ri, 1.0 / voxel)
    darker = interior & (smooth < np.median(smooth[interior])) if interior.any() else interior
    return {"cell": cell, "depth_um": depth, "interior": interior, "darker": darker}


def hl60_checks(ri: np.ndarray, voxel_size_um: Sequence[float], medium_index: float,
                cell_labels: np.ndarray, nucleus_labels: np.ndarray,
                nucleus_fl: np.ndarray | None = None,
                goals: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Does a segmentation (and inferred nucleus fluorescence) read the HL60 cell right?

    Issue #30: one whole cell whose segmented nucleus lies in the interior (at least 80 %
    deeper than 1.5 µm), is darker than the cytoplasm and is 20-80 % of the cell; its inferred
    nucleus fluorescence at least twice as bright in the darker interior as in the rest of
    the cell. The cell, its depth and its darker interior come from the RI alone
    (:func:`hl60_reference`).

    Parameters
    ----------
    ri : ndarray
        RI tomogram (z, y, x).
    voxel_size_um : sequence of float
        (z, y, x) voxel size.
    medium_index : float
        RI of the medium.
    cell_labels, nucleus_labels : ndarray
        Segmented instances on the grid of ``ri`` (0: background).
    nucleus_fl : ndarray, optional
        Inferred nucleus fluorescence on the grid of ``ri`` (the last check is skipped
        without it).
    goals : mapping, optional
        Thresholds replacing those of :data:`HL60_GOALS`.

    Returns
    -------
    list of dict
        One row per check: ``check``, ``value``, ``goal`` (text) and ``pass`` (bool).
    """
    g = {**HL60_GOALS, **(goals or {})}
    ref = hl60_reference(ri, voxel_size_um, medium_index, float(g["deep_um"]))
    cell, nucleus = np.asarray(cell_labels) > 0, np.asarray(nucleus_labels) > 0
    n_cells = int(np.unique(cell_labels[cell]).size)
    filled = ndimage.binary_fill_holes(cell)
    holes = float((filled & ~cell).sum() / max(filled.sum(), 1))
    iou = float((cell & ref["cell"]).sum() / max((cell | ref["cell"]).sum(), 1))
    deep = float(ref["interior"][nucleus].mean()) if nucleus.any() else 0.0
    cyto = ref["cell"] & ~nucleus
    ri = np.asarray(ri, np.float32)
    darker = (float(ri[nucleus].mean() - ri[cyto].mean()) if nucleus.any() and cyto.any()
              else float("nan"))
    fraction = float(nucleus.sum() / max(cell.sum(), 1))
    lo, hi = g["nucleus_fraction"]
    rows = [
        ("cells", n_cells, f"= {g['n_cells']}", n_cells == g["n_cells"]),
        ("cell hole fraction", holes, f"<= {g['max_hole_fraction']}",
         holes <= g["max_hole_fraction"]),
        ("cell IoU with RI outline", iou, f">= {g['min_cell_iou']}", iou >= g["min_cell_iou"]),
        (f"nucleus deeper than {g['deep_um']} µm", deep,
         f">= {g['min_nucleus_deep_fraction']}", deep >= g["min_nucleus_deep_fraction"]),
        ("nucleus - cytoplasm RI", darker, f"< {g['max_nucleus_minus_cytoplasm_ri']}",
         bool(darker < g["max_nucleus_minus_cytoplasm_ri"])),
        ("nucleus fraction of cell", fraction, f"{lo}-{hi}", lo <= fraction <= hi),
    ]
    if nucleus_fl is not None:
        fl = np.asarray(nucleus_fl, np.float32)
        rest = ref["cell"] & ~ref["darker"]
        inside = float(fl[ref["darker"]].mean()) if ref["darker"].any() else float("nan")
        ratio = inside / max(float(fl[rest].mean()), 1e-6) if rest.any() else float("nan")
        rows.append(("nucleus FL darker interior / rest", ratio,
                     f">= {g['min_fl_interior_ratio']}",
                     bool(ratio >= g["min_fl_interior_ratio"])))
    return [{"check": c, "value": float(v), "goal": goal, "pass": bool(ok)}
            for c, v, goal, ok in rows]


# ---------------------------------------------------------------------------- uncertainty


@dataclass
class FieldUncertainty:
    """One target's uncertainty inside the cells of one field (:func:`field_uncertainty`).

    ``uncertainty_mean`` is over every voxel inside the cells; ``error_mean`` (mean absolute
    error there) and ``spearman`` (uncertainty against absolute error, on the voxel sample)
    are NaN without true fluorescence. ``uncertainty_sample`` and ``error_sample`` are the
    voxels drawn, for pooling the fields of a part.
    """

    part: str
    fov: str
    target: str
    n_voxels: int
    uncertainty_mean: float
    uncertainty_data_mean: float = float("nan")
    uncertainty_model_mean: float = float("nan")
    error_mean: float = float("nan")
    spearman: float = float("nan")
    warned: bool | None = None
    uncertainty_sample: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32),
                                           repr=False)
    error_sample: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32),
                                     repr=False)

    def record(self) -> dict[str, Any]:
        """The numbers without the voxel samples (one row of a per-field table)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("uncertainty_sample", "error_sample")}


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two paired samples (``scipy.stats.spearmanr``); NaN when fewer than
    3 pairs or either sample is constant."""
    x, y = np.ravel(x), np.ravel(y)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def _mean_inside(array: np.ndarray | None, inside: np.ndarray) -> float:
    if array is None or not inside.any():
        return float("nan")
    return float(np.mean(np.asarray(array, np.float32)[inside], dtype=np.float64))


def field_uncertainty(part: str, fov: str, target: str, uncertainty: np.ndarray,
                      cell: np.ndarray, true: np.ndarray | None = None,
                      pred: np.ndarray | None = None,
                      components: Mapping[str, np.ndarray | None] | None = None,
                      max_voxels: int = UNCERTAINTY_VOXELS, seed: int = 0,
                      warned: bool | None = None) -> FieldUncertainty:
    """Summarise one target's uncertainty map inside the cells of one field.

    Parameters
    ----------
    part, fov, target : str
        What the field is (kept in the result).
    uncertainty : ndarray
        Total uncertainty (e.g. ``PredictionMaps.uncertainty``: sqrt(data² + model²)).
    cell : ndarray of bool
        Inside the cells (e.g. the file's ``masks/membrane``); an empty mask means the whole
        field.
    true, pred : ndarray, optional
        True and inferred fluorescence; without both, no error and no Spearman.
    components : mapping, optional
        ``data`` and ``model`` uncertainty maps, whose means inside the cells are kept too.
    max_voxels : int
        Voxels drawn (at random, ``seed``) for the Spearman correlation and the pooled one.
    seed : int
        Seed of the draw.
    warned : bool, optional
        Whether the prediction warned that the input is off-domain (kept in the result).

    Returns
    -------
    FieldUncertainty
    """
    unc = np.asarray(uncertainty, np.float32)
    inside = np.asarray(cell, bool)
    if not inside.any():
        inside = np.ones(unc.shape, bool)
    comps = components or {}
    result = FieldUncertainty(
        part, fov, target, int(inside.sum()), _mean_inside(unc, inside),
        _mean_inside(comps.get("data"), inside), _mean_inside(comps.get("model"), inside),
        warned=warned)
    if true is None or pred is None:
        return result
    error = np.abs(np.asarray(true, np.float32) - np.asarray(pred, np.float32))
    idx = np.flatnonzero(inside.ravel())
    if idx.size > max_voxels:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_voxels, replace=False))
    result.uncertainty_sample = unc.ravel()[idx]
    result.error_sample = error.ravel()[idx]
    result.error_mean = _mean_inside(error, inside)
    result.spearman = rank_correlation(result.uncertainty_sample, result.error_sample)
    return result


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    ok = values.notna()
    if not ok.any():
        return float("nan")
    return float(np.average(values[ok], weights=weights[ok]))


def _pool(fields: Sequence[FieldUncertainty]) -> dict[str, Any]:
    """One part and target: cell-voxel-weighted means and the Spearman of the pooled sample."""
    table = pd.DataFrame([f.record() for f in fields])
    u = np.concatenate([f.uncertainty_sample for f in fields])
    e = np.concatenate([f.error_sample for f in fields])
    warned = table["warned"].dropna()
    return {"n_fields": len(fields), "n_voxels": int(table["n_voxels"].sum()),
            **{c: _weighted(table[c], table["n_voxels"])
               for c in ("uncertainty_mean", "uncertainty_data_mean", "uncertainty_model_mean",
                         "error_mean")},
            "spearman": rank_correlation(u, e), "n_sampled": int(u.size),
            "spearman_fields_mean": float(table["spearman"].mean()),
            "fraction_warned": float(warned.astype(float).mean()) if len(warned)
            else float("nan")}


def uncertainty_table(fields: Sequence[FieldUncertainty],
                      reference: str = IN_DOMAIN) -> pd.DataFrame:
    """Pool the fields of each part: mean uncertainty inside cells against the reference's,
    and the uncertainty-error Spearman.

    Parameters
    ----------
    fields : sequence of FieldUncertainty
        From :func:`field_uncertainty`, any parts and targets.
    reference : str
        The part the others are compared with (the in-domain reference).

    Returns
    -------
    DataFrame
        One row per part and target (in the order first seen): ``n_fields``, ``n_voxels``
        (inside cells), ``uncertainty_mean``, ``uncertainty_data_mean``,
        ``uncertainty_model_mean``, ``error_mean`` (all weighted by the fields' cell voxels),
        ``ratio_to_reference`` (``uncertainty_mean`` over the reference's for the target;
        NaN without one), ``spearman`` (on the pooled voxel samples, so that it also asks
        whether the fields with the larger errors have the larger uncertainty),
        ``n_sampled``, ``spearman_fields_mean`` (the mean of the fields' own) and
        ``fraction_warned`` (fields whose prediction warned that they are off-domain).
    """
    groups: dict[tuple[str, str], list[FieldUncertainty]] = {}
    for f in fields:
        groups.setdefault((f.part, f.target), []).append(f)
    table = pd.DataFrame([{"part": part, "target": target, **_pool(group)}
                          for (part, target), group in groups.items()])
    if table.empty:
        return table
    ref = table[table["part"] == reference].set_index("target")["uncertainty_mean"]
    table.insert(table.columns.get_loc("error_mean"), "ratio_to_reference",
                 table["uncertainty_mean"] / table["target"].map(ref).astype(float))
    return table
