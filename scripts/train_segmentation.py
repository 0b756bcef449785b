"""Build the shipped segmentation models from simulated data (fibroblasts only).

Steps (run in order, or ``all``); every step reads/writes under ``--root``:

- ``simulate``: paired fibroblast FOVs (train/val) and held-out FOVs of the other families
  (test), with a ``manifest.csv``.
- ``organelles``: the multi-task organelle U-Net with the shared training engine
  (``configs/segment.yaml``), copied to ``src/ri2fl/models/weights/segment-default.pt``.
- ``cells``: the nucleus-conditioned cell network (``configs/segment_cells.yaml``) ->
  ``cell-default.pt``.
- ``classifiers``: training data of the default random forests (voxel classifier for the
  watershed route, 2D lipid-droplet classifier) -> ``src/ri2fl/segment/_defaults/*.npz``.
- ``evaluate``: Dice per organelle and cell-instance F1 (IoU 0.5) for both cell methods on
  the held-out families -> ``<root>/evaluation.csv`` and a Markdown table.

Example::

    python scripts/train_segmentation.py all --root runs/segment --minutes 25
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "ri2fl" / "models" / "weights"
DEFAULTS = REPO / "src" / "ri2fl" / "segment" / "_defaults"
HELD_OUT = ("epithelial", "hek293", "mda_mb_231", "astrocyte", "macrophage", "hepatocyte")
log = logging.getLogger("train_segmentation")


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def simulate(root: Path, n_train: int, n_val: int, n_test: int,
             shape: tuple[int, int, int], n_cluster: int = 8, test_seed: int = 3000) -> Path:
    """Write paired FOVs and ``manifest.csv`` (path, cell_type, seed, split).

    Splits: ``train``/``val`` fibroblast FOVs of ``shape`` (the organelle network),
    ``cells`` larger fibroblast fields of touching clusters (the cell network also learns
    from them: fibroblasts are 30-55 µm, so a 38 µm field rarely holds two) and ``test``
    FOVs of every held-out family (seeds from ``test_seed``: another value gives an
    independent held-out set).
    """
    from ri2fl.io import write_paired
    from ri2fl.simulate import simulate_fov

    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    plan = [("fibroblast", 1000 + i, "train", shape, {}) for i in range(n_train)]
    plan += [("fibroblast", 2000 + i, "val", shape, {}) for i in range(n_val)]
    plan += [("fibroblast", 4000 + i, "cells", (48, 384, 384),
              {"cluster": True, "n_cells": 3}) for i in range(n_cluster)]
    plan += [(ct, test_seed + 10 * k + i, "test", shape, {}) for k, ct in enumerate(HELD_OUT)
             for i in range(n_test)]
    rows = []
    for cell_type, seed, split, fov_shape, options in plan:
        path = data / f"{cell_type}_{seed}.h5"
        if not path.exists():
            t0 = time.time()
            fov = simulate_fov(cell_type, seed=seed, shape=fov_shape, **options)
            write_paired(path, fov.to_paired())
            log.info("%s %s (%d cells) in %.0f s", split, path.name,
                     int(fov.cell_labels.max()), time.time() - t0)
        rows.append({"path": path.name, "cell_type": cell_type, "seed": seed, "split": split})
        _write_manifest(data / "manifest.csv", rows)  # after every file: usable meanwhile
    return data / "manifest.csv"


def _write_manifest(path: Path, rows: list[dict]) -> None:
    from ri2fl._atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "cell_type", "seed", "split"])
        writer.writeheader()
        writer.writerows(rows)


def _samples(root: Path, split: str) -> list[Path]:
    return [path for path, _ in _samples_with_type(root, split)]


def _samples_with_type(root: Path, split: str) -> list[tuple[Path, str]]:
    """(file, cell type) of one split of ``root/data/manifest.csv``."""
    with open(root / "data" / "manifest.csv") as fh:
        return [(root / "data" / r["path"], r["cell_type"]) for r in csv.DictReader(fh)
                if r["split"] == split]


def _install(best: Path, name: str) -> Path:
    """Copy a checkpoint into the package's weights with its checksum sidecar."""
    from ri2fl.models import write_sha256

    dest = WEIGHTS / f"{name}.pt"
    shutil.copyfile(best, dest)
    write_sha256(dest)
    log.info("installed %s", dest)
    return dest


