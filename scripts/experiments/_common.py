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


def setup(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)


def report(summary: dict) -> None:
    print(json.dumps(summary, indent=2, default=str))
