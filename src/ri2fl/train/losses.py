"""Training losses: MSE + 3D-Sobel gradient difference (RI2FL) and Dice + BCE (segmentation)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional

from ..errors import ConfigError

__all__ = ["LOSSES", "channel_weights_from_variance", "dice_bce_loss", "gdl_loss", "get_loss",
           "laplacian3d", "laplacian_loss", "mse_gdl_loss", "sobel3d"]


def _sobel_kernels(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The three 3x3x3 Sobel kernels (d/dz, d/dy, d/dx), shape (3, 1, 3, 3, 3).

    Each is a central difference [-1, 0, 1] / 2 along its axis times the smoothing
    [1, 2, 1] / 4 along the two others, so a ramp of slope ``a`` gives exactly ``a``.
    """
    diff = torch.tensor([-1.0, 0.0, 1.0], dtype=dtype, device=device) / 2
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=dtype, device=device) / 4
    kernels = []
    for axis in range(3):
        parts = [diff if a == axis else smooth for a in range(3)]
        kernels.append(parts[0][:, None, None] * parts[1][None, :, None] * parts[2][None, None, :])
    return torch.stack(kernels)[:, None]


def sobel3d(x: torch.Tensor) -> torch.Tensor:
    """3D Sobel gradients of every channel, valid part only (no padding artefacts).

    Parameters
    ----------
    x : Tensor
        (N, C, Z, Y, X), each axis at least 3 long.

    Returns
    -------
    Tensor
        (N, C, 3, Z-2, Y-2, X-2): the z, y and x derivative per voxel.
    """
    n, c = x.shape[:2]
    k = _sobel_kernels(x.dtype, x.device)
    g = functional.conv3d(x.reshape(n * c, 1, *x.shape[2:]), k)
    return g.reshape(n, c, 3, *g.shape[2:])


def _gaussian_radius(sigma: float) -> int:
    """Half-width in voxels of :func:`_gaussian_kernel` (0 for no smoothing)."""
    return max(1, math.ceil(2 * sigma)) if sigma > 0 else 0


