"""Precision, recall, density and coverage on feature vectors (Naeem et al. 2020, "Reliable Fidelity
and Diversity Metrics for Generative Models"), with k-nearest-neighbour balls.

Each real sample's ball reaches its k-th nearest real neighbour; each generated sample's, its k-th
nearest generated neighbour. Precision: the share of generated samples inside some real ball.
Recall: the share of real samples inside some generated ball. Density: how many real balls a
generated sample falls in, on average, divided by k (1 when the two sets match; above 1 when
generated samples crowd where real ones are dense). Coverage: the share of real balls that hold at
least one generated sample. Density and coverage, unlike precision and recall, are not fooled by
outliers. Inside means strictly closer than the ball's radius, as the reference code (clovaai/generative-evaluation-
prdc) compares. Distances are computed in blocks, so 10,000 x 10,000 sets fit in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 2048


def _kth_neighbour_distance(x: Tensor, k: int) -> Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    out = []
    for i in range(0, len(x), BLOCK):
        d = torch.cdist(x[i:i + BLOCK], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # the first is the row itself, at distance 0
    return torch.cat(out)


def prdc(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real` (N x D feature tensors)."""
    real, fake = real.float(), fake.float()
    real_radius = _kth_neighbour_distance(real, k)   # (N_real,)
    fake_radius = _kth_neighbour_distance(fake, k)   # (N_fake,)
    in_real_balls = torch.zeros(len(fake), dtype=torch.float64)   # per fake: how many real balls hold it
    covered = torch.zeros(len(real), dtype=torch.bool)            # per real: some fake inside its ball
    recalled = torch.zeros(len(real), dtype=torch.bool)           # per real: inside some fake ball
    for i in range(0, len(fake), BLOCK):
        d = torch.cdist(fake[i:i + BLOCK], real)                  # (block, N_real)
        inside = d < real_radius[None, :]
        in_real_balls[i:i + BLOCK] = inside.sum(dim=1).double()
        covered |= inside.any(dim=0)
        recalled |= (d < fake_radius[i:i + BLOCK, None]).any(dim=0)
    return {"precision": float((in_real_balls > 0).double().mean()), "recall": float(recalled.double().mean()),
            "density": float(in_real_balls.mean() / k), "coverage": float(covered.double().mean())}
