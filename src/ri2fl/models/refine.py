"""A coarse-grid U-Net refined on the full grid by a small convolutional head.

The default network predicts on a grid twice as coarse as the canonical one (0.4 x 0.3 x
0.3 µm), where a lipid droplet under 1 µm³ is one to three voxels across; on the canonical
grid (0.2 x 0.15 x 0.15 µm) the RI still tells small droplets from pieces of mitochondria
(docs/evaluation.md, experiment (a)). :class:`RefinedUNet3D` keeps the coarse network as it
is and adds, on the input's own grid, a few 3x3x3 convolutions that see the full-resolution
RI beside the coarse prediction and correct the chosen channels (a residual, so an untrained
head leaves the coarse prediction unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from .unet import UNet3D, _pad_to_multiple

__all__ = ["DEFAULT_SCALE", "RefinedUNet3D"]

#: Coarse voxel size over the input's (z, y, x): the default model's grid over the canonical one.
DEFAULT_SCALE: tuple[int, int, int] = (2, 2, 2)


class RefinedUNet3D(nn.Module):
    """A :class:`UNet3D` on a coarser grid plus a residual head on the input grid.

    The input is averaged over ``scale`` blocks (the same as resampling it to the coarse grid
    with linear interpolation), the coarse network predicts there, its output is interpolated
    back (trilinear) and the head adds its correction to ``refine_channels``.

    Parameters
    ----------
    in_channels, out_channels : int
        As for :class:`UNet3D`.
    base : dict, optional
        Keyword arguments of the coarse :class:`UNet3D` (``in_channels`` / ``out_channels``
        are taken from above).
    scale : sequence of 3 int
        Coarse voxel size over the input's (z, y, x); ``(2, 2, 2)`` for the default model's
        grid over the canonical one.
    refine_channels : sequence of int
        Output channels that the head corrects; the others are the coarse prediction.
    features : int
        Feature maps of the head.
    layers : int
        3x3x3 convolutions of the head (its receptive field is ``2 * layers + 1`` voxels).
    dropout : float
        Channel dropout before the head's last layer (Monte-Carlo dropout samples it too).
    freeze_base : bool
        Keep the coarse network fixed while training (no gradients, always in eval mode
        except for Monte-Carlo dropout).

    Examples
    --------
    >>> net = RefinedUNet3D(base={"features": 4, "depth": 2}, refine_channels=[2, 3]).eval()
    >>> net(torch.zeros(1, 1, 9, 20, 14)).shape
    torch.Size([1, 6, 9, 20, 14])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 6,
                 base: dict[str, Any] | None = None, scale: Sequence[int] = DEFAULT_SCALE,
                 refine_channels: Sequence[int] = (2, 3), features: int = 12, layers: int = 4,
                 dropout: float = 0.0, freeze_base: bool = True):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        channels = [int(c) for c in refine_channels]
        if not channels or any(not 0 <= c < out_channels for c in channels):
            raise ValueError(f"refine_channels must name outputs 0..{out_channels - 1}, "
                             f"got {channels}")
        self.base = UNet3D(in_channels=in_channels, out_channels=out_channels,
                           **dict(base or {}))
        self.scale = tuple(int(s) for s in scale)
        self.freeze_base = bool(freeze_base)
        self.register_buffer("refine_index", torch.tensor(channels), persistent=False)
        head: list[nn.Module] = []
        c_in = in_channels + out_channels
        for _ in range(layers - 1):
            head += [nn.Conv3d(c_in, features, 3, padding=1), nn.LeakyReLU(0.01, inplace=True)]
            c_in = features
        if dropout:
            head.append(nn.Dropout3d(dropout))
        last = nn.Conv3d(c_in, len(channels), 3, padding=1)
        nn.init.zeros_(last.weight)  # an untrained head returns the coarse prediction
        nn.init.zeros_(last.bias)
        head.append(last)
        self.head = nn.Sequential(*head)
        if self.freeze_base:
            self.base.requires_grad_(False)

    @property
    def size_multiple(self) -> tuple[int, int, int]:
        """The (z, y, x) multiple that an input must have before the internal padding."""
        m = self.base.size_multiple
        return (m[0] * self.scale[0], m[1] * self.scale[1], m[2] * self.scale[2])

    def train(self, mode: bool = True) -> RefinedUNet3D:
        super().train(mode)
        if self.freeze_base:
            self.base.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C_in, Z, Y, X) to (N, C_out, Z, Y, X) for any Z, Y, X."""
        if x.ndim != 5:
            raise ValueError(f"expected a 5D tensor (N, C, Z, Y, X), got shape {tuple(x.shape)}")
        shape = x.shape[2:]
        x = _pad_to_multiple(x, self.size_multiple)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_base):
            coarse = self.base(functional.avg_pool3d(x, self.scale))
        coarse = functional.interpolate(coarse, size=x.shape[2:], mode="trilinear",
                                        align_corners=False)
        residual = self.head(torch.cat([x, coarse.to(x.dtype)], dim=1))
        out = coarse.index_add(1, self.refine_index, residual.to(coarse.dtype))
        return out[..., : shape[0], : shape[1], : shape[2]]
