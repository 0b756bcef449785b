"""Training configuration: defaults, YAML loading, overrides and validation."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import yaml

from ..constants import CANONICAL_VOXEL_SIZE_UM, TARGETS
from ..data.dataset import SAMPLINGS
from ..errors import ConfigError
from .schema import check_options

__all__ = ["CELL_INPUTS", "DEFAULTS", "TASKS", "load_config", "merge"]

#: Tasks a checkpoint can declare; the first is the fluorescence inference of RI2FL.
TASKS = ("ri2fl", "organelle_seg", "cell_seg", "bf2fl", "dic2fl")
#: Input channels of the nucleus-conditioned cell network (task ``cell_seg``), in order;
#: the same as ``ri2fl.segment.cells.CELL_INPUTS``.
CELL_INPUTS = ("ri", "membrane", "this_nucleus", "other_nuclei")

#: Every option with its default. Unknown keys are refused, so typos do not pass silently.
DEFAULTS: dict[str, Any] = {
    "task": "ri2fl",
    "input_kind": "ri",
    "targets": list(TARGETS),
    "data": {
        "path": None,            # manifest.csv, a folder holding one, or a folder of paired files
        "train_split": "train",  # or a list of splits, e.g. [train, cells]
        "val_split": "val",
        "cell_types": None,      # keep only these cell types (manifest)
        "val_fraction": 0.2,     # plain folders: last fraction of the sorted files validates
        "medium_index": None,    # override the files' medium index
        "foreground_p": 0.9,     # probability that a patch is centred on a target's signal
        "empty_p": 0.0,          # probability of a patch of bare medium (RI input only)
        "sampling": "voxels",    # "structures": centre on each connected structure alike
        "threshold": 0.1,        # target value counted as signal
        "max_files": None,       # use at most this many files per split
        "cache_dtype": "float32",  # float16 halves the memory of the loaded volumes
        "fl_scale": 1.0,         # divide fluorescence by this (raw counts -> ~[0, 1])
        "channel_map": {},       # target name -> channel name in TCF / OME-Zarr files
        "load_workers": None,    # processes reading the files (None: up to 8 for >= 8 files)
        "membrane": "mask",      # cell_seg: membrane channel from the true mask, or a model
    },
    "arch": "unet3d",
    "model": {"in_channels": 1, "features": 12, "depth": 4, "multiplier": 2, "dropout": 0.1,
              "z_pool_levels": 2, "final_activation": None},
    "patch_size": [32, 96, 96],
    "tile_size": None,           # inference tile on the model's grid (None: the patch size)
    "voxel_size_um": list(CANONICAL_VOXEL_SIZE_UM),
    "batch_size": 2,
    "epochs": 100,
    "steps_per_epoch": 50,       # optimiser steps per epoch (cell_seg, null: every nucleus once)
    "val_patches": 16,
    "loss": "mse_gdl",
    "loss_options": {},          # e.g. {gdl_weight: 1.0}
    "metric": None,              # "pcc" or "dice"; default from the loss
    "optimizer": {"lr": 1.0e-3, "weight_decay": 0.0},
    "scheduler": {"factor": 0.2, "patience": 30, "min_lr": 1.0e-6},
    "augment": {"flip": True, "rot90": True, "elastic": 0.2, "elastic_magnitude": 3.0,
                "gamma": [0.8, 1.2], "noise": 0.02},
    "rescale": None,             # e.g. [0.5, 2.0]
    "out": "runs/train",
    "device": "auto",            # auto, cpu, cuda, cuda:1
    "bf16": False,               # bf16 autocast (CPU or GPU)
    "num_threads": None,         # torch CPU threads (1 on a shared machine)
    "num_workers": 0,
    "seed": 0,
    "max_minutes": None,         # stop cleanly after this much training time
    "finetune": None,            # start from this checkpoint's weights
    "tensorboard": False,        # also write TensorBoard events (needs the tensorboard extra)
    "half_checkpoint": False,    # store best.pt in float16 (half the size)
}


def merge(base: dict[str, Any], update: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``, refusing keys ``base`` does not have."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if key not in base:
            raise ConfigError(f"unknown option {where + key!r}", hint=f"known: {sorted(base)}")
        if isinstance(base[key], dict) and key not in ("loss_options", "channel_map"):
            if not isinstance(value, dict):
                raise ConfigError(f"option {where + key!r} must be a mapping")
            out[key] = merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path, kind: str = "file", what: str = "it") -> dict[str, Any]:
    """A YAML file's mapping; a missing file, invalid YAML or a non-mapping is a ConfigError
    (``no such {kind}``, ``{what} must be a mapping``)."""
    if not path.is_file():
        raise ConfigError(f"no such {kind}", path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML ({str(exc).splitlines()[0]})", path) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a mapping", path)
    return data


def load_config(config: str | Path | dict[str, Any] | None = None,
                where: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Return a complete, validated training configuration.

    Parameters
    ----------
    config : str, Path or dict, optional
        A YAML file or a mapping of options (see :data:`DEFAULTS`).
    where : str or Path, optional
        The file a mapping was read from, named in errors.
    **overrides
        Options applied last (``None`` values are ignored), e.g. ``epochs=5``.
    """
    if isinstance(config, (str, Path)):
        path = Path(config)
        user = read_yaml(path, "configuration file", "a training configuration")
        base_dir = path.parent
    else:
        user, base_dir, path = dict(config or {}), None, where
    check_options(user, path)
    defaults = DEFAULTS
    if user.get("arch", DEFAULTS["arch"]) != DEFAULTS["arch"]:
        # the model defaults are UNet3D's; another architecture takes its options as given
        defaults = {**DEFAULTS, "model": dict(user.get("model") or {})}
    cfg = merge(defaults, user)
    if cfg["task"] == "cell_seg" and "in_channels" not in (user.get("model") or {}):
        cfg["model"]["in_channels"] = len(CELL_INPUTS)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "data_path":
            cfg["data"]["path"] = value
            base_dir = None
        elif key == "channel_weights":
            cfg["loss_options"] = {**cfg["loss_options"], "channel_weights": value}
        elif key == "empty_p":
            cfg["data"]["empty_p"] = value
        else:
            cfg = merge(cfg, {key: value})
    if base_dir is not None and cfg["data"]["path"] and not Path(cfg["data"]["path"]).is_absolute():
        # data paths in a YAML file are relative to the file when they exist there
        candidate = base_dir / cfg["data"]["path"]
        if candidate.exists():
            cfg["data"]["path"] = str(candidate)
    check_options(cfg)
    _validate(cfg)
    return cfg


