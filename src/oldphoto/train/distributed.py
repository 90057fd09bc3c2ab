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

    ``device`` is resolved like ``oldphoto restore --device``
    (:func:`~oldphoto.stages.runtime.resolve_device`: auto = CUDA, then MPS, then CPU; a device that is
    absent is an error).  CUDA without an index uses
    one GPU per local rank; ``cuda:N`` is honoured in a single process.
    """
    from oldphoto.stages.runtime import resolve_device

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if dev.index is not None and world_size > 1:
            raise ValueError(f"--device {device} picks one GPU; under torchrun use --device cuda (one GPU "
                             "per local rank)")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        if dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {dev}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s)")
        torch.cuda.set_device(dev)
    elif dev.type == "mps" and world_size > 1:
        raise ValueError(f"--device {device}: distributed training runs on CUDA or the CPU")
    use_cuda = dev.type == "cuda"
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


def shutdown() -> None:
    """End the process group, if one was started, before the process exits: left to the interpreter's
    exit, gloo's threads sometimes outlive it and the process aborts ("terminate called without an
    active exception") after its work is done and saved."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
