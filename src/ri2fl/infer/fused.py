"""The fused tiler: every patch's work in torch, on the device, into a slab accumulator.

One code path for the CPU and CUDA. For each batch of patches it

1. reads the raw patches on a reader thread (zarr / HDF5 codecs overlap the network) and
   copies them to the device (pinned host memory and asynchronous copies on CUDA);
2. normalises them there, runs every test-time augmentation and MC-dropout pass, transforms
   each output back and folds it into a running (Welford) mean and variance in place;
3. asks the network only for the voxels that get a non-zero blending weight inside the
   volume (:meth:`ri2fl.models.RefinedUNet3D.forward_region` skips the rest of its full-grid
   head; other networks are run whole and cropped);
4. weights the result with the separable blending window and adds it into a device-side
   accumulator holding one slab of the field (a run of patches along x, bounded in bytes;
   on a CPU one patch, whose weighted result is kept as it is), which a writer thread adds
   into the output (NumPy, zarr, HDF5) as soon as the slab is done.

Memory is bounded by the patch, the batch and the slab, never by the field. The outputs equal
those of :func:`ri2fl.infer.tiling.predict_tiled` with :func:`ri2fl.infer.uncertainty.ensemble_fn`
to float round-off: the same augmentations in the same order, the same random draws
(the TTA noise comes from the same NumPy generator, the dropout masks from the same torch
seed), the same window.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..constants import RI_CLIP
from ..progress import progress as _progress
from .device import Runner
from .tiling import TileGrid, _read_patch, tile_grid
from .uncertainty import Augmentation, mc_dropout, tta_augmentations

__all__ = ["FusedPredictor", "predict_fused"]

Box = tuple[slice, slice, slice]

#: Bytes of the slab accumulator: one patch's worth on a CPU (where memory is the limit),
#: a row of patches on a GPU.
SLAB_BYTES = {"cpu": 0, "cuda": 2 << 30}


@dataclass
class FusedPredictor:
    """What runs on every batch of patches: normalisation, ensemble, network, reduction.

    Attributes
    ----------
    runner : Runner
        The network on its device, precision and memory format.
    n_targets : int
        Targets predicted (channels of each of the mean and s.d. blocks).
    indices : list of int, optional
        Output channels of the network to keep, in order (default: all of them).
    tta, mc : int
        Test-time augmentation and MC-dropout passes (0: off).
    medium_index : float or None
        Medium index of the RI normalisation; None: the input is already normalised.
    seed : int
        Seed of the TTA noise and the dropout masks.
    perturb : bool
        Include the RI-side perturbations in TTA.
    """

    runner: Runner
    n_targets: int
    indices: list[int] | None = None
    tta: int = 0
    mc: int = 0
    medium_index: float | None = None
    seed: int = 0
    perturb: bool = True

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.select = None if self.indices is None else torch.as_tensor(
            self.indices, device=self.runner.device)
        if self.mc:
            with mc_dropout(self.runner.model):  # fails early without dropout layers
                pass

    @property
    def n_out(self) -> int:
        """Output channels: the means, then the data s.d., then the model s.d."""
        return self.n_targets * (1 + bool(self.tta) + bool(self.mc))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Raw RI -> network input, in place (:func:`ri2fl.preprocess.normalize_ri`)."""
        if self.medium_index is None:
            return x
        width = np.float32(RI_CLIP[1] - RI_CLIP[0])
        return x.sub_(float(np.float32(self.medium_index))).div_(float(width)).clamp_(0, 1)

    def __call__(self, x: torch.Tensor, box: Box) -> list[torch.Tensor]:
        """(N, 1, pz, py, px) normalised batch -> the output blocks on ``box``.

        Each block is (N, n_targets, *box): the mean, then the data s.d. (with ``tta``), then
        the model s.d. (with ``mc``); kept apart, never concatenated (one copy less).
        """
        if not self.tta and not self.mc:
            return [self._net(x, box)]
        means, sds = [], []
        if self.tta:
            mean, sd = self._tta(x, box)
            means.append(mean)
            sds.append(sd)
        if self.mc:
            mean, sd = self._mc(x, box)
            means.append(mean)
            sds.append(sd)
        if len(means) == 2:
            means[0].add_(means[1]).div_(2)
        return [means[0], *sds]

    def _net(self, x: torch.Tensor, box: Box) -> torch.Tensor:
        """One pass: the kept channels on ``box``, clipped at 0 (fluorescence)."""
        model = self.runner.model
        if self.runner.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode(), self.runner.autocast():
            if hasattr(model, "forward_region"):
                y = model.forward_region(x, box)
            else:
                y = model(x)[(slice(None), slice(None), *box)]
        if self.select is not None:
            y = y.index_select(1, self.select)
        return y.float().clamp_(min=0)

    def _tta(self, x: torch.Tensor, box: Box) -> tuple[torch.Tensor, torch.Tensor]:
        square = x.shape[-1] == x.shape[-2]
        stats = _Welford()
        for aug in tta_augmentations(self.tta, self.perturb, square):
            xt = _forward(aug, x, self.rng)
            # no name holds the transformed output: one output-sized buffer less at the peak
            stats.add(_inverse(aug, self._net(xt, _box_image(aug, box, x.shape[2:]))))
            del xt
        return stats.mean, stats.sd()

    def _mc(self, x: torch.Tensor, box: Box) -> tuple[torch.Tensor, torch.Tensor]:
        stats = _Welford()
        model = self.runner.model
        with mc_dropout(model), torch.random.fork_rng(devices=_rng_devices(x.device)):
            torch.manual_seed(self.seed + int(self.rng.integers(2**31)))
            for _ in range(self.mc):
                stats.add(self._net(x, box))
        return stats.mean, stats.sd()


