"""Training a translator: G (a U-Net) maps each degraded input to an output; its loss is
`translate.l1_weight` x reconstruction (L1, or L2 with `translate.reconstruction: l2`) plus, unless
`loss: none`, the GAN loss of a PatchGAN D that judges (input, output) pairs against (input, image).

As pix2pix's reference code (junyanz/pytorch-CycleGAN-and-pix2pix, pix2pix_model.py) trains: one batch and one G
output per step, D updated on it first (the output detached) and G then on the same output; D's loss halved and G's
adversarial term without the loss paper's factor (`pipeline.losses.image_to_image_terms`); the learning rate constant
for the first half of the steps, then falling linearly to zero (`train.lr_schedule: linear_decay`). The GAN loss is
any registered one: a gradient penalty interpolates outputs with the input held fixed; weight clipping, label
smoothing, spectral norm and the critic-step schedule are the recipe's, as in the generate task (with several critic
steps, the earlier ones draw batches of their own). `Translator` is the run the training loop drives
(`pipeline.training.loop`), `HeldOutCheck` its measurements during training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.data import Prepared
from pipeline.distributed import World
from pipeline.errors import ConfigError
from pipeline.kinds import kind_of
from pipeline.losses import GanLoss, gradient_penalty, image_to_image_terms
from pipeline.models.unet import PatchGAN, UNet
from pipeline.optim import OPTIMIZERS, scheduled_lr, set_lr
from pipeline.metrics.translation import l1_error, psnr
from pipeline.tasks.translate.problems import PROBLEMS, comparison_grid
from pipeline.training.loop import RunCounters
from pipeline.training.parts import critic_steps, frozen

if TYPE_CHECKING:
    from pipeline.config import ResolvedRecipe


@dataclass
class Translator(RunCounters):
    """A translator's training run: G, D (None with loss: none), their optimisers, the data on the device."""

    generator: UNet
    discriminator: PatchGAN | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    gen: torch.Generator
    recipe: ResolvedRecipe
    loss: GanLoss
    x: Tensor                           # the training images on the device
    autocast: Callable[[], Any]

    def modules(self) -> dict[str, Any]:
        """What the resumable state saves, by name."""
        out = {"generator": self.generator, "opt_g": self.opt_g}
        if self.discriminator is not None:
            out.update(discriminator=self.discriminator, opt_d=self.opt_d)
        return out

    def batch(self) -> tuple[Tensor, Tensor]:
        """A random batch of training images, degraded by the recipe's problem: (inputs, targets)."""
        t = self.recipe.train
        target = self.x[torch.randint(len(self.x), (t.batch_size,), device=self.x.device, generator=self.gen)]
        return PROBLEMS.get(self.recipe.data.translate).degrade(target), target

    def iteration(self, step: int, logged: bool) -> dict[str, Tensor]:
        t, recipe, loss = self.recipe.train, self.recipe, self.loss
        logs: dict[str, Tensor] = {}
        for optimizer, base in ((self.opt_g, t.lr_g), (self.opt_d, t.lr_d)):
            if optimizer is not None:
                set_lr(optimizer, scheduled_lr(base, step, t.steps, t.lr_schedule))
        source, target = self.batch()
        with self.autocast():
            output = self.generator(source)  # one output a step: D's last update and G's see the same
        if self.discriminator is not None:
            steps_d = critic_steps(recipe, step)
            for k in range(steps_d):
                d_source, d_target, d_output = source, target, output
                if k < steps_d - 1:  # extra critic steps: batches of their own
                    d_source, d_target = self.batch()
                    with torch.no_grad(), self.autocast():
                        d_output = self.generator(d_source)
                with self.autocast():
                    loss_d, d_terms = discriminator_loss(loss, self.discriminator, d_source, d_output, d_target,
                                                         recipe, self.gen)
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_d.step()
                if loss.weight_clipping:
                    with torch.no_grad():
                        for p in self.discriminator.parameters():
                            p.clamp_(-t.clip_value, t.clip_value)
                self.d_updates += 1
                logs.update(d_terms)
        with self.autocast():
            loss_g, g_terms = generator_loss(loss, self.discriminator, source, output, target, recipe)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {**logs, "loss_g": loss_g.detach(), **g_terms}

    def row_extras(self) -> dict[str, float]:
        return {"lr_g": self.opt_g.param_groups[0]["lr"]}

    def images_seen(self) -> int:
        return self.step * self.recipe.train.batch_size

    def finish(self) -> "Translator":
        self.generator.eval()
        return self


def reconstruction(output: Tensor, target: Tensor, kind: str) -> Tensor:
    """Mean absolute (l1) or squared (l2) error, on images in [-1, 1]."""
    diff = output.float() - target.float()
    return diff.abs().mean() if kind == "l1" else diff.square().mean()


