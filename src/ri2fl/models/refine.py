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

    @property
    def head_halo(self) -> int:
        """Voxels of context the head needs on each side: one per 3x3x3 convolution."""
        return sum(1 for m in self.head if isinstance(m, nn.Conv3d))

    def forward_region(self, x: torch.Tensor, box: Sequence[slice],
                       slab_voxels: int = 1 << 21) -> torch.Tensor:
        """``forward(x)[..., box]``, with the head run only on ``box``, slab by slab.

        The coarse network still sees the whole input (its instance norms read the whole
        tile); the full-grid head, which costs most of the network at inference, runs only
        where the caller needs outputs, plus :attr:`head_halo` voxels of context, one sample
        at a time and cut into slabs of about ``slab_voxels`` voxels along the box's longest
        axis, so that its activations stay small (2 M voxels: 128 MB per 16-channel fp32
        activation, for about 10 % of recomputed halo on a 64 x 256 x 256 tile). The head's
        zero padding sits at the tile's edges as in :meth:`forward`, so the result equals it
        to float round-off.

        Parameters
        ----------
        x : torch.Tensor
            (N, C_in, Z, Y, X) input.
        box : 3 slices
            The (z, y, x) region of the output to compute, with explicit non-empty bounds
            inside (Z, Y, X).
        slab_voxels : int
            Head input voxels per sample and slab (halo included), about.

        Returns
        -------
        torch.Tensor
            (N, C_out, *box lengths).
        """
        box = _check_box(box, x.shape[2:])
        x = _pad_to_multiple(x, self.size_multiple)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_base):
            coarse = self.base(functional.avg_pool3d(x, self.scale))
        full = tuple(x.shape[2:])
        out = coarse.new_empty((x.shape[0], coarse.shape[1],
                                *(b.stop - b.start for b in box)))
        # dropout samples one mask per call: a sampling head must see the region at once
        sampling = any(isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0
                       for m in self.head)
        axis = max(range(3), key=lambda a: box[a].stop - box[a].start)
        samples = [slice(None)] if sampling else [slice(i, i + 1) for i in range(x.shape[0])]
        for lo, hi in _slabs(box, axis, self.head_halo, full, None if sampling else slab_voxels):
            part = list(box)
            part[axis] = slice(lo, hi)
            dst = [slice(p.start - b.start, p.stop - b.start) for p, b in zip(part, box)]
            for n in samples:
                out[(n, slice(None), *dst)] = self._head_part(x[n], coarse[n], part, full)
        return out

    def _head_part(self, x: torch.Tensor, coarse: torch.Tensor, part: Sequence[slice],
                   full: Sequence[int]) -> torch.Tensor:
        """The refined output on ``part`` (padded-input coordinates), from its halo'd input."""
        halo = self.head_halo
        grown = [slice(max(p.start - halo, 0), min(p.stop + halo, n)) for p, n in zip(part, full)]
        up = _upsample_region(coarse, full, grown)
        # filled in the head's memory format directly (one copy each, no cat + convert)
        fmt = (torch.channels_last_3d
               if self.head[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
               else torch.contiguous_format)
        n_in = x.shape[1]
        inputs = torch.empty((x.shape[0], n_in + up.shape[1], *up.shape[2:]), dtype=x.dtype,
                             device=x.device, memory_format=fmt)
        inputs[:, :n_in] = x[(slice(None), slice(None), *grown)]
        inputs[:, n_in:] = up
        residual = self.head(inputs)
        del inputs
        crop = (slice(None), slice(None),
                *(slice(p.start - g.start, p.stop - g.start) for p, g in zip(part, grown)))
        return up[crop].index_add(1, self.refine_index, residual[crop].to(up.dtype))


def _check_box(box: Sequence[slice], shape: Sequence[int]) -> tuple[slice, slice, slice]:
    if len(box) != 3:
        raise ValueError(f"box needs 3 slices (z, y, x), got {box}")
    out = []
    for b, n in zip(box, shape):
        lo, hi = (0 if b.start is None else int(b.start)), (int(n) if b.stop is None
                                                              else int(b.stop))
        if not 0 <= lo < hi <= n or b.step not in (None, 1):
            raise ValueError(f"box {box} is not a non-empty region of {tuple(shape)}")
        out.append(slice(lo, hi))
    return out[0], out[1], out[2]


def _slabs(box: Sequence[slice], axis: int, halo: int, full: Sequence[int],
           slab_voxels: int | None) -> list[tuple[int, int]]:
    """Output ranges along ``axis`` whose halo'd head input holds about ``slab_voxels``."""
    b = box[axis]
    if slab_voxels is None:
        return [(b.start, b.stop)]
    across = 1
    for a, (s, n) in enumerate(zip(box, full)):
        if a != axis:
            across *= min(s.stop + halo, n) - max(s.start - halo, 0)
    # at least 4 x the halo thick, else the halo would cost more than the slab
    step = max(4 * halo, slab_voxels // max(across, 1) - 2 * halo, 1)
    return [(lo, min(lo + step, b.stop)) for lo in range(b.start, b.stop, step)]


def _upsample_region(coarse: torch.Tensor, full: Sequence[int],
                     region: Sequence[slice]) -> torch.Tensor:
    """``interpolate(coarse, size=full, mode="trilinear")[..., region]`` without the rest.

    Where every axis is an integer multiple of the coarse one, PyTorch's own kernel runs on
    the coarse voxels under ``region`` plus one on each side: inside the field its source
    positions are the whole field's shifted by the crop, and at the field's edges it clamps
    as the whole field's does. Otherwise the same positions and weights are applied one axis
    at a time, x first, as PyTorch nests them.
    """
    factors = [int(n) // int(c) for n, c in zip(full, coarse.shape[2:])]
    if all(f * c == int(n) for f, c, n in zip(factors, coarse.shape[2:], full)):
        lo = [max(r.start // f - 1, 0) for r, f in zip(region, factors)]
        hi = [min(-(-r.stop // f) + 1, c) for r, f, c in zip(region, factors, coarse.shape[2:])]
        crop = coarse[(slice(None), slice(None), *(slice(a, b) for a, b in zip(lo, hi)))]
        up = functional.interpolate(crop, scale_factor=tuple(float(f) for f in factors),
                                    mode="trilinear", align_corners=False)
        return up[(slice(None), slice(None),
                   *(slice(r.start - a * f, r.stop - a * f)
                     for r, a, f in zip(region, lo, factors)))]
    out = coarse
    for axis in (2, 1, 0):
        n_in, n_out, r = coarse.shape[2 + axis], int(full[axis]), region[axis]
        dst = torch.arange(r.start, r.stop, device=coarse.device, dtype=torch.float32)
        src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp_(min=0)
        i0 = src.long().clamp_(max=n_in - 1)
        i1 = (i0 + 1).clamp_(max=n_in - 1)
        lam1 = (src - i0).to(coarse.dtype)
        shape = [1] * out.ndim
        shape[2 + axis] = -1
        lam1 = lam1.view(shape)
        out = (out.index_select(2 + axis, i0) * (1 - lam1)
               + out.index_select(2 + axis, i1) * lam1)
    return out
