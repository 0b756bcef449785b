"""Pool several `ri2fl evaluate` runs on different fields into one structure and PCC summary.

One set of 24-28 fields is too small to decide a one-point change in structures matched
(docs/evaluation.md): this adds the runs' metrics.csv together, field by field, and reports the
pooled fractions, their bootstrap intervals over all the fields, the paired differences against
a reference model, and the mean PCC per model.

    python scripts/pool_evaluations.py runs/select_stage15 runs/test_stage15 \
        --reference shipped -o runs/pooled_stage15
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ri2fl.evaluate.structures import structure_differences, structure_summary


def pooled_metrics(run_dirs: list[Path]) -> pd.DataFrame:
    """The metrics.csv of every run, one table; a field scored in two runs is refused."""
    tables = []
    for i, run in enumerate(run_dirs):
        path = run / "metrics.csv"
        if not path.is_file():
            sys.exit(f"error: no metrics.csv in {run}: give folders written by ri2fl evaluate")
        tables.append(pd.read_csv(path).assign(run=i))
    metrics = pd.concat(tables, ignore_index=True)
    runs_per_fov = metrics.groupby("fov")["run"].nunique()
    twice = list(runs_per_fov[runs_per_fov > 1].index)
    if twice:
        sys.exit(f"error: fields scored in more than one run ({twice[:3]}): pool runs on "
                 "different fields only")
    return metrics


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="folders written by ri2fl evaluate")
    p.add_argument("--reference", default=None, help="model label the others are compared with")
    p.add_argument("-o", "--out", type=Path, default=None, help="write the pooled CSVs here")
    args = p.parse_args(argv)
    metrics = pooled_metrics(args.runs)
    summary = structure_summary(metrics)
    pcc = metrics.groupby("model", sort=False)["pcc"].mean().rename("mean_pcc").reset_index()
    columns = ["model", "target", "n_fovs", "n_true", "n_pred", "matched_within_0.5um",
               "ci_low", "ci_high"]
    print(summary[columns].round(4).to_string(index=False))
    print(pcc.round(4).to_string(index=False))
    differences = pd.DataFrame()
    if args.reference:
        differences = structure_differences(metrics, args.reference)
        print(differences.round(4).to_string(index=False))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        summary.to_csv(args.out / "structures_summary.csv", index=False)
        pcc.to_csv(args.out / "pcc.csv", index=False)
        if not differences.empty:
            differences.to_csv(args.out / "structures_differences.csv", index=False)


if __name__ == "__main__":
    main()
