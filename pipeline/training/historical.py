"""Historical averaging (`train.historical_averaging`), Salimans et al. 2016, sec. 3.3: each player's cost
gets weight * ||theta - mean_i theta[i]||^2, a pull towards the average of its own past parameters, which
damps the oscillations gradient descent on a game can fall into."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn


class HistoricalAverage:
    """The running mean of `module`'s parameters (its initial values and the value after each optimizer
    step), and the penalty's gradient 2 * weight * (theta - mean) added to the gradients just before each
    step. `attach(optimizer)` hooks both into the optimizer, so every update of that player gets them."""

    def __init__(self, module: nn.Module, weight: float) -> None:
        self.weight = weight
        self.params = list(module.parameters())
        self.average = [p.detach().clone() for p in self.params]
        self.count = 1  # values averaged so far

    def penalty(self) -> torch.Tensor:
        """weight * ||theta - mean||^2 (what the pull is the gradient of; logged, not backpropagated)."""
        return self.weight * sum((p.detach() - a).pow(2).sum() for p, a in zip(self.params, self.average))

    @torch.no_grad()
    def pull(self) -> None:
        for p, a in zip(self.params, self.average):
            if p.grad is not None:
                p.grad.add_(p - a, alpha=2.0 * self.weight)

    @torch.no_grad()
    def update(self) -> None:
        self.count += 1
        for p, a in zip(self.params, self.average):
            a.lerp_(p.detach(), 1.0 / self.count)

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.register_step_pre_hook(lambda *_: self.pull())
        optimizer.register_step_post_hook(lambda *_: self.update())

    def state_dict(self) -> dict[str, Any]:
        return {"average": [a.clone() for a in self.average], "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for a, saved in zip(self.average, state["average"]):
            a.copy_(saved)
        self.count = state["count"]
