"""Training StackGAN as hanzhanggit/StackGAN-Pytorch's trainer.py does, on digits and their descriptions: Stage I
(G and D at 14x14) for `stack.stage1_steps`, then Stage II (G and D at 28x28) with Stage I frozen; each step one
matching-aware D update, errD = BCE(D(real, its description), 1) + (BCE(D(real, the next digit's description), 0) +
BCE(D(fake, description), 0)) / 2, then one G update, BCE(D(fake, description), 1) + kl_weight x KL of the CA; D
reads a description as the reference's D does, through the mean of G's conditioning augmentation, detached.
Real images for Stage I are the digits averaged down to 14x14. `stages: 1` trains the one-stage baseline against the
28x28 D for every step. `StackRun` is what the training loop drives; its batches come from its own generator."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.data import Prepared
from pipeline.device import autocast_factory
from pipeline.distributed import World
from pipeline.errors import ConfigError
from pipeline.kinds import kind_of
from pipeline.optim import OPTIMIZERS
from pipeline.tasks.stack.attributes import EMBEDDING_DIM, Bins, embed, measure
from pipeline.tasks.stack.networks import StackGenerator, TextDiscriminator, kl_loss
from pipeline.training.loop import RunCounters
from pipeline.training.parts import frozen


def stage1_steps(recipe: Any) -> int:
    """The step Stage II takes over after (0 for the one-stage baseline)."""
    s = recipe.stack
    if s.stages == 1:
        return 0
    return s.stage1_steps if s.stage1_steps is not None else recipe.train.steps // 2


def check_stack_data(prepared: Prepared) -> None:
    if not kind_of(prepared).images or not prepared.num_classes or prepared.data_shape != (1, 28, 28):
        raise ConfigError(f"task stack describes 28x28 grey digits by their class and measured stroke (thickness, "
                          f"slant, width); dataset {prepared.name!r} ({prepared.kind}, shape {list(prepared.data_shape)}"
                          f", {prepared.num_classes} classes) is not such data: use mnist5k or mnist")
    if prepared.num_classes != 10:
        raise ConfigError(f"task stack names digits zero to nine; {prepared.name!r} has {prepared.num_classes} classes")


@dataclass
class StackRun(RunCounters):
    generator: StackGenerator
    d_low: TextDiscriminator | None     # Stage I's D (None for the one-stage baseline)
    d_high: TextDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d_low: torch.optim.Optimizer | None
    opt_d_high: torch.optim.Optimizer
    gen: torch.Generator
    bins: Bins
    recipe: Any = None
    x: Tensor | None = None             # training digits, their descriptions' embeddings
    e: Tensor | None = None
    autocast: Callable[[], Any] = contextlib.nullcontext

    def modules(self) -> dict[str, Any]:
        out = {"generator": self.generator, "d_high": self.d_high, "opt_g": self.opt_g, "opt_d_high": self.opt_d_high}
        if self.d_low is not None:
            out.update(d_low=self.d_low, opt_d_low=self.opt_d_low)
        return out

    def stage(self, step: int) -> int:
        return 1 if step <= stage1_steps(self.recipe) else 2

    def iteration(self, step: int, logged: bool) -> dict[str, Tensor]:
        t, s, g = self.recipe.train, self.recipe.stack, self.generator
        stage = self.stage(step)
        idx = torch.randint(len(self.x), (t.batch_size,), device=self.x.device, generator=self.gen)
        latent = torch.randn(t.batch_size, g.latent_dim, device=self.x.device, generator=self.gen)
        real, e = self.x[idx], self.e[idx]
        with self.autocast():
            if stage == 1:
                d, opt_d = self.d_low, self.opt_d_low
                real = F.avg_pool2d(real, 2)
                z, noise = latent[:, :g.z_dim], latent[:, g.z_dim:g.z_dim + g.c_dim]
                c, mu, logvar = g.ca1(e, noise)
                fake, kls = g.stage1(z, c), [(mu, logvar)]
            else:
                d, opt_d = self.d_high, self.opt_d_high
                if g.n_stages == 2:  # Stage I is frozen: its weights and batch statistics stay as they ended
                    g.stage1.eval()
                    g.ca1.requires_grad_(False)
                    g.stage1.requires_grad_(False)
                low, fake, kls = g.stages(latent, e)
                if low is not None:
                    kls = kls[1:]  # Stage I's CA does not train now
            # D's condition: the training stage's CA mean, detached; a wrong pair is a real digit with the next
            # digit's condition (the reference's real_features[:-1] with cond[1:])
            cond = kls[-1][0].detach()
            d_real, d_wrong = d(real, cond).float(), d(real[:-1], cond[1:]).float()
            d_fake = d(fake.detach(), cond).float()
            ones, zeros = torch.ones_like(d_real), torch.zeros_like(d_real)
            err_real = F.binary_cross_entropy_with_logits(d_real, ones)
            err_wrong = F.binary_cross_entropy_with_logits(d_wrong, zeros[1:])
            err_fake = F.binary_cross_entropy_with_logits(d_fake, zeros)
            loss_d = err_real + 0.5 * (err_wrong + err_fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        self.d_updates += 1
        with self.autocast(), frozen(d):
            adversarial = F.binary_cross_entropy_with_logits(d(fake, cond).float(), ones)
            kl = sum(kl_loss(mu.float(), logvar.float()) for mu, logvar in kls)
            loss_g = adversarial + s.kl_weight * kl
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_d_wrong": err_wrong.detach(), "loss_g": loss_g.detach(),
                "loss_g_adversarial": adversarial.detach(), "kl": kl.detach(),
                "d_real": torch.sigmoid(d_real.detach()).mean(), "d_wrong": torch.sigmoid(d_wrong.detach()).mean(),
                "d_fake": torch.sigmoid(d_fake.detach()).mean(),
                "stage": torch.tensor(float(stage), device=self.x.device)}

    def images_seen(self) -> int:
        return self.step * self.recipe.train.batch_size

    def finish(self) -> "StackRun":
        self.generator.eval()
        return self


def build(recipe: Any, prepared: Prepared, device: torch.device, world: World = World()) -> StackRun:
    t, s = recipe.train, recipe.stack
    torch.manual_seed(recipe.seed)
    generator = StackGenerator(t.z_dim, EMBEDDING_DIM, s.c_dim, t.width, s.stages).to(device)
    d_high = TextDiscriminator(28, s.c_dim, t.width).to(device)
    d_low = TextDiscriminator(14, s.c_dim, t.width).to(device) if s.stages == 2 else None
    make = OPTIMIZERS.get(t.optimizer, "train.optimizer")
    opt_g = make(generator.parameters(), t.lr_g, t.betas, device)
    opt_d_high = make(d_high.parameters(), t.lr_d, t.betas, device)
    opt_d_low = make(d_low.parameters(), t.lr_d, t.betas, device) if d_low is not None else None
    measured = measure(prepared.x_train)
    bins = Bins.fit(measured, prepared.y_train, prepared.num_classes)
    e = embed(prepared.y_train, bins.bin(measured, prepared.y_train))
    return StackRun(generator, d_low, d_high, opt_g, opt_d_low, opt_d_high,
                    torch.Generator(device=device).manual_seed(recipe.seed), bins, recipe,
                    prepared.x_train.to(device), e.to(device), autocast_factory(t.precision, device), world=world)
