"""Time ``segment_volume`` (both cell methods) on a simulated field of view.

Usage: python benchmarks/bench_segment.py [--shape 64 256 256] [--threads 1]
Prints seconds per step and per megavoxel; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=3, default=[64, 256, 256])
    p.add_argument("--cell-type", default="hek293")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from ri2fl.segment import segment_volume
    from ri2fl.simulate import simulate_fov

    fov = simulate_fov(args.cell_type, seed=1, shape=tuple(args.shape))
    mvox = fov.ri.size / 1e6
    for method in ("network", "watershed"):
        t0 = time.perf_counter()
        seg = segment_volume(fov.ri, fov.voxel_size_um, fov.medium_index, method=method)
        dt = time.perf_counter() - t0
        print(f"{method:10s} {tuple(args.shape)} {dt:7.1f} s  {dt / mvox:6.2f} s/Mvoxel  "
              f"{seg.n_cells} cells (truth {int(fov.cell_labels.max())}), "
              f"{args.threads} thread(s)")


if __name__ == "__main__":
    main()
