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

from ..runner import model_predictor, run_evaluation
from .common import (
    SMALL_SHAPE,
    Timer,
    load_model,
    make_fovs,
    markdown_table,
    mean_sd,
    write_csv,
    write_json,
)


def structure_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """Structure matching pooled over FOVs, per target (and model if present).

    Fractions are pooled (sum of matched / sum of true structures), distances and intensity
    correlations averaged over FOVs.
    """
    if "n_true" not in metrics.columns:
        return pd.DataFrame()
    keys = [k for k in ("model", "target") if k in metrics.columns]
    rows = []
    for key, g in metrics.dropna(subset=["n_true"]).groupby(keys, sort=False):
        n_true = g["n_true"].sum()
        within = (g["fraction_within_0.5um"].fillna(0) * g["n_true"]).sum()
        matched = (g["fraction_matched"].fillna(0) * g["n_true"]).sum()
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), "n_fovs": len(g),
                     "n_true": int(n_true), "n_pred": int(g["n_pred"].sum()),
                     "matched_within_cap": matched / n_true if n_true else np.nan,
                     "matched_within_0.5um": within / n_true if n_true else np.nan,
                     "mean_distance_um": g["mean_distance_um"].mean(),
                     "intensity_r": g["intensity_r"].mean()})
    return pd.DataFrame(rows)


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
        batch_size: int = 2) -> dict[str, Any]:
    """Simulate held-out FOVs of every family, evaluate ``model`` on them, write the tables.

    Writes ``out_dir/eval/`` (metrics.csv, summary.csv, figures, report.html),
    ``generalisation_pcc.csv``, ``generalisation_ssim.csv``, ``structures.csv`` and
    ``results.md`` / ``results.json``.
    """
    from ...simulate import CELL_TYPES

    out_dir = Path(out_dir)
    cell_types = list(cell_types or CELL_TYPES)
    with Timer() as t_sim:
        manifest = make_fovs(data_dir or out_dir / "data", cell_types, n_per_type, shape)
    net = load_model(model)
    with Timer() as t_eval:
        res = run_evaluation({"RI2FL": model_predictor(net, batch_size=batch_size)}, manifest,
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
          f"{tuple(shape)} voxels, {n_per_type} per family; evaluation took "
          f"{t_eval.seconds:.0f} s.", "", "PCC (mean ± s.d. over FOVs):", "",
          markdown_table(pcc), "", "SSIM:", "", markdown_table(ssim), "",
          "Structures matched (pooled over FOVs):", "", markdown_table(structures)]
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    return summary


#: Volume classes (µm³) of :func:`structures_by_size`: a 0.55 µm droplet is 0.7 µm³.
SIZE_BINS_UM3: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, np.inf)


def structures_by_size(out_dir: str | Path, model: str = "default",
                       cell_types: Sequence[str] | None = None, n_per_type: int = 2,
                       shape: Sequence[int] = SMALL_SHAPE, data_dir: str | Path | None = None,
                       batch_size: int = 2, within_um: float = 0.5, tta: int = 0
                       ) -> pd.DataFrame:
    """Fraction of true structures matched within ``within_um``, by their detected volume.

    Same held-out FOVs and detection as :func:`run` (``tta``: test-time augmentations);
    writes ``structures_by_size.csv``.
    """
    from ...io.paired import read_paired
    from ...simulate import CELL_TYPES
    from ..runner import find_fovs
    from ..structures import TARGET_KINDS, match_structures

    manifest = make_fovs(data_dir or Path(out_dir) / "data", list(cell_types or CELL_TYPES),
                         n_per_type, shape)
    predict = model_predictor(load_model(model), tta=tta, batch_size=batch_size)
    rows = []
    for fov in find_fovs(manifest):
        sample = read_paired(fov.path, targets=None)
        maps = predict(sample)
        for target, kind in TARGET_KINDS.items():
            m = match_structures(sample.fl[target], maps.fl[target], sample.voxel_size_um, kind)
            rows += [{"target": target, "volume_um3": v, "matched": hit}
                     for v, hit in zip(m.true_volume_um3, m.matched_within(within_um))]
    per = pd.DataFrame(rows)
    per["volume_class_um3"] = pd.cut(per["volume_um3"], SIZE_BINS_UM3, right=False)
    table = (per.groupby(["target", "volume_class_um3"], observed=True)["matched"]
             .agg(n_true="size", matched="mean").reset_index())
    table["volume_class_um3"] = table["volume_class_um3"].astype(str)
    write_csv(table, Path(out_dir) / "structures_by_size.csv")
    return table
