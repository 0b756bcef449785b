"""A stitched large field end to end: tiles -> ``ri2fl stitch`` -> ``ri2fl predict``, with the
peak memory (RSS) and time of each step.

The field is the paper's largest: about 480 x 480 x 13 µm, i.e. 7 x 7 tiles of
64 x 512 x 512 voxels with 10 % overlap -> about 64 x 3280 x 3280 voxels after stitching
(2.8 GB as float32). Tiles are cut from a synthetic RI field defined on global coordinates
(two scales of interpolated random texture), displaced by a known stage error, and written as
HDF5. Prediction uses the smallest random U-Net of the family and one target by default (the
tiling, reading and writing are measured, not the network's accuracy or speed).

Each step runs in its own process and reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``). To show that memory does not grow with the
field, prediction is also run on a single tile.

Usage::

    python benchmarks/bench_large_field.py --work /tmp/field             # all steps
    python benchmarks/bench_large_field.py --work /tmp/field --grid 2 2  # quick check
    python benchmarks/bench_large_field.py --work /tmp/field --steps predict-lazy

Steps: tiles, stitch, predict-tile, predict, predict-lazy (``predict_volume`` fed a lazy
OME-Zarr array and writing into a streamed OME-Zarr: the fully streamed path).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TILE = (64, 512, 512)
VOXEL = (0.2, 0.15, 0.15)
STEPS = ("tiles", "stitch", "predict-tile", "predict", "predict-lazy")


def _interp_matrix(n: int, start: int, spacing: int) -> tuple[np.ndarray, int]:
    """Linear interpolation weights from a coarse grid (``spacing``) to ``n`` fine points
    starting at global coordinate ``start``; returns (weights (n, m), first coarse index)."""
    x = (start + np.arange(n)) / spacing
    i0 = int(np.floor(x[0]))
    m = int(np.floor(x[-1])) - i0 + 2
    w = np.zeros((n, m), np.float32)
    k = np.floor(x).astype(int) - i0
    f = (x - np.floor(x)).astype(np.float32)
    w[np.arange(n), k] = 1 - f
    w[np.arange(n), k + 1] = f
    return w, i0


def field_region(origin, shape, seed: int = 0) -> np.ndarray:
    """The synthetic RI field at global voxels [origin, origin + shape) (any tile agrees
    with any other where they overlap)."""
    out = np.zeros(shape, np.float32)
    for spacing, amp, s in (((8, 24, 24), 0.6, seed), ((2, 4, 4), 0.4, seed + 1)):
        mats = [_interp_matrix(n, o, sp) for n, o, sp in zip(shape, origin, spacing)]
        lo = [i0 for _, i0 in mats]
        size = [w.shape[1] for w, _ in mats]
        coarse = np.empty(size, np.float32)
        # coarse values from a hash of their global index: consistent across tiles
        idx = np.stack(np.meshgrid(*[np.arange(a, a + n) for a, n in zip(lo, size)],
                                   indexing="ij"), -1).reshape(-1, 3).astype(np.uint64)
        h = (idx[:, 0] * np.uint64(73856093) ^ idx[:, 1] * np.uint64(19349663)
             ^ idx[:, 2] * np.uint64(83492791) ^ np.uint64(s * 2654435761 % 2**32))
        h = (h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
        coarse[...] = (h.astype(np.float64) / 2**24).reshape(size)
        v = np.tensordot(mats[0][0], coarse, axes=(1, 0))
        v = np.tensordot(v, mats[1][0], axes=(1, 1))
        v = np.tensordot(v, mats[2][0], axes=(1, 1))
        out += amp * v.astype(np.float32)
    return (1.337 + 0.04 * out).astype(np.float32)


def step_tiles(work: Path, grid, overlap: float, jitter: int) -> dict:
    import h5py

    rng = np.random.default_rng(1)
    rows, cols = grid
    step = np.array(TILE[1:]) * (1 - overlap)
    tiles, true = [], []
    (work / "tiles").mkdir(parents=True, exist_ok=True)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        y, x = np.round(step * (r, c)).astype(int) + rng.integers(-jitter, jitter + 1, 2)
        origin = (0, int(y) + jitter, int(x) + jitter)
        path = work / "tiles" / f"tile_r{r}c{c}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("ri", data=field_region(origin, TILE), chunks=(16, 128, 128))
            f.attrs["voxel_size_um"] = VOXEL
            f.attrs["medium_index"] = 1.337
        tiles.append(str(path))
        true.append(origin)
    true = np.asarray(true) - np.min(true, axis=0)
    (work / "tiles.json").write_text(json.dumps({"tiles": tiles, "true": true.tolist(),
                                                 "grid": list(grid), "overlap": overlap}))
    return {"tiles": len(tiles)}


def step_stitch(work: Path) -> dict:
    from ri2fl.cli.main import main

    meta = json.loads((work / "tiles.json").read_text())
    out = work / "field.ome.zarr"
    report = work / "stitch.json"
    grid = "x".join(map(str, meta["grid"]))
    argv = ["--quiet", "stitch", *meta["tiles"], "-o", str(out), "--grid", grid,
            "--overlap", str(meta["overlap"]), "--json"]
    with open(report, "w") as fh:
        saved, sys.stdout = sys.stdout, fh
        try:
            rc = main(argv)
        finally:
            sys.stdout = saved
    assert rc == 0, f"ri2fl stitch failed ({rc})"
    found = np.asarray(json.loads(report.read_text())["offsets_voxels"])
    error = float(np.abs(found - np.asarray(meta["true"])).max())
    import zarr

    shape = zarr.open_group(out, mode="r")["0"].shape
    return {"shape": list(shape), "max_offset_error_voxels": round(error, 3)}


def _model(work: Path) -> Path:
    import torch

    from ri2fl.constants import TARGETS
    from ri2fl.models import build, save_checkpoint

    path = work / "tiny.pt"
    if not path.exists():
        torch.manual_seed(0)
        # the cheapest network of the family: the tiling, reading and writing are measured
        config = {"model": {"features": 2, "depth": 1, "dropout": 0.0},
                  "targets": list(TARGETS), "patch_size": [64, 256, 256]}
        save_checkpoint(path, build(config).eval(), config)
    return path


def _predict_cli(work: Path, source: Path, out: Path, targets) -> dict:
    from ri2fl.cli.main import main

    argv = ["--quiet", "predict", str(source), "-o", str(out), "--model", str(_model(work)),
            "--device", "cpu", "--precision", "fp32", "--targets", *targets]
    assert main(argv) == 0, "ri2fl predict failed"
    return {"input": source.name, "targets": list(targets)}


def step_predict_tile(work: Path, targets) -> dict:
    meta = json.loads((work / "tiles.json").read_text())
    return _predict_cli(work, Path(meta["tiles"][0]), work / "pred_tile", targets)


def step_predict(work: Path, targets) -> dict:
    return _predict_cli(work, work / "field.ome.zarr", work / "pred_field", targets)


def step_predict_lazy(work: Path, targets) -> dict:
    from ri2fl.infer import channel_names, load_model, predict_volume
    from ri2fl.io import create_ome_zarr, read

    vol = read(work / "field.ome.zarr", lazy=True)
    net = load_model(str(_model(work)), "cpu")
    names = channel_names(targets)
    with create_ome_zarr(work / "pred_lazy.ome.zarr", (len(names), *vol.spatial_shape),
                         vol.voxel_size_um, channel_names=names, axes="czyx") as out:
        predict_volume(vol.data, vol.voxel_size_um, model=net, targets=targets, device="cpu",
                       precision="fp32", out=out, progress=False)
    return {"input": "field.ome.zarr (lazy)", "targets": list(targets)}


def run_step(step: str, args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if step == "tiles":
        info = step_tiles(args.work, args.grid, args.overlap, args.jitter)
    elif step == "stitch":
        info = step_stitch(args.work)
    else:
        info = {"predict-tile": step_predict_tile, "predict": step_predict,
                "predict-lazy": step_predict_lazy}[step](args.work, args.targets)
    info.update(step=step, wall_s=round(time.perf_counter() - t0, 1),
                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="working folder (large)")
    parser.add_argument("--grid", type=int, nargs=2, default=(7, 7), metavar=("ROWS", "COLS"))
    parser.add_argument("--overlap", type=float, default=0.1)
    parser.add_argument("--jitter", type=int, default=4, help="stage error, voxels")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=STEPS)
    parser.add_argument("--targets", nargs="+", default=["nucleus"],
                        help="targets to predict (default: nucleus; all six write 6x more)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["RI2FL_NO_PROGRESS"] = "1"
    if args.in_process:
        print(json.dumps(run_step(args.steps[0], args)))
        return
    print(f"# {platform.machine()}, {os.cpu_count()} cores, grid {args.grid}, "
          f"tile {TILE}", flush=True)
    for step in args.steps:
        cmd = [sys.executable, __file__, "--work", str(args.work), "--grid", *map(str, args.grid),
               "--overlap", str(args.overlap), "--jitter", str(args.jitter),
               "--threads", str(args.threads), "--steps", step, "--in-process",
               "--targets", *args.targets]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"{step} failed:\n{result.stderr[-3000:]}", flush=True)
            break
        print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
