"""Process-group setup for multi-GPU / multi-node training under ``torchrun``.

``torchrun --nproc_per_node K [--nnodes N --node_rank R --master_addr A --master_port P] \
-m oldphoto train ...``
sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init` reads them.  Without them
training runs as a single process.  The backend is NCCL for CUDA devices and Gloo on CPU (the CPU path is
what the test-suite exercises with two processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> DistInfo:
    """Initialise the process group from torchrun's environment (no-op for a single process).

    ``device``: "auto" (CUDA when available, one GPU per local rank), "cpu" or "cuda".
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but CUDA is not available")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def wrap(module: nn.Module, info: DistInfo, find_unused_parameters: bool = False) -> nn.Module:
    """``DistributedDataParallel(module)`` when running distributed, else the module itself."""
    if not info.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids,
                                   find_unused_parameters=find_unused_parameters)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def mean_across(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """All-reduced mean of a scalar tensor (for logging the same loss on every rank)."""
    if not info.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
