"""Unrolled GAN (Metz et al. 2016): the generator's loss is taken against the discriminator as it
will be after k more optimizer steps, so G cannot win by moving to where D is weak right now.

The look-ahead runs on a functional copy of D: its parameters, a copy of its buffers (batch-norm
statistics must not move) and its optimizer's state (Adam moments, RMSprop averages). The steps
are differentiated through (`create_graph=True`), as in the paper: the gradient that reaches G
includes how D's updates themselves depend on G's samples (the second-order term). With k = 0
this is exactly the ordinary generator step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from torch import Tensor
from torch.func import functional_call

Params = dict[str, Tensor]


def _adam(p: Tensor, g: Tensor, state: dict, group: dict) -> tuple[Tensor, dict]:
    beta1, beta2 = group["betas"]
    step = float(state.get("step", 0)) + 1
    m = beta1 * state.get("exp_avg", torch.zeros_like(p)) + (1 - beta1) * g
    v = beta2 * state.get("exp_avg_sq", torch.zeros_like(p)) + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
    # sqrt'(0) is infinite: a tiny floor keeps the second-order term finite where a gradient is 0
    return p - group["lr"] * m_hat / ((v_hat + 1e-30).sqrt() + group["eps"]), {"step": step, "exp_avg": m,
                                                                               "exp_avg_sq": v}


def _rmsprop(p: Tensor, g: Tensor, state: dict, group: dict) -> tuple[Tensor, dict]:
    v = group["alpha"] * state.get("square_avg", torch.zeros_like(p)) + (1 - group["alpha"]) * g * g
    return p - group["lr"] * g / ((v + 1e-30).sqrt() + group["eps"]), {"square_avg": v}


UPDATES = {torch.optim.Adam: _adam, torch.optim.RMSprop: _rmsprop}


@dataclass
class DSnapshot:
    """D and its optimizer as they were before an iteration's D update: the look-ahead starts here,
    so its first step is the update D actually took (Metz et al.'s reference runs the D update and
    G's unrolled step from the same D weights, on the same batch)."""

    params: Params                      # detached copies of the trainable parameters
    buffers: Params                     # copies of the buffers (batch-norm statistics must not move)
    states: dict[str, dict]             # the optimizer's per-parameter state (Adam moments, RMSprop averages)
    group: dict                         # the optimizer's hyperparameters (lr, betas, ...)
    update: Callable[[Tensor, Tensor, dict, dict], tuple[Tensor, dict]]


def snapshot(discriminator: nn.Module, optimizer: torch.optim.Optimizer) -> DSnapshot:
    update = UPDATES.get(type(optimizer))
    if update is None:
        raise ValueError(f"unrolling supports Adam and RMSprop, not {type(optimizer).__name__}")
    named = {n: p for n, p in discriminator.named_parameters() if p.requires_grad}
    copy = lambda v: v.detach().clone() if torch.is_tensor(v) else v  # noqa: E731
    return DSnapshot(params={n: p.detach().clone() for n, p in named.items()},
                     buffers={n: b.clone() for n, b in discriminator.named_buffers()},
                     states={n: {k: copy(v) for k, v in optimizer.state.get(p, {}).items()} for n, p in named.items()},
                     group=dict(optimizer.param_groups[0]), update=update)


def lookahead(discriminator: nn.Module, before: DSnapshot, steps: int,
              d_loss: Callable[[Callable[[Tensor, Tensor | None], Tensor]], Tensor],
              clip_value: float | None = None) -> tuple[Params, Params]:
    """(parameters, buffers) of `discriminator` after `steps` differentiable updates of its optimizer,
    starting from `before`.

    `d_loss(D)` computes the discriminator's loss with `D(x, y)` standing for the network; it is
    called once per look-ahead step with the current functional parameters. `clip_value`: WGAN's
    weight clipping after each step.
    """
    names = list(before.params)
    params: Params = {n: p.clone().requires_grad_(True) for n, p in before.params.items()}
    buffers: Params = {n: b.clone() for n, b in before.buffers.items()}
    states = {n: dict(state) for n, state in before.states.items()}
    for _ in range(steps):
        loss = d_loss(lambda x, y: functional_call(discriminator, (params, buffers), (x, y)))
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True, allow_unused=True)
        new = dict(params)
        for n, g in zip(names, grads):
            g = torch.zeros_like(params[n]) if g is None else g
            new[n], states[n] = before.update(params[n], g, states[n], before.group)
            if clip_value is not None:
                new[n] = new[n].clamp(-clip_value, clip_value)
        params = new
    return params, buffers
