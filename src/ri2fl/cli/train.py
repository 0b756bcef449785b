"""``ri2fl train``: train an RI2FL (or segmentation, BF2FL, DIC2FL) network from paired data."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import ConfigError

HELP = "train a network on paired RI/fluorescence data (simulator manifest or folder)"

EPILOG = """Examples:
  ri2fl train configs/default.yaml --data data/sim_fibroblast --out runs/default
  ri2fl train configs/default.yaml --data my_pairs/ --targets nucleus lipid_droplets --epochs 200
  ri2fl train configs/default.yaml --out runs/default --resume
  ri2fl train configs/default.yaml --finetune runs/default/best.pt --channel-weights auto
  ri2fl train configs/default.yaml --finetune default --data sparse_pairs/ --empty-p 0.15
  ri2fl train configs/finetune.yaml --data lab_pairs/ --finetune default --epochs 50
  ri2fl train configs/segment.yaml --data data/sim --patch-size 32 96 96 --batch-size 2
  torchrun --nproc-per-node 2 -m ri2fl.cli.main train configs/default.yaml --data data/sim

Rebuild a shipped model from its recipe (configs/recipes/<model>: simulated data, every
stage in order, finished stages kept, an interrupted one resumed; ends with OUT/<model>.pt):
  ri2fl train --recipe default --out runs/recipe_default
  ri2fl train --recipe cell-default --out runs/recipe_cells --plan     # the chain, no training
  ri2fl train --recipe segment-default --out runs/recipe_seg --until 04_mitosis

The output folder holds best.pt (load it with ri2fl predict --model DIR/best.pt),
last.pt (for --resume), log.csv, config.yaml and TensorBoard events in tb/.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("config", type=Path, nargs="?",
                        help="training configuration (YAML), see configs/")
    parser.add_argument("--recipe", metavar="NAME",
                        help="rebuild a shipped model (default, segment-default, cell-default) "
                             "or run a recipe.yaml, into --out")
    parser.add_argument("--plan", action="store_true",
                        help="with --recipe: print the resolved chain and stop")
    parser.add_argument("--until", metavar="STAGE", help="with --recipe: stop after this stage")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="with --recipe: processes simulating the data (default 1)")
    parser.add_argument("--data", metavar="PATH",
                        help="manifest.csv, a folder holding one, or a folder of paired files")
    parser.add_argument("--targets", nargs="+", metavar="NAME",
                        help="fluorescence channels (or masks/<name>) to learn, in order")
    parser.add_argument("--epochs", type=int, metavar="N", help="number of epochs")
    parser.add_argument("--steps-per-epoch", type=int, metavar="N",
                        help="optimiser steps per epoch")
    parser.add_argument("--patch-size", type=int, nargs=3, metavar=("Z", "Y", "X"),
                        help="training patch size in voxels")
    parser.add_argument("--batch-size", type=int, metavar="B", help="patches per step")
    parser.add_argument("--lr", type=float, help="initial learning rate (default 1e-3)")
    parser.add_argument("-o", "--out", metavar="DIR", help="output folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from OUT/last.pt")
    parser.add_argument("--finetune", metavar="CKPT",
                        help="start from a checkpoint's weights (a path or a shipped name)")
    parser.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--bf16", action="store_true", default=None,
                        help="bfloat16 autocast (CPU with avx512_bf16/AMX, or GPU)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    parser.add_argument("--max-minutes", type=float, metavar="M",
                        help="stop cleanly after M minutes of training")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--empty-p", type=float, metavar="P",
                        help="fraction of training patches that are bare medium with no "
                             "fluorescence (RI input; teaches the network that empty medium "
                             "holds nothing, e.g. 0.15)")
    parser.add_argument("--channel-weights", nargs="+", metavar="W",
                        help="loss weight per target, or 'auto' (inverse variance of each "
                             "target over the training data: sparse channels count as much "
                             "as dense ones)")


def _channel_weights(values: list[str] | None) -> str | list[float] | None:
    if values is None:
        return None
    if values == ["auto"]:
        return "auto"
    try:
        return [float(v) for v in values]
    except ValueError:
        raise ConfigError(f"--channel-weights takes 'auto' or numbers, got {values}",
                          "--channel-weights") from None


#: options of a single run that a recipe's stages set themselves
_RUN_ONLY = ("config", "data", "targets", "epochs", "steps_per_epoch", "patch_size",
             "batch_size", "lr", "resume", "finetune", "bf16", "max_minutes", "seed", "empty_p",
             "channel_weights")


def _run_recipe(args: argparse.Namespace) -> int:
    from ..train.recipe import load_recipe, plan, run_recipe

    given = [name for name in _RUN_ONLY if getattr(args, name) not in (None, False)]
    if given:
        raise ConfigError(f"--recipe sets {given[0].replace('_', '-')} itself", "--recipe",
                          "edit the recipe's stage files instead")
    if not args.out:
        raise ConfigError("a recipe needs an output root", "--out", "pass --out DIR")
    recipe = load_recipe(args.recipe)
    overrides = {"device": args.device, "num_threads": args.threads}
    if args.plan:
        for step in plan(recipe, args.out, **overrides):
            state = "done" if step.done else "GPU" if step.stage.gpu else "CPU"
            print(f"{step.stage.name:20s} {state:4s} from {step.init or 'scratch'}; "
                  f"data {step.config['data']['path']}; {step.config['max_minutes']} min")
        print(f"ship: {recipe.ship.stage} ({recipe.ship.weights}) -> {args.out}/{recipe.model}.pt")
        if recipe.classifiers:
            print(f"classifiers: {recipe.classifiers.data} -> {args.out}/segment_defaults/")
        return 0
    shipped = run_recipe(recipe, args.out, until=args.until, workers=args.workers, **overrides)
    print(shipped or f"stopped after {args.until}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..train import train

    logging.getLogger("ri2fl").setLevel(logging.INFO)
    if args.recipe:
        return _run_recipe(args)
    if args.config is None:
        raise ConfigError("give a training configuration or --recipe NAME", "config",
                          "e.g. ri2fl train configs/default.yaml or --recipe default")
    if args.plan or args.until:
        raise ConfigError("--plan and --until go with --recipe", "--recipe")
    optimizer = {"lr": args.lr} if args.lr is not None else None
    best = train(
        args.config, resume=args.resume, data_path=args.data,
        targets=args.targets, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        patch_size=args.patch_size, batch_size=args.batch_size, optimizer=optimizer,
        out=args.out, finetune=args.finetune, device=args.device, bf16=args.bf16,
        num_threads=args.threads, max_minutes=args.max_minutes, seed=args.seed,
        channel_weights=_channel_weights(args.channel_weights), empty_p=args.empty_p,
    )
    print(best)
    return 0
