"""The training engine: one loop for fluorescence regression and mask segmentation.

``train(config)`` reads paired data, draws random patches where the targets hold signal,
trains with Adam, steps ``ReduceLROnPlateau`` on the validation metric every epoch (PCC for
regression, Dice for masks), keeps the best checkpoint, writes ``last.pt`` after every epoch
(model, optimiser, scheduler, RNG state, epoch) so an interrupted run resumes where it
stopped, and logs to CSV and TensorBoard. It runs on CPU, one GPU, or several processes
under ``torchrun`` (DDP; see :mod:`ri2fl.train.distributed`).

Output folder::

    config.yaml   the resolved configuration
    best.pt       best checkpoint by validation metric (ri2fl.models.load reads it)
    last.pt       full training state for --resume
    log.csv       one row per epoch
    tb/           TensorBoard events
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from .. import __version__
from .._atomic import atomic_path
from ..data import (
    EmptyMediumPatches,
    PatchDataset,
    describe,
    list_samples,
    load_pair,
    manifest_weights,
    target_variances,
)
from ..data.dataset import DevicePatches
from ..errors import ConfigError, ModelError
from ..models import build, read_checkpoint, save_checkpoint
from ..models.refine import DEFAULT_SCALE
from ..progress import progress
from ..transforms import build_augmentation
from . import distributed as dist_utils
from .cells import CellExamples, cell_examples, membrane_model
from .config import CELL_INPUTS, load_config
from .losses import channel_weights_from_variance, get_loss

__all__ = ["Trainer", "train", "validate"]

log = logging.getLogger(__name__)

#: model options a fine-tuning run sets itself (the rest come from the checkpoint)
TRAINING_CHOICES = ("freeze_base",)

STATE_VERSION = 1


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("CUDA requested but no GPU is available", "device", "use --device cpu")
    return torch.device(name)


def _stored_targets(targets: Sequence[str]) -> list[str]:
    """Channel names as a model reports them: ``masks/nucleus`` -> ``nucleus``."""
    return [t.split("/", 1)[1] if t.startswith("masks/") else t for t in targets]


def _load_workers(requested: int | None, n_files: int) -> int:
    """Worker processes that read the files (0: this process): as asked (1 = this process
    too), or up to 8 when there are 8 files or more."""
    if requested is None:
        requested = min(8, os.cpu_count() or 1) if n_files >= 8 else 0
    workers = min(int(requested), n_files)
    return workers if workers > 1 else 0


class _Files(torch.utils.data.Dataset):
    """The paired files of one split, read one by one (for a DataLoader's workers)."""

    def __init__(self, rows: Sequence[tuple[Path, str]], load: partial):
        self.rows, self.load = list(rows), load

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        path, cell_type = self.rows[index]
        return self.load(path, cell_type=cell_type)


def _as_is(item):
    return item


class _Accumulator:
    """Pooled per-channel PCC or Dice over all validation voxels (float64 sums)."""

    def __init__(self, n_channels: int, metric: str):
        self.metric = metric
        self.sums = torch.zeros(6 if metric == "pcc" else 3, n_channels, dtype=torch.float64)

    def add(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        p = pred.detach().double().transpose(0, 1).reshape(pred.shape[1], -1).cpu()
        t = target.detach().double().transpose(0, 1).reshape(target.shape[1], -1).cpu()
        if self.metric == "pcc":
            parts = [p.new_full((p.shape[0],), p.shape[1]), p.sum(1), t.sum(1),
                     (p * p).sum(1), (t * t).sum(1), (p * t).sum(1)]
        else:
            pb, tb = (p > 0.5).double(), (t > 0.5).double()
            parts = [(pb * tb).sum(1), pb.sum(1), tb.sum(1)]
        self.sums += torch.stack(parts)

    def values(self, min_std: float = 1e-6) -> list[float]:
        s = self.sums
        if self.metric == "pcc":
            n, sp, st, spp, stt, spt = s
            cov = spt / n - sp * st / n**2
            sd_p = (spp / n - (sp / n) ** 2).clamp_min(0).sqrt().clamp_min(min_std)
            sd_t = (stt / n - (st / n) ** 2).clamp_min(0).sqrt().clamp_min(min_std)
            return (cov / (sd_p * sd_t)).clamp(-1, 1).tolist()
        inter, sp, st = s
        # two empty masks agree perfectly
        return torch.where(sp + st > 0, 2 * inter / (sp + st).clamp_min(1), 1.0).tolist()


@torch.no_grad()
def validate(model: nn.Module, loader: Sequence, loss_fn, metric: str, device: torch.device,
             bf16: bool = False) -> tuple[float, list[float]]:
    """Mean loss and per-channel metric (pooled PCC or Dice) of ``model`` on ``loader``.

    The model is in eval mode (no dropout) and the data carry no augmentation.
    """
    was_training = model.training
    model.eval()
    acc, losses = None, []
    for image, target in loader:
        image, target = image.to(device), target.to(device)
        with _autocast(device, bf16):
            pred = model(image)
        pred = pred.float()
        losses.append(float(loss_fn(pred, target)))
        if acc is None:
            acc = _Accumulator(target.shape[1], metric)
        acc.add(pred, target)
    model.train(was_training)
    return float(np.mean(losses)), acc.values()


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class Trainer:
    """Holds the model, data, optimiser and logs of one training run.

    Parameters
    ----------
    config : dict
        A complete configuration from :func:`ri2fl.train.config.load_config`.
    resume : bool
        Continue from ``<out>/last.pt`` if it exists.
    device_data : bool or "auto"
        Cut and augment the training patches on the device from volumes held there (or in
        pinned host memory), instead of in DataLoader workers
        (:class:`ri2fl.data.dataset.DevicePatches`: the same patches, the same loss curve).
        ``"auto"``: on CUDA, for the fluorescence task.
    """

    def __init__(self, config: dict[str, Any], resume: bool = False,
                 device_data: bool | str = "auto"):
        self.cfg = config
        self.device_data = device_data
        self.dist = dist_utils.setup()
        if config["num_threads"]:
            torch.set_num_threads(int(config["num_threads"]))
        self.device = _device(config["device"], self.dist.local_rank)
        self.out = Path(config["out"])
        self.metric = config["metric"] or ("dice" if config["loss"] == "dice_bce" else "pcc")
        torch.manual_seed(config["seed"])
        random.seed(config["seed"])
        self._init_model()
        self._init_data()
        self.loss_fn = get_loss(config["loss"], **self._loss_options())
        opt = config["optimizer"]
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=float(opt["lr"]),
                                          weight_decay=float(opt["weight_decay"]))
        sch = config["scheduler"]
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=float(sch["factor"]),
            patience=int(sch["patience"]), min_lr=float(sch["min_lr"]))
        self.epoch = 0
        self.best_metric = -math.inf
        self.best_epoch = -1
        if resume and (self.out / "last.pt").exists():
            self._load_state(self.out / "last.pt")
        self.ddp_model = dist_utils.wrap(self.model, self.dist, self.device)
        self._writer = None

    # ---- setup ---------------------------------------------------------------------------
    def _init_model(self) -> None:
        cfg = self.cfg
        prefix = ""
        if cfg["finetune"]:
            source = read_checkpoint(cfg["finetune"])
            prefix = self._adopt_architecture(source["config"])
        self.model_config = {"arch": cfg["arch"], "model": dict(cfg["model"]),
                             "targets": list(cfg["targets"])}
        self.model = build(self.model_config).to(self.device)
        self.model_config["model"]["out_channels"] = len(cfg["targets"])
        if cfg["finetune"]:
            self._load_matching(source["state_dict"], cfg["finetune"], prefix)

    def _adopt_architecture(self, source: dict[str, Any]) -> str:
        """Take the fine-tuned checkpoint's network; return the prefix its weights load under.

        A ``refined_unet3d`` configuration refines a ``unet3d`` checkpoint: the checkpoint
        becomes its coarse network (``model.base``, weights under ``base.``), whose grid must
        be ``model.scale`` times the configured one.
        """
        cfg = self.cfg
        source_arch = source.get("arch", "unet3d")
        source_model = dict(source.get("model", {}))
        if cfg["arch"] == "refined_unet3d" and source_arch == "unet3d":
            scale = cfg["model"].get("scale", DEFAULT_SCALE)
            expected = [v * s for v, s in zip(cfg["voxel_size_um"], scale)]
            coarse = source.get("voxel_size_um", expected)
            if not np.allclose(coarse, expected, rtol=1e-3):
                raise ConfigError(f"the checkpoint's grid {coarse} µm is not model.scale "
                                  f"{list(scale)} times voxel_size_um {cfg['voxel_size_um']}",
                                  "voxel_size_um", "set voxel_size_um to the checkpoint's "
                                  "grid divided by model.scale")
            # the refined network passes its own input and output channels to its base
            base = {k: v for k, v in source_model.items()
                    if k not in ("in_channels", "out_channels")}
            cfg["model"] = {**cfg["model"], "base": base}
            return "base."
        cfg["arch"] = source_arch
        # which part trains is this run's choice; the checkpoint decides only the shapes
        chosen = {k: cfg["model"][k] for k in TRAINING_CHOICES if k in cfg["model"]}
        cfg["model"] = {**source_model, "out_channels": None, **chosen}
        return ""

    def _load_matching(self, state: dict[str, torch.Tensor], where: str,
                       prefix: str = "") -> None:
        """Copy the weights whose names and shapes match (a new head is trained afresh)."""
        own = self.model.state_dict()
        state = {prefix + k: v for k, v in state.items()}
        matched = {k: v.float() if v.is_floating_point() else v for k, v in state.items()
                   if k in own and own[k].shape == v.shape}
        if not matched:
            raise ModelError("no weights of the checkpoint fit this model", where,
                             "fine-tune from a checkpoint of the same architecture")
        own.update(matched)
        self.model.load_state_dict(own)
        skipped = sorted(set(own) - set(matched))
        if skipped and self.dist.is_main:
            log.warning("fine-tuning: %d tensors re-initialised (%s...)", len(skipped),
                        skipped[0])

    def _rows(self, split: str | Sequence[str]) -> list[tuple[Path, str]]:
        """(file, cell type) of one split, or of several splits in turn."""
        data = self.cfg["data"]
        if not data["path"]:
            raise ConfigError("no training data given", "data.path",
                              "set data.path in the YAML or pass --data FOLDER")
        splits = [split] if isinstance(split, str) else list(split)
        rows = [row for name in splits for row in
                list_samples(data["path"], name, data["cell_types"], data["val_fraction"])]
        if data["max_files"]:
            rows = rows[: int(data["max_files"])]
        return rows

    def _load_split(self, split: str | Sequence[str]) -> list:
        cfg, data = self.cfg, self.cfg["data"]
        rows = self._rows(split)
        # the manifest's weights steer the training draws; validation stays as the data are
        weights = manifest_weights(data["path"]) if split == data["train_split"] else {}
        load = partial(load_pair, targets=cfg["targets"], input_kind=cfg["input_kind"],
                       voxel_size_um=cfg["voxel_size_um"], medium_index=data["medium_index"],
                       dtype=data["cache_dtype"], fl_scale=data["fl_scale"],
                       channel_map=data["channel_map"])
        # HDF5 decompression holds h5py's global lock, so threads would not help; torch's
        # DataLoader runs the reading in worker processes the way it runs patch sampling
        files = torch.utils.data.DataLoader(
            _Files(rows, load), batch_size=None, collate_fn=_as_is,
            num_workers=_load_workers(data["load_workers"], len(rows)))
        vols = list(progress(files, desc=f"loading {split}", total=len(rows),
                             disable=None if self.dist.is_main else True))
        for vol, (path, _) in zip(vols, rows, strict=True):
            vol.weight = weights.get(path, 1.0)
        return vols

    def _init_data(self) -> None:
        cfg, data = self.cfg, self.cfg["data"]
        if cfg["task"] == "cell_seg":
            self._init_cell_data()
            return
        train_vols = self._load_split(data["train_split"])
        val_vols = self._load_split(data["val_split"])
        self.data_summary = {"train": describe(train_vols), "val": describe(val_vols)}
        common = {"patch_size": cfg["patch_size"], "foreground_p": data["foreground_p"],
                  "threshold": data["threshold"]}
        self.train_set = PatchDataset(
            train_vols, n_patches=cfg["steps_per_epoch"] * cfg["batch_size"] * self.dist.world,
            augment=build_augmentation(cfg["augment"]), seed=cfg["seed"],
            rescale=cfg["rescale"], sampling=data["sampling"], **common, **self._empty_patches())
        # fixed patches, never augmented, drawn the default way: comparable from one epoch
        # (and one configuration) to the next
        self.val_set = PatchDataset(val_vols, n_patches=cfg["val_patches"], augment=None,
                                    seed=cfg["seed"] + 1, **common)
        self.sampler = dist_utils.sampler(self.train_set, self.dist)
        self.train_loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=cfg["batch_size"], sampler=self.sampler,
            shuffle=False, num_workers=cfg["num_workers"], drop_last=True,
            persistent_workers=False, pin_memory=self.device.type == "cuda")
        self.val_loader = torch.utils.data.DataLoader(
            self.val_set, batch_size=cfg["batch_size"], shuffle=False,
            num_workers=cfg["num_workers"])
        use = self.device_data
        if use == "auto":
            use = self.device.type == "cuda"
        self.device_patches = DevicePatches(self.train_set, self.device) if use else None

    def _device_batches(self):
        """The loader's batches (same sampler order, same ``drop_last``), cut on the device."""
        # a DataLoader iterator draws one seed from torch's generator: drawing it here too
        # keeps the dropout masks, and so the loss curve, those of the loader path
        torch.empty((), dtype=torch.int64).random_()
        indices, size = list(iter(self.sampler)), self.cfg["batch_size"]
        for i in range(0, len(indices) - size + 1, size):
            yield self.device_patches.batch(indices[i:i + size])

    def _cell_split(self, split: str | Sequence[str], membrane: nn.Module | None) -> list:
        """Cell-network examples of the files of one split (one per nucleus)."""
        rows = self._rows(split)
        build = partial(cell_examples, voxel_size_um=self.cfg["voxel_size_um"],
                        membrane=membrane, medium_index=self.cfg["data"]["medium_index"])
        name = split if isinstance(split, str) else "+".join(split)
        files = progress(rows, desc=f"cell examples {name}",
                         disable=None if self.dist.is_main else True)
        return [example for path, _ in files for example in build(path)]

    def _init_cell_data(self) -> None:
        """Whole-field examples of the cell network (``task: cell_seg``), batch size 1."""
        cfg, data = self.cfg, self.cfg["data"]
        membrane = membrane_model(data["membrane"])
        train_ex = self._cell_split(data["train_split"], membrane)
        val_ex = self._cell_split(data["val_split"], membrane)
        self.data_summary = {"train": {"files": len(self._rows(data["train_split"])),
                                       "nuclei": len(train_ex)},
                             "val": {"files": len(self._rows(data["val_split"])),
                                     "nuclei": len(val_ex)}}
        steps = cfg["steps_per_epoch"]
        self.train_set = CellExamples(train_ex, steps * self.dist.world if steps else None,
                                      augment=dict(cfg["augment"]), seed=cfg["seed"])
        self.val_set = CellExamples(val_ex)
        self.sampler = dist_utils.sampler(self.train_set, self.dist)
        self.train_loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=1, sampler=self.sampler, shuffle=False,
            num_workers=cfg["num_workers"], pin_memory=self.device.type == "cuda")
        self.val_loader = torch.utils.data.DataLoader(self.val_set, batch_size=1, shuffle=False)

    def _empty_patches(self) -> dict[str, Any]:
        """``empty_p`` / ``empty_source`` of the training set (bare-medium patches)."""
        empty_p = float(self.cfg["data"]["empty_p"] or 0.0)  # validated by load_config
        if empty_p == 0.0:
            return {}
        return {"empty_p": empty_p,
                "empty_source": EmptyMediumPatches(tuple(self.cfg["voxel_size_um"]))}

    def _loss_options(self) -> dict[str, Any]:
        """Loss options with ``channel_weights: auto`` resolved from the training targets."""
        options = dict(self.cfg["loss_options"])
        if options.get("channel_weights") == "auto":
            variances = target_variances(self.train_set.volumes)
            options["channel_weights"] = channel_weights_from_variance(variances)
            self.cfg["loss_options"] = options  # the checkpoint records the numbers used
            if self.dist.is_main:
                log.info("channel weights %s", dict(zip(self.cfg["targets"],
                                                        options["channel_weights"])))
        return options

    # ---- state ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"written_by": f"ri2fl {__version__}", "state_version": STATE_VERSION,
                "epoch": self.epoch,
                "best_metric": self.best_metric, "best_epoch": self.best_epoch,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "rng": rng,
                "model_config": self.model_config}

    def _load_state(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise ModelError(f"cannot resume ({type(exc).__name__}: {exc})"[:300], path,
                             "delete last.pt to start afresh") from None
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError:
            raise ConfigError("last.pt was written for another model or targets", path,
                              "use the same configuration to resume, or another --out") \
                from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.best_metric = float(state["best_metric"])
        self.best_epoch = int(state["best_epoch"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        random.setstate((3, tuple(state["rng"]["python"]), None))
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        if self.dist.is_main:
            log.info("resumed from %s at epoch %d", path, self.epoch)

    def checkpoint_config(self) -> dict[str, Any]:
        """The configuration stored in ``best.pt``: model, metadata and training recipe."""
        cfg = self.cfg
        recipe = {k: cfg[k] for k in ("loss", "loss_options", "optimizer", "scheduler",
                                      "augment", "rescale", "batch_size", "steps_per_epoch",
                                      "seed", "bf16")}
        recipe["data"] = {**cfg["data"], "summary": self.data_summary}
        out = {**self.model_config, "targets": _stored_targets(cfg["targets"]),
               "patch_size": list(cfg["patch_size"]),
               "tile_size": list(cfg["tile_size"]) if cfg["tile_size"] else None,
               "voxel_size_um": list(cfg["voxel_size_um"]), "task": cfg["task"],
               "input_kind": cfg["input_kind"],
               "input_norm": "ri" if cfg["input_kind"] == "ri" else "percentile",
               "training": recipe}
        if cfg["task"] == "cell_seg":
            # whole fields, no patches; the inputs that ri2fl.segment.cells stacks
            out.update(input_kind="ri+masks", inputs=list(CELL_INPUTS), patch_size=[0, 0, 0],
                       tile_size=None)
        return out

    # ---- logging -------------------------------------------------------------------------
    def _log(self, row: dict[str, Any]) -> None:
        path = self.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.cfg["tensorboard"]:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter
                self._writer = SummaryWriter(str(self.out / "tb"))
            for key, value in row.items():
                if key != "epoch":
                    self._writer.add_scalar(key, value, row["epoch"])
            self._writer.flush()

    # ---- loop ----------------------------------------------------------------------------
    def _train_epoch(self) -> tuple[float, float]:
        self.ddp_model.train()
        self.train_set.set_epoch(self.epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)
        losses, n, t0 = [], 0, time.perf_counter()
        batches = (self._device_batches() if getattr(self, "device_patches", None) is not None
                   else self.train_loader)
        for image, target in progress(batches, desc=f"epoch {self.epoch + 1}",
                                      disable=None if self.dist.is_main else True):
            image, target = image.to(self.device), target.to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            with _autocast(self.device, self.cfg["bf16"]):
                pred = self.ddp_model(image)
            loss = self.loss_fn(pred.float(), target)
            if not torch.isfinite(loss):
                raise ModelError(f"training diverged (loss {float(loss)}) at epoch "
                                 f"{self.epoch + 1}", hint="lower optimizer.lr")
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
            n += image.shape[0]
        seconds = time.perf_counter() - t0
        return float(np.mean(losses)), n * self.dist.world / max(seconds, 1e-9)

    def fit(self) -> Path:
        """Train until ``epochs`` (or ``max_minutes``); return the best checkpoint's path."""
        cfg, main = self.cfg, self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            # a rerun into the same folder replaces ri2fl's own files there, nothing else
            with atomic_path(self.out / "config.yaml", overwrite=True) as tmp:
                tmp.write_text(f"# written by ri2fl {__version__}\n"
                               + yaml.safe_dump(cfg, sort_keys=False))
        started = time.perf_counter()
        names = _stored_targets(cfg["targets"])
        while self.epoch < cfg["epochs"]:
            t0 = time.perf_counter()
            train_loss, rate = self._train_epoch()
            val_loss, per_target = validate(self.model, self.val_loader, self.loss_fn,
                                            self.metric, self.device, cfg["bf16"])
            score = float(np.mean(per_target))
            self.scheduler.step(score)
            self.epoch += 1
            improved = score > self.best_metric
            if improved:
                self.best_metric, self.best_epoch = score, self.epoch
            if main:
                if improved:
                    save_checkpoint(self.out / "best.pt", self.model, self.checkpoint_config(),
                                    extra={"epoch": self.epoch, f"val_{self.metric}": score,
                                           "per_target": dict(zip(names, per_target))},
                                    half=bool(cfg["half_checkpoint"]), overwrite=True)
                with atomic_path(self.out / "last.pt", overwrite=True) as tmp:
                    torch.save(self._state(), tmp)
                row = {"epoch": self.epoch, "train_loss": train_loss, "val_loss": val_loss,
                       f"val_{self.metric}": score, "lr": self.optimizer.param_groups[0]["lr"],
                       "patches_per_s": rate, "seconds": time.perf_counter() - t0}
                util = _gpu_utilisation(self.device)
                if util is not None:
                    row["gpu_utilisation_pct"] = util
                row.update({f"{self.metric}_{n}": v for n, v in zip(names, per_target)})
                self._log(row)
                log.info("epoch %d train %.4g val %.4g %s %.4f", self.epoch, train_loss,
                         val_loss, self.metric, score)
            if cfg["max_minutes"] and (time.perf_counter() - started) / 60 > cfg["max_minutes"]:
                break
        dist_utils.barrier(self.dist)
        if self._writer is not None:
            self._writer.close()
        return self.out / "best.pt"


def _gpu_utilisation(device: torch.device) -> float | None:
    """The GPU's utilisation over the last sample period (%), where the driver reports it."""
    if device.type != "cuda" or not hasattr(torch.cuda, "utilization"):
        return None
    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # no NVML (pynvml) or a driver without the query
        return None


def train(config: str | Path | dict[str, Any], resume: bool = False,
          device_data: bool | str = "auto", **overrides: Any) -> Path:
    """Train a network and return the path of its best checkpoint.

    Parameters
    ----------
    config : str, Path or dict
        A YAML file or mapping of options (see :data:`ri2fl.train.config.DEFAULTS`).
    resume : bool
        Continue an interrupted run from ``<out>/last.pt``.
    device_data : bool or "auto"
        Cut and augment patches on the device (see :class:`Trainer`).
    **overrides
        Options that replace the configuration's, e.g. ``epochs=10, out="runs/x"``.

    Examples
    --------
    >>> best = train("configs/default.yaml", data_path="data/sim", epochs=2)  # doctest: +SKIP
    >>> ri2fl.models.load(best).targets                                       # doctest: +SKIP
    """
    cfg = load_config(config, **overrides)
    trainer = Trainer(cfg, resume=resume, device_data=device_data)
    try:
        return trainer.fit()
    finally:
        dist_utils.cleanup(trainer.dist)
