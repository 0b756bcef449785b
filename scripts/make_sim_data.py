#!/usr/bin/env python
"""Write simulated paired FOVs and a manifest.csv (path, cell_type, seed, split).

Used by scripts/train_default.sh (fibroblast training/validation data), by
scripts/train_baselines.py (the same FOVs with BF/DIC stacks) and for the generalisation
test set (held-out FOVs of the other cell families).

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
import csv
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py

from ri2fl.io import write_paired
from ri2fl.progress import progress
from ri2fl.simulate import simulate_fov
from ri2fl.simulate.fov import check_droplets_per_cell


def _write_fov(path: Path, cell_type: str, seed: int, shape: tuple[int, int, int],
               variant: str | None, n_cells: int | None, modalities: tuple[str, ...],
               droplets_per_cell: tuple[int, int] | None = None) -> None:
    fov = simulate_fov(cell_type, seed=seed, shape=shape, variant=variant, n_cells=n_cells,
                       modalities=modalities, droplets_per_cell=droplets_per_cell)
    write_paired(path, fov.to_paired())


def _is_mitotic(path: Path) -> bool:
    """Whether the simulated field holds a mitotic cell (forced or drawn at random)."""
    with h5py.File(path, "r") as f:
        return "mitotic" in str(f.attrs.get("variants", ""))


def _name(cell_type: str, split: str, seed: int) -> str:
    return f"{cell_type}_{split}_{seed:05d}.h5"


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
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for ct in args.cell_types:
        # mitosis is rare in a random field (4 % of fibroblasts), yet held-out fields hold it
        # crowded fields hardly show empty medium, where an unseen network paints signal
        lipid = check_droplets_per_cell(args.lipid_droplets, "--lipid-droplets")
        for split, n, offset, variant, n_cells, droplets in (
                ("train", args.train, 0, None, None, None),
                ("val", args.val, 10_000, None, None, None),
                ("test", args.test, 20_000, None, None, None),
                ("train", args.mitotic_train, 30_000, "mitotic", None, None),
                ("val", args.mitotic_val, 40_000, "mitotic", None, None),
                ("train", args.sparse_train, 50_000, "alternate", 1, None),
                ("val", args.sparse_val, 60_000, "alternate", 1, None),
                ("train", args.lipid_train, 70_000, None, None, lipid),
                ("val", args.lipid_val, 80_000, None, None, lipid)):
            jobs += [(ct, split, args.seed + offset + i,
                      ("normal", "mitotic")[i % 2] if variant == "alternate" else variant,
                      n_cells, droplets) for i in range(n)]
    t0 = time.time()
    todo = [job for job in jobs if args.overwrite or not (args.out / _name(*job[:3])).exists()]
    calls = [(args.out / _name(ct, split, seed), ct, seed, tuple(args.shape), variant, n_cells,
              tuple(args.modalities), droplets)
             for ct, split, seed, variant, n_cells, droplets in todo]
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(_write_fov, *call) for call in calls]
            for future in progress(futures, desc="simulating", disable=False):
                future.result()
    else:
        for call in progress(calls, desc="simulating", disable=False):
            _write_fov(*call)
    rows = []
    for ct, split, seed, *_ in jobs:
        name = _name(ct, split, seed)
        rows.append({"path": name, "cell_type": ct, "seed": seed, "split": split})
        if args.mitotic_weight is not None:
            rows[-1]["weight"] = args.mitotic_weight if _is_mitotic(args.out / name) else 1.0
    manifest = args.out / args.manifest
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} FOVs in {time.time() - t0:.0f} s -> {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
