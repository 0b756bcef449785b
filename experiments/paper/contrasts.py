"""Experiment (b): RI2FL against BF2FL and DIC2FL on the same held-out FOVs, with t-tests.

The three networks are trained the same way on the same targets from the RI tomogram, the
brightfield z-stack and the DIC z-stack of the same simulated phantoms; here they are
evaluated on the same held-out FOVs and compared target by target with unpaired two-sided
t-tests (the paper: RI2FL wins with p from 1e-5 to 1e-19, N = 48).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
from ri2fl.evaluate.runner import input_kind, model_predictor, run_evaluation


def run(out_dir: str | Path, models: Mapping[str, str], cell_types: Sequence[str] = ("fibroblast",),
        n_per_type: int = 6, shape: Sequence[int] = SMALL_SHAPE,
        data_dir: str | Path | None = None, batch_size: int = 2,
        tile_size: Sequence[int] | None = None) -> dict[str, Any]:
    """Evaluate the models (first = reference, e.g. {"RI2FL": "default", "BF2FL": path, ...}).

    ``tile_size`` (z, y, x on the models' grid) makes every model predict with the same tile;
    by default each uses its own (``ri2fl.infer.engine.inference_tile``).

    Writes ``out_dir/eval/`` (metrics, summary, ttests.csv, figures, report) and
    ``comparison.csv`` / ``results.md`` / ``results.json``.
    """
    out_dir = Path(out_dir)
    nets = {label: load_model(path) for label, path in models.items()}
    kinds = {label: input_kind(net) for label, net in nets.items()}
    modalities = sorted({k for k in kinds.values() if k != "ri"})
    with Timer() as t_sim:
        manifest = make_fovs(data_dir or out_dir / "data", cell_types, n_per_type, shape,
                             modalities=modalities)
    tile = {"patch_size": tuple(tile_size)} if tile_size else {}
    predictors = {label: model_predictor(net, batch_size=batch_size, **tile)
                  for label, net in nets.items()}
    with Timer() as t_eval:
        res = run_evaluation(predictors, manifest, out_dir / "eval", split="test",
                             structures=False, input_kinds=kinds, n_panels=1,
                             title="ri2fl: RI2FL vs BF2FL vs DIC2FL")
    m, tests = res.metrics, res.tests
    reference = next(iter(models))
    rows = []
    for target, g in m.groupby("target", sort=False):
        row: dict[str, Any] = {"target": target}
        for label in models:
            row[f"{label} PCC"] = mean_sd(g.loc[g["model"] == label, "pcc"])
        for label in list(models)[1:]:
            t = tests[(tests["target"] == target) & (tests["model"] == label)
                      & (tests["metric"] == "pcc")]
            row[f"p (PCC) vs {label}"] = float(t["p"].iloc[0]) if len(t) else float("nan")
        rows.append(row)
    import pandas as pd

    table = pd.DataFrame(rows)
    write_csv(table, out_dir / "comparison.csv")
    pcc_tests = tests[tests["metric"] == "pcc"]
    wins = bool(pcc_tests["reference_better_p<0.01"].all()) if len(pcc_tests) else False
    summary = {"models": dict(models), "input_kinds": kinds, "n_fovs": int(m["fov"].nunique()),
               "cell_types": list(cell_types), "shape": list(shape),
               "reference_beats_all_on_every_target_p<0.01 (PCC)": wins,
               "max_p_pcc": float(pcc_tests["p"].max()) if len(pcc_tests) else None,
               "seconds_simulate": t_sim.seconds, "seconds_evaluate": t_eval.seconds}
    write_json(summary, out_dir / "results.json")
    md = [f"{summary['n_fovs']} held-out FOVs ({', '.join(cell_types)}, {tuple(shape)} voxels), "
          f"the same for every model; PCC mean ± s.d. and unpaired two-sided t-test p-values of "
          f"{reference} against each model.", "", markdown_table(table, digits=3), "",
          f"{reference} better than every other model on every target with p < 0.01 (PCC): "
          f"{'yes' if wins else 'no'}."]
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    return summary
