"""Experiment (a): trained on one family (fibroblast), tested on every family.

Also reports the structure-level test (lipid droplets, nucleoli, mitochondrial fragments
matched within 0.5 µm) on the same FOVs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paper.common import (
    SMALL_SHAPE,
    Timer,
    load_model,
    make_fovs,
    markdown_table,
    mean_sd,
    write_csv,
    write_json,
)
from ri2fl.evaluate.runner import model_predictor, run_evaluation
from ri2fl.evaluate.structures import structure_summary


def generalisation_table(metrics: pd.DataFrame, metric: str = "pcc") -> pd.DataFrame:
    """Cell type x target table of 'mean ± s.d.' of ``metric``, plus the mean over targets."""
    targets = list(dict.fromkeys(metrics["target"]))
    rows = []
    for ct, g in metrics.groupby("cell_type", sort=False):
        row: dict[str, Any] = {"cell type": ct, "FOVs": g["fov"].nunique()}
        for t in targets:
            row[t] = mean_sd(g.loc[g["target"] == t, metric])
        per_fov = g.groupby("fov")[metric].mean()
        row["mean of targets"] = mean_sd(per_fov)
        rows.append(row)
    return pd.DataFrame(rows)


def run(out_dir: str | Path, model: str = "default", cell_types: Sequence[str] | None = None,
        n_per_type: int = 2, shape: Sequence[int] = SMALL_SHAPE, data_dir: str | Path | None = None,
        batch_size: int = 2, tta: int = 0, mc: int = 0) -> dict[str, Any]:
    """Simulate held-out FOVs of every family, evaluate ``model`` on them, write the tables.

    ``tta`` / ``mc``: test-time augmentations and Monte-Carlo dropout passes (0: a single
    pass); with both, the inferred fluorescence is the mean of the two mean maps, the spec's
    final inferred FL (``ri2fl predict --tta N --mc N``).

    Writes ``out_dir/eval/`` (metrics.csv, summary.csv, figures, report.html),
    ``generalisation_pcc.csv``, ``generalisation_ssim.csv``, ``structures.csv`` and
    ``results.md`` / ``results.json``.
    """
    from ri2fl.simulate import CELL_TYPES

    out_dir = Path(out_dir)
    cell_types = list(cell_types or CELL_TYPES)
    with Timer() as t_sim:
        manifest = make_fovs(data_dir or out_dir / "data", cell_types, n_per_type, shape)
    net = load_model(model)
    with Timer() as t_eval:
        res = run_evaluation({"RI2FL": model_predictor(net, tta=tta, mc=mc,
                                                             batch_size=batch_size)}, manifest,
                             out_dir / "eval", split="test", n_panels=len(cell_types),
                             title="ri2fl: cross-cell-type generalisation")
    m = res.metrics
    pcc = generalisation_table(m, "pcc")
    ssim = generalisation_table(m, "ssim")
    structures = structure_summary(m)
    write_csv(pcc, out_dir / "generalisation_pcc.csv")
    write_csv(ssim, out_dir / "generalisation_ssim.csv")
    write_csv(structures, out_dir / "structures.csv")
    config = getattr(net, "config", {}) or {}
    data_cfg = config.get("data") or (config.get("training") or {}).get("data") or {}
    trained = ", ".join(data_cfg.get("cell_types") or ["unknown"])
    held_out = m[m["cell_type"] != "fibroblast"]
    summary = {
        "model": model, "trained_on": trained, "shape": list(shape), "n_per_type": n_per_type,
        "tta": tta, "mc": mc,
        "n_fovs": int(m["fov"].nunique()),
        "mean_pcc_all": float(m["pcc"].mean()),
        "mean_pcc_held_out_families": float(held_out["pcc"].mean()) if len(held_out) else None,
        "mean_pcc_by_target_held_out": held_out.groupby("target")["pcc"].mean().to_dict(),
        "mean_ssim_all": float(m["ssim"].mean()),
        "structures": structures.to_dict(orient="records"),
        "seconds_simulate": t_sim.seconds, "seconds_evaluate": t_eval.seconds,
    }
    write_json(summary, out_dir / "results.json")
    md = [f"Model `{model}` (trained on: {trained}); {summary['n_fovs']} held-out FOVs of "
          f"{tuple(shape)} voxels, {n_per_type} per family; {_passes(tta, mc)}; evaluation took "
          f"{t_eval.seconds:.0f} s.", "", "PCC (mean ± s.d. over FOVs):", "",
          markdown_table(pcc), "", "SSIM:", "", markdown_table(ssim), "",
          "Structures matched (pooled over FOVs):", "", markdown_table(structures)]
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    return summary


def _passes(tta: int, mc: int) -> str:
    if not (tta or mc):
        return "one pass per tile"
    parts = [f"{tta} TTA" if tta else "", f"{mc} MC-dropout" if mc else ""]
    return f"mean of {' and '.join(p for p in parts if p)} passes"


def grid_copy(fl: np.ndarray, voxel_size_um: Sequence[float],
              grid_um: Sequence[float]) -> np.ndarray:
    """``fl`` resampled to ``grid_um`` and back (linear, as targets and predictions are).

    What a model on that grid would output at best: the detail it cannot hold is gone.
    """
    from ri2fl.preprocess import resample, resample_to_shape

    coarse = np.asarray(resample(fl, tuple(voxel_size_um), tuple(grid_um), order=1))
    return np.asarray(resample_to_shape(coarse, np.shape(fl), order=1), np.float32)


def structures_by_size(out_dir: str | Path, model: str = "default",
                       cell_types: Sequence[str] | None = None, n_per_type: int = 2,
                       shape: Sequence[int] = SMALL_SHAPE, data_dir: str | Path | None = None,
                       batch_size: int = 2, within_um: float = 0.5, tta: int = 0
                       ) -> pd.DataFrame:
    """Fraction of true structures matched within ``within_um``, by their detected volume.

    Same held-out FOVs and detection as :func:`run` (``tta``: test-time augmentations);
    writes ``structures_by_size.csv``. Beside the model, ``matched_on_grid``: what a perfect
    model on the network's grid would match, the truth resampled to that grid and back as
    training targets and predictions are (:func:`grid_copy`).
    """
    from ri2fl.evaluate.runner import evaluate_fovs, find_fovs
    from ri2fl.evaluate.structures import (
        TARGET_KINDS,
        match_structures,
        matched_by_size,
        structure_records,
    )
    from ri2fl.simulate import CELL_TYPES

    manifest = make_fovs(data_dir or Path(out_dir) / "data", list(cell_types or CELL_TYPES),
                         n_per_type, shape)
    net = load_model(model)
    targets = list(TARGET_KINDS)
    found: list[dict] = []
    on_grid: list[dict] = []

    def perfect_on_grid(fov, sample, maps) -> None:
        voxel = sample.voxel_size_um
        for t in (t for t in targets if t in sample.fl):  # the order evaluate_fovs scores in
            copy = grid_copy(sample.fl[t], voxel, net.voxel_size_um)
            on_grid.extend(structure_records(match_structures(sample.fl[t], copy, voxel,
                                                              TARGET_KINDS[t])))

    evaluate_fovs(find_fovs(manifest), model_predictor(net, tta=tta, batch_size=batch_size),
                  targets, on_fov=perfect_on_grid, per_structure=found)
    per = pd.DataFrame(found)
    per["matched"] = per["distance_um"] <= within_um  # unmatched: NaN, never within
    # both lists hold the same true structures in the same order: only the prediction differs
    assert len(on_grid) == len(per), "every true structure once for each prediction"
    per["matched_on_grid"] = pd.DataFrame(on_grid)["distance_um"].to_numpy() <= within_um
    table = matched_by_size(per, ("matched", "matched_on_grid"))
    write_csv(table, Path(out_dir) / "structures_by_size.csv")
    return table


def tomograph_copy(fl: np.ndarray, voxel_size_um: Sequence[float]) -> np.ndarray:
    """``fl`` seen through the tomograph: its frequency support, noise-free, the cone filled.

    The fast reconstruction of the simulator (:func:`ri2fl.simulate.optics.reconstruct_fast`:
    the Ewald-cap support of the shared optics, non-negativity Gerchberg-Papoulis) applied to
    the fluorescence itself, as if each structure's refractive-index contrast had its shape.
    What the measured frequencies and non-negativity alone keep of a structure's shape, before
    any noise or any other organelle's contrast enters the tomogram.
    """
    from ri2fl.simulate.optics import reconstruct_fast

    return reconstruct_fast(np.asarray(fl, np.float32), tuple(voxel_size_um), noise_std=0.0)


def degraded_copies(fl: np.ndarray, voxel_size_um: Sequence[float], grid_um: Sequence[float],
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Copies of a true volume that a perfect detector should still match structure by structure.

    ``x0.8`` (uniformly dimmer), ``blur0.15_x0.8_noise0.01`` (blurred by a Gaussian of
    σ = 0.15 µm, dimmer, Gaussian noise of s.d. 0.01), ``blur0.3`` (σ = 0.3 µm), ``grid``
    (:func:`grid_copy` on ``grid_um``, the best a model on that grid could output) and
    ``tomograph`` (:func:`tomograph_copy`, what the tomogram's frequency support keeps).
    """
    from scipy import ndimage as ndi

    fl = np.asarray(fl, np.float32)
    rng = np.random.default_rng(seed)

    def blur(sigma_um: float) -> np.ndarray:
        return ndi.gaussian_filter(fl, [sigma_um / v for v in voxel_size_um])

    return {
        "x0.8": 0.8 * fl,
        "blur0.15_x0.8_noise0.01": (0.8 * blur(0.15)
                                    + rng.normal(0, 0.01, fl.shape)).astype(np.float32),
        "blur0.3": blur(0.3),
        "grid": grid_copy(fl, voxel_size_um, grid_um),
        "tomograph": tomograph_copy(fl, voxel_size_um),
    }


