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
meet either.

>>> config = read_ood_config("configs/ood_eval.yaml")           # doctest: +SKIP
>>> field_seeds(config["parts"]["physical"])[:2]                 # doctest: +SKIP
[900000, 900001]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import ConfigError

__all__ = ["EXPERIMENT_SEEDS", "HL60_GOALS", "SIMULATED_PARTS", "TRAINING_SEEDS",
           "field_seeds", "hl60_checks", "hl60_reference", "optics_outside_training",
           "read_ood_config"]

#: Seeds [low, high) of every training set (``ri2fl.simulate.sets``, the recipes).
TRAINING_SEEDS: tuple[int, int] = (0, 100_000)
#: Seeds [low, high) of the experiments (``experiments/``, ``scripts/eval_domain.py``).
EXPERIMENT_SEEDS: tuple[int, int] = (100_000, 200_000)
#: The parts of the evaluation that are simulated (each one a folder with a manifest).
SIMULATED_PARTS: tuple[str, ...] = ("physical", "textbook")

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
