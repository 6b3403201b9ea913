"""Pieces every task's training iteration uses: the critic-step schedule and freezing a network's parameters while
the other player's graph is built."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch.nn as nn

from pipeline.config import Recipe

WARMUP_G_STEPS, WARMUP_EVERY = 25, 500  # WGAN's reference: 100 critic steps while gen_iterations < 25 or % 500 == 0


def critic_steps(recipe: Recipe, step: int) -> int:
    """D updates before generator step `step` (1-based): `d_steps`, or `d_steps_warmup` for the first
    25 generator steps and every 500th after (the WGAN reference's schedule, so the critic is near
    optimal when G learns from it)."""
    t = recipe.train
    g_iterations = step - 1  # the reference counts from 0
    if t.d_steps_warmup and (g_iterations < WARMUP_G_STEPS or g_iterations % WARMUP_EVERY == 0):
        return t.d_steps_warmup
    return t.d_steps


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for `module`'s parameters while the graph is built: the G step's backward then
    computes only what reaches G, not D's weight gradients (which the next D step would discard)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