def generator_loss(loss: GanLoss, discriminator: nn.Module | None, source: Tensor, output: Tensor, target: Tensor,
                   recipe: ResolvedRecipe) -> tuple[Tensor, dict[str, Tensor]]:
    """(G's total loss, its terms): l1_weight x reconstruction + the GAN loss (none without D)."""
    tr = recipe.translate
    rec = reconstruction(output, target, tr.reconstruction)
    total = tr.l1_weight * rec
    terms = {"loss_rec": rec.detach()}
    if discriminator is not None:
        with frozen(discriminator):
            adv = image_to_image_terms(loss)[1](discriminator(source, output).float())
        total = total + adv
        terms["loss_adv"] = adv.detach()
    return total, terms


def discriminator_loss(loss: GanLoss, discriminator: nn.Module, source: Tensor, output: Tensor, target: Tensor,
                       recipe: ResolvedRecipe, gen: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    t = recipe.train
    real_out = discriminator(source, target).float()
    fake_out = discriminator(source, output.detach()).float()
    loss_d = image_to_image_terms(loss)[0](real_out, fake_out, 1.0 - t.label_smoothing)
    terms = {"loss_d": loss_d.detach()}
    if loss.gradient_penalty:  # the input is the condition: only the output is interpolated
        gp = gradient_penalty(lambda y: discriminator(source, y).flatten(1).mean(1), target, output, 1, gen)
        loss_d = loss_d + t.gp_weight * gp
        terms["gradient_penalty"] = gp.detach()
    return loss_d, terms


def build(recipe: ResolvedRecipe, prepared: Prepared, device: torch.device, loss: GanLoss,
          world: World = World()) -> Translator:
    """A new translator run, seeded by the recipe (`loss`: the recipe's, `Task.loss`)."""
    from pipeline.device import autocast_factory
    t, tr = recipe.train, recipe.translate
    torch.manual_seed(recipe.seed)
    channels = prepared.data_shape[0]
    generator = UNet(channels, t.width, tr.dropout).to(device)
    make = OPTIMIZERS.get(t.optimizer, "train.optimizer")
    discriminator = opt_d = None
    if loss.name != "none":
        norm = "none" if (loss.gradient_penalty or t.spectral_norm) else "batch"
        discriminator = PatchGAN(channels, t.width, norm, t.spectral_norm).to(device)  # pix2pix: batch norm
        opt_d = make(discriminator.parameters(), t.lr_d, t.betas, device)
    opt_g = make(generator.parameters(), t.lr_g, t.betas, device)
    return Translator(generator, discriminator, opt_g, opt_d, torch.Generator(device=device).manual_seed(recipe.seed),
                      recipe, loss, prepared.x_train.to(device), autocast_factory(t.precision, device), world=world)


def check_translate_data(prepared: Prepared) -> None:
    if not kind_of(prepared).images:
        raise ConfigError(f"task translate needs an image dataset; {prepared.name!r} is {prepared.kind!r} data "
                          f"(choose mnist5k, mnist, fashion_mnist, digits, cifar10, stacked_mnist or folder)")


class HeldOutCheck:
    """G -> L1, PSNR and (with a classifier) accuracy and FID against the true images, on the first `n`
    test pairs (`train.eval_samples`), and a picture of the first eight (`grid`). Dropout's draws come
    from a forked random state: a check never changes what training draws next."""

    def __init__(self, recipe: ResolvedRecipe, prepared: Prepared, classifier: nn.Module | None,
                 device: torch.device, n: int | None = None) -> None:
        from pipeline.metrics.fidelity import classifier_features
        from pipeline.metrics.frechet import gaussian

        problem = PROBLEMS.get(recipe.data.translate, "data.translate")
        n = n or recipe.train.eval_samples
        self.seed, self.classifier, self.device = recipe.seed + 1, classifier, device
        self.target = prepared.x_test[:n].to(device)
        self.source = problem.degrade(self.target)
        self.labels = prepared.y_test[:n] if prepared.y_test is not None else None
        self.real = gaussian(classifier_features(classifier, self.target)) if classifier is not None else None

    @torch.no_grad()
    def outputs(self, generator: nn.Module, source: Tensor) -> Tensor:
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            generator.eval()
            output = generator(source)
            generator.train()
        return output

    def __call__(self, run: Translator) -> dict[str, float]:
        from pipeline.metrics.classifier import classify
        from pipeline.metrics.fidelity import classifier_features
        from pipeline.metrics.frechet import frechet_distance, gaussian

        output = self.outputs(run.generator, self.source)
        out = {"l1": l1_error(output, self.target), "psnr": psnr(output, self.target)}
        if self.classifier is not None:
            out["fid_classifier"] = frechet_distance(gaussian(classifier_features(self.classifier, output)), self.real)
            if self.labels is not None:
                out["accuracy"] = float((classify(self.classifier, output) == self.labels).float().mean())
        return out

    def grid(self, generator: nn.Module) -> Tensor:
        source, target = self.source[:8], self.target[:8]
        return comparison_grid(source.cpu(), self.outputs(generator, source)[None].cpu(), target.cpu())

    def picture(self, run: Translator) -> tuple[str, Tensor]:
        return "translations", self.grid(run.generator)


