"""Random augmentations of paired patches, drawn from an explicit NumPy generator.

A sample is a dict with ``"input"`` (C_in, Z, Y, X) and ``"target"`` (C_out, Z, Y, X) float32
arrays. Geometric transforms move both alike; intensity transforms (gamma, noise) touch the
input (the RI side) only, so the fluorescence targets keep their quantitative scale.

These are small hand-written transforms rather than MONAI's dictionary transforms because the
generator is passed explicitly (reproducible per patch, resumable, safe with DDP and
workers), the elastic field is drawn on a coarse grid (cheap enough for CPU training), and the
rotations stay in the y/x plane only, which the anisotropic voxel grid requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "Compose", "ElasticDeform", "GaussianNoise", "RandomFlip", "RandomGamma", "RandomRot90",
    "build_augmentation",
]

Sample = dict[str, np.ndarray]


class Transform(Protocol):
    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample: ...


def _apply(sample: Sample, fn, keys: Sequence[str] = ("input", "target")) -> Sample:
    out = dict(sample)
    for key in keys:
        if key in out:
            out[key] = np.ascontiguousarray(fn(out[key]))
    return out


@dataclass
class RandomFlip:
    """Flip along each of z, y, x with probability ``p``."""

    p: float = 0.5
    axes: tuple[int, ...] = (0, 1, 2)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for axis in self.axes:
            if rng.random() < self.p:
                sample = _apply(sample, lambda a, ax=axis: np.flip(a, axis=ax + 1))
        return sample


@dataclass
class RandomRot90:
    """Rotate by k x 90° in the y/x plane (k uniform in 0..3; needs square y/x patches)."""

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        k = int(rng.integers(4))
        arr = sample["input"]
        if k % 2 == 1 and arr.shape[-1] != arr.shape[-2]:
            k = 2 * (k // 2)  # a non-square patch only takes 0° or 180°
        if k == 0:
            return sample
        return _apply(sample, lambda a: np.rot90(a, k, axes=(-2, -1)))


@dataclass
class ElasticDeform:
    """Smooth random displacement of up to ``magnitude`` voxels, on a ``grid``-point mesh.

    Applied with probability ``p``; linear interpolation, borders replicated. The field is
    drawn on the coarse mesh and upsampled with cubic splines, as in ``elasticdeform``.
    """

    p: float = 0.3
    magnitude: float = 3.0
    grid: int = 4

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.p <= 0 or rng.random() >= self.p:
            return sample
        shape = sample["input"].shape[1:]
        coords = list(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"))
        for axis, size in enumerate(shape):
            coarse = rng.normal(0.0, self.magnitude, (self.grid,) * 3).astype(np.float32)
            if size < 4:  # too thin to deform along this axis
                continue
            zoom = [s / self.grid for s in shape]
            coords[axis] += ndi.zoom(coarse, zoom, order=3, mode="nearest")[
                : shape[0], : shape[1], : shape[2]]

        def warp(a: np.ndarray) -> np.ndarray:
            return np.stack([ndi.map_coordinates(c, coords, order=1, mode="nearest") for c in a])

        return _apply(sample, warp)


@dataclass
class RandomGamma:
    """Gamma correction ``x ** g`` of the input, g uniform in ``gamma`` (input in [0, 1])."""

    gamma: tuple[float, float] = (0.8, 1.2)
    p: float = 0.5

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        g = float(rng.uniform(*self.gamma))
        return _apply(sample, lambda a: np.clip(a, 0.0, None) ** g, keys=("input",))


@dataclass
class GaussianNoise:
    """Add Gaussian noise of standard deviation uniform in [0, ``sigma``] to the input."""

    sigma: float = 0.02
    p: float = 0.5

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.sigma <= 0 or rng.random() >= self.p:
            return sample
        s = float(rng.uniform(0, self.sigma))
        return _apply(sample, lambda a: a + rng.normal(0, s, a.shape).astype(a.dtype),
                      keys=("input",))


@dataclass
class Compose:
    """Apply transforms in order."""

    transforms: Sequence[Transform]

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


def build_augmentation(options: dict[str, Any] | None) -> Compose:
    """Build the training augmentation from the ``augment`` section of a training config.

    Keys (defaults): ``flip`` (true), ``rot90`` (true), ``elastic`` (probability, 0.2),
    ``elastic_magnitude`` (3 voxels), ``gamma`` ([0.8, 1.2]; null to disable), ``noise``
    (0.02; 0 to disable). Rescaling and cropping happen when the patch is cut
    (``rescale`` in :class:`ri2fl.data.PatchDataset`).
    """
    o = {"flip": True, "rot90": True, "elastic": 0.2, "elastic_magnitude": 3.0,
         "gamma": [0.8, 1.2], "noise": 0.02, **(options or {})}
    ts: list[Transform] = []
    if o["flip"]:
        ts.append(RandomFlip())
    if o["rot90"]:
        ts.append(RandomRot90())
    if o["elastic"]:
        ts.append(ElasticDeform(p=float(o["elastic"]), magnitude=float(o["elastic_magnitude"])))
    if o["gamma"]:
        ts.append(RandomGamma(tuple(float(v) for v in o["gamma"])))
    if o["noise"]:
        ts.append(GaussianNoise(float(o["noise"])))
    return Compose(ts)
