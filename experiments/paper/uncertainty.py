"""Experiment (c, first half): is the predicted uncertainty useful?

Voxel-wise Spearman correlation, inside the cells, between the total predicted uncertainty
sqrt(sd_TTA² + sd_MC²) and the absolute error against the true fluorescence, per target
(goal: >= 0.4). The second half, the rise of nucleus uncertainty through a mitosis, is
:func:`paper.timelapse.mitosis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paper.common import (
    SMALL_SHAPE,
    Timer,
    load_model,
    make_fovs,
    markdown_table,
    write_csv,
    write_json,
)
from ri2fl.evaluate.runner import model_predictor, run_evaluation


def run(out_dir: str | Path, model: str = "default",
        cell_types: Sequence[str] = ("fibroblast", "epithelial", "macrophage"),
        n_per_type: int = 1, shape: Sequence[int] = SMALL_SHAPE, tta: int = 4, mc: int = 4,
        data_dir: str | Path | None = None, batch_size: int = 2) -> dict[str, Any]:
    """Evaluate with TTA and MC dropout; writes uncertainty.csv and results.md."""
    out_dir = Path(out_dir)
    manifest = make_fovs(data_dir or out_dir / "data", cell_types, n_per_type, shape)
    predictor = model_predictor(load_model(model), tta=tta, mc=mc, batch_size=batch_size)
    with Timer() as timer:
        res = run_evaluation({"RI2FL": predictor}, manifest, out_dir / "eval", split="test",
                             structures=False, n_panels=1,
                             title="ri2fl: uncertainty against error")
    m = res.metrics
    table = (m.groupby("target", sort=False)
             .agg(FOVs=("fov", "nunique"), spearman_mean=("uncertainty_spearman", "mean"),
                  spearman_min=("uncertainty_spearman", "min"),
                  uncertainty_mean=("uncertainty_mean", "mean"), mae_mean=("mae", "mean"),
                  pcc_mean=("pcc", "mean"))
             .reset_index())
    write_csv(table, out_dir / "uncertainty.csv")
    overall = float(m["uncertainty_spearman"].mean())
    summary = {"model": model, "tta": tta, "mc": mc, "n_fovs": int(m["fov"].nunique()),
               "spearman_mean_all": overall,
               "spearman_by_target": dict(zip(table["target"], table["spearman_mean"],
                                              strict=True)),
               "goal_0.4_met_all_targets": bool((table["spearman_mean"] >= 0.4).all()),
               "seconds": timer.seconds}
    write_json(summary, out_dir / "results.json")
    md = [f"Model `{model}`, {tta} TTA + {mc} MC-dropout passes, {summary['n_fovs']} held-out "
          f"FOVs ({', '.join(cell_types)}, {tuple(shape)} voxels); voxel-wise Spearman "
          f"correlation between total uncertainty and absolute error inside the cells.", "",
          markdown_table(table, 3), "", f"Mean over targets and FOVs: {overall:.3f}."]
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    return summary