# --------------------------------------------------------------------------------------
# organelle network (shared engine)
# --------------------------------------------------------------------------------------
def train_organelles(root: Path, minutes: float, config: Path) -> Path:
    from ri2fl.train import train

    best = train(str(config), data_path=str(root / "data" / "manifest.csv"),
                 out=str(root / "organelles"), max_minutes=minutes)
    return _install(Path(best), "segment-default")


def weighted_dice_bce(prob: torch.Tensor, target: torch.Tensor,
                      pos_weight: torch.Tensor) -> torch.Tensor:
    """Dice + BCE per organelle, summed; the BCE weighs foreground voxels by ``pos_weight``.

    With plain BCE the rare organelles (nucleoli, droplets: < 0.1 % of voxels) sit at the
    base rate for hundreds of steps; weighting their voxels up is the usual remedy.
    """
    prob = prob.float().clamp(1e-6, 1 - 1e-6)
    target = target.float()
    dims = [0, *range(2, prob.ndim)]
    inter = (prob * target).sum(dims)
    dice = 1 - (2 * inter + 1) / (prob.sum(dims) + target.sum(dims) + 1)
    w = pos_weight.view(1, -1, *([1] * (prob.ndim - 2)))
    bce = -(w * target * prob.log() + (1 - target) * (1 - prob).log()).mean(dims)
    return (dice + bce).sum()


