"""Data-parallel training with torch.distributed, launched by torchrun.

With `train.nproc: N` > 1 the train stage re-launches itself as
`python -m torch.distributed.run --standalone --nproc_per_node N -m stages.train <variant>` (an
argument list: no shell); for several machines run that command yourself on each, with torchrun's
`--nnodes`/`--rdzv-endpoint` options. Each process (rank) trains on its own shard of the data with
its own noise, `batch_size / world size` samples a step, G and D wrapped in DistributedDataParallel
so their gradients are averaged (the global batch is `batch_size`, as in one process); batch norm
is synchronised across GPUs (SyncBatchNorm; on CPU, with gloo, it normalises each rank's batch).
Rank 0 alone logs to MLflow, runs the mode checks and writes checkpoints and results. A resumed run
resumes every rank from rank 0's checkpoint (weights, optimizers, step), broadcast: the other ranks
never read their own disk, which on another node may hold nothing or an older file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from torch import Tensor

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The process's place in a torchrun job (one process when not under torchrun)."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def under_launcher() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def launch_command(nproc: int, module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", module, *args]


def rank_device(device: torch.device, world: World) -> torch.device:
    """One GPU per process on a node."""
    if world.size > 1 and device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def start(world: World, device: torch.device, batch_size: int) -> None:
    if world.size == 1:
        return
    if batch_size % world.size:
        raise ConfigError(f"train.batch_size {batch_size} must be divisible by the {world.size} processes "
                          f"(train.nproc)")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def stop(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """`module` in DDP (SyncBatchNorm on GPUs); the module itself in one process."""
    if world.size == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    if device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return DDP(module, device_ids=[device.index])
    return DDP(module)


def local(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (same parameters): for forwards whose parameter gradients are
    not wanted (D in the G step), which DDP would otherwise wait to synchronise."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    return module.module if isinstance(module, DDP) else module


def from_rank0(obj: Any, world: World) -> Any:
    """Rank 0's `obj` on every rank (pickled through the process group; `obj` itself where there is
    one process). Tensors in it should be on the CPU: each rank moves what it receives."""
    if world.size == 1:
        return obj
    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(values: Tensor, world: World) -> Tensor:
    if world.size > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= world.size
    return values
