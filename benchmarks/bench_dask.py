"""Speed-up of ``run_batch`` (the engine of ``ri2fl predict|segment|profile`` over many
inputs) from one to two Dask workers, on a real prediction task.

Each input is a synthetic RI tomogram in HDF5; the task is ``ri2fl.infer.predict_file`` with
a small, randomly initialised U-Net (the shipped weights are not needed to time the batch
machinery, and the per-input work is the same kind: read, tile, infer, write OME-Zarr). Every
mode runs into a fresh folder; the outputs of all modes are compared voxel for voxel.

Usage::

    python benchmarks/bench_dask.py                      # 8 inputs of 32 x 192 x 192
    python benchmarks/bench_dask.py --inputs 16 --shape 64 256 256 --workers 1 2 4

Prints a Markdown table and one JSON line. Each worker is one process with one thread;
the serial run is pinned to one thread too, so the comparison is per core.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage


def make_inputs(folder: Path, n: int, shape: tuple[int, int, int]) -> list[Path]:
    """``n`` RI-like tomograms (textured, 1.337..1.39) as HDF5 files with a voxel size."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        v = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 2.0)
        v = 1.337 + 0.05 * (v - v.min()) / (v.max() - v.min())
        path = folder / f"cell{i:03d}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("ri", data=v.astype(np.float32))
            f.attrs["voxel_size_um"] = [0.2, 0.15, 0.15]
        paths.append(path)
    return paths


def make_model(path: Path, patch: tuple[int, int, int]) -> Path:
    import torch

    from ri2fl.constants import TARGETS
    from ri2fl.models import build, save_checkpoint

    torch.manual_seed(0)
    config = {"model": {"features": 8, "depth": 3, "dropout": 0.0}, "targets": list(TARGETS),
              "patch_size": list(patch)}
    return save_checkpoint(path, build(config).eval(), config)


def read_outputs(folder: Path) -> dict[str, np.ndarray]:
    import zarr

    return {p.name: np.asarray(zarr.open_group(p, mode="r")["0"][...])
            for p in sorted(folder.glob("*.ome.zarr"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=(32, 192, 192))
    parser.add_argument("--patch", type=int, nargs=3, default=(32, 128, 128))
    parser.add_argument("--workers", type=int, nargs="+", default=(1, 2))
    parser.add_argument("--keep", type=Path, default=None,
                        help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()

    import torch

    from ri2fl.batch import run_batch
    from ri2fl.infer import predict_file

    torch.set_num_threads(1)
    os.environ["RI2FL_NO_PROGRESS"] = "1"
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_dask_"))
    try:
        inputs = make_inputs(work / "inputs", args.inputs, tuple(args.shape))
        model = make_model(work / "tiny.pt", tuple(args.patch))
        task = functools.partial(predict_file, model=str(model), device="cpu",
                                 precision="fp32", progress=False)
        modes = [("serial (1 thread)", {"serial": True})]
        modes += [(f"dask, {w} worker{'s' * (w > 1)}", {"workers": w}) for w in args.workers]
        times, outputs = {}, {}
        for label, kwargs in modes:
            out = work / f"out_{len(times)}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            run_batch(task, inputs, out, ".ome.zarr", **kwargs)
            times[label] = time.perf_counter() - t0
            outputs[label] = read_outputs(out)
            print(f"{label}: {times[label]:.1f} s (load average {os.getloadavg()[0]:.1f})",
                  flush=True)
        ref = outputs[modes[0][0]]
        identical = all(o.keys() == ref.keys() and all(
            np.array_equal(o[k], ref[k], equal_nan=True) for k in ref) for o in outputs.values())
        max_diff = max(float(np.nanmax(np.abs(o[k] - ref[k]))) if o.keys() == ref.keys()
                       else float("inf") for o in outputs.values() for k in ref)
        one = times.get("dask, 1 worker")
        print()
        print(f"{args.inputs} inputs of {' x '.join(map(str, args.shape))} voxels, "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
        print("| mode | wall time (s) | inputs/min | speed-up vs 1 worker |")
        print("|---|---|---|---|")
        for label, t in times.items():
            speed = f"{one / t:.2f}x" if one else "-"
            print(f"| {label} | {t:.1f} | {60 * args.inputs / t:.1f} | {speed} |")
        print(f"outputs identical across modes: {identical} (max difference {max_diff:.3g})")
        print(json.dumps({"inputs": args.inputs, "shape": list(args.shape),
                          "cores": os.cpu_count(), "load_average": os.getloadavg(),
                          "times_s": times, "identical": identical, "max_diff": max_diff}))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
