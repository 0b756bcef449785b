"""A 3D U-Net family with the knobs of the RI2FL network (Jo et al. 2021, spec section 2).

Instance normalisation, LeakyReLU, ``Dropout3d`` at the end of every block (so that
Monte-Carlo dropout really samples at inference, see :func:`enable_mc_dropout`), skip
connections, configurable width, depth and feature multiplier, and anisotropic pooling for
thin z stacks. Any input size works: the input is padded to the multiple the pooling needs
and the output is cropped back.

The module is plain :mod:`torch.nn`, with no training framework, so it can be scripted,
traced or wrapped in DDP as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

__all__ = ["ConvBlock", "UNet3D", "enable_mc_dropout", "n_parameters"]

_ACTIVATIONS = {None: None, "none": None, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus}


class ConvBlock(nn.Sequential):
    """Two 3x3x3 convolutions, each followed by instance norm and LeakyReLU, then dropout."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1,
                 negative_slope: float = 0.01):
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers += [
                # no bias: InstanceNorm's affine shift makes it redundant
                nn.Conv3d(c_in, out_channels, kernel_size=3, padding=1, bias=False),
                nn.InstanceNorm3d(out_channels, affine=True),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
        layers.append(nn.Dropout3d(dropout))
        super().__init__(*layers)


class UNet3D(nn.Module):
    """3D encoder-decoder with skip connections for volumetric image-to-image regression.

    Parameters
    ----------
    in_channels : int
        Input channels (1 for RI).
    out_channels : int
        Output channels, one per target.
    features : int
        Feature maps of the first level (the paper: 12).
    depth : int
        Number of resolution levels (``depth - 1`` poolings).
    multiplier : int or float
        Feature-map growth per level (the paper: 3; 2 keeps the default model small).
    dropout : float
        Channel dropout probability at the end of every block.
    final_activation : {None, "sigmoid", "softplus"}
        Applied to the output; ``"sigmoid"`` for mask probabilities.
    z_pool_levels : int, optional
        Pool along z only at the first ``z_pool_levels`` poolings (later ones pool y/x only),
        for thin z stacks. Default: pool z at every level (isotropic).

    Examples
    --------
    >>> net = UNet3D(out_channels=6, features=8, depth=3).eval()
    >>> net(torch.zeros(1, 1, 13, 30, 17)).shape
    torch.Size([1, 6, 13, 30, 17])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 6, features: int = 12,
                 depth: int = 4, multiplier: float = 2, dropout: float = 0.1,
                 final_activation: str | None = None, z_pool_levels: int | None = None):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if final_activation not in _ACTIVATIONS:
            raise ValueError(f"final_activation must be one of {sorted(map(str, _ACTIVATIONS))}")
        widths = [max(1, round(features * multiplier**level)) for level in range(depth)]
        n_pool = depth - 1
        z_levels = n_pool if z_pool_levels is None else max(0, min(int(z_pool_levels), n_pool))
        self.pool_factors: list[tuple[int, int, int]] = [
            (2 if i < z_levels else 1, 2, 2) for i in range(n_pool)]
        self.encoders = nn.ModuleList()
        c_in = in_channels
        for width in widths:
            self.encoders.append(ConvBlock(c_in, width, dropout))
            c_in = width
        self.pools = nn.ModuleList(nn.MaxPool3d(f, stride=f) for f in self.pool_factors)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(n_pool)):
            f = self.pool_factors[level]
            self.ups.append(nn.ConvTranspose3d(widths[level + 1], widths[level], f, stride=f))
            self.decoders.append(ConvBlock(2 * widths[level], widths[level], dropout))
        self.head = nn.Conv3d(widths[0], out_channels, kernel_size=1)
        act = _ACTIVATIONS[final_activation]
        self.final_activation = act() if act is not None else nn.Identity()

    @property
    def size_multiple(self) -> tuple[int, int, int]:
        """The (z, y, x) multiple that an input must have before the internal padding."""
        m = [1, 1, 1]
        for f in self.pool_factors:
            m = [a * b for a, b in zip(m, f)]
        return (m[0], m[1], m[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C_in, Z, Y, X) to (N, C_out, Z, Y, X) for any Z, Y, X."""
        if x.ndim != 5:
            raise ValueError(f"expected a 5D tensor (N, C, Z, Y, X), got shape {tuple(x.shape)}")
        shape = x.shape[2:]
        x = _pad_to_multiple(x, self.size_multiple)
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < len(self.pools):
                skips.append(x)
                x = self.pools[i](x)
        for up, dec in zip(self.ups, self.decoders):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        x = self.final_activation(self.head(x))
        return x[..., : shape[0], : shape[1], : shape[2]]


def _pad_to_multiple(x: torch.Tensor, multiple: Sequence[int]) -> torch.Tensor:
    """Pad the last three axes at the end, replicating the border, to a multiple of ``multiple``.

    Replicate (not reflect) padding works for any size, even a single slice. The deepest
    level keeps at least two voxels, which instance normalisation needs.
    """
    sizes = [-(-s // m) * m for s, m in zip(x.shape[2:], multiple)]
    if all(s == m for s, m in zip(sizes, multiple)):
        sizes[-1] *= 2
    pads: list[int] = []
    for size, target in zip(reversed(x.shape[2:]), reversed(sizes)):
        pads += [0, target - size]
    if not any(pads):
        return x
    return functional.pad(x, pads, mode="replicate")


def enable_mc_dropout(model: nn.Module) -> nn.Module:
    """Put only the dropout layers of ``model`` in training mode (Monte-Carlo dropout).

    Normalisation layers stay in eval mode, so repeated passes differ only by the dropout
    samples. Call ``model.eval()`` to switch it off again. Returns ``model``.
    """
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
    return model


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
