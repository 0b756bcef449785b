"""Where and in which precision the network runs: CUDA or CPU, bf16/fp16 autocast, channels-last.

On a CPU with native bf16 dot products (AVX512-BF16 or AMX) bf16 autocast with the
channels-last-3d memory format runs the 3D convolutions of a U-Net about 2-3x faster than
fp32 (measured in docs/inference.md); elsewhere the CPU runs fp32. On CUDA, bf16 where the GPU
supports it, else fp16.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from ..errors import ConfigError

__all__ = ["InstanceNormCL", "Runner", "choose_device", "choose_precision", "cpu_has_fast_bf16",
           "make_runner", "optimize_for_inference"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(cpu, name)()) for name in checks if hasattr(cpu, name))
    except RuntimeError:  # pragma: no cover - a torch build without the probes
        return False


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a :class:`torch.device`; default CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}", "--device", "use cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA was asked for but no CUDA GPU is available", "--device",
                          "use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}", "--device", "use cpu or cuda")
    return dev


def choose_precision(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The compute dtype: ``"auto"`` picks bf16 where it is fast, else fp32 (fp16 on old GPUs)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}", "--precision",
                          f"use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


class InstanceNormCL(nn.Module):
    """Instance normalisation that keeps the memory format.

    Same result as :class:`torch.nn.InstanceNorm3d` without running statistics, but
    PyTorch's own reshapes its input to (1, N*C, ...) for a batch norm, which copies a
    channels-last tensor to contiguous and back around every normalisation; measured on this
    CPU that doubled the time of a bf16 channels-last U-Net (docs/inference.md).
    """

    def __init__(self, norm: nn.InstanceNorm3d):
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # instance norm of one sample = batch norm with batch statistics, whose CPU kernels
        # have a channels-last path (and accumulate low-precision input in fp32)
        parts = [functional.batch_norm(x[i:i + 1], None, None, self.weight, self.bias,
                                       training=True, momentum=0.0, eps=self.eps)
                 for i in range(x.shape[0])]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with inference-friendly, equivalent layers.

    Instance norms without running statistics become :class:`InstanceNormCL`. The caller's
    model is left untouched.
    """
    model = copy.deepcopy(model).eval()
    _swap_instance_norms(model)
    return model


def _swap_instance_norms(module: nn.Module) -> None:
    for name, child in module.named_children():
        if (isinstance(child, nn.modules.instancenorm._InstanceNorm)
                and not child.track_running_stats):
            setattr(module, name, InstanceNormCL(child))
        else:
            _swap_instance_norms(child)


@dataclass
class Runner:
    """Calls a network on NumPy batches on a device, in a precision, without gradients.

    Attributes
    ----------
    model : torch.nn.Module
        The network, already on ``device``.
    device : torch.device
    dtype : torch.dtype
        Compute dtype; anything but float32 runs under autocast.
    channels_last : bool
        Feed inputs in the channels-last-3d memory format.
    """

    model: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def __call__(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, C_in, z, y, x) -> (N, C_out, z, y, x) float32 NumPy."""
        x = torch.as_tensor(batch, dtype=torch.float32).to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode(), self.autocast():
            y = self.model(x)
        return y.float().cpu().numpy()


def make_runner(model: torch.nn.Module, device: str | torch.device | None = None,
                precision: str = "auto", channels_last: bool | None = None,
                optimize: bool = True) -> Runner:
    """Wrap a copy of ``model`` on the chosen device as a NumPy batch -> NumPy batch function.

    ``channels_last`` defaults to on for reduced precision (where oneDNN / cuDNN pick their
    fast channels-last kernels) and off for fp32 on CPU. ``optimize`` swaps in equivalent
    faster layers (:func:`optimize_for_inference`); the caller's model is never modified.
    """
    dev = choose_device(device)
    dtype = choose_precision(dev, precision)
    if channels_last is None:
        channels_last = dtype != torch.float32 or dev.type == "cuda"
    model = optimize_for_inference(model) if optimize else model
    model = model.to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return Runner(model, dev, dtype, channels_last)


def as_callable(model: torch.nn.Module | Callable, **kwargs) -> Callable:
    """A :class:`Runner` for a module; any other callable is returned as is."""
    return make_runner(model, **kwargs) if isinstance(model, torch.nn.Module) else model
