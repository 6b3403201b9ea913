"""One rank of the gradient-sync test (tests/test_distributed.py): D of the toy recipe wrapped as the train stage wraps
it (`pipeline.distributed.wrap`: DistributedDataParallel on gloo), one D loss on this rank's half of a fixed batch,
backward; saves D's gradients after DDP's all-reduce, and the gradients of this rank's half alone (the same forward
through the unwrapped module), to `out`.

    python tests/ddp_gradient_worker.py <out.pt>     (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from pipeline import distributed  # noqa: E402
from pipeline.losses import LOSSES  # noqa: E402
from pipeline.models import ModelSpec, build_models  # noqa: E402

SPEC = ModelSpec(data_shape=(2,), kind="points", z_dim=2, width=8)
BATCH = 16


def fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(BATCH, 2, generator=gen), torch.randn(BATCH, 2, generator=gen) * 2


def d_loss(discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return LOSSES.get("ns").discriminator(discriminator(real), discriminator(fake))


def new_discriminator() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_models("toy", SPEC)[1]


def grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in module.named_parameters()}


def main(out: str) -> None:
    world = distributed.world_from_env()
    device = torch.device("cpu")
    distributed.start(world, device, BATCH)
    real, fake = fixed_batch()
    half = slice(world.rank * BATCH // world.size, (world.rank + 1) * BATCH // world.size)
    alone = new_discriminator()
    d_loss(alone, real[half], fake[half]).backward()
    synced = distributed.wrap(new_discriminator(), world, device)
    d_loss(synced, real[half], fake[half]).backward()
    torch.save({"synced": grads(distributed.local(synced)), "alone": grads(alone)}, out)
    distributed.stop(world)


if __name__ == "__main__":
    main(sys.argv[1])
