#!/usr/bin/env python
"""Write simulated paired FOVs and a manifest.csv (path, cell_type, seed, split).

The fields are planned by ``ri2fl.simulate.sets.plan_fields``, which the recipes of the
shipped models (configs/recipes, ``ri2fl train --recipe``) use too. Used by
scripts/train_baselines.sh (FOVs with BF/DIC stacks) and for held-out test and selection sets
(FOVs of the other cell families).

Example::

    python scripts/make_sim_data.py data/sim_fibroblast --cell-types fibroblast \\
        --train 12 --val 2 --shape 64 256 256 --mitotic-train 3 --mitotic-val 1 \\
        --sparse-train 4 --sparse-val 1

A second manifest over the same files that draws fields holding a mitotic cell four times as
often (the files are kept; only ``manifest_mitosis.csv`` is written)::

    python scripts/make_sim_data.py data/sim_fibroblast --cell-types fibroblast \\
        --train 12 --val 2 --mitotic-train 3 --mitotic-val 1 --sparse-train 4 --sparse-val 1 \\
        --mitotic-weight 4 --manifest manifest_mitosis.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ri2fl.simulate.sets import plan_fields, simulate_fields, write_manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cell-types", nargs="+", default=["fibroblast"])
    p.add_argument("--train", type=int, default=12, help="training FOVs per cell type")
    p.add_argument("--val", type=int, default=2, help="validation FOVs per cell type")
    p.add_argument("--test", type=int, default=0, help="test FOVs per cell type")
    p.add_argument("--mitotic-train", type=int, default=0,
                   help="extra training FOVs per cell type whose central cell is mitotic")
    p.add_argument("--mitotic-val", type=int, default=0,
                   help="extra validation FOVs per cell type whose central cell is mitotic")
    p.add_argument("--sparse-train", type=int, default=0,
                   help="extra training FOVs per cell type holding a single cell (every "
                        "second one mitotic), so that the network sees empty medium")
    p.add_argument("--sparse-val", type=int, default=0,
                   help="extra validation FOVs per cell type holding a single cell")
    p.add_argument("--lipid-train", type=int, default=0,
                   help="extra training FOVs per cell type whose cells hold "
                        "--lipid-droplets droplets each (seeds from 70000)")
    p.add_argument("--lipid-val", type=int, default=0,
                   help="extra validation FOVs per cell type like --lipid-train (seeds from "
                        "80000)")
    p.add_argument("--lipid-droplets", type=int, nargs=2, default=[20, 60],
                   metavar=("LOW", "HIGH"),
                   help="droplets per cell of the --lipid-train / --lipid-val fields "
                        "(default 20 60)")
    p.add_argument("--shape", type=int, nargs=3, default=[64, 256, 256])
    p.add_argument("--modalities", nargs="*", default=[], help="bf and/or dic")
    p.add_argument("--domain", choices=("default", "random"), default="default",
                   help="random: image each field with an instrument drawn at random "
                        "(ri2fl.simulate.domain; recorded in each file)")
    p.add_argument("--seed", type=int, default=0, help="first seed (splits use disjoint seeds)")
    p.add_argument("--mitotic-weight", type=float, default=None,
                   help="add a weight column: this weight for fields holding a mitotic cell, "
                        "1 for the others (the trainer draws patches in proportion)")
    p.add_argument("--manifest", default="manifest.csv",
                   help="name of the manifest written into OUT (default manifest.csv)")
    p.add_argument("--overwrite", action="store_true",
                   help="simulate files that exist again (after a change of the simulator); "
                        "by default they are kept, so an interrupted run resumes")
    p.add_argument("--workers", type=int, default=1,
                   help="fields simulated in parallel processes (default 1)")
    args = p.parse_args(argv)
    fields = plan_fields(args.cell_types, args.train, args.val, args.test, args.mitotic_train,
                         args.mitotic_val, args.sparse_train, args.sparse_val, args.lipid_train,
                         args.lipid_val, args.lipid_droplets, args.shape, args.seed,
                         args.modalities, args.domain)
    t0 = time.time()
    simulate_fields(args.out, fields, workers=args.workers, overwrite=args.overwrite)
    manifest = write_manifest(args.out, fields, args.manifest, args.mitotic_weight)
    print(f"{len(fields)} FOVs in {time.time() - t0:.0f} s -> {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
