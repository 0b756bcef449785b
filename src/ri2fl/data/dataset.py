"""Training data: paired volumes from a manifest or a folder, cut into random 3D patches.

- :func:`list_samples` finds the paired files of a split, from a simulator manifest
  (``manifest.csv`` with columns path, cell_type, seed, split) or from any folder of paired
  files; manifest paths may not leave the data folder.
- :func:`load_pair` reads one file as (input, target) arrays on the training voxel grid, the
  input normalised like at inference (RI: ``normalize_ri``), the targets by name from the
  fluorescence channels or from ``masks/<name>``.
- :class:`PatchDataset` draws patches only where the targets hold signal, each from its own
  generator seeded by (seed, epoch, index): reproducible, resumable and identical whatever
  the number of workers or DDP processes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from ..constants import CANONICAL_VOXEL_SIZE_UM, RI_CLIP
from ..errors import ConfigError, InputError
from ..io.paired import PAIRED_SUFFIXES, read_ri_fl
from ..preprocess import normalize_ri, resample, resample_to_shape

__all__ = [
    "PAIRED_SUFFIXES", "DevicePatches", "PairedVolume", "PatchDataset", "list_samples",
    "load_pair",
    "manifest_weights", "normalize_input", "safe_join", "target_variances",
]

INPUT_KINDS = ("ri", "bf", "dic")
SAMPLINGS = ("voxels", "structures")


@dataclass
class PairedVolume:
    """One field of view ready for patching: float32 (1, Z, Y, X) input, (C, Z, Y, X) target."""

    input: np.ndarray
    target: np.ndarray
    path: str
    cell_type: str = ""
    #: Relative share of training patches per voxel (the manifest's ``weight`` column).
    weight: float = 1.0


def safe_join(root: Path, relative: str) -> Path:
    """Join a manifest entry to its folder, refusing paths that leave the folder.

    Raises
    ------
    ConfigError
        For absolute paths outside ``root`` and ``..`` escapes (also through symlinks).
    """
    root = root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(f"manifest entry {relative!r} points outside the data folder", root,
                          "manifest paths must be relative to the folder of manifest.csv")
    return path


def _manifest_file(data: Path) -> Path:
    """``data`` itself when it is a .csv, else the ``manifest.csv`` inside the folder."""
    return data if data.suffix == ".csv" else data / "manifest.csv"


def _manifest_rows(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "path" not in rows[0]:
        raise ConfigError("manifest has no 'path' column", manifest,
                          "columns: path, cell_type, seed, split (ri2fl simulate writes it)")
    return rows


def _read_manifest(manifest: Path, split: str | None) -> list[tuple[Path, str]]:
    out = []
    for row in _manifest_rows(manifest):
        if split is not None and row.get("split", split) != split:
            continue
        out.append((safe_join(manifest.parent, row["path"]), row.get("cell_type", "")))
    return out


def manifest_weights(data: str | Path) -> dict[Path, float]:
    """Sampling weight of each file listed in a manifest with a ``weight`` column.

    A field's share of the training patches is proportional to its voxels times its weight,
    so a rare condition (e.g. mitosis) can be drawn more often without copying files.
    Empty for a plain folder or a manifest without the column (every weight 1).

    Raises
    ------
    ConfigError
        For a weight that is not a finite number >= 0.
    """
    manifest = _manifest_file(Path(data).expanduser())
    if not manifest.is_file():
        return {}
    rows = _manifest_rows(manifest)
    if "weight" not in rows[0]:
        return {}
    weights = {}
    for row in rows:
        try:
            w = float(row["weight"] or 1.0)
        except ValueError:
            w = float("nan")
        if not (np.isfinite(w) and w >= 0):
            raise ConfigError(f"weight {row['weight']!r} of {row['path']!r} is not a number >= 0",
                              manifest, "fix the manifest's weight column")
        weights[safe_join(manifest.parent, row["path"])] = w
    return weights


def list_samples(data: str | Path, split: str | None = None,
                 cell_types: Sequence[str] | None = None,
                 val_fraction: float = 0.2) -> list[tuple[Path, str]]:
    """List (path, cell_type) of the paired files of one split.

    Parameters
    ----------
    data : str or Path
        A ``manifest.csv``, a folder holding one, or a folder of paired files.
    split : {"train", "val", "test"} or None
        With a manifest, its ``split`` column selects; for a plain folder, the files (sorted)
        are split deterministically, the last ``val_fraction`` going to ``"val"``.
    cell_types : sequence of str, optional
        Keep only these cell types (manifest only).
    """
    data = Path(data).expanduser()
    manifest = _manifest_file(data)
    if manifest.is_file():
        rows = _read_manifest(manifest, split)
        if cell_types:
            rows = [r for r in rows if r[1] in set(cell_types)]
    elif data.is_dir():
        files = sorted(p for p in data.iterdir() if p.suffix.lower() in PAIRED_SUFFIXES)
        n_val = round(len(files) * val_fraction) if len(files) > 1 else 0
        n_val = max(n_val, 1) if val_fraction > 0 and len(files) > 1 else n_val
        if split == "train":
            files = files[: len(files) - n_val]
        elif split in ("val", "test"):
            files = files[len(files) - n_val:]
        rows = [(p, "") for p in files]
    else:
        raise ConfigError("no such data folder or manifest", data,
                          "give a folder of paired .h5 files or a manifest.csv")
    if not rows:
        raise ConfigError(f"no paired files for split {split!r}", data,
                          "check the manifest's split column or the folder's content")
    return rows


def normalize_input(array: np.ndarray, kind: str = "ri", medium_index: float = RI_CLIP[0]
                    ) -> np.ndarray:
    """Scale a network input to about [0, 1].

    RI: ``clip((ri - medium) / (1.390 - 1.337), 0, 1)``, the inference's own
    :func:`ri2fl.preprocess.normalize_ri`. BF/DIC intensity stacks have no absolute scale, so
    their 0.5 and 99.5 percentiles are mapped to 0 and 1 (unclipped).
    """
    if kind == "ri":
        return normalize_ri(array, medium_index=medium_index)
    array = np.asarray(array, dtype=np.float32)
    lo, hi = np.percentile(array, [0.5, 99.5])
    return ((array - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def _read_h5(path: Path, input_kind: str, fl_names: list[str], mask_names: list[str]
             ) -> tuple[np.ndarray, dict[str, np.ndarray], tuple, float]:
    from ..io import read_paired

    sample = read_paired(path, targets=fl_names or [], load_extra=True)
    if input_kind == "ri":
        raw = sample.ri
    elif input_kind in sample.extra:
        raw = sample.extra[input_kind]
    else:
        raise InputError(f"no {input_kind!r} dataset for input_kind={input_kind!r}", path,
                         "simulate with modalities=('bf', 'dic') or choose input_kind 'ri'")
    targets = {n: sample.fl[n] for n in fl_names}
    for name in mask_names:
        if name not in sample.masks:
            raise InputError(f"no mask 'masks/{name}' (has {sorted(sample.masks)})", path)
        targets[f"masks/{name}"] = sample.masks[name].astype(np.float32)
    return raw, targets, sample.voxel_size_um, sample.medium_index


def load_pair(path: str | Path, targets: Sequence[str], input_kind: str = "ri",
              voxel_size_um: Sequence[float] = CANONICAL_VOXEL_SIZE_UM,
              medium_index: float | None = None, cell_type: str = "",
              dtype: str | np.dtype = np.float32, fl_scale: float = 1.0,
              channel_map: dict[str, str] | None = None) -> PairedVolume:
    """Read one paired file as normalised input and stacked targets on the training grid.

    Parameters
    ----------
    path : str or Path
        Paired HDF5 (``ri2fl.io.write_paired``), TCF or OME-Zarr.
    targets : sequence of str
        Fluorescence channel names, or ``"masks/<name>"`` for binary masks.
    input_kind : {"ri", "bf", "dic"}
        Network input; BF/DIC are datasets of the same name in the paired file.
    voxel_size_um : sequence of float
        Training grid (z, y, x); volumes on another grid are resampled.
    medium_index : float, optional
        Overrides the file's medium index for the RI normalisation.
    fl_scale : float
        Divide the fluorescence by this (raw camera counts -> the fixed ~[0, 1] scale of
        the targets; one number for the whole data set, never per volume).
    channel_map : dict, optional
        Target name -> channel name in the file (e.g. ``{"nucleus": "CH1"}``).
    dtype : str or dtype
        Storage type in memory; ``float16`` halves the memory of a large training set
        (patches are converted back to float32).
    """
    path = Path(path)
    if input_kind not in INPUT_KINDS:
        raise ConfigError(f"unknown input_kind {input_kind!r}", "input_kind",
                          f"choose one of {INPUT_KINDS}")
    fl_names = [t for t in targets if not t.startswith("masks/")]
    mask_names = [t.split("/", 1)[1] for t in targets if t.startswith("masks/")]
    if path.suffix.lower() in (".h5", ".hdf5"):
        raw, tgt, voxel, medium = _read_h5(path, input_kind, fl_names, mask_names)
    else:
        if mask_names or input_kind != "ri":
            raise InputError("masks and BF/DIC inputs are read from paired HDF5 only", path)
        raw, tgt, voxel, medium = read_ri_fl(path, fl_names, channel_map)
    medium = medium if medium_index is None else medium_index
    # the inference's resampler and normalisation: a patch is the tile the network reads
    image = normalize_input(resample(raw, voxel, voxel_size_um), input_kind, medium)
    stack = []
    for name in targets:
        is_mask = name.startswith("masks/")
        array = np.asarray(tgt[name], np.float32) / (1.0 if is_mask else float(fl_scale))
        stack.append(resample(array, voxel, voxel_size_um, order=0 if is_mask else 1))
    # unregistered fluorescence may be stored as NaN: keep it out of the patch sampler's way
    target = np.nan_to_num(np.stack(stack), nan=-1.0).astype(np.float32)
    return PairedVolume(input=image[None].astype(dtype), target=target.astype(dtype),
                        path=str(path), cell_type=cell_type)


class PatchDataset(torch.utils.data.Dataset):
    """Random 3D patches cut where the targets hold signal.

    Each patch picks a volume (in proportion to its size times its ``weight``) and, with
    probability ``foreground_p``, one target channel at random and one of that channel's
    signal voxels, which then lies at a random place inside the patch; otherwise the patch is
    placed uniformly. Picking the channel first keeps rare targets (nucleoli, lipid droplets) in
    the batches as often as the abundant ones (membrane, actin); ``sampling="structures"``
    also picks the connected structure first, so that a droplet of 5 voxels is centred as often
    as one of 500. Patches that reach outside the registered fluorescence (negative targets)
    are drawn again.

    Parameters
    ----------
    volumes : sequence of PairedVolume
    patch_size : (z, y, x)
    n_patches : int
        Length of one epoch.
    augment : callable, optional
        ``augment(sample, rng) -> sample`` (see :mod:`ri2fl.transforms`); none for validation.
    seed : int
        Base seed; patch ``i`` of epoch ``e`` uses ``default_rng([seed, e, i])``.
    rescale : (float, float), optional
        Random isotropic zoom range, e.g. (0.5, 2): a region ``patch / zoom`` is resized to
        the patch (covers voxel-size variation).
    foreground_p : float
        Probability that a patch is centred on signal.
    threshold : float
        Target value counted as signal.
    tries : int
        Draws allowed to avoid unregistered regions.
    max_points : int
        Signal voxels remembered per volume and channel.
    empty_p : float
        Probability that a patch is bare medium from ``empty_source`` with all-zero targets.
    empty_source : callable, optional
        ``empty_source(patch_size, rng) -> (1, Z, Y, X)`` input, e.g.
        :class:`ri2fl.data.empty.EmptyMediumPatches`.
    sampling : {"voxels", "structures"}
        How a channel's signal point is drawn: any signal voxel alike, or first one connected
        structure alike, then one of its voxels.
    """

    def __init__(self, volumes: Sequence[PairedVolume], patch_size: Sequence[int],
                 n_patches: int, augment=None, seed: int = 0,
                 rescale: Sequence[float] | None = None, foreground_p: float = 0.9,
                 threshold: float = 0.1, tries: int = 10, max_points: int = 4096,
                 empty_p: float = 0.0, empty_source: Callable | None = None,
                 sampling: str = "voxels"):
        if sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling {sampling!r}", "sampling",
                              f"choose one of {SAMPLINGS}")
        if not volumes:
            raise ConfigError("no training volumes", hint="check the data path and split")
        self.volumes = list(volumes)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.n_patches = int(n_patches)
        self.augment = augment
        self.seed = int(seed)
        self.rescale = tuple(rescale) if rescale else None
        self.foreground_p = float(foreground_p)
        self.tries = int(tries)
        self.empty_p = float(empty_p)
        if self.empty_p > 0 and empty_source is None:
            raise ConfigError("empty_p > 0 needs an empty_source", "empty_p")
        self.empty_source = empty_source
        self.epoch = 0
        sizes = np.array([v.input[0].size * v.weight for v in self.volumes], dtype=float)
        if not sizes.sum() > 0:
            raise ConfigError("every training volume has weight 0", "weight",
                              "give at least one file a weight > 0")
        self._weights = sizes / sizes.sum()
        point_rng = np.random.default_rng([self.seed, 7919])
        draw = _signal_points if sampling == "voxels" else _structure_points
        self._points = [[draw(channel, threshold, max_points, point_rng)
                         for channel in v.target] for v in self.volumes]

    def set_epoch(self, epoch: int) -> None:
        """Draw the patches of ``epoch`` (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_patches

    def _region(self, rng: np.random.Generator) -> tuple[int, ...]:
        if not self.rescale:
            return self.patch_size
        lo, hi = np.log(self.rescale[0]), np.log(self.rescale[1])
        zoom = float(np.exp(rng.uniform(lo, hi)))
        return tuple(max(1, round(p / zoom)) for p in self.patch_size)

    def _start(self, vi: int, region: Sequence[int], rng: np.random.Generator) -> list[int]:
        shape = self.volumes[vi].input.shape[1:]
        limits = [max(s - r, 0) for s, r in zip(shape, region)]
        if rng.random() < self.foreground_p:
            points = self._points[vi][int(rng.integers(len(self._points[vi])))]
            if len(points):
                centre = points[int(rng.integers(len(points)))]
                return [int(np.clip(c - rng.integers(0, r), 0, lim))
                        for c, r, lim in zip(centre, region, limits)]
        return [int(rng.integers(0, lim + 1)) for lim in limits]

    def _crop(self, vi: int, region: Sequence[int], rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
        vol = self.volumes[vi]
        for _ in range(self.tries):
            start = self._start(vi, region, rng)
            sl = (slice(None), *(slice(a, a + r) for a, r in zip(start, region)))
            # negative targets mark voxels outside the registered fluorescence
            if not (vol.target[sl] < 0).any():
                break
        image = np.asarray(vol.input[sl], dtype=np.float32)
        return image, np.clip(np.asarray(vol.target[sl], dtype=np.float32), 0.0, None)

    def _patch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        vi = int(rng.choice(len(self.volumes), p=self._weights))
        region = self._region(rng)
        image, target = self._crop(vi, region, rng)
        if tuple(region) != self.patch_size:  # zoom the region by patch / region
            shape = [max(1, round(c * p / r))
                     for c, p, r in zip(image.shape[1:], self.patch_size, region)]
            image, target = resample_to_shape(image, shape), resample_to_shape(target, shape)
        return _pad(image, self.patch_size), _pad(target, self.patch_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        if self.empty_p > 0 and rng.random() < self.empty_p:
            image = self.empty_source(self.patch_size, rng).astype(np.float32)
            target = np.zeros((self.volumes[0].target.shape[0], *self.patch_size), np.float32)
        else:
            image, target = self._patch(rng)
        sample = {"input": image, "target": target}
        if self.augment is not None:
            sample = self.augment(sample, rng)
        return (torch.from_numpy(np.ascontiguousarray(sample["input"], dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(sample["target"], dtype=np.float32)))


def _signal_points(channel: np.ndarray, threshold: float, max_points: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Up to ``max_points`` random (z, y, x) voxels where ``channel > threshold``."""
    flat = np.flatnonzero(channel.ravel() > threshold)
    if flat.size > max_points:
        flat = rng.choice(flat, max_points, replace=False)
    return np.stack(np.unravel_index(flat, channel.shape), axis=1) if flat.size else \
        np.zeros((0, 3), dtype=np.int64)


def _structure_points(channel: np.ndarray, threshold: float, max_points: int,
                      rng: np.random.Generator) -> np.ndarray:
    """``max_points`` voxels where ``channel > threshold``, each from a structure drawn alike.

    A structure is a connected component (26-connectivity) of the signal; small ones are thus
    as likely as large ones, however few voxels they hold.
    """
    labels, n = ndi.label(channel > threshold, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros((0, 3), dtype=np.int64)
    flat = np.flatnonzero(labels.ravel())
    flat = flat[np.argsort(labels.ravel()[flat], kind="stable")]  # grouped by structure
    sizes = np.bincount(labels.ravel()[flat], minlength=n + 1)[1:]
    starts = np.cumsum(sizes) - sizes
    which = rng.integers(0, n, max_points)
    picks = flat[starts[which] + (rng.random(max_points) * sizes[which]).astype(int)]
    return np.stack(np.unravel_index(picks, channel.shape), axis=1)


def _pad(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Zero-pad (C, Z, Y, X) at the end to at least ``shape`` and crop to it."""
    pads = [(0, 0)] + [(0, max(0, s - a)) for s, a in zip(shape, array.shape[1:])]
    if any(p[1] for p in pads):
        array = np.pad(array, pads)
    return array[:, : shape[0], : shape[1], : shape[2]]


def describe(volumes: Sequence[PairedVolume]) -> dict[str, Any]:
    """Short summary (count, shapes, cell types) for logs."""
    return {"n": len(volumes), "shapes": sorted({tuple(v.input.shape[1:]) for v in volumes}),
            "cell_types": sorted({v.cell_type for v in volumes})}


def target_variances(volumes: Sequence[PairedVolume]) -> list[float]:
    """Variance of each target channel pooled over ``volumes`` (float64 accumulation).

    Unregistered voxels (NaN on disk, stored as exactly -1 by :func:`load_pair`) are left out.
    """
    n_channels = volumes[0].target.shape[0]
    count, total, total_sq = np.zeros(n_channels), np.zeros(n_channels), np.zeros(n_channels)
    for v in volumes:
        for c in range(n_channels):
            values = np.asarray(v.target[c], np.float64)
            values = values[values != -1.0]
            count[c] += values.size
            total[c] += values.sum()
            total_sq[c] += np.square(values).sum()
    mean = total / np.maximum(count, 1)
    return list(np.maximum(total_sq / np.maximum(count, 1) - mean**2, 0.0))


class DevicePatches:
    """The patches of a :class:`PatchDataset`, cut and augmented where the network trains.

    The volumes are copied once to ``device`` (or, when they do not fit in a share of its
    free memory, to pinned host memory, from which each patch is copied asynchronously), and
    every patch is cut and augmented there with torch: no DataLoader workers, no per-patch
    host arrays. Patch ``i`` of an epoch makes the same random draws, from the same NumPy
    generator (``default_rng([seed, epoch, i])``), as ``dataset[i]``: the same volume, place,
    flips, rotation, gamma and noise level, so batches and loss curves match the loader's.
    Only the Gaussian noise itself is drawn on the device (from a torch generator seeded per
    patch): the same distribution, not the same numbers, unless ``exact_noise`` draws it on the
    host as the loader does. Rescaled regions, elastic deformation, empty-medium patches and
    any other transform run on the host, as in the loader, with the same draws.

    Parameters
    ----------
    dataset : PatchDataset
        The patches (its volumes, sampling, augmentation and seed).
    device : torch.device
        Where the network trains.
    exact_noise : bool
        Draw the augmentation noise on the host with NumPy (the loader's numbers, slower).
    memory_share : float
        Share of the device's free memory the volumes may take before they stay in pinned
        host memory instead.
    """

    def __init__(self, dataset: PatchDataset, device: torch.device | str,
                 exact_noise: bool = False, memory_share: float = 0.5):
        self.dataset = dataset
        self.device = torch.device(device)
        self.exact_noise = bool(exact_noise)
        store = self._store(memory_share)
        self.on_device = store == self.device
        self.inputs = [_tensor_on(v.input, store) for v in dataset.volumes]
        self.targets = [_tensor_on(v.target, store) for v in dataset.volumes]
        # volumes without unregistered voxels never need the redraw check
        self._has_holes = [bool((v.target < 0).any()) for v in dataset.volumes]

    def _store(self, memory_share: float) -> torch.device:
        if self.device.type != "cuda":
            return self.device
        need = sum(v.input.nbytes + v.target.nbytes for v in self.dataset.volumes)
        free, _ = torch.cuda.mem_get_info(self.device)
        return self.device if need <= memory_share * free else torch.device("cpu")

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The patches ``indices`` of the current epoch, stacked: (N, 1, ...), (N, C, ...)."""
        pairs = [self.sample(int(i)) for i in indices]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch ``index`` as ``dataset[index]`` makes it, on the device."""
        ds = self.dataset
        rng = np.random.default_rng([ds.seed, ds.epoch, int(index)])
        if ds.empty_p > 0 and rng.random() < ds.empty_p:
            image = torch.from_numpy(ds.empty_source(ds.patch_size, rng).astype(np.float32))
            n_targets = ds.volumes[0].target.shape[0]
            pair = (image.to(self.device), torch.zeros((n_targets, *ds.patch_size),
                                                       device=self.device))
        elif ds.rescale:
            image, target = ds._patch(rng)
            pair = (torch.from_numpy(image).to(self.device),
                    torch.from_numpy(np.ascontiguousarray(target)).to(self.device))
        else:
            pair = self._crop(rng)
        if ds.augment is not None:
            pair = self._augment(pair, rng, index)
        return pair[0].contiguous(), pair[1].contiguous()

    def _crop(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        ds = self.dataset
        vi = int(rng.choice(len(ds.volumes), p=ds._weights))
        region = ds._region(rng)
        target = self.targets[vi]
        for _ in range(ds.tries):
            start = ds._start(vi, region, rng)
            sl = (slice(None), *(slice(a, a + r) for a, r in zip(start, region)))
            if not self._has_holes[vi] or not bool((target[sl] < 0).any()):
                break
        image = self.inputs[vi][sl].to(self.device, torch.float32, non_blocking=True)
        target = target[sl].to(self.device, torch.float32, non_blocking=True).clamp_(min=0)
        return _pad_tensor(image, ds.patch_size), _pad_tensor(target, ds.patch_size)

    def _augment(self, pair: tuple[torch.Tensor, torch.Tensor], rng: np.random.Generator,
                 index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from ..transforms.augment import GaussianNoise, RandomFlip, RandomGamma, RandomRot90

        image, target = pair
        for t in getattr(self.dataset.augment, "transforms", [self.dataset.augment]):
            if isinstance(t, RandomFlip):
                for axis in t.axes:
                    if rng.random() < t.p:
                        image, target = image.flip(axis + 1), target.flip(axis + 1)
            elif isinstance(t, RandomRot90):
                k = int(rng.integers(4))
                if k % 2 == 1 and image.shape[-1] != image.shape[-2]:
                    k = 2 * (k // 2)
                if k:
                    image, target = image.rot90(k, (-2, -1)), target.rot90(k, (-2, -1))
            elif isinstance(t, RandomGamma):
                if rng.random() < t.p:
                    image = image.clamp(min=0) ** float(rng.uniform(*t.gamma))
            elif isinstance(t, GaussianNoise):
                if t.sigma > 0 and rng.random() < t.p:
                    image = image + self._noise(float(rng.uniform(0, t.sigma)), image, rng,
                                                index)
            else:  # elastic or unknown: the host transform, with the same draws
                sample = t({"input": image.cpu().numpy(), "target": target.cpu().numpy()}, rng)
                image = torch.from_numpy(np.ascontiguousarray(sample["input"])).to(self.device)
                target = torch.from_numpy(np.ascontiguousarray(sample["target"])).to(self.device)
        return image, target

    def _noise(self, sd: float, image: torch.Tensor, rng: np.random.Generator,
               index: int) -> torch.Tensor:
        if self.exact_noise:
            noise = rng.normal(0, sd, tuple(image.shape)).astype(np.float32)
            return torch.from_numpy(noise).to(self.device)
        gen = torch.Generator(device=self.device)
        ds = self.dataset
        seed = np.random.SeedSequence([ds.seed, ds.epoch, index, 1]).generate_state(1)[0]
        gen.manual_seed(int(seed))
        return torch.randn(image.shape, generator=gen, device=self.device) * sd


def _tensor_on(array: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cpu" and torch.cuda.is_available():
        return tensor.pin_memory()
    return tensor.to(device)


def _pad_tensor(tensor: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """:func:`_pad` in torch: zero-pad (C, Z, Y, X) at the end to ``shape`` and crop to it."""
    pads: list[int] = []
    for s, a in zip(reversed(shape), reversed(tensor.shape[1:])):
        pads += [0, max(0, s - a)]
    if any(pads):
        tensor = torch.nn.functional.pad(tensor, pads)
    return tensor[:, : shape[0], : shape[1], : shape[2]]
