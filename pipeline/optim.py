"""Optimizers by name. A loss names its published optimizer (`GanLoss.default_optimizer`), which
`train.optimizer: auto` resolves to; `adam` or `rmsprop` choose one explicitly."""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from pipeline.registry import Registry

# (parameters, learning rate, Adam betas, device) -> optimizer
Factory = Callable[[Iterable[torch.nn.Parameter], float, tuple[float, float], torch.device], torch.optim.Optimizer]
OPTIMIZERS: Registry[Factory] = Registry("optimizer")


@OPTIMIZERS.register("adam")
def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
         device: torch.device) -> torch.optim.Optimizer:
    # fused: one kernel for the whole update, on CUDA and on the CPU (2.7x faster than the per-tensor
    # loop there, measured on 400x400 layers: it matters for small networks such as the 2D toys)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=device.type in ("cuda", "cpu"))


@OPTIMIZERS.register("rmsprop")
def rmsprop(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
            device: torch.device) -> torch.optim.Optimizer:
    """Momentum-free, as the WGAN paper uses it (betas are Adam's and do not apply)."""
    return torch.optim.RMSprop(params, lr=lr)


class AdamEpsInside(torch.optim.Optimizer):
    """Adam as openai/improved-gan's `nn.adam_updates` computes it: p -= lr m_hat / sqrt(v_hat + eps), the epsilon
    (1e-8) inside the square root, so the denominator never falls below 1e-4 (PyTorch's Adam adds eps after the root:
    a parameter whose gradients vanish takes steps up to 1e4 times larger there)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch's signature
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = m / (1 - beta1 ** state["step"])
                v_hat = v / (1 - beta2 ** state["step"])
                p.addcdiv_(m_hat, (v_hat + group["eps"]).sqrt(), value=-group["lr"])


@OPTIMIZERS.register("adam_eps_inside")
def adam_eps_inside(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
                    device: torch.device) -> torch.optim.Optimizer:
    """The semi-supervised GAN's reference Adam (`AdamEpsInside`)."""
    return AdamEpsInside(params, lr=lr, betas=betas)


def scheduled_lr(base: float, step: int, steps: int, schedule: str | None) -> float:
    """The learning rate at step `step` (1-based) of `steps`: `base` throughout (constant, None), or with
    `linear_decay` constant for the first half and then falling linearly, by the factor 1 - (step - half) /
    (steps - half + 1): pix2pix's and CycleGAN's 'linear' policy (constant for n_epochs, then to zero over n_epochs_decay),
    taken per step instead of per epoch."""
    if schedule in (None, "constant"):
        return base
    half = steps // 2
    return base * (1.0 - max(0, step - half) / (steps - half + 1))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
