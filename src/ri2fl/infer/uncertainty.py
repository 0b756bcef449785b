"""Uncertainty: test-time augmentation (data) and Monte-Carlo dropout (model), per patch.

Both ensembles run inside the tiler on every patch, so a volume is read and written once
whatever the number of passes, and the memory stays bounded by the patch:

- data (aleatoric) uncertainty: the network sees the patch under flips, 90° rotations in y/x
  and RI-side perturbations (gamma 0.8 / 1.2 on the normalised RI, small Gaussian noise), as
  the RI2FL reference did; every output is transformed back, and the voxel-wise standard
  deviation of the de-augmented outputs is the data uncertainty;
- model (epistemic) uncertainty: ``mc`` forward passes with only the dropout layers active;
  their voxel-wise standard deviation.

The inferred FL is the mean of the two ensemble means (spec section 4). Standard deviations
are population ones (``ddof=0``, as ``np.std``); in overlaps of patches they are blended with
the same window as the means. Nothing is rescaled per volume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, ModelError

__all__ = [
    "Augmentation",
    "ensemble_fn",
    "mc_dropout",
    "n_dropout_layers",
    "tta_augmentations",
]

#: Standard deviation of the Gaussian noise added to the normalised RI (0.01 of the
#: 1.337..1.390 window is 5e-4 in RI, about the noise of a holotomogram).
NOISE_SD = 0.01
GAMMAS = (0.8, 1.2)


@dataclass(frozen=True)
class Augmentation:
    """One test-time transform of a (N, C, z, y, x) batch and its exact geometric inverse.

    ``rot`` quarter turns in the y/x plane, then optional flips; the RI-side perturbation
    (``gamma`` power or additive ``noise`` s.d.) applies to the input only.
    """

    rot: int = 0
    flip_z: bool = False
    flip_x: bool = False
    gamma: float | None = None
    noise: float = 0.0

    @property
    def geometric_only(self) -> bool:
        return self.gamma is None and self.noise == 0.0

    def _flip_axes(self) -> tuple[int, ...]:
        return tuple(a for a, on in ((2, self.flip_z), (4, self.flip_x)) if on)

    def forward(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.gamma is not None:
            x = np.maximum(x, 0) ** self.gamma
        if self.noise:
            x = x + rng.normal(0.0, self.noise, size=x.shape).astype(np.float32)
        x = np.rot90(x, self.rot, axes=(3, 4))
        if self._flip_axes():
            x = np.flip(x, self._flip_axes())
        return np.ascontiguousarray(x, dtype=np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        if self._flip_axes():
            y = np.flip(y, self._flip_axes())
        return np.rot90(y, -self.rot, axes=(3, 4))


def _geometric() -> list[Augmentation]:
    # the dihedral group of the y/x square times a z flip, ordered so that the first few
    # already mix flips and rotations along every axis
    order = [(0, 0, 0), (0, 0, 1), (1, 0, 0), (0, 1, 0), (2, 0, 0), (3, 0, 1), (1, 1, 0),
             (2, 1, 1), (3, 0, 0), (1, 0, 1), (2, 0, 1), (0, 1, 1), (3, 1, 0), (1, 1, 1),
             (2, 1, 0), (3, 1, 1)]
    return [Augmentation(rot=r, flip_z=bool(z), flip_x=bool(x)) for r, z, x in order]


def tta_augmentations(n: int, perturb: bool = True, square: bool = True) -> list[Augmentation]:
    """The first ``n`` test-time augmentations (the first is the identity).

    Parameters
    ----------
    n : int
        Number of augmented passes, 2..32 with ``perturb`` (2..16 without).
    perturb : bool
        Pair geometric transforms with RI-side perturbations (gamma 0.8 / 1.2, noise).
    square : bool
        Whether the y/x patch is square; if not, quarter turns are left out (half turns stay).
    """
    geo = [g for g in _geometric() if square or g.rot % 2 == 0]
    perturbations: list[dict] = [{}]
    if perturb:
        perturbations += [{"gamma": GAMMAS[0]}, {"gamma": GAMMAS[1]}, {"noise": NOISE_SD}]
    combos = []
    for i in range(len(geo) * len(perturbations)):
        g = geo[i % len(geo)]
        p = perturbations[(i + i // len(geo)) % len(perturbations)]
        combos.append(Augmentation(g.rot, g.flip_z, g.flip_x, **p))
    if not 2 <= n <= len(combos):
        raise ConfigError(f"test-time augmentation needs 2..{len(combos)} passes, got {n}",
                          "--tta", "use 0 to switch it off, or e.g. 8")
    return combos[:n]


def n_dropout_layers(model: nn.Module) -> int:
    """Dropout layers of ``model`` with a non-zero probability."""
    return sum(1 for m in model.modules()
               if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0)


@contextlib.contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block only the dropout layers of ``model`` sample (Monte-Carlo dropout).

    Normalisation layers stay in eval mode; every module's mode is restored afterwards.
    Raises :class:`ModelError` if the model has no active dropout, instead of silently
    returning zero model uncertainty as the reference implementation did.
    """
    if n_dropout_layers(model) == 0:
        raise ModelError("the model has no dropout layers, so MC dropout cannot sample",
                         "--mc", "use --mc 0, or a model trained with dropout")
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.train(mode)