def detection_floor(out_dir: str | Path, grid_um: Sequence[float] = (0.4, 0.3, 0.3),
                    cell_types: Sequence[str] | None = None, n_per_type: int = 2,
                    shape: Sequence[int] = SMALL_SHAPE, data_dir: str | Path | None = None,
                    thresholds: Sequence[str] = ("each", "true"), within_um: float = 0.5,
                    manifest: str | Path | None = None) -> pd.DataFrame:
    """How many true structures the detection finds again in degraded copies of the truth.

    No model is involved: this is the ceiling of the structure test on the held-out FOVs of
    :func:`run` (or the fields of ``manifest``, a manifest or folder of paired fields) for a
    prediction that differs from the truth only by such a degradation
    (:func:`degraded_copies`), per detection threshold rule (``match_structures``'
    ``threshold``). Writes ``detection_floor.csv``: target, copy, threshold, n_true, matched.
    """
    from ri2fl.evaluate.runner import find_fovs
    from ri2fl.evaluate.structures import TARGET_KINDS, match_structures
    from ri2fl.io.paired import read_paired
    from ri2fl.simulate import CELL_TYPES

    if manifest is None:
        manifest = make_fovs(data_dir or Path(out_dir) / "data",
                             list(cell_types or CELL_TYPES), n_per_type, shape)
    counts: dict[tuple[str, str, str], list[int]] = {}
    for fov in find_fovs(manifest):
        sample = read_paired(fov.path, targets=list(TARGET_KINDS))
        voxel = sample.voxel_size_um
        for target, kind in TARGET_KINDS.items():
            true = sample.fl[target]
            for name, copy in degraded_copies(true, voxel, grid_um).items():
                for rule in thresholds:
                    m = match_structures(true, copy, voxel, kind, threshold=rule)
                    tally = counts.setdefault((target, name, rule), [0, 0])
                    tally[0] += m.n_true
                    tally[1] += int(m.matched_within(within_um).sum())
    table = pd.DataFrame([{"target": t, "copy": c, "threshold": r, "n_true": n,
                           "matched": k / n if n else np.nan}
                          for (t, c, r), (n, k) in counts.items()])
    write_csv(table, Path(out_dir) / "detection_floor.csv")
    return table
