"""Time ``measure_cells`` and ``build_report`` on simulated fields with their true masks.

Usage: python benchmarks/bench_profile.py [--shape 64 256 256] [--cell-type macrophage]
Prints seconds per field, per cell and per megavoxel; run it on an otherwise idle machine.
``--no-report`` times ``measure_cells`` alone, e.g. per cell on a 64 x 1024 x 1024 field:
``python benchmarks/bench_profile.py --shape 64 1024 1024 --fields 1 --no-report``;
``--profile N`` prints the N costliest functions (cProfile, cumulative) of the first field.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=3, default=[64, 256, 256])
    p.add_argument("--cell-type", default="macrophage")
    p.add_argument("--fields", type=int, default=2)
    p.add_argument("--no-report", action="store_true", help="time measure_cells only")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="print the N costliest functions of the first field (cProfile)")
    args = p.parse_args()
    from ri2fl.profile import measure_cells
    from ri2fl.report import build_report
    from ri2fl.simulate import simulate_fov

    tables = []
    for i in range(args.fields):
        fov = simulate_fov(args.cell_type, seed=100 + i, shape=tuple(args.shape))
        profiler = cProfile.Profile() if args.profile and i == 0 else None
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        table = measure_cells(fov.ri, fov.cell_labels, fov.nucleus_labels, fov.fl,
                              fov.voxel_size_um, fov.medium_index, masks=fov.masks)
        dt = time.perf_counter() - t0
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
        n = max(len(table), 1)
        print(f"measure_cells {tuple(args.shape)}: {dt:6.2f} s, {len(table)} cells, "
              f"{dt / n:5.2f} s/cell, {dt / (fov.ri.size / 1e6):5.2f} s/Mvoxel")
        tables.append(table.assign(condition=f"field{i}"))
    if args.no_report:
        return
    table = pd.concat(tables, ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("pca", "umap"):
            t0 = time.perf_counter()
            build_report(table, Path(tmp) / "r.html", group_by="condition", embedding=method,
                         overwrite=True)
            print(f"build_report ({method}, {len(table)} cells): "
                  f"{time.perf_counter() - t0:6.2f} s")


if __name__ == "__main__":
    main()
