#!/usr/bin/env python
"""Training throughput of the default RI2FL network: patches per second, fp32 vs bf16.

One training step = forward, MSE + GDL loss, backward and an Adam update, on random
patches (the data pipeline is excluded: it runs ahead in DataLoader workers). bf16 uses
``torch.autocast`` (CPU: needs avx512_bf16 or AMX to be faster; GPU: tensor cores).

Example::

    python benchmarks/bench_train.py --threads 1 --steps 5
    python benchmarks/bench_train.py --device cuda --batch-size 8 --patch-size 64 256 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from ri2fl.models import build, n_parameters
from ri2fl.train.config import DEFAULTS, load_config
from ri2fl.train.losses import mse_gdl_loss


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return sorted(f for f in flags if f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile"))


def bench(config: dict, bf16: bool, device: torch.device, batch: int,
          patch: tuple[int, int, int], steps: int, warmup: int) -> tuple[float, float]:
    """Patches per wall-clock second and per CPU second of this process.

    On a shared machine the wall-clock rate depends on the other jobs; the CPU-time rate
    (with one thread) is what an idle core would give.
    """
    torch.manual_seed(0)
    model = build(config).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, *patch, device=device)
    y = torch.rand(batch, 6, *patch, device=device)
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with ctx():
            pred = model(x)
        mse_gdl_loss(pred.float(), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    n = steps * batch
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="training YAML whose model and patch size to use "
                   "(default: ri2fl.train.config.DEFAULTS)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--patch-size", type=int, nargs=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = load_config(args.config) if args.config else DEFAULTS
    patch = tuple(args.patch_size or config["patch_size"])
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_flags": cpu_flags(), "threads": args.threads, "torch": torch.__version__,
        "batch_size": args.batch_size, "patch_size": list(patch),
        "config": args.config or "DEFAULTS", "model": config["model"],
        "parameters": n_parameters(build(config)),
    }
    if device.type == "cpu":
        result["load_average_1min"] = round(os.getloadavg()[0], 2)
    for name, bf16 in (("fp32", False), ("bf16_autocast", True)):
        wall, cpu = bench(config, bf16, device, args.batch_size, patch, args.steps,
                          args.warmup)
        result[f"{name}_patches_per_s"] = round(wall, 3)
        if device.type == "cpu":
            result[f"{name}_patches_per_cpu_s"] = round(cpu, 3)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
