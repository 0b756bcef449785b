"""CPU inference with the shipped ``default``: speed against MONAI, and peak memory vs field size.

Every case runs in a fresh subprocess, one after the other in one run, so the ratios compare
runs on the same machine under the same load, and each peak resident memory (VmHWM, reset
after the model and the input are ready) is the case's own.

``ratios``: the same network (the shipped ``default``), tile (64 x 256 x 256) and overlap
(0.25) on a 64 x 512 x 512 field on the model's grid, no TTA / MC:

- ``ri2fl``: :func:`ri2fl.predict_volume` (the fused path, precision ``auto``);
- ``ri2fl-reference``: the same with ``fused=False`` (the NumPy ensemble around the network);
- ``monai-fp32``: MONAI ``sliding_window_inference`` (Gaussian blending, batch 2);
- ``monai-bf16-cl``: the same under CPU bf16 autocast with the network and input in the
  channels-last-3d memory format; stopped after ``--monai-bf16-limit`` seconds.

``memory``: peak RSS of :func:`ri2fl.predict_volume` streaming zarr -> zarr with
``--tta 4 --mc 4`` as the field grows (64 x 512² ... 64 x 3200²). Each case stops after
``--patches`` patches (default 8: the working set of one patch, repeated by every later one);
``0`` runs whole fields (the four in about 18 minutes on 2 cores with ``--tta 0 --mc 0``;
with ``--tta 4 --mc 4`` the first three took 31 minutes, 64 x 3200² about another hour).
``BENCH_REFERENCE=1`` runs these cases on the reference path (``fused=False``) instead, for
comparison.

Usage::

    python benchmarks/bench_speed.py all              # ~40-55 min on 2 idle cores
    python benchmarks/bench_speed.py ratios
    python benchmarks/bench_speed.py memory --patches 8
    python benchmarks/bench_speed.py memory --patches 0 --tta 0 --mc 0   # whole fields
    python benchmarks/bench_speed.py memory --patches 0 --fields 64x512x512 64x1024x1024
    python benchmarks/bench_speed.py all --quick      # tiny sizes: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _cases import cpu_name, peak_rss_mb, reset_peak_rss, run_case

TILE = (64, 256, 256)
OVERLAP = 0.25
BATCH = 2
VOXEL = (0.2, 0.15, 0.15)
RATIO_FIELD = (64, 512, 512)
MEMORY_FIELDS = [(64, 512, 512), (64, 1024, 1024), (64, 2048, 2048), (64, 3200, 3200)]
QUICK_TILE = (16, 64, 64)
QUICK_RATIO_FIELD = (16, 128, 128)
QUICK_MEMORY_FIELDS = [(16, 128, 128), (16, 256, 256)]


def _ri(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A cell-like RI field (smooth blobs over the medium), float32."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape).astype(np.float32)
    smooth = ndi.gaussian_filter(noise, (2, 6, 6))
    smooth *= 0.03 / (smooth.std() + 1e-6)
    return (1.345 + smooth).astype(np.float32)


class _EnoughError(Exception):
    """Raised by :class:`_Counted` once the patch budget of a memory case is spent."""


class _Counted:
    """A read-only array that raises :class:`_EnoughError` after ``limit`` reads (0: never)."""

    def __init__(self, array, limit: int):
        self.array, self.limit, self.reads = array, limit, 0
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype

    def __getitem__(self, key):
        self.reads += 1
        if self.limit and self.reads > self.limit:
            raise _EnoughError
        return self.array[key]


def _ratio_case(method: str, shape, tile, threads: int) -> dict:
    import torch

    from ri2fl.models import load

    torch.set_num_threads(threads)
    net = load("default", device="cpu")
    ri = _ri(shape)
    result: dict = {"method": method, "shape": list(shape), "tile": list(tile)}
    if method.startswith("ri2fl"):
        from ri2fl.infer import predict_volume

        kwargs = {"model": net, "device": "cpu", "patch_size": tile, "overlap": OVERLAP,
                  "batch_size": BATCH, "progress": False, "domain_check": False,
                  "fused": method == "ri2fl"}
        predict_volume(_ri(tile), VOXEL, **kwargs)  # warm-up: oneDNN kernels
        reset_peak_rss()
        t = time.perf_counter()
        predict_volume(ri, VOXEL, **kwargs)
        result["seconds"] = time.perf_counter() - t
    else:
        from monai.inferers import sliding_window_inference

        from ri2fl.preprocess import normalize_ri

        bf16 = method == "monai-bf16-cl"
        x = torch.as_tensor(normalize_ri(ri))[None, None]
        if bf16:
            net = net.to(memory_format=torch.channels_last_3d)
            x = x.contiguous(memory_format=torch.channels_last_3d)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
        with torch.inference_mode(), ctx:
            net(torch.zeros(1, 1, *tile))
            reset_peak_rss()
            t = time.perf_counter()
            sliding_window_inference(x, tile, BATCH, net, overlap=OVERLAP, mode="gaussian",
                                     progress=False)
            result["seconds"] = time.perf_counter() - t
    result["mvox_per_s"] = float(np.prod(shape)) / result["seconds"] / 1e6
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _memory_case(shape, tile, threads: int, patches: int, tta: int, mc: int) -> dict:
    import torch
    import zarr

    from ri2fl.infer import predict_volume
    from ri2fl.models import load

    torch.set_num_threads(threads)
    net = load("default", device="cpu")
    result: dict = {"method": f"ri2fl zarr->zarr tta {tta} mc {mc}", "shape": list(shape),
                    "tile": list(tile), "patches_limit": patches}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        src = zarr.create_array(Path(tmp) / "in.zarr", shape=shape, dtype="float32",
                                chunks=(min(32, shape[0]), 256, 256))
        step = 256
        for y in range(0, shape[1], step):  # written in bands: never whole in memory
            src[:, y:y + step] = _ri((shape[0], min(step, shape[1] - y), shape[2]), seed=y)
        n_out = 6 * (1 + bool(tta) + bool(mc))
        out = zarr.create_array(Path(tmp) / "out.zarr", shape=(n_out, *shape), dtype="float32",
                                chunks=(1, min(32, shape[0]), 256, 256), fill_value=0)
        reset_peak_rss()
        t = time.perf_counter()
        try:
            predict_volume(_Counted(src, patches), VOXEL, model=net, tta=tta, mc=mc,
                           device="cpu", patch_size=tile, overlap=OVERLAP, batch_size=BATCH,
                           out=out, progress=False, domain_check=False,
                           fused=os.environ.get("BENCH_REFERENCE") != "1")
            result["complete"] = True
        except _EnoughError:
            result["complete"] = False
        result["seconds"] = time.perf_counter() - t
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _spawn(args: list[str], timeout: float | None = None) -> dict:
    return run_case(__file__, args, args[1], args[2], timeout)


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.lower().split("x"))


def _dims(shape) -> str:
    return "x".join(map(str, shape)) if not isinstance(shape, str) else shape


def _machine() -> str:
    import torch

    from ri2fl.infer.device import cpu_has_fast_bf16

    cpu = cpu_name()
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"native bf16: {cpu_has_fast_bf16()}")


def ratio_table(runs: list[dict]) -> str:
    base = next((r["seconds"] for r in runs if r.get("method") == "monai-fp32"
                 and "seconds" in r), None)
    lines = ["| field | method | wall s | Mvox/s | speed vs MONAI fp32 | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {_dims(r['shape'])} | {r['method']} | {r['error'][:80]} | | | |")
            continue
        ratio = f"{base / r['seconds']:.2f}x" if base else ""
        lines.append(f"| {_dims(r['shape'])} | {r['method']} | {r['seconds']:.1f} | "
                     f"{r['mvox_per_s']:.2f} | {ratio} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def memory_table(runs: list[dict]) -> str:
    lines = ["| field | method | patches run | wall s | peak RSS MB |", "|---|---|---|---|---|"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {_dims(r['shape'])} | {r['method']} | {r['error'][:80]} | | |")
            continue
        done = "all" if r["complete"] else f"first {r['patches_limit']}"
        lines.append(f"| {_dims(r['shape'])} | {r['method']} | {done} | {r['seconds']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_case":
        kind, method, shape, tile, threads, *rest = argv[1:]
        if kind == "ratio":
            res = _ratio_case(method, _shape(shape), _shape(tile), int(threads))
        else:
            patches, tta, mc = map(int, rest)
            res = _memory_case(_shape(shape), _shape(tile), int(threads), patches, tta, mc)
        print(json.dumps(res))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("ratios", "memory", "all"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--patches", type=int, default=8,
                        help="memory cases stop after this many patches (0: whole fields)")
    parser.add_argument("--tta", type=int, default=4)
    parser.add_argument("--mc", type=int, default=4)
    parser.add_argument("--methods", nargs="+",
                        default=["monai-fp32", "ri2fl", "ri2fl-reference", "monai-bf16-cl"])
    parser.add_argument("--monai-bf16-limit", type=float, default=900.0,
                        help="seconds before the MONAI bf16 case is stopped")
    parser.add_argument("--fields", nargs="+", metavar="ZxYxX",
                        help="memory cases on these fields instead (e.g. 64x512x512)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the runs here")
    args = parser.parse_args(argv)
    tile = QUICK_TILE if args.quick else TILE
    tile_arg = _dims(tile)
    print(f"machine: {_machine()}; tile {tile_arg}, overlap {OVERLAP}, batch {BATCH}, "
          f"{args.threads} threads\n", flush=True)
    results: dict = {"ratios": [], "memory": []}
    if args.what in ("ratios", "all"):
        field = _dims(QUICK_RATIO_FIELD if args.quick else RATIO_FIELD)
        for method in args.methods:
            limit = args.monai_bf16_limit if method == "monai-bf16-cl" else None
            results["ratios"].append(_spawn(["ratio", method, field, tile_arg,
                                             str(args.threads)], timeout=limit))
        print(ratio_table(results["ratios"]) + "\n", flush=True)
    if args.what in ("memory", "all"):
        fields = ([_shape(f) for f in args.fields] if args.fields
                  else QUICK_MEMORY_FIELDS if args.quick else MEMORY_FIELDS)
        for shape in fields:
            results["memory"].append(_spawn(["memory", "-", _dims(shape), tile_arg,
                                             str(args.threads), str(args.patches),
                                             str(args.tta), str(args.mc)]))
        print(memory_table(results["memory"]) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    summary = [f"{r['method']} {base_ratio}" for r, base_ratio in _headline(results["ratios"])]
    peaks = [f"{r['peak_rss_mb']:.0f}" for r in results["memory"] if "peak_rss_mb" in r]
    print("summary: " + "; ".join(summary + ([f"peak RSS MB {'/'.join(peaks)}"] if peaks else [])))
    failed = [r for r in results["ratios"] + results["memory"]
              if "error" in r and r.get("method") != "monai-bf16-cl"]
    return 1 if failed else 0


def _headline(runs: list[dict]) -> list[tuple[dict, str]]:
    base = next((r["seconds"] for r in runs if r.get("method") == "monai-fp32"
                 and "seconds" in r), None)
    return [(r, f"{base / r['seconds']:.2f}x MONAI fp32" if base and "seconds" in r
             else r.get("error", "")[:40]) for r in runs if r.get("method") != "monai-fp32"]


if __name__ == "__main__":
    sys.exit(main())