def _validate(cfg: dict[str, Any]) -> None:
    if cfg["tensorboard"] and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("tensorboard: true needs TensorBoard, which is not installed",
                          "tensorboard", "pip install 'ri2fl[tensorboard]', or set "
                                         "tensorboard: false (log.csv is always written)")
    if cfg["task"] not in TASKS:
        raise ConfigError(f"unknown task {cfg['task']!r}", "task", f"choose one of {TASKS}")
    if not cfg["targets"]:
        raise ConfigError("no targets", "targets", "name at least one target")
    if len(cfg["patch_size"]) != 3 or min(cfg["patch_size"]) < 1:
        raise ConfigError(f"patch_size must be 3 positive ints (z y x), got {cfg['patch_size']}")
    tile = cfg["tile_size"]
    if tile is not None and (len(tile) != 3 or min(tile) < 1):
        raise ConfigError(f"tile_size must be 3 positive ints (z y x) or null, got {tile}",
                          "tile_size")
    for key in ("batch_size", "epochs", "steps_per_epoch", "val_patches"):
        if cfg[key] is None and key == "steps_per_epoch" and cfg["task"] == "cell_seg":
            continue  # every training nucleus once per epoch
        if cfg[key] is None or int(cfg[key]) < 1:
            raise ConfigError(f"{key} must be >= 1, got {cfg[key]}", key)
    if cfg["rescale"] is not None and (len(cfg["rescale"]) != 2
                                       or not 0 < cfg["rescale"][0] <= cfg["rescale"][1]):
        raise ConfigError(f"rescale must be [min, max] zooms, got {cfg['rescale']}", "rescale")
    empty_p = float(cfg["data"]["empty_p"] or 0.0)
    if not 0.0 <= empty_p < 1.0:
        raise ConfigError(f"data.empty_p must be in [0, 1), got {empty_p}", "data.empty_p")
    if empty_p > 0 and cfg["input_kind"] != "ri":
        raise ConfigError("data.empty_p needs RI input (bare medium is simulated as RI)",
                          "data.empty_p", "set empty_p: 0 for brightfield or DIC")
    if cfg["data"]["sampling"] not in SAMPLINGS:
        raise ConfigError(f"unknown data.sampling {cfg['data']['sampling']!r}", "data.sampling",
                          f"choose one of {SAMPLINGS}")
    if cfg["metric"] not in (None, "pcc", "dice"):
        raise ConfigError(f"unknown metric {cfg['metric']!r}", "metric", "choose pcc or dice")
    if cfg["task"] == "cell_seg":
        _validate_cells(cfg)


def _validate_cells(cfg: dict[str, Any]) -> None:
    """The nucleus-conditioned cell network: whole fields, one nucleus per example."""
    if list(cfg["targets"]) != ["cell"]:
        raise ConfigError(f"the cell network predicts one target, 'cell', not {cfg['targets']}",
                          "targets", "set targets: [cell]")
    if cfg["input_kind"] != "ri":
        raise ConfigError("the cell network reads RI", "input_kind", "set input_kind: ri")
    if cfg["arch"] == "unet3d" and cfg["model"].get("in_channels") != len(CELL_INPUTS):
        raise ConfigError(f"the cell network takes {len(CELL_INPUTS)} inputs {CELL_INPUTS}",
                          "model.in_channels", f"set in_channels: {len(CELL_INPUTS)} or omit it")
    if int(cfg["batch_size"]) != 1:
        raise ConfigError("cell examples are whole fields of different sizes", "batch_size",
                          "set batch_size: 1")
    if cfg["loss_options"].get("channel_weights") == "auto":
        raise ConfigError("channel_weights: auto needs fluorescence targets",
                          "loss_options.channel_weights")
