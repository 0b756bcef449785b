#!/usr/bin/env python
"""Generalisation of a model trained on fibroblasts: per-target PCC and SSIM on other families.

Predicts every held-out FOV with ``ri2fl.infer.predict_volume`` (tiled, the model's
patch size) through ``ri2fl.evaluate``, and prints a Markdown table of mean PCC / SSIM per
target and cell type (the table in docs/models.md).

Example::

    python scripts/make_sim_data.py runs/sim_test --train 0 --val 0 --test 4 \\
        --cell-types epithelial hek293 mda_mb_231 astrocyte macrophage hepatocyte
    python scripts/eval_generalisation.py runs/sim_test --model default --out runs/generalisation
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ri2fl.evaluate.runner import evaluate_fovs, find_fovs, model_predictor
from ri2fl.models import load


def markdown(metrics: pd.DataFrame, metric: str) -> str:
    """Rows: cell types (+ mean over all); columns: targets (+ mean over targets)."""
    table = metrics.pivot_table(index="cell_type", columns="target", values=metric,
                                aggfunc="mean")
    order = [t for t in ("membrane", "actin", "mitochondria", "lipid_droplets", "nucleus",
                         "nucleolus") if t in table.columns]
    table = table[order]
    table.loc["all"] = metrics.groupby("target")[metric].mean()[order]
    table["mean"] = table.mean(axis=1)
    head = "| cell type | " + " | ".join(table.columns) + " |"
    sep = "|" + "---|" * (len(table.columns) + 1)
    rows = [f"| {idx} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
            for idx, row in table.iterrows()]
    return "\n".join([head, sep, *rows])


def tables(metrics: pd.DataFrame) -> str:
    """PCC and SSIM tables over all FOVs, then PCC over interphase / mitotic FOVs."""
    parts = [f"PCC\n\n{markdown(metrics, 'pcc')}", f"SSIM\n\n{markdown(metrics, 'ssim')}"]
    for flag, name in ((False, "FOVs without a mitotic cell"), (True, "FOVs with a mitotic cell")):
        subset = metrics[metrics["mitotic"] == flag]
        if len(subset):
            parts.append(f"PCC, {name} ({subset['fov'].nunique()})\n\n{markdown(subset, 'pcc')}")
    return "\n\n".join(parts) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="manifest.csv or folder of held-out paired FOVs")
    p.add_argument("--model", default="default")
    p.add_argument("--split", default="test")
    p.add_argument("--cell-types", nargs="*")
    p.add_argument("--out", type=Path, default=Path("runs/generalisation"))
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-fovs", type=int, help="evaluate only the first N FOVs")
    p.add_argument("--tta", type=int, default=0,
                   help="test-time augmentation passes averaged (flips/rotations; 0 = none)")
    args = p.parse_args(argv)
    model = load(args.model)
    fovs = find_fovs(args.data, args.split, args.cell_types)
    # one FOV of each cell type first, so that a partial run already covers every family
    counts: dict[str, int] = {}
    ranks = []
    for fov in fovs:
        ranks.append(counts.get(fov.cell_type, 0))
        counts[fov.cell_type] = ranks[-1] + 1
    order = sorted(range(len(fovs)), key=lambda i: (ranks[i], i))
    fovs = [fovs[i] for i in order][: args.max_fovs]
    predictor = model_predictor(model, tta=args.tta, batch_size=args.batch_size)
    args.out.mkdir(parents=True, exist_ok=True)
    frames, variants = [], {}

    def remember_variants(fov, sample, _maps) -> None:  # the simulator's cell variants
        variants[fov.fov] = str(sample.attrs.get("variants", ""))

    for fov in fovs:  # results are written after every FOV
        table = evaluate_fovs([fov], predictor, targets=model.targets, structures=False,
                              on_fov=remember_variants)
        frames.append(table.assign(mitotic="mitotic" in variants[fov.fov]))
        metrics = pd.concat(frames, ignore_index=True)
        metrics.to_csv(args.out / "metrics.csv", index=False)
        text = (f"model: {args.model} ({getattr(model, 'checkpoint_path', '')}), "
                f"{len(frames)} FOVs, TTA {args.tta}\n\n{tables(metrics)}")
        (args.out / "table.md").write_text(text)
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
