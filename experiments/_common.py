"""Argument handling shared by the experiment scripts (not part of the package)."""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("RI2FL_NO_PROGRESS", "")


def parser(description: str, out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("-o", "--out", default=out, help="output folder")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (the machine is shared: keep it small)")
    p.add_argument("--batch-size", type=int, default=2, help="patches per forward pass")
    p.add_argument("--data-dir", default="runs/experiments/data",
                   help="held-out simulated FOVs, shared by the experiments (made when missing)")
    return p


def held_out_arguments(p: argparse.ArgumentParser, n_per_type: int = 2,
                       model: bool = True) -> None:
    """--model (optional), --n-per-type and --shape of the held-out simulated FOVs."""
    if model:
        p.add_argument("--model", default="default",
                       help="shipped model name, checkpoint or training folder")
    p.add_argument("--n-per-type", type=int, default=n_per_type, help="FOVs per cell type")
    p.add_argument("--shape", type=int, nargs=3, default=[32, 192, 192],
                   help="FOV shape (z y x voxels)")


def setup(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)


def report(summary: dict) -> None:
    print(json.dumps(summary, indent=2, default=str))
