"""Training task cycle: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017) between two image datasets,
domain A (`dataset`) and domain B (`data.cycle_with`), resized to A's size. Nothing pairs an image of A
with one of B; two generators (G_AB, G_BA) and two discriminators (D_A, D_B) learn from

  GAN loss of G_AB against D_B + GAN loss of G_BA against D_A
  + `cycle.cycle_weight` x (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)        (cycle consistency, lambda 10)
  + `cycle.identity_weight` x (|G_AB(b) - b| + |G_BA(a) - a|)                   (identity, 0.5 lambda = 5)

with any registered GAN loss (CycleGAN uses LSGAN), weighed as the reference code (junyanz/pytorch-CycleGAN-and-
pix2pix, cycle_gan_model.py) weighs it: D's loss halved, G's adversarial term without the loss paper's factor
(LSGAN's MSE(D(G(a)), 1)). As there: instance norm in G and D, weights N(0, 0.02), D judging fakes drawn from a
pool of the last `cycle.pool_size` (50) half the time (`ImagePool`), and the learning rate constant for the first half
of the steps, then falling linearly to zero. G is the U-Net of task translate without dropout, D the PatchGAN on one
image. The departure from the reference: U-Net generators (CycleGAN's: ResNet blocks) sized for small images.

Metrics (evaluate), per direction on the test images of the source domain:
  `fid_classifier_ab`: FID between G_AB(A test) and B's test images on B's classifier features;
  `accuracy_ab`: B's classifier on G_AB(A test) against the A labels (is the digit kept?), beside
  `accuracy_ab_untranslated` (B's classifier on A's test images merely resized: what translation adds);
  `cycle_l1_a`: |G_BA(G_AB(a)) - a|, pixels in [0, 1]; and the same from B to A.
"""


from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.distributed import World
from pipeline.models.unet import PatchGAN, UNet
from pipeline.tasks.cycle.translations import SAMPLE_ROWS, Domains, Translations, cycle_metrics, sample_grid
from pipeline.training.loop import RunCounters
from pipeline.training.parts import critic_steps

class ImagePool:
    """CycleGAN's image buffer (util/image_pool.py): until it holds `size` fakes each new one is kept and returned;
    then each new fake is, with probability 1/2, swapped for a random kept one (which D judges instead), else
    returned as it is. D so sees a history of G's fakes, not only the latest. Draws come from `gen`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None  # (kept, C, H, W)

    def query(self, fakes: Tensor, gen: torch.Generator) -> Tensor:
        if self.size == 0:
            return fakes
        out = []
        for fake in fakes.detach():
            kept = 0 if self.images is None else len(self.images)
            if kept < self.size:
                self.images = fake[None].clone() if self.images is None else torch.cat([self.images, fake[None]])
                out.append(fake)
            elif torch.rand((), device=fake.device, generator=gen) < 0.5:
                i = int(torch.randint(self.size, (), device=fake.device, generator=gen))
                out.append(self.images[i].clone())
                self.images[i] = fake
            else:
                out.append(fake)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images = state["images"]


@dataclass
class CycleModels(RunCounters):
    """A CycleGAN's training run (`pipeline.training.loop.TaskRun`): both Gs and Ds, their optimisers, the pools and
    both domains' training images on the device."""

    g_ab: UNet
    g_ba: UNet
    d_a: PatchGAN
    d_b: PatchGAN
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator
    pool_a: ImagePool            # past G_BA(b), what D_A judges
    pool_b: ImagePool            # past G_AB(a), what D_B judges
    recipe: Any = None
    loss: Any = None
    a_all: Tensor | None = None  # domain A's training images on the device
    b_all: Tensor | None = None
    autocast: Callable[[], Any] = contextlib.nullcontext

    def modules(self) -> dict[str, Any]:
        return {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b, "opt_g": self.opt_g,
                "opt_d": self.opt_d, "pool_a": self.pool_a, "pool_b": self.pool_b}

    def draw(self, x: Tensor) -> Tensor:
        return x[torch.randint(len(x), (self.recipe.train.batch_size,), device=x.device, generator=self.gen)]

    def iteration(self, step: int, logged: bool) -> dict[str, Tensor]:
        """G first (both directions), then D on G's latest fakes through the pools, as CycleGAN steps."""
        from pipeline.optim import scheduled_lr, set_lr

        t, loss, autocast = self.recipe.train, self.loss, self.autocast
        for optimizer, base in ((self.opt_g, t.lr_g), (self.opt_d, t.lr_d)):
            set_lr(optimizer, scheduled_lr(base, step, t.steps, t.lr_schedule))
        a, b = self.draw(self.a_all), self.draw(self.b_all)  # unpaired: independent draws
        with autocast():
            loss_g, terms, fake_b, fake_a = generator_loss(loss, self, a, b, self.recipe)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for k in range(critic_steps(self.recipe, step)):
            if k:  # extra critic steps: batches of their own
                a, b = self.draw(self.a_all), self.draw(self.b_all)
                with torch.no_grad(), autocast():
                    fake_b, fake_a = self.g_ab(a), self.g_ba(b)
            fake_b, fake_a = self.pool_b.query(fake_b, self.gen), self.pool_a.query(fake_a, self.gen)
            with autocast():
                loss_d, d_terms = discriminator_loss(loss, self, a, b, fake_a, fake_b, self.recipe)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            if loss.weight_clipping:
                with torch.no_grad():
                    for p in [*self.d_a.parameters(), *self.d_b.parameters()]:
                        p.clamp_(-t.clip_value, t.clip_value)
            self.d_updates += 1
        return {"loss_g": loss_g.detach(), **terms, **d_terms}

    def row_extras(self) -> dict[str, float]:
        return {"lr_g": self.opt_g.param_groups[0]["lr"]}

    def images_seen(self) -> int:
        return self.step * self.recipe.train.batch_size

    def finish(self) -> "CycleModels":
        for g in (self.g_ab, self.g_ba):
            g.eval()
        return self