def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


class _Welford:
    """Running mean and population variance over passes, in place (torch)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        """Fold in one pass; ``x`` is taken over (used as scratch)."""
        self.n += 1
        if self.mean is None:
            self.mean, self.m2 = x, torch.zeros_like(x)
            return
        # in place, no temporary: with delta = x - mean, m2 += delta * (x - mean_new) is
        # delta**2 * (n - 1) / n (Welford), and mean_new = mean + delta / n
        delta = x.sub_(self.mean)
        self.m2.addcmul_(delta, delta, value=(self.n - 1) / self.n)
        self.mean.add_(delta, alpha=1.0 / self.n)

    def sd(self) -> torch.Tensor:
        return self.m2.div_(self.n).clamp_(min=0).sqrt_()


def _forward(aug: Augmentation, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """:meth:`Augmentation.forward` in torch; the noise is drawn from ``rng`` on the host."""
    if aug.gamma is not None:
        x = x.clamp(min=0).pow_(aug.gamma)
    if aug.noise:
        noise = rng.normal(0.0, aug.noise, size=tuple(x.shape)).astype(np.float32)
        x = x + _to_device(noise, x.device)
    x = torch.rot90(x, aug.rot, dims=(3, 4)) if aug.rot % 4 else x
    flips = [a for a, on in ((2, aug.flip_z), (4, aug.flip_x)) if on]
    return (torch.flip(x, flips) if flips else x).contiguous()


#: torch.rot90(y, k, dims=(3, 4)) as flips, then a y/x transpose when k is odd
_ROT90_FLIPS = {0: frozenset(), 1: frozenset({4}), 2: frozenset({3, 4}), 3: frozenset({3})}


def _inverse(aug: Augmentation, y: torch.Tensor) -> torch.Tensor:
    """:meth:`Augmentation.inverse` in torch with at most one copy (torch.flip's): the flips
    of the inverse turn merge with the augmentation's own, and the turn's transpose is a
    view. Two more output-sized copies at each TTA pass were the fused path's memory peak."""
    k = -aug.rot % 4
    flips = {a for a, on in ((2, aug.flip_z), (4, aug.flip_x)) if on} ^ _ROT90_FLIPS[k]
    if flips:
        y = torch.flip(y, sorted(flips))
    return y.transpose(3, 4) if k % 2 else y


def _box_image(aug: Augmentation, box: Box, shape: Sequence[int]) -> Box:
    """Where ``box`` of a patch lies once the patch is transformed by ``aug``."""
    z = np.zeros(shape[0], bool)
    z[box[0]] = True
    yx = np.zeros((1, 1, 1, *shape[1:]), bool)
    yx[(0, 0, 0, box[1], box[2])] = True
    if aug.flip_z:
        z = z[::-1]
    yx = np.rot90(yx, aug.rot, axes=(3, 4))
    if aug.flip_x:
        yx = np.flip(yx, 4)
    rows, cols = np.flatnonzero(yx.any(axis=4)[0, 0, 0]), np.flatnonzero(yx.any(axis=3)[0, 0, 0])
    zs = np.flatnonzero(z)
    return (slice(int(zs[0]), int(zs[-1]) + 1), slice(int(rows[0]), int(rows[-1]) + 1),
            slice(int(cols[0]), int(cols[-1]) + 1))


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


# ---- geometry: the part of each patch that counts, and the slabs ----------------------------

@dataclass(frozen=True)
class _Patch:
    start: tuple[int, int, int]
    box: Box  # in patch coordinates: inside the volume, non-zero weight
    field: Box  # the same voxels in volume coordinates
    weights: tuple[np.ndarray, np.ndarray, np.ndarray]  # per-axis blending factors on box


def _patches(grid: TileGrid) -> list[_Patch]:
    out = []
    for start in grid:
        factors = grid.normalized_weights(start)
        box, field, weights = [], [], []
        for a, s, f in zip(grid.axes, start, factors):
            _, inside = a.output_span(s)
            nz = np.flatnonzero(f[inside] > 0)
            # a patch of weight 0 still runs (the ensemble's random draws stay in step)
            first, last = (int(nz[0]), int(nz[-1])) if nz.size else (0, 0)
            lo, hi = inside.start + first, inside.start + last + 1
            box.append(slice(lo, hi))
            off = s - a.pad_before
            field.append(slice(off + lo, off + hi))
            weights.append(f[lo:hi] if nz.size else np.zeros(1, np.float32))
        out.append(_Patch(tuple(start), tuple(box), tuple(field), tuple(weights)))
    return out


def _union(boxes: Sequence[Box]) -> Box:
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
                 for a in range(3))  # type: ignore[return-value]