class _Welford:
    """Running mean and population variance over passes (one float32 pair per patch batch)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        self.n += 1
        if self.mean is None:
            self.mean, self.m2 = x.astype(np.float32, copy=True), np.zeros_like(x, np.float32)
            return
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def sd(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2 / self.n, 0)).astype(np.float32)


def ensemble_fn(fn: Callable[[np.ndarray], np.ndarray], tta: int = 0, mc: int = 0,
                model: nn.Module | None = None, perturb: bool = True,
                seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a patch predictor so it returns ``[mean, sd_data?, sd_model?]`` stacked on channels.

    Parameters
    ----------
    fn : callable
        (N, C_in, z, y, x) -> (N, C, z, y, x) NumPy; with ``mc`` it must call ``model``.
    tta, mc : int
        Passes of test-time augmentation and of MC dropout (0: off, else >= 2).
    model : torch.nn.Module, optional
        The network whose dropout layers MC dropout switches on (default: ``fn.model``).
    perturb : bool
        Include the RI-side perturbations in TTA (off: geometric transforms only).
    seed : int
        Seed of the TTA noise, for reproducible outputs.

    Returns
    -------
    callable
        (N, C_in, z, y, x) -> (N, k * C, z, y, x) with ``k = 1 + (tta > 0) + (mc > 0)``:
        the final mean, then the data s.d. (if ``tta``), then the model s.d. (if ``mc``).
    """
    if mc == 1:
        raise ConfigError("MC dropout needs at least 2 passes, got 1", "--mc",
                          "use 0 to switch it off, or e.g. 8")
    if tta == 1:
        tta_augmentations(1)  # raises the same clear error
    if mc:
        model = model if model is not None else getattr(fn, "model", None)
        if model is None:
            raise ValueError("MC dropout needs the torch model (pass model=)")
        with mc_dropout(model):  # fail early, before any patch is read
            pass
    rng = np.random.default_rng(seed)

    def run(batch: np.ndarray) -> np.ndarray:
        if not tta and not mc:
            return fn(batch)
        means, sds = [], []
        if tta:
            square = batch.shape[-1] == batch.shape[-2]
            stats = _Welford()
            for aug in tta_augmentations(tta, perturb, square):
                stats.add(np.asarray(aug.inverse(fn(aug.forward(batch, rng))), np.float32))
            means.append(stats.mean)
            sds.append(stats.sd())
        if mc:
            stats = _Welford()
            with mc_dropout(model), torch.random.fork_rng():
                torch.manual_seed(seed + int(rng.integers(2**31)))
                for _ in range(mc):
                    stats.add(np.asarray(fn(batch), np.float32))
            means.append(stats.mean)
            sds.append(stats.sd())
        return np.concatenate([np.mean(means, axis=0), *sds], axis=1)

    run.model = model if model is not None else getattr(fn, "model", None)  # type: ignore[attr-defined]
    return run
