"""Time ``measure_cells`` and ``build_report`` on simulated fields with their true masks.

Usage: python benchmarks/bench_profile.py [--shape 64 256 256] [--cell-type macrophage]
[--n-cells N] [--fields 2] [--no-report] [--profile N]
Prints seconds per field, per cell and per megavoxel; run it on an otherwise idle machine.
``--no-report`` times ``measure_cells`` alone; ``--profile N`` then runs it once more on the
first field under cProfile and prints its N costliest functions (cumulative), so that the
profiler's overhead stays out of the timing. Per cell on a 64 x 1024 x 1024 field with about
50 macrophages (64 placed, seed 100: about 50 in the field, most of them whole), issue 32:

    python benchmarks/bench_profile.py --shape 64 1024 1024 --n-cells 64 --fields 1 \
        --no-report --profile 25

Simulating that field takes about 7 GB of memory (4 x the 1.7 GB peak at 64 x 512 x 512);
``measure_cells`` adds little to the field's own 2.6 GB (RI, six channels, labels, masks).
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
    p.add_argument("--n-cells", type=int, default=None, metavar="N",
                   help="cells placed per field (default: the simulator's draw, at most 40); "
                        "cells placed across the border are cut by it or fall outside")
    p.add_argument("--fields", type=int, default=2)
    p.add_argument("--no-report", action="store_true", help="time measure_cells only")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile the first field once more (cProfile) and print its N "
                        "costliest functions, cumulative")
    args = p.parse_args()
    from ri2fl.profile import measure_cells
    from ri2fl.report import build_report
    from ri2fl.simulate import simulate_fov

    tables = []
    for i in range(args.fields):
        fov = simulate_fov(args.cell_type, seed=100 + i, shape=tuple(args.shape),
                           n_cells=args.n_cells)

        def measure(fov=fov):
            return measure_cells(fov.ri, fov.cell_labels, fov.nucleus_labels, fov.fl,
                                 fov.voxel_size_um, fov.medium_index, masks=fov.masks)

        t0 = time.perf_counter()
        table = measure()
        dt = time.perf_counter() - t0
        n = max(len(table), 1)
        cut = int(table["cut_by_edge"].sum())
        print(f"measure_cells {tuple(args.shape)}: {dt:6.2f} s, {len(table)} cells "
              f"({len(table) - cut} whole, {cut} cut by the edge), {dt / n:6.3f} s/cell, "
              f"{dt / (fov.ri.size / 1e6):5.2f} s/Mvoxel", flush=True)
        if args.profile and i == 0:
            profiler = cProfile.Profile()
            profiler.runcall(measure)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
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