def _gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = _gaussian_radius(sigma)
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def laplacian3d(x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
    """Discrete 3D Laplacian (7-point stencil, voxel units) of every channel, valid part only.

    Parameters
    ----------
    x : Tensor
        (N, C, Z, Y, X).
    sigma : float
        Gaussian smoothing before the Laplacian, in voxels (0: none); a Laplacian of Gaussian
        that leaves out the voxel-scale noise of measured fluorescence.

    Returns
    -------
    Tensor
        (N, C, Z-2-2r, Y-2-2r, X-2-2r), r the smoothing kernel's radius (0 without); a
        quadratic ``a * (z² + y² + x²)`` gives ``6 a`` everywhere.
    """
    n, c = x.shape[:2]
    h = x.reshape(n * c, 1, *x.shape[2:])
    if sigma > 0:
        g = _gaussian_kernel(sigma, x.dtype, x.device)
        # separable, one 1D pass per axis, valid part only: by hand because MONAI's
        # GaussianFilter pads to the input's size, and its zero border would be charged as
        # curvature at every patch edge
        for axis in range(3):
            shape = [1, 1, 1, 1, 1]
            shape[2 + axis] = len(g)
            h = functional.conv3d(h, g.reshape(shape))
    k = torch.zeros((1, 1, 3, 3, 3), dtype=x.dtype, device=x.device)
    k[0, 0, 1, 1, 1] = -6.0
    for offset in ((0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)):
        k[(0, 0, *offset)] = 1.0
    h = functional.conv3d(h, k)
    return h.reshape(n, c, *h.shape[2:])


def _channel_mean(squared: torch.Tensor, channel_weights: Sequence[float] | None
                  ) -> torch.Tensor:
    """Mean of (N, C, ...) squared errors; channels weighted (weights averaging 1) if given."""
    if channel_weights is None:
        return squared.mean()
    per_channel = squared.mean(dim=[d for d in range(squared.ndim) if d != 1])
    weights = torch.as_tensor(channel_weights, dtype=per_channel.dtype,
                              device=per_channel.device)
    if weights.shape != per_channel.shape:
        raise ConfigError(f"{len(weights)} channel weights for {len(per_channel)} targets",
                          "loss_options.channel_weights", "give one weight per target or 'auto'")
    return (weights * per_channel).sum() / weights.sum()


def gdl_loss(pred: torch.Tensor, target: torch.Tensor,
             channel_weights: Sequence[float] | None = None) -> torch.Tensor:
    """Gradient-difference loss E|h(y) - h(ŷ)|², h the 3D Sobel operator (spec 2).

    The mean runs over voxels, channels and the three gradient components. Inputs thinner
    than 3 voxels on an axis contribute no gradient term.
    """
    if min(pred.shape[2:]) < 3:
        return pred.new_zeros(())
    return _channel_mean((sobel3d(pred) - sobel3d(target)) ** 2, channel_weights)


def laplacian_loss(pred: torch.Tensor, target: torch.Tensor,
                   channel_weights: Sequence[float] | None = None, sigma: float = 1.0
                   ) -> torch.Tensor:
    """Curvature difference E|∇²G*y - ∇²G*ŷ|², a Laplacian of Gaussian (:func:`laplacian3d`).

    A dip between two neighbouring structures is a curvature feature (its floor has no
    gradient), which the Laplacian measures. The Gaussian (``sigma`` voxels) keeps the
    target's voxel-scale noise, which no network can predict, from dominating the term.
    Inputs too thin for the filters contribute nothing.
    """
    if min(pred.shape[2:]) <= 2 + 2 * _gaussian_radius(sigma):
        return pred.new_zeros(())
    # the filters are linear: one pass over the error instead of one per volume
    return _channel_mean(laplacian3d(pred - target, sigma) ** 2, channel_weights)


def mse_gdl_loss(pred: torch.Tensor, target: torch.Tensor, gdl_weight: float = 1.0,
                 channel_weights: Sequence[float] | None = None,
                 overshoot_weight: float = 0.0, laplacian_weight: float = 0.0,
                 laplacian_sigma: float = 1.0) -> torch.Tensor:
    """l = l_MSE + w * l_GDL, the RI2FL loss (w = 1 in the paper).

    ``channel_weights`` scales each target's share of both terms; inverse target variances
    (``channel_weights_from_variance``) make a sparse channel such as lipid droplets count as
    much as the membrane, as if every target were normalised to unit variance.
    ``overshoot_weight`` (0 in the paper) adds ``v * E[max(ŷ - y, 0)²]``: signal painted where
    there is less costs ``1 + v`` times a shortfall of the same size, which discourages a
    network from painting faint structures (droplets on mitochondria, say) where there are none.
    ``laplacian_weight`` (0 in the paper) adds ``u * E|∇²G*y - ∇²G*ŷ|²``
    (:func:`laplacian_loss`, ``laplacian_sigma`` voxels), so that the dips separating
    neighbouring structures are reproduced, not filled.
    """
    error = pred - target
    loss = _channel_mean(error ** 2, channel_weights)
    if overshoot_weight:
        loss = loss + overshoot_weight * _channel_mean(error.clamp_min(0) ** 2, channel_weights)
    if laplacian_weight:
        loss = loss + laplacian_weight * laplacian_loss(pred, target, channel_weights,
                                                         laplacian_sigma)
    return loss + gdl_weight * gdl_loss(pred, target, channel_weights)


def channel_weights_from_variance(variances: Sequence[float], max_ratio: float = 100.0
                                  ) -> list[float]:
    """Loss weights proportional to 1 / variance, averaging 1.

    Parameters
    ----------
    variances : sequence of float
        Variance of each target channel over the training data.
    max_ratio : float
        Largest weight over smallest: a nearly empty channel must not swamp the others.

    Examples
    --------
    >>> channel_weights_from_variance([1.0, 0.25])
    [0.4, 1.6]
    """
    var = torch.as_tensor(variances, dtype=torch.float64).clamp_min(1e-12)
    weights = 1.0 / var
    weights = weights.clamp_max(float(weights.min()) * max_ratio)
    return [round(float(w), 6) for w in weights / weights.mean()]


def dice_bce_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice + binary cross-entropy per channel, summed over channels (Choi et al.).

    Parameters
    ----------
    prob : Tensor
        Probabilities in [0, 1] (the network ends with a sigmoid), (N, C, ...).
    target : Tensor
        Binary masks, same shape.
    eps : float
        Smoothing of the Dice ratio, so that empty masks predicted empty cost nothing.
    """
    prob = prob.float().clamp(0.0, 1.0)
    target = target.float()
    dims = [0, *range(2, prob.ndim)]
    inter = (prob * target).sum(dims)
    dice = 1 - (2 * inter + eps) / (prob.sum(dims) + target.sum(dims) + eps)
    bce = functional.binary_cross_entropy(prob, target, reduction="none").mean(dims)
    return (dice + bce).sum()


#: Loss functions by configuration name.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mse_gdl": mse_gdl_loss,
    "mse": functional.mse_loss,
    "dice_bce": dice_bce_loss,
}


def get_loss(name: str, **kwargs) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return ``loss(pred, target)`` for a configuration name, with options bound."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}", "loss", f"choose one of {sorted(LOSSES)}")
    fn = LOSSES[name]
    if kwargs:
        return lambda pred, target: fn(pred, target, **kwargs)
    return fn
