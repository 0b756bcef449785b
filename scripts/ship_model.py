#!/usr/bin/env python
"""Copy a trained checkpoint into the package as a shipped model, with its sha256 sidecar.

The weights are re-saved in float16 (half the size; ``ri2fl.models.load`` casts them back to
float32) unless ``--fp32`` is given.

Example::

    python scripts/ship_model.py runs/default/best.pt default --tile-size 32 128 128
    python scripts/ship_model.py runs/refine_stage11/best.pt default --last
    python scripts/ship_model.py runs/refine_stage12/best.pt --last --fp32 \
        --out runs/s12/refine12_last.pt   # a run's last epoch as a checkpoint, not shipped
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ri2fl.models import WEIGHTS_DIR, load, save_checkpoint, write_sha256
from ri2fl.models.checkpoint import read_checkpoint


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("name", nargs="?",
                   help="shipped name, e.g. default, segment-default, cell-default")
    p.add_argument("--out", type=Path,
                   help="write the checkpoint here instead of shipping it in the package (to "
                        "evaluate or fine-tune from a run's last epoch)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    p.add_argument("--tile-size", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="inference tile on the model's grid (default: the checkpoint's, else "
                        "its training patch)")
    p.add_argument("--last", action="store_true",
                   help="ship the last epoch's weights (last.pt beside the checkpoint) instead "
                        "of the best validation epoch's")
    args = p.parse_args(argv)
    if (args.name is None) == (args.out is None):
        p.error("give a shipped name or --out PATH (one of the two)")
    payload = read_checkpoint(args.checkpoint)
    model = load(args.checkpoint)
    extra = payload.get("extra")
    if args.last:
        state = torch.load(Path(args.checkpoint).with_name("last.pt"), map_location="cpu",
                           weights_only=True)
        model.load_state_dict(state["model"])
        extra = {"epoch": state["epoch"], "weights": "last epoch"}
    target = args.out or WEIGHTS_DIR / f"{args.name}.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    config = dict(payload["config"])
    if args.tile_size:
        config["tile_size"] = list(args.tile_size)
    # re-shipping a name replaces its weights (ri2fl's own files only); --out never replaces
    reship = args.out is None
    save_checkpoint(target, model, config, extra=extra, half=not args.fp32, overwrite=reship)
    sidecar = write_sha256(target, overwrite=reship)
    shipped = load(args.name or target)  # verifies the checksum and the round trip
    n_weights = sum(p.numel() for p in shipped.parameters())  # frozen ones too
    print(f"{target} ({target.stat().st_size / 1e6:.2f} MB, {n_weights} parameters,"
          f" targets {shipped.targets}, tile {shipped.tile_size}); "
          f"{sidecar.name}: {sidecar.read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