def build(recipe: Any, d: Domains, device: torch.device, loss: Any, world: World = World()) -> CycleModels:
    """A new CycleGAN run, seeded by the recipe (`loss`: the recipe's, `Task.loss`)."""
    from pipeline.device import autocast_factory
    from pipeline.optim import OPTIMIZERS
    t = recipe.train
    channels = d.a_train.shape[1]
    torch.manual_seed(recipe.seed)
    norm = "none" if (loss.gradient_penalty or t.spectral_norm) else "instance"
    g_ab, g_ba = (UNet(channels, t.width, 0.0, norm="instance").to(device) for _ in range(2))
    d_a, d_b = (PatchGAN(channels, t.width, norm, t.spectral_norm, inputs=1).to(device) for _ in range(2))
    make = OPTIMIZERS.get(t.optimizer, "train.optimizer")
    opt_g = make([*g_ab.parameters(), *g_ba.parameters()], t.lr_g, t.betas, device)
    opt_d = make([*d_a.parameters(), *d_b.parameters()], t.lr_d, t.betas, device)
    return CycleModels(g_ab, g_ba, d_a, d_b, opt_g, opt_d, torch.Generator(device=device).manual_seed(recipe.seed),
                       ImagePool(recipe.cycle.pool_size), ImagePool(recipe.cycle.pool_size), recipe, loss,
                       d.a_train.to(device), d.b_train.to(device), autocast_factory(t.precision, device), world=world)


def generator_loss(loss: Any, m: CycleModels, a: Tensor, b: Tensor, recipe: Any) -> tuple[Tensor, dict[str, Tensor],
                                                                                          Tensor, Tensor]:
    """(G's total loss, its terms, G_AB(a), G_BA(b))."""
    from pipeline.losses import image_to_image_terms
    from pipeline.training.parts import frozen

    c = recipe.cycle
    g_term = image_to_image_terms(loss)[1]
    fake_b, fake_a = m.g_ab(a), m.g_ba(b)
    with frozen(m.d_a), frozen(m.d_b):
        adv = g_term(m.d_b(fake_b).float()) + g_term(m.d_a(fake_a).float())
    cyc = (m.g_ba(fake_b) - a).abs().mean() + (m.g_ab(fake_a) - b).abs().mean()
    total = adv + c.cycle_weight * cyc
    terms = {"loss_adv": adv.detach(), "loss_cycle": cyc.detach()}
    if c.identity_weight:
        idt = (m.g_ab(b) - b).abs().mean() + (m.g_ba(a) - a).abs().mean()
        total = total + c.identity_weight * idt
        terms["loss_identity"] = idt.detach()
    return total, terms, fake_b, fake_a


def discriminator_loss(loss: Any, m: CycleModels, a: Tensor, b: Tensor, fake_a: Tensor, fake_b: Tensor,
                       recipe: Any) -> tuple[Tensor, dict[str, Tensor]]:
    from pipeline.losses import gradient_penalty, image_to_image_terms

    t = recipe.train
    smooth = 1.0 - t.label_smoothing
    d_term = image_to_image_terms(loss)[0]
    d_a = d_term(m.d_a(a).float(), m.d_a(fake_a.detach()).float(), smooth)
    d_b = d_term(m.d_b(b).float(), m.d_b(fake_b.detach()).float(), smooth)
    total = d_a + d_b
    if loss.gradient_penalty:
        gp = (gradient_penalty(lambda x: m.d_a(x).flatten(1).mean(1), a, fake_a, 1, m.gen)
              + gradient_penalty(lambda x: m.d_b(x).flatten(1).mean(1), b, fake_b, 1, m.gen))
        total = total + t.gp_weight * gp
    return total, {"loss_d": total.detach(), "loss_d_a": d_a.detach(), "loss_d_b": d_b.detach()}


class CycleCheck:
    """Both directions' label accuracy and cycle error on the first `train.eval_samples` test images of each domain
    (no FID: the evaluate stage measures it), and a picture of the first eight translated and back."""

    def __init__(self, recipe: Any, d: Domains, classifiers: tuple[nn.Module | None, nn.Module | None]) -> None:
        self.d, self.n, self.classifiers = d, recipe.train.eval_samples, classifiers

    def __call__(self, run: CycleModels) -> dict[str, float]:
        d, n = self.d, self.n
        return cycle_metrics(Translations.of(run, d.a_test[:n], d.b_test[:n]), d.a_test[:n], d.b_test[:n],
                             _head(d.a_labels, n), _head(d.b_labels, n), self.classifiers, d.b_native, fid=False)

    def picture(self, run: CycleModels) -> tuple[str, Tensor]:
        return "translations", sample_grid(run, self.d.a_test[:SAMPLE_ROWS], self.d.b_test[:SAMPLE_ROWS])


def _head(x: Tensor | None, n: int) -> Tensor | None:
    return x[:n] if x is not None else None
