"""One rank of the two-process resume test (tests/test_distributed.py): trains the tiny toy recipe
under torch.distributed (gloo), resuming from `state` when this rank can read it, and saves the
weights it ends with and the step it resumed from to `out`.

    python tests/ddp_resume_worker.py <state or missing path> <out.pt>     (RANK, WORLD_SIZE, ... set)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from conftest import point_data, tiny_recipe  # noqa: E402

from pipeline.tasks import train  # noqa: E402

RECIPE = dict(dataset="ring8", arch="toy", train={"steps": 6, "checkpoint_every": 2, "z_dim": 2})


def main(state: str, out: str) -> None:
    result = train(tiny_recipe(**RECIPE), point_data(n=512), state_path=Path(state), progress=False)
    weights = {f"g.{k}": v for k, v in result.generator.state_dict().items()}
    weights.update({f"d.{k}": v for k, v in result.discriminator.state_dict().items()})
    torch.save({"resumed_from": result.resumed_from, "weights": weights}, out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