def _slab_keys(patches: Sequence[_Patch], n_out: int, slab_bytes: int) -> list[int]:
    """Slab number of every patch: consecutive patches of one (z, y) row, up to the budget."""
    keys, key, members = [], -1, []
    for p in patches:
        row = p.start[:2]
        trial = [*members, p]
        same_row = members and members[0].start[:2] == row
        if same_row and 4 * n_out * _volume(_union([m.field for m in trial])) <= slab_bytes:
            members = trial
        else:
            key, members = key + 1, [p]
        keys.append(key)
    return keys


def _volume(box: Box) -> int:
    return int(np.prod([b.stop - b.start for b in box]))


# ---- the loop ----------------------------------------------------------------------------------

class _Slab:
    """The device-side accumulator of one slab of the field.

    A slab of one patch keeps that patch's weighted blocks themselves (no copy: on a CPU,
    where a slab is one patch, this saves an output-sized buffer per patch in flight).
    """

    def __init__(self, region: Box, n_out: int, device: torch.device, n_patches: int):
        self.region = region
        self.n_patches = n_patches
        self.add_count = 0
        self.data = torch.zeros((n_out, *(b.stop - b.start for b in region)),
                                dtype=torch.float32, device=device) if n_patches > 1 else None
        self.kept: list[tuple[int, torch.Tensor]] = []  # a one-patch slab's weighted blocks

    @property
    def done(self) -> bool:
        return self.add_count == self.n_patches

    @property
    def parts(self) -> list[tuple[int, torch.Tensor]]:
        """(first output channel, data on ``region``) of what the slab holds."""
        return self.kept if self.data is None else [(0, self.data)]

    def add(self, blocks: Sequence[torch.Tensor], patch: _Patch) -> None:
        """Add the blocks (each (C, *patch.box)), weighted by the patch's window, in order.

        With one patch the blocks are weighted in place and kept.
        """
        wz, wy, wx = (torch.as_tensor(w, device=blocks[0].device) for w in patch.weights)
        weight = wz[:, None, None] * wy[None, :, None] * wx[None, None, :]
        where = tuple(slice(f.start - r.start, f.stop - r.start)
                      for f, r in zip(patch.field, self.region))
        c = 0
        for block in blocks:
            if self.data is None:
                self.kept.append((c, block.mul_(weight)))
            else:
                self.data[(slice(c, c + block.shape[0]), *where)].addcmul_(block, weight)
            c += block.shape[0]
        self.add_count += 1


class _Writer:
    """Adds finished slabs into the output on one background thread, one slab in flight."""

    def __init__(self, out: Any):
        self.out = out
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ri2fl-slab-writer")
        self.pending: Future | None = None

    def submit(self, slab: _Slab) -> None:
        parts, event = slab.parts, None
        if parts[0][1].device.type == "cuda":
            parts = [(c, _pinned_copy(data)) for c, data in parts]
            event = torch.cuda.Event()
            event.record()
        self.wait()
        self.pending = self.pool.submit(_write_slab, self.out, parts, slab.region, event)

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown()


def _pinned_copy(data: torch.Tensor) -> torch.Tensor:
    host = torch.empty(data.shape, dtype=data.dtype, pin_memory=True)
    return host.copy_(data, non_blocking=True)