def finetune_organelles(root: Path, minutes: float, config: Path, init: Path,
                        pos_weight: tuple[float, ...] = (3.0, 10.0, 1.0, 10.0),
                        scale: tuple[float, float] = (0.6, 2.0)) -> Path:
    """Compact training loop on the engine's pieces (data, augmentation, checkpoints),
    with :func:`weighted_dice_bce`; starts from ``init`` and keeps the best validation Dice.
    """
    from ri2fl.data.dataset import PatchDataset, load_pair
    from ri2fl.models import build, read_checkpoint, save_checkpoint
    from ri2fl.train.config import load_config
    from ri2fl.transforms.augment import build_augmentation

    cfg = load_config(str(config))
    torch.set_num_threads(1)
    torch.manual_seed(cfg["seed"])
    model_cfg = {"arch": "unet3d", "model": dict(cfg["model"]), "targets": cfg["targets"]}
    model = build(model_cfg)
    state = read_checkpoint(init)["state_dict"]
    model.load_state_dict({k: v.float() for k, v in state.items()})
    vols = {sp: [load_pair(root / "data" / p.name, cfg["targets"], "ri")
                 for p in _samples(root, sp)] for sp in ("train", "val")}
    common = {"patch_size": cfg["patch_size"], "foreground_p": cfg["data"]["foreground_p"],
              "threshold": cfg["data"]["threshold"]}
    train_set = PatchDataset(vols["train"], n_patches=10 ** 6, seed=cfg["seed"],
                             augment=build_augmentation(cfg["augment"]),
                             rescale=cfg["rescale"], **common)
    val_set = PatchDataset(vols["val"], n_patches=24, seed=cfg["seed"] + 1, **common)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["optimizer"]["lr"]))
    weight = torch.tensor(pos_weight)
    names = [t.split("/")[-1] for t in cfg["targets"]]
    out = root / "organelles_ft"
    out.mkdir(parents=True, exist_ok=True)
    ck_cfg = {**model_cfg, "targets": names, "task": "organelle_seg", "input_kind": "ri",
              "patch_size": list(cfg["patch_size"]), "voxel_size_um": cfg["voxel_size_um"],
              "loss": "dice_bce (foreground-weighted BCE)", "pos_weight": list(pos_weight),
              "intensity_scale": list(scale),
              "trained_on": "simulated fibroblast FOVs", "init": str(init)}
    best, t0, step, bs = -1.0, time.time(), 0, int(cfg["batch_size"])
    while time.time() - t0 < 60 * minutes:
        model.train()
        for _ in range(20):
            batch = [train_set[step * bs + k] for k in range(bs)]
            x = torch.stack([b[0] for b in batch])
            # intensity rescaling: RI contrast differs between cell types (a round HL60 is
            # denser than a flat fibroblast), the organelles' relative contrast does not
            x = (x * torch.exp(torch.empty(bs, 1, 1, 1, 1).uniform_(*np.log(scale)))).clamp(0, 1)
            y = (torch.stack([b[1] for b in batch]) > 0.5).float()
            loss = weighted_dice_bce(model(x), y, weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        dice = _validate_organelles(model, val_set)
        log.info("organelles step %d loss %.3f val dice %s (%.1f min)", step, loss.item(),
                 dict(zip(names, np.round(dice, 3))), (time.time() - t0) / 60)
        if float(np.mean(dice)) > best:
            best = float(np.mean(dice))
            save_checkpoint(out / "best.pt", model, ck_cfg,
                            extra={"step": step, "val_dice": dict(zip(names, dice))})
    return _install(out / "best.pt", "segment-default")


@torch.no_grad()
def _validate_organelles(model: torch.nn.Module, val_set) -> list[float]:
    """Dice per channel pooled over the fixed validation patches (threshold 0.5)."""
    model.eval()
    inter = total = 0.0
    for i in range(len(val_set)):
        x, y = val_set[i]
        p = model(x[None])[0] > 0.5
        t = y > 0.5
        inter = inter + (p & t).sum(dim=(1, 2, 3)).double()
        total = total + (p.sum(dim=(1, 2, 3)) + t.sum(dim=(1, 2, 3))).double()
    return [float(v) for v in torch.where(total > 0, 2 * inter / total, 1.0)]


# --------------------------------------------------------------------------------------
# cell network (compact loop: its inputs are built per nucleus, not read from files)
# --------------------------------------------------------------------------------------
def _cell_examples(path: Path, cell_vs: tuple[float, float, float], rng: np.random.Generator,
                   organelle_model: torch.nn.Module | None = None) -> list[np.ndarray]:
    """(inputs (4, z, y, x), target (z, y, x)) pairs of one FOV, one per nucleus instance.

    Nuclei come from the ground-truth nucleus mask split as at inference; the membrane
    channel is the organelle network's probability when given (what the cell network sees
    in use), else the true whole-cell mask blurred.
    """
    from scipy import ndimage as ndi

    from ri2fl.io import read_paired
    from ri2fl.segment._grid import normalize_ri, resize, shape_for
    from ri2fl.segment.cells import cell_network_inputs, nucleus_instances, soft_nuclei
    from ri2fl.segment.organelles import predict_organelles

    s = read_paired(path)
    ri_n = normalize_ri(s.ri, s.medium_index)
    if organelle_model is not None:
        membrane = predict_organelles(ri_n, organelle_model)["membrane"]
    else:
        membrane = ndi.gaussian_filter(s.masks["membrane"].astype(np.float32), 1.0)
    nuclei = nucleus_instances(s.masks["nucleus"], s.voxel_size_um)
    if nuclei.max() == 0:
        return []
    coarse = shape_for(s.ri.shape, s.voxel_size_um, cell_vs)
    inputs = cell_network_inputs(resize(ri_n, coarse, 1, True), resize(membrane, coarse, 1, True),
                                 soft_nuclei(nuclei, coarse))
    out = []
    for i in range(1, int(nuclei.max()) + 1):
        # the true cell of nucleus i: the cell label under most of its voxels
        owner = np.bincount(s.cell_labels[nuclei == i]).argmax()
        target = resize((s.cell_labels == owner).astype(np.float32), coarse, 1, True)
        out.append((inputs[i - 1], target))
    return out


def train_cells(root: Path, minutes: float, config: Path) -> Path:
    from ri2fl.models import build, load, save_checkpoint
    from ri2fl.progress import progress
    from ri2fl.train.losses import dice_bce_loss

    cfg = yaml.safe_load(config.read_text())
    torch.set_num_threads(int(cfg.get("num_threads", 1)))
    torch.manual_seed(cfg.get("seed", 0))
    rng = np.random.default_rng(cfg.get("seed", 0))
    cell_vs = tuple(cfg["voxel_size_um"])
    organelle = load("segment-default") if cfg.get("membrane_from_network", True) and \
        (WEIGHTS / "segment-default.pt").exists() else None
    files = _samples(root, "train") + _samples(root, "cells")
    train_ex = [e for p in progress(files, desc="cells: train data")
                for e in _cell_examples(p, cell_vs, rng, organelle)]
    val_ex = [e for p in _samples(root, "val") for e in _cell_examples(p, cell_vs, rng, organelle)]
    log.info("cell network: %d training, %d validation nuclei", len(train_ex), len(val_ex))
    model_cfg = {"arch": "unet3d", "model": dict(cfg["model"]), "targets": ["cell"]}
    model = build(model_cfg)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.get("lr", 1e-3)))
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.2,
                                                       patience=int(cfg.get("patience", 30)))
    out = root / "cells"
    out.mkdir(parents=True, exist_ok=True)
    ck_cfg = {**model_cfg, "task": "cell_seg", "input_kind": "ri+masks",
              "inputs": ["ri", "membrane", "this_nucleus", "other_nuclei"],
              "voxel_size_um": list(cell_vs), "patch_size": [0, 0, 0],
              "loss": "dice_bce", "trained_on": "simulated fibroblast FOVs",
              "training": {k: v for k, v in cfg.items() if k != "model"}}
    best, best_path, t0, epoch = -1.0, out / "best.pt", time.time(), 0
    while time.time() - t0 < 60 * minutes and epoch < int(cfg.get("epochs", 1000)):
        model.train()
        for j in rng.permutation(len(train_ex)):
            x, y = _augment(*train_ex[j], rng)
            loss = dice_bce_loss(model(torch.from_numpy(x[None])),
                                 torch.from_numpy((y[None, None] > 0.5).astype(np.float32)))
            opt.zero_grad()
            loss.backward()
            opt.step()
        dice = _validate_cells(model, val_ex)
        sched.step(dice)
        epoch += 1
        log.info("cells epoch %d loss %.4f val dice %.4f (%.1f min)", epoch, loss.item(), dice,
                 (time.time() - t0) / 60)
        if dice > best:
            best = dice
            save_checkpoint(best_path, model, ck_cfg, extra={"epoch": epoch, "val_dice": dice})
    return _install(best_path, "cell-default")


