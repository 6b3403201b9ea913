"""Unrolled GAN (Metz et al. 2016): the generator's loss is taken against the discriminator as it
will be after k more optimizer steps, so G cannot win by moving to where D is weak right now.

The look-ahead runs on a functional copy of D: its parameters, a copy of its buffers (batch-norm
statistics must not move) and its optimizer's state (Adam moments, RMSprop averages). The steps
are differentiated through (`create_graph=True`), as in the paper: the gradient that reaches G
includes how D's updates themselves depend on G's samples (the second-order term). With k = 0
this is exactly the ordinary generator step.
"""

from __future__ import annotations

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


def lookahead(discriminator: nn.Module, optimizer: torch.optim.Optimizer, steps: int,
              d_loss: Callable[[Callable[[Tensor, Tensor | None], Tensor]], Tensor],
              clip_value: float | None = None) -> tuple[Params, Params]:
    """(parameters, buffers) of `discriminator` after `steps` differentiable updates of `optimizer`.

    `d_loss(D)` computes the discriminator's loss with `D(x, y)` standing for the network; it is
    called once per look-ahead step with the current functional parameters. `clip_value`: WGAN's
    weight clipping after each step.
    """
    update = UPDATES.get(type(optimizer))
    if update is None:
        raise ValueError(f"unrolling supports Adam and RMSprop, not {type(optimizer).__name__}")
    group = optimizer.param_groups[0]
    names = [n for n, p in discriminator.named_parameters() if p.requires_grad]
    params: Params = dict(discriminator.named_parameters())
    buffers: Params = {n: b.clone() for n, b in discriminator.named_buffers()}
    states = {n: {k: (v.detach().clone() if torch.is_tensor(v) else v)
                  for k, v in optimizer.state.get(params[n], {}).items()} for n in names}
    for _ in range(steps):
        loss = d_loss(lambda x, y: functional_call(discriminator, (params, buffers), (x, y)))
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True, allow_unused=True)
        new = dict(params)
        for n, g in zip(names, grads):
            g = torch.zeros_like(params[n]) if g is None else g
            new[n], states[n] = update(params[n], g, states[n], group)
            if clip_value is not None:
                new[n] = new[n].clamp(-clip_value, clip_value)
        params = new
    return params, buffers
