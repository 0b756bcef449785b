"""GPU benchmark: inference against MONAI, end to end to OME-Zarr, GPU memory, training.

Prints its own table. Without CUDA it prints why it skipped and exits 0. Every case runs in a
fresh subprocess (its own peak GPU and host memory).

Cases (the shipped ``default``, tile 64 x 256 x 256, overlap 0.25):

- ``ri2fl``: :func:`ri2fl.predict_volume` in memory, fused device path, precision ``auto``
  (bf16 on a GPU that has it); ``ri2fl-fp32`` the same in fp32;
- ``monai-fp32`` / ``monai-bf16``: MONAI ``sliding_window_inference`` with the windows on the
  GPU and the output gathered on the host (as ours);
- ``e2e-tta8-mc8``: :func:`ri2fl.infer.predict_file` from an OME-Zarr input to an OME-Zarr
  store with ``tta=8, mc=8``, wall time end to end (goal: 64 x 1024 x 1024 in < 8 s);
- GPU memory of ``ri2fl`` as the field grows (64 x 512², 64 x 1024², 64 x 2048²);
- ``train``: patches/s of the shipped training recipe's network on a synthetic set, through
  the DataLoader and with the set resident on the GPU.

Network voxels per second count every voxel of every patch through every pass
(patches x tile voxels x passes / wall s).

Usage::

    python benchmarks/bench_gpu.py            # ~5 min on one H100
    python benchmarks/bench_gpu.py --quick    # tiny sizes: checks that it runs
    python benchmarks/bench_gpu.py --quick --device cpu   # the code path on a CPU only;
                                                          # its numbers mean nothing
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _cases import run_case

OVERLAP = 0.25
VOXEL = (0.2, 0.15, 0.15)
FULL = {"tile": (64, 256, 256), "field": (64, 1024, 1024), "batch": 4,
        "memory": [(64, 512, 512), (64, 1024, 1024), (64, 2048, 2048)],
        "train_patch": (32, 96, 96), "train_steps": 60}
QUICK = {"tile": (16, 64, 64), "field": (16, 128, 128), "batch": 2,
         "memory": [(16, 128, 128), (16, 256, 256)], "train_patch": (16, 32, 32),
         "train_steps": 4}


DEVICE = "cuda"


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _reset_peak() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_mb() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if DEVICE == "cuda" else float("nan")


def _utilisation() -> float | None:
    import torch

    if DEVICE != "cuda" or not hasattr(torch.cuda, "utilization"):
        return None
    try:
        return float(torch.cuda.utilization())
    except Exception:  # no NVML
        return None


def _ri(shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1.337 + 0.04 * rng.random(shape, dtype=np.float32)).astype(np.float32)


def _patches(shape, tile) -> int:
    from ri2fl.infer.tiling import tile_grid

    return len(tile_grid(shape, tile, OVERLAP))


def _infer_case(method: str, shape, cfg: dict) -> dict:
    import torch

    from ri2fl.models import load

    net = load("default", device=DEVICE)
    tile, batch = cfg["tile"], cfg["batch"]
    ri = _ri(shape)
    res: dict = {"method": method, "shape": list(shape), "passes": 1}
    if method.startswith("ri2fl"):
        from ri2fl.infer import predict_volume

        kw = {"model": net, "device": DEVICE, "patch_size": tile, "batch_size": batch,
              "precision": "fp32" if method == "ri2fl-fp32" else "auto", "progress": False,
              "domain_check": False}
        predict_volume(_ri(tile), VOXEL, **kw)
        _sync()
        _reset_peak()
        t = time.perf_counter()
        predict_volume(ri, VOXEL, **kw)
        _sync()
    else:
        from monai.inferers import sliding_window_inference

        from ri2fl.preprocess import normalize_ri

        net = net.to(memory_format=torch.channels_last_3d)
        x = torch.as_tensor(normalize_ri(ri))[None, None]
        ctx = torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=method == "monai-bf16")
        with torch.inference_mode(), ctx:
            net(torch.zeros(1, 1, *tile, device=DEVICE))
            _sync()
            _reset_peak()
            t = time.perf_counter()
            sliding_window_inference(x, tile, batch, net, overlap=OVERLAP, mode="gaussian",
                                     progress=False, sw_device=DEVICE, device="cpu")
            _sync()
    res["seconds"] = time.perf_counter() - t
    res["net_mvox_per_s"] = _patches(shape, tile) * float(np.prod(tile)) / res["seconds"] / 1e6
    res["peak_gpu_mb"] = _peak_mb()
    return res


def _e2e_case(shape, cfg: dict) -> dict:

    from ri2fl.infer import predict_file
    from ri2fl.io.ome_zarr import write_ome_zarr
    from ri2fl.models import load

    net = load("default", device=DEVICE)
    res: dict = {"method": "e2e-tta8-mc8", "shape": list(shape), "passes": 16}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.ome.zarr"
        write_ome_zarr(src, _ri(shape), VOXEL)
        predict_file(src, Path(tmp) / "warm.ome.zarr", model=net, device=DEVICE, tta=2, mc=2,
                     patch_size=cfg["tile"], batch_size=cfg["batch"], progress=False,
                     frame=None)
        _sync()
        _reset_peak()
        t = time.perf_counter()
        predict_file(src, Path(tmp) / "out.ome.zarr", model=net, device=DEVICE, tta=8, mc=8,
                     patch_size=cfg["tile"], batch_size=cfg["batch"], progress=False)
        _sync()
        res["seconds"] = time.perf_counter() - t
    n = _patches(shape, cfg["tile"]) * float(np.prod(cfg["tile"])) * 16
    res["net_mvox_per_s"] = n / res["seconds"] / 1e6
    res["peak_gpu_mb"] = _peak_mb()
    return res


def _train_case(method: str, cfg: dict) -> dict:
    import torch

    from ri2fl.data.dataset import DevicePatches, PairedVolume, PatchDataset
    from ri2fl.models import load
    from ri2fl.transforms import build_augmentation

    torch.manual_seed(0)
    net = load("default", device=DEVICE).train()
    recipe = net.config["training"]
    rng = np.random.default_rng(0)
    shape = (64, 256, 256) if cfg is FULL else (16, 64, 64)
    vols = [PairedVolume(rng.random((1, *shape), dtype=np.float32),
                         rng.random((6, *shape), dtype=np.float32), f"v{i}")
            for i in range(8)]
    batch = int(recipe["batch_size"])
    ds = PatchDataset(vols, cfg["train_patch"], cfg["train_steps"] * batch,
                      augment=build_augmentation(recipe["augment"]), seed=0, foreground_p=0.6)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    if method == "train-device":
        source = DevicePatches(ds, torch.device(DEVICE))
        batches = (source.batch(range(i * batch, (i + 1) * batch))
                   for i in range(cfg["train_steps"]))
    else:
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=4,
                                             pin_memory=DEVICE == "cuda", drop_last=True)
        batches = iter(loader)
    _sync()
    t, n = time.perf_counter(), 0
    for image, target in batches:
        image, target = image.to(DEVICE), target.to(DEVICE)
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            loss = torch.nn.functional.mse_loss(net(image).float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += image.shape[0]
    _sync()
    seconds = time.perf_counter() - t
    util = _utilisation()
    return {"method": method, "shape": list(cfg["train_patch"]), "seconds": seconds,
            "patches_per_s": n / seconds, "gpu_util_pct": util,
            "peak_gpu_mb": _peak_mb()}


def _spawn(args: list[str], timeout: float = 900) -> dict:
    return run_case(__file__, args, args[0], args[1], timeout)


def _dims(shape) -> str:
    return shape if isinstance(shape, str) else "x".join(map(str, shape))


def table(runs: list[dict]) -> str:
    base = next((r["seconds"] for r in runs if r.get("method") == "monai-fp32"
                 and "seconds" in r and r["shape"] == runs[0].get("shape")), None)
    lines = ["| case | field / patch | wall s | network Mvox/s | vs MONAI fp32 | patches/s "
             "| GPU util % | peak GPU MB |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['method']} | {_dims(r['shape'])} | {r['error'][:80]} "
                         "| | | | | |")
            continue
        vs = (f"{base / r['seconds']:.2f}x" if base and r["method"].startswith(("ri2fl", "monai"))
              and r["shape"] == runs[0]["shape"] else "")
        cells = [r["method"], _dims(r["shape"]), f"{r['seconds']:.2f}",
                 f"{r['net_mvox_per_s']:.0f}" if "net_mvox_per_s" in r else "", vs,
                 f"{r['patches_per_s']:.0f}" if "patches_per_s" in r else "",
                 "" if r.get("gpu_util_pct") is None else str(r["gpu_util_pct"]),
                 f"{r['peak_gpu_mb']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    global DEVICE
    if argv and argv[0] == "_case":
        method, shape, quick, DEVICE = argv[1], argv[2], argv[3] == "1", argv[4]
        cfg = QUICK if quick else FULL
        if method.startswith("train"):
            res = _train_case(method, cfg)
        else:
            dims = tuple(int(v) for v in shape.split("x"))
            res = (_e2e_case if method == "e2e-tta8-mc8" else
                   lambda d, c: _infer_case(method, d, c))(dims, cfg)
        print(json.dumps(res))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the runs here")
    parser.add_argument("--device", default="cuda",
                        help="cuda; cpu only checks the code path (numbers meaningless)")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: skipped, no CUDA device here (torch.cuda.is_available() is False); "
              "run it on a machine with a GPU")
        return 0
    cfg = QUICK if args.quick else FULL
    quick = "1" if args.quick else "0"
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "none (CPU dry run)"
    print(f"GPU: {name}, torch {torch.__version__}; tile "
          f"{_dims(cfg['tile'])}, overlap {OVERLAP}, batch {cfg['batch']}\n", flush=True)
    field = _dims(cfg["field"])
    cases = [(m, field) for m in ("ri2fl", "ri2fl-fp32", "monai-fp32", "monai-bf16")]
    cases += [("e2e-tta8-mc8", field)]
    cases += [("ri2fl", _dims(s)) for s in cfg["memory"] if _dims(s) != field]
    cases += [("train-loader", "-"), ("train-device", "-")]
    runs = []
    for method, shape in cases:
        runs.append(_spawn([method, shape, quick, args.device]))
        print(json.dumps(runs[-1]), flush=True)
    print("\n" + table(runs))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
