"""The exponential moving average of G's weights that `train.ema` samples from."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn


class Ema:
    """Exponential moving average of G's weights (`train.ema`), as StyleGAN2-ADA keeps it: the decay
    warms up, decay_t = min(decay, (1 + t) / (10 + t)) at the t-th update, so the first steps' weights
    do not linger (at a constant 0.999 a third of the average would still be them after 1,200
    steps), and buffers (batch-norm statistics) are copied from G, not averaged."""

    def __init__(self, generator: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(generator).requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.module.parameters(), generator.parameters()):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.module.buffers(), generator.buffers()):
            average.copy_(current)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]