def _write_slab(out: Any, parts: Sequence[tuple[int, torch.Tensor]], region: Box,
                event: Any) -> None:
    if event is not None:
        event.synchronize()
    for first, data in parts:
        array = data.numpy()
        for c in range(array.shape[0]):  # channel by channel: one channel's copy at a time
            key = (first + c, *region)
            if isinstance(out, np.ndarray):
                out[key] += array[c]
            else:  # zarr / h5py / memmap: read-modify-write of this region only
                out[key] = np.asarray(out[key], dtype=np.float32) + array[c]
    _release_freed_memory()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _release_freed_memory() -> None:
    """Hand memory that is free but kept in glibc's heaps back to the system.

    The codecs of the reader and writer threads free many small (< 32 MB) buffers into
    per-thread arenas, which glibc keeps resident; nothing in NumPy, zarr or torch trims
    them, so this calls ``malloc_trim`` (glibc) after each slab: about 0.07 GB of the peak
    of a whole 64 x 512² field with TTA and MC. A no-op where libc has no ``malloc_trim``.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _prefetch(array: Any, grid: TileGrid, batches: Sequence[Sequence[_Patch]],
              depth: int = 1) -> Iterator[np.ndarray]:
    """The raw input of every batch, read ``depth`` batches ahead on a reader thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Hand ``item`` to the consumer unless it has stopped; whether it was handed."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not put(np.stack([_read_patch(array, grid, p.start) for p in batch])):
                    return
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=read, name="ri2fl-tile-reader", daemon=True)
    thread.start()
    try:
        for _ in batches:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def predict_fused(predictor: FusedPredictor, array: Any, patch_size: Sequence[int],
                  overlap: float = 0.25, batch_size: int = 2, out: Any = None,
                  margin: Sequence[int] | int | None = None, pad: Sequence[int] | int = 0,
                  progress: bool | None = None, slab_bytes: int | None = None,
                  desc: str = "patches") -> Any:
    """Predict a (Z, Y, X) volume patch by patch with ``predictor``, blended without seams.

    Parameters
    ----------
    predictor : FusedPredictor
        The network, its ensemble and normalisation.
    array : array-like
        (Z, Y, X) raw input: NumPy, zarr, h5py, dask or a lazy resampler; only the slab under
        each patch is read.
    patch_size, overlap, margin, pad, progress, desc
        As in :func:`ri2fl.infer.tiling.predict_tiled` (the same grid and window).
    batch_size : int
        Patches per network call.
    out : array-like, optional
        (n_out, Z, Y, X) float32 array filled with zeros (e.g. a zarr array); default a new
        NumPy array.
    slab_bytes : int, optional
        Bytes of the device-side accumulator (default :data:`SLAB_BYTES` of the device); at
        least one patch's output region.

    Returns
    -------
    array-like
        ``out``, (n_out, Z, Y, X).
    """
    if array.ndim != 3:
        raise ValueError(f"array must be (Z, Y, X), got shape {array.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = predictor.runner.device
    grid = tile_grid(tuple(array.shape), patch_size, overlap, margin, pad)
    n_out = predictor.n_out
    if out is None:
        out = np.zeros((n_out, *grid.shape), dtype=np.float32)
    elif tuple(out.shape) != (n_out, *grid.shape):
        raise ValueError(f"out has shape {out.shape}, expected {(n_out, *grid.shape)}")
    patches = _patches(grid)
    budget = SLAB_BYTES.get(device.type, 0) if slab_bytes is None else int(slab_bytes)
    keys = _slab_keys(patches, n_out, budget)
    batches = [patches[i:i + batch_size] for i in range(0, len(patches), batch_size)]
    regions: dict[int, list[Box]] = {}
    for p, k in zip(patches, keys):
        regions.setdefault(k, []).append(p.field)
    key_of = {p.start: k for p, k in zip(patches, keys)}
    writer, slab = _Writer(out), None
    disable = None if progress is None else not progress
    reads = _prefetch(array, grid, batches)
    try:
        with torch.inference_mode():
            for batch, raw in zip(_progress(batches, desc=desc, disable=disable), reads):
                box = _union([p.box for p in batch])
                blocks = predictor(predictor.normalise(_to_device(raw, device)), box)
                for i, p in enumerate(batch):
                    if slab is None:  # a slab's patches are consecutive
                        members = regions[key_of[p.start]]
                        slab = _Slab(_union(members), n_out, device, len(members))
                    crop = (i, slice(None), *(slice(b.start - u.start, b.stop - u.start)
                                              for b, u in zip(p.box, box)))
                    slab.add([block[crop] for block in blocks], p)
                    if slab.done:
                        # done: written while the next batch runs, not held through it
                        writer.submit(slab)
                        slab = None
                del blocks
    finally:
        reads.close()
        writer.close()
    return out
