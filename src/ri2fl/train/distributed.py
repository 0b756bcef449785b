"""DDP under ``torchrun``: process-group setup from the environment, sampler and wrapping.

``torchrun --nproc-per-node 2 -m ri2fl.cli.main train cfg.yaml`` starts one process per
GPU (or CPU worker with the gloo backend); each draws its own share of the random patches
through a :class:`~torch.utils.data.DistributedSampler`, gradients are averaged by DDP and
only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import distributed, nn

__all__ = ["DistInfo", "barrier", "cleanup", "sampler", "setup", "wrap"]


@dataclass
class DistInfo:
    """Rank, world size and local rank of this process (1 process: 0, 1, 0)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup() -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        distributed.init_process_group(backend=backend)
        here = True
    return DistInfo(rank, world, local_rank, here)


def sampler(dataset: torch.utils.data.Dataset, info: DistInfo):
    """A DistributedSampler over ``dataset`` under DDP, else a sequential sampler.

    Patches are random by construction, so the order needs no shuffling.
    """
    if info.enabled:
        return torch.utils.data.DistributedSampler(dataset, num_replicas=info.world,
                                                   rank=info.rank, shuffle=False)
    return torch.utils.data.SequentialSampler(dataset)


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """Wrap ``model`` in DistributedDataParallel when more than one process runs."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def barrier(info: DistInfo) -> None:
    if info.enabled and distributed.is_initialized():
        distributed.barrier()


def cleanup(info: DistInfo) -> None:
    if info.initialised_here and distributed.is_initialized():
        distributed.destroy_process_group()
