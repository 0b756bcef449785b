"""``ri2fl models``: the shipped models with their card, recipe, checksum, data and grid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "list the shipped models: card, recipe, checksum, training data and grid"

EPILOG = """Examples:
  ri2fl models
  ri2fl models --json
  ri2fl train --recipe cell-default --out runs/cells     # rebuild one from its recipe

The checksum is the one in the weights' .sha256 sidecar, verified against the file; the
training data are those of the model's recipe (configs/recipes/<model>/recipe.yaml).
"""

#: the source tree: docs/models/<name>.md and configs/recipes/<name>/ live there
REPO = Path(__file__).resolve().parents[3]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--json", action="store_true", help="print one JSON list")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _recipe(name: str) -> dict[str, Any]:
    """The recipe's file, stages and data sets (empty when the recipe is not there)."""
    from ..errors import Ri2flError
    from ..train.recipe import RECIPES_DIR, load_recipe

    path = RECIPES_DIR / name / "recipe.yaml"
    if not path.is_file():
        return {"recipe": None, "stages": [], "gpu_stages": [], "training_data": {}}
    try:
        recipe = load_recipe(path)
    except Ri2flError as exc:
        return {"recipe": _relative(path), "error": exc.one_line(), "stages": [],
                "gpu_stages": [], "training_data": {}}
    return {"recipe": _relative(path), "stages": [s.name for s in recipe.stages],
            "gpu_stages": [s.name for s in recipe.stages if s.gpu],
            "training_data": {k: v.describe() for k, v in recipe.data.items()}}


def describe_model(name: str) -> dict[str, Any]:
    """Card, recipe, checksum (verified), training data and grid of a shipped model."""
    from ..models import WEIGHTS_DIR, read_checkpoint, sha256_file

    weights = WEIGHTS_DIR / f"{name}.pt"
    sidecar = weights.with_name(weights.name + ".sha256")
    recorded = (sidecar.read_text().split() or [""])[0].lower() if sidecar.is_file() else ""
    ok = recorded == sha256_file(weights)
    # read_checkpoint refuses a file that fails its checksum: list it all the same
    config = read_checkpoint(weights)["config"] if ok else {}
    card = REPO / "docs" / "models" / f"{name}.md"
    tile = config.get("tile_size") or config.get("patch_size")
    return {"name": name, "task": config.get("task"), "arch": config.get("arch", "unet3d"),
            "targets": list(config.get("targets", [])),
            "card": _relative(card) if card.is_file() else None,
            "sha256": recorded, "sha256_ok": ok,
            "voxel_size_um": list(config.get("voxel_size_um", [])),
            "tile_size": list(tile) if tile and any(tile) else None,
            **_recipe(name)}


def _grid(info: dict[str, Any]) -> str:
    if not info["voxel_size_um"]:
        return "(unreadable)"
    text = " x ".join(f"{v:g}" for v in info["voxel_size_um"]) + " µm"
    if info["tile_size"]:
        text += ", tile " + " x ".join(map(str, info["tile_size"]))
    else:
        text += ", whole fields"
    return text


def _text(info: dict[str, Any]) -> str:
    lines = [f"{info['name']}: {info['task']}, {info['arch']}, targets "
             f"{', '.join(info['targets'])}",
             f"  grid     {_grid(info)}",
             f"  sha256   {info['sha256']} ({'verified' if info['sha256_ok'] else 'MISMATCH'})",
             f"  card     {info['card'] or '(none)'}"]
    if info["recipe"]:
        gpu = f", GPU: {', '.join(info['gpu_stages'])}" if info["gpu_stages"] else ""
        lines.append(f"  recipe   {info['recipe']} ({len(info['stages'])} stages{gpu})")
    else:
        lines.append("  recipe   (none)")
    if info.get("error"):
        lines.append(f"  error    {info['error']}")
    for data_set, text in info["training_data"].items():
        lines.append(f"  data     {data_set}: {text}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..models import available

    infos = [describe_model(name) for name in available()]
    if args.json:
        print(json.dumps(infos, indent=2))
    else:
        print("\n".join(_text(info) for info in infos))
    return 0 if all(info["sha256_ok"] for info in infos) else 1