def _augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """Random flips and 90° rotations in the plane, and membrane noise."""
    if rng.random() < 0.5:
        x, y = x[..., ::-1], y[..., ::-1]
    if rng.random() < 0.5:
        x, y = x[..., ::-1, :], y[..., ::-1, :]
    k = int(rng.integers(4))
    x, y = np.rot90(x, k, axes=(-2, -1)), np.rot90(y, k, axes=(-2, -1))
    x = np.ascontiguousarray(x).copy()
    x[1] = np.clip(x[1] + 0.05 * rng.standard_normal(x[1].shape), 0, 1)
    return x.astype(np.float32), np.ascontiguousarray(y)


@torch.no_grad()
def _validate_cells(model: torch.nn.Module, examples: list) -> float:
    model.eval()
    inter = total = 0.0
    for x, y in examples:
        p = model(torch.from_numpy(x[None]))[0, 0].numpy() > 0.5
        t = y > 0.5
        inter += float((p & t).sum())
        total += float(p.sum() + t.sum())
    return 2 * inter / total if total else 1.0


# --------------------------------------------------------------------------------------
# random forests
# --------------------------------------------------------------------------------------
#: Range of the random intensity factors the default forests also learn from.
INTENSITY_SCALE = (0.3, 1.5)


def build_classifiers(root: Path, n_files: int = 2, per_class: int = 1500) -> None:
    """Store the training data of the default voxel and lipid classifiers."""
    from ri2fl.infer import predict_volume
    from ri2fl.io import read_paired
    from ri2fl.models import available
    from ri2fl.segment import train_lipid_classifier, train_voxel_classifier
    from ri2fl.segment._grid import normalize_ri, to_grid
    from ri2fl.segment.watershed import WORKING_VOXEL_SIZE_UM

    rng = np.random.default_rng(0)
    DEFAULTS.mkdir(parents=True, exist_ok=True)
    fl_vols, ri_vols, labels, lipid_imgs, lipid_labs = [], [], [], [], []
    have_fl_model = "default" in available()
    if not have_fl_model:
        log.warning("no 'default' fluorescence model: classifiers learn from true FL")
    for path in _samples(root, "train")[:n_files]:
        s = read_paired(path)
        # in use the classifiers see inferred fluorescence, so they learn from inferred FL
        fl = predict_volume(s.ri, s.voxel_size_um, medium_index=s.medium_index).fl \
            if have_fl_model else s.fl
        vs = s.voxel_size_um
        fl_vols.append(np.stack([to_grid(np.asarray(fl[c]), vs, WORKING_VOXEL_SIZE_UM)
                                 for c in ("nucleus", "membrane")]))
        ri_vols.append(normalize_ri(to_grid(s.ri, vs, WORKING_VOXEL_SIZE_UM),
                                    s.medium_index)[None])
        classes = np.where(s.nucleus_labels > 0, 2, np.where(s.cell_labels > 0, 1, 0))
        labels.append(_sparse(to_grid(classes, vs, WORKING_VOXEL_SIZE_UM, order=0), rng,
                              per_class))
        lipid_imgs.append(np.asarray(fl["lipid_droplets"]).max(0))
        lipid_labs.append(_sparse(s.masks["lipid_droplets"].max(0).astype(np.int8), rng,
                                  per_class // 3, margin=True))
    # inferred fluorescence is dimmer in other cell types than in the training fibroblasts
    # (nucleus 0.42 inside a held-out epithelial nucleus): learn relative contrast
    train_voxel_classifier(fl_vols, labels, ("nucleus", "membrane"),
                           intensity_scale=INTENSITY_SCALE).save(DEFAULTS / "voxel_fl.npz")
    train_voxel_classifier(ri_vols, labels, ("ri",),
                           intensity_scale=INTENSITY_SCALE).save(DEFAULTS / "voxel_ri.npz")
    train_lipid_classifier(lipid_imgs, lipid_labs).save(DEFAULTS / "lipid2d.npz")
    log.info("classifier training data written to %s", DEFAULTS)


def _sparse(classes: np.ndarray, rng: np.random.Generator, per_class: int,
            margin: bool = False) -> np.ndarray:
    """Sparse labels: ``per_class`` random voxels of each class, the rest -1."""
    from scipy import ndimage as ndi

    lab = np.full(classes.shape, -1, np.int8)
    for k in np.unique(classes):
        region = classes == k
        if margin and k == 0:  # background scribbles away from droplet borders
            region &= ~ndi.binary_dilation(classes > 0, iterations=2)
        idx = np.flatnonzero(region)
        lab.flat[rng.choice(idx, min(per_class, idx.size), replace=False)] = k
    return lab


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------
def evaluate(root: Path, split: str = "test", per_family: int | None = None,
             with_fl: bool = True) -> Path:
    """Dice per organelle and cell-instance F1 (IoU 0.5) of every route on held-out families.

    Routes: ``network`` (Choi et al.), ``watershed_ri`` (forest on RI features) and, with
    ``with_fl``, ``watershed_fl`` (forest on the nucleus/membrane fluorescence inferred by the
    default RI2FL model) plus the 2D lipid-droplet classifier on the inferred lipid channel.
    """
    import pandas as pd

    from ri2fl.evaluate.metrics import dice, match_instances
    from ri2fl.infer import predict_volume
    from ri2fl.io import read_paired
    from ri2fl.segment import segment_lipid_droplets_2d, segment_volume

    rows, seen = [], {}
    for path, family in _samples_with_type(root, split):
        seen[family] = seen.get(family, 0) + 1
        if per_family is not None and seen[family] > per_family:
            continue
        s = read_paired(path)
        row = {"file": path.name, "cell_type": family,
               "n_cells": int(len(np.unique(s.cell_labels)) - 1)}
        t0 = time.time()
        net = segment_volume(s.ri, s.voxel_size_um, s.medium_index, method="network",
                             return_probabilities=True)
        row["seconds_network"] = round(time.time() - t0, 1)
        segs = {"network": net}
        t0 = time.time()
        segs["watershed_ri"] = segment_volume(s.ri, s.voxel_size_um, s.medium_index,
                                              method="watershed", fl=None,
                                              probabilities=net.probabilities)
        row["seconds_watershed_ri"] = round(time.time() - t0, 1)
        if with_fl:
            fl = predict_volume(s.ri, s.voxel_size_um, medium_index=s.medium_index,
                                targets=["nucleus", "membrane", "lipid_droplets"]).fl
            segs["watershed_fl"] = segment_volume(
                s.ri, s.voxel_size_um, s.medium_index, method="watershed",
                fl={"nucleus": fl["nucleus"], "membrane": fl["membrane"]},
                probabilities=net.probabilities)
            ld2d, _ = segment_lipid_droplets_2d(fl["lipid_droplets"], s.voxel_size_um)
            row["dice_lipid_droplets_2d"] = dice(s.masks["lipid_droplets"].max(0), ld2d > 0)
        for m in ("nucleus", "nucleolus", "membrane", "lipid_droplets"):
            row[f"dice_{m}"] = dice(s.masks[m], net.masks[m])
        for name, seg in segs.items():
            match = match_instances(s.cell_labels, seg.cell_labels, 0.5)
            row[f"f1_{name}"] = match.f1
            row[f"cells_{name}"] = match.n_pred
        rows.append(row)
        log.info("%s", row)
        df = pd.DataFrame(rows)
        df.to_csv(root / f"evaluation_{split}.csv", index=False)  # after every file
    cols = [c for c in df.columns if c.startswith(("dice_", "f1_"))]
    summary = df.groupby("cell_type")[cols].mean()
    summary.loc["all (mean)"] = df[cols].mean()
    summary.loc["all (s.d.)"] = df[cols].std()
    (root / f"evaluation_{split}.md").write_text(_markdown(summary))
    print(summary.round(3).to_string())
    return root / f"evaluation_{split}.csv"


def _markdown(table) -> str:
    """A pandas table as a Markdown table (no extra dependency)."""
    head = ["", *map(str, table.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx), *(f"{v:.3f}" for v in row)]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["simulate", "organelles", "finetune", "cells",
                                    "classifiers", "evaluate", "all"])
    p.add_argument("--root", type=Path, default=REPO / "runs" / "segment")
    p.add_argument("--minutes", type=float, default=25.0, help="training time per network")
    p.add_argument("--n-train", type=int, default=16)
    p.add_argument("--n-val", type=int, default=3)
    p.add_argument("--n-test", type=int, default=2, help="held-out FOVs per family")
    p.add_argument("--shape", type=int, nargs=3, default=[64, 256, 256])
    p.add_argument("--n-cluster", type=int, default=8,
                   help="fields of touching fibroblasts for the cell network")
    p.add_argument("--test-seed", type=int, default=3000,
                   help="first seed of the held-out fields (another gives an independent set)")
    p.add_argument("--split", default="test", help="split to evaluate")
    p.add_argument("--per-family", type=int, default=None,
                   help="evaluate at most this many files per family")
    p.add_argument("--no-fl", action="store_true",
                   help="evaluate without the routes that need inferred fluorescence")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    steps = ["simulate", "organelles", "finetune", "cells", "classifiers", "evaluate"] \
        if args.step == "all" else [args.step]
    for step in steps:
        if step == "simulate":
            simulate(args.root, args.n_train, args.n_val, args.n_test, tuple(args.shape),
                     args.n_cluster, args.test_seed)
        elif step == "organelles":
            train_organelles(args.root, args.minutes, REPO / "configs" / "segment.yaml")
        elif step == "finetune":
            init = args.root / "organelles_ft" / "best.pt"
            finetune_organelles(args.root, args.minutes, REPO / "configs" / "segment.yaml",
                                init if init.exists() else args.root / "organelles" / "best.pt")
        elif step == "cells":
            train_cells(args.root, args.minutes, REPO / "configs" / "segment_cells.yaml")
        elif step == "classifiers":
            build_classifiers(args.root)
        else:
            evaluate(args.root, args.split, args.per_family, not args.no_fl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
