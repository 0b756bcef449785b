"""Inference benchmark: our tiler (fp32, bf16 + channels-last) against MONAI, and its memory bound.

Each measurement runs in a fresh subprocess so that its peak resident memory (VmHWM) is its
own. Throughput is input voxels per second of wall time, patches and network included.

Cases
-----
``throughput``: the same network (a plain 4-level U-Net, 12 base channels, 6 outputs, random
weights), the same patch (64 x 256 x 256) and overlap (0.25) through
``ri2fl.infer.predict_tiled`` in fp32 and in bf16 + channels-last, and through MONAI's
``sliding_window_inference`` (Gaussian blending, fp32, whole output in memory), on a
64 x 256 x 256 and a 64 x 512 x 512 field of view. Also the achieved GFLOP/s against one large
3D convolution in the same dtype.

``memory``: peak memory when the volume grows (64 x 1024 x 1024, 64 x 3200 x 3200), streamed
zarr -> zarr, with a cheap 1-layer network (6 outputs) so that the run measures the tiler and
the I/O, not the network (whose activations add a constant per patch, measured in
``throughput``).

Usage::

    python benchmarks/bench_infer.py throughput [--sizes 64x256x256 64x512x512] [--threads 2]
    python benchmarks/bench_infer.py memory [--sizes 64x1024x1024 64x3200x3200]
    python benchmarks/bench_infer.py all --quick        # small sizes, a smoke test
    python benchmarks/bench_infer.py throughput --device cuda \
        --methods ours-bf16 ours-fp32 monai-bf16 monai-fp32 --sizes 64x512x512 128x1024x1024

On CUDA the MONAI cases run the windows on the GPU (``sw_device``) and gather the output in
host memory (the input's device), as ours does; ``monai-bf16`` runs them under autocast.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _cases import cpu_name, peak_rss_mb, reset_peak_rss

PATCH = (64, 256, 256)
OVERLAP = 0.25
BATCH = 2


def _network(kind: str):
    import torch

    torch.manual_seed(0)
    if kind == "unet":
        from ri2fl.models import UNet3D

        return UNet3D(1, 6, features=12, depth=4, multiplier=2).eval()
    return torch.nn.Conv3d(1, 6, 3, padding=1).eval()


def _volume(shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random(shape, dtype=np.float32)


def _flops_per_patch(net, patch) -> float:
    """FLOPs of one patch, counted on the meta device (shapes only, no arithmetic)."""
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(net).to("meta")
    x = torch.zeros(1, 1, *patch, device="meta")
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        meta(x)
    return float(counter.get_total_flops())


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _large_conv_gflops(dtype_name: str, device: str = "cpu") -> float:
    """GFLOP/s of one large 3D convolution (32 -> 32 channels, 3^3) in the given dtype."""
    import torch

    conv = torch.nn.Conv3d(32, 32, 3, padding=1, bias=False).eval().to(device)
    x = torch.randn(1, 32, 32, 128, 128, device=device)
    if dtype_name == "bf16" or device.startswith("cuda"):
        conv = conv.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    kind = torch.device(device).type
    ctx = (torch.autocast(kind, dtype=torch.bfloat16) if dtype_name == "bf16"
           else torch.autocast(kind, enabled=False))
    with torch.inference_mode(), ctx:
        conv(x)
        _sync(device)
        t = time.perf_counter()
        for _ in range(3):
            conv(x)
        _sync(device)
        dt = (time.perf_counter() - t) / 3
    return 2 * 32 * 32 * 27 * x[0, 0].numel() / dt / 1e9


def run_case(method: str, shape: tuple[int, ...], net_kind: str, threads: int,
             device: str = "cpu") -> dict:
    """One measurement in this process (called in a fresh subprocess)."""
    import torch

    torch.set_num_threads(threads)
    net = _network(net_kind)
    result = {"method": method, "shape": list(shape), "net": net_kind, "threads": threads,
              "patch": list(PATCH), "overlap": OVERLAP, "batch": BATCH, "device": device}
    if method in ("ours-fp32", "ours-bf16"):
        from ri2fl.infer import make_runner, predict_tiled
        from ri2fl.infer.tiling import tile_grid

        runner = make_runner(net, device=device, precision=method.split("-")[1])
        vol = _volume(shape)
        runner(np.zeros((1, 1, *PATCH), np.float32))  # warm-up (oneDNN kernel creation)
        t, c = time.perf_counter(), time.process_time()
        out = predict_tiled(runner, vol, PATCH, overlap=OVERLAP, batch_size=BATCH,
                            progress=False)
        result["seconds"] = time.perf_counter() - t
        result["cpu_seconds"] = time.process_time() - c
        result["patches"] = len(tile_grid(shape, PATCH, OVERLAP))
        del out
    elif method in ("monai-fp32", "monai-bf16"):
        from monai.inferers import sliding_window_inference

        net = net.to(device)
        kind = torch.device(device).type
        if kind == "cuda":
            net = net.to(memory_format=torch.channels_last_3d)
        ctx = torch.autocast(kind, dtype=torch.bfloat16, enabled=method == "monai-bf16")
        vol = torch.as_tensor(_volume(shape))[None, None]
        with torch.inference_mode(), ctx:
            net(torch.zeros(1, 1, *PATCH, device=device))
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
            out = sliding_window_inference(vol, PATCH, BATCH, net, overlap=OVERLAP,
                                           mode="gaussian", progress=False, sw_device=device,
                                           device="cpu")
            _sync(device)
            result["seconds"] = time.perf_counter() - t
            result["cpu_seconds"] = time.process_time() - c
        result["patches"] = int(np.prod([1 + max(0, int(np.ceil((s - p) / (p * (1 - OVERLAP)))))
                                         for s, p in zip(shape, PATCH)]))
        del out
    elif method == "ours-stream":
        import zarr

        from ri2fl.infer import make_runner, predict_tiled

        runner = make_runner(net, device="cpu", precision="auto")
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            # uncompressed stores: this case measures memory, not the compressor's speed
            src = zarr.create_array(Path(tmp) / "in.zarr", shape=shape, compressors=None,
                                    chunks=(32, 256, 256), dtype="float32")
            rng = np.random.default_rng(0)
            for z in range(0, shape[0], 32):  # written slab by slab: never whole in memory
                for y in range(0, shape[1], 256):
                    block = src[z:z + 32, y:y + 256, :].shape
                    src[z:z + 32, y:y + 256, :] = rng.random(block, dtype=np.float32)
            out = zarr.create_array(Path(tmp) / "out.zarr", shape=(6, *shape), compressors=None,
                                    chunks=(1, 32, 256, 256), dtype="float32", fill_value=0)
            rss_before = peak_rss_mb()
            reset_peak_rss()
            t = time.perf_counter()
            predict_tiled(runner, src, PATCH, overlap=OVERLAP, batch_size=BATCH, out=out,
                          progress=False)
            result["seconds"] = time.perf_counter() - t
            result["peak_rss_mb_before_predict"] = rss_before
            check = np.asarray(out[:, :4, :64, :64])
            result["finite"] = bool(np.isfinite(check).all())
    else:
        raise SystemExit(f"unknown method {method}")
    if "seconds" in result:
        result["mvox_per_s"] = float(np.prod(shape)) / result["seconds"] / 1e6
    if net_kind == "unet" and method != "ours-stream":
        dtype = "bf16" if method.endswith("bf16") else "fp32"
        flops = _flops_per_patch(net, PATCH) * result["patches"]
        result["gflop_per_s"] = flops / result["seconds"] / 1e9
        result["large_conv_gflop_per_s"] = _large_conv_gflops(dtype, device)
        result["fraction_of_large_conv"] = result["gflop_per_s"] / result["large_conv_gflop_per_s"]
    result["peak_rss_mb"] = peak_rss_mb()
    if device.startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _spawn(method: str, shape, net_kind: str, threads: int, device: str = "cpu") -> dict:
    cmd = [sys.executable, __file__, "_case", method, "x".join(map(str, shape)), net_kind,
           str(threads), device]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"method": method, "shape": list(shape), "error": proc.stderr.strip()[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _shape(text: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in text.lower().split("x"))  # type: ignore[return-value]


def _machine(device: str = "cpu") -> dict:
    import torch

    from ri2fl.infer.device import cpu_has_fast_bf16

    cpu = cpu_name()
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "bf16_native": cpu_has_fast_bf16(), "python": platform.python_version()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def markdown(results: dict) -> str:
    """The runs as a Markdown table (for docs/inference.md and BENCHMARKS.md)."""
    m = results["machine"]
    gpu = f", GPU {m['gpu']}" if "gpu" in m else ""
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores{gpu}, torch {m['torch']}, native bf16: "
             f"{m['bf16_native']}.", "",
             "| volume (z x y x x) | method | patches | wall s | CPU s | Mvox/s | GFLOP/s "
             "| of a large conv | peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        if "error" in r:
            lines.append(f"| {'x'.join(map(str, r['shape']))} | {r['method']} | error: "
                         f"{r['error'][:60]} | | | | | | |")
            continue
        gf = f"{r['gflop_per_s']:.1f}" if "gflop_per_s" in r else ""
        frac = f"{100 * r['fraction_of_large_conv']:.0f} %" if "gflop_per_s" in r else ""
        cpu = f"{r['cpu_seconds']:.1f}" if "cpu_seconds" in r else ""
        cells = ["x".join(map(str, r["shape"])), f"{r['method']} ({r['net']})",
                 str(r.get("patches", "")), f"{r['seconds']:.1f}", cpu,
                 f"{r['mvox_per_s']:.3f}", gf, frac, f"{r['peak_rss_mb']:.0f}"
                 + (f" (GPU {r['peak_gpu_mb']:.0f})" if "peak_gpu_mb" in r else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_case":
        _, method, shape, net_kind, threads, device = argv
        print(json.dumps(run_case(method, _shape(shape), net_kind, int(threads), device)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("throughput", "memory", "all"))
    parser.add_argument("--sizes", nargs="+", type=_shape, default=None)
    parser.add_argument("--methods", nargs="+",
                        default=["ours-bf16", "ours-fp32", "monai-fp32"])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="cpu", help="cpu or cuda (throughput only)")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--markdown", type=Path, help="render a results JSON as a table")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    global PATCH
    results = {"machine": _machine(args.device), "runs": []}
    if args.quick:
        PATCH = (16, 64, 64)
        os.environ["BENCH_PATCH"] = "16x64x64"
    if args.what in ("throughput", "all"):
        sizes = args.sizes or ([(16, 64, 64), (16, 128, 128)] if args.quick
                               else [(64, 256, 256), (64, 512, 512)])
        for shape in sizes:
            for method in args.methods:
                r = _spawn(method, shape, "unet", args.threads, args.device)
                results["runs"].append(r)
                print(json.dumps(r), flush=True)
    if args.what in ("memory", "all"):
        sizes = args.sizes if args.what == "memory" and args.sizes else (
            [(16, 128, 128), (16, 512, 512)] if args.quick
            else [(64, 512, 512), (64, 1024, 1024), (64, 3200, 3200)])
        for shape in sizes:
            r = _spawn("ours-stream", shape, "conv", args.threads)
            results["runs"].append(r)
            print(json.dumps(r), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    if os.environ.get("BENCH_PATCH"):
        PATCH = _shape(os.environ["BENCH_PATCH"])
    sys.exit(main())
