"""Inference tile of the shipped ``default``: time, memory and accuracy per tile size (and model).

Simulates held-out fields of the given families (64 x 512 x 512 by default, large enough to be
tiled with either tile), predicts each with ``ri2fl.infer.predict_volume`` and every tile size
in turn, and reports wall time, peak resident memory and mean PCC against the simulated
fluorescence. Each tile size runs in a fresh subprocess, so that its peak memory is its own.
``--models`` compares networks (shipped names or checkpoints) on the same fields; the tile
``own`` is each checkpoint's own inference tile.

Usage::

    python benchmarks/bench_tile.py --tiles 24x64x64 32x128x128 --threads 1
    python benchmarks/bench_tile.py --models runs/old/best.pt default --tiles own --threads 2
    python benchmarks/bench_tile.py --cell-types macrophage --shape 64 256 256 --quick
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _simulate(folder: Path, cell_types: list[str], shape: list[int], seed: int) -> list[Path]:
    from ri2fl.io import write_paired
    from ri2fl.simulate import simulate_fov

    paths = []
    for i, cell_type in enumerate(cell_types):
        fov = simulate_fov(cell_type, seed=seed + i, shape=tuple(shape))
        paths.append(write_paired(folder / f"{cell_type}_{seed + i}.h5", fov.to_paired()))
    return paths


def _measure(model_name: str, tile: str, paths: list[str], threads: int) -> dict:
    """One model and tile size over all fields (run in a child process)."""
    import numpy as np
    import torch

    from ri2fl.evaluate.metrics import pcc
    from ri2fl.infer import predict_volume
    from ri2fl.io import read_paired
    from ri2fl.models import load

    torch.set_num_threads(threads)
    model = load(model_name)
    size = None if tile == "own" else tuple(int(v) for v in tile.split("x"))
    seconds, scores = 0.0, []
    for path in paths:
        sample = read_paired(path)
        start = time.perf_counter()
        pred = predict_volume(sample.ri, sample.voxel_size_um, model=model,
                              medium_index=sample.medium_index, patch_size=size, progress=False)
        seconds += time.perf_counter() - start
        scores.append(np.nanmean([pcc(sample.fl[t], np.asarray(pred.fl[t]))
                                  for t in pred.targets if t in sample.fl]))
    return {"model": model_name, "tile": "x".join(map(str, size or model.tile_size)),
            "fields": len(paths), "seconds_per_field": seconds / len(paths),
            # ru_maxrss: the process's peak resident set, in KiB on Linux
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "mean_pcc": float(np.mean(scores))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", nargs="+", default=["24x64x64", "32x128x128"],
                   help="tile sizes on the model's grid, or 'own' (the checkpoint's)")
    p.add_argument("--models", nargs="+", default=["default"],
                   help="shipped model names or checkpoints, measured on the same fields")
    p.add_argument("--cell-types", nargs="+", default=["epithelial", "hepatocyte", "macrophage"])
    p.add_argument("--shape", type=int, nargs=3, default=[64, 512, 512])
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="one 32 x 128 x 128 field, a smoke test")
    p.add_argument("--child", nargs=3, metavar=("MODEL", "TILE", "PATHS_JSON"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        model, tile, paths = args.child
        print(json.dumps(_measure(model, tile, json.loads(paths), args.threads)))
        return 0
    if args.quick:
        args.cell_types, args.shape = args.cell_types[:1], [32, 128, 128]
    with tempfile.TemporaryDirectory(prefix="ri2fl-bench-tile-") as tmp:
        paths = [str(q) for q in _simulate(Path(tmp), args.cell_types, args.shape, args.seed)]
        print(f"| model | tile (model grid) | fields ({' x '.join(map(str, args.shape))}) "
              f"| s per field | peak RSS (MB) | mean PCC |\n|---|---|---|---|---|---|")
        for model in args.models:
            for tile in args.tiles:
                out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                                      "--child", model, tile, json.dumps(paths)],
                                     check=True, capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                print(f"| {r['model']} | {r['tile']} | {r['fields']} "
                      f"| {r['seconds_per_field']:.1f} | {r['peak_rss_mb']:.0f} "
                      f"| {r['mean_pcc']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
