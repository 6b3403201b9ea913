"""The exponential moving average of G's weights that `train.ema` samples from."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn as nn


RAMPS = ("stylegan2", "num_updates")
RAMPUP = 0.05  # StyleGAN2-ADA's ema_rampup: the half-life is at most 5% of the images seen so far


class Ema:
    """Exponential moving average of G's weights (`train.ema`: its decay once warmed up), whose decay warms up so the
    first steps' weights do not linger (at a constant 0.999 a third of the average would still be them after 1,200
    steps); buffers (batch-norm statistics) are copied from G, not averaged. The warm-up (`train.ema_ramp`):
    - `stylegan2` (StyleGAN2-ADA's training_loop.py): the half-life in images is min(H, 0.05 x images seen before this
      update), H the half-life the decay gives (batch x ln 0.5 / ln decay), and decay_t = 0.5^(batch / half-life);
    - `num_updates` (TensorFlow's ExponentialMovingAverage): decay_t = min(decay, (1 + t) / (10 + t)) at update t."""

    def __init__(self, generator: nn.Module, decay: float, batch_size: int = 1, ramp: str = "stylegan2") -> None:
        if ramp not in RAMPS:
            raise ValueError(f"unknown EMA ramp {ramp!r}; valid ramps: {', '.join(RAMPS)}")
        self.module = copy.deepcopy(generator).requires_grad_(False)
        self.decay, self.updates, self.batch_size, self.ramp = decay, 0, batch_size, ramp

    def current_decay(self) -> float:
        """The decay of the next update."""
        if self.ramp == "num_updates":
            return min(self.decay, (1 + self.updates) / (10 + self.updates))
        half_life = self.batch_size * math.log(0.5) / math.log(self.decay)  # images
        half_life = min(half_life, self.updates * self.batch_size * RAMPUP)
        return 0.5 ** (self.batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        decay = self.current_decay()
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

