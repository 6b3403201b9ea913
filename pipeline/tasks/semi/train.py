"""Training the semi-supervised GAN as openai/improved-gan's train_mnist_feature_matching.py does: every step one D
update on a labelled, an unlabelled and a generated batch, then one G update (feature matching on a second unlabelled
batch, or the loss's G term with `train.g_objective: adversarial`). The unlabelled batches walk through a new
permutation of the training set every epoch (two independent walks, one for D, one for G; the last partial batch of
an epoch is dropped); the labelled batch is the labelled set tiled in random permutations, so with 100 labels and
batches of 100 every batch holds each labelled image once. D's parameters are averaged as the reference tests them
(`ParameterAverage`). `SemiRun` is the run the training loop drives (`pipeline.training.loop`), `SemiCheck` its
held-out error; the batches are a function of the seed and the step, so a resumed run draws what the uninterrupted
one did."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor

from pipeline.data import Prepared
from pipeline.distributed import World
from pipeline.device import autocast_factory
from pipeline.errors import ConfigError
from pipeline.kinds import kind_of
from pipeline.losses import feature_matching
from pipeline.optim import OPTIMIZERS
from pipeline.tasks.semi.metrics import count_errors
from pipeline.tasks.semi.networks import SemiDiscriminator, SemiGenerator, discriminator_loss, real_probability
from pipeline.training.historical import HistoricalAverage
from pipeline.training.loop import RunCounters
from pipeline.training.parts import frozen

if TYPE_CHECKING:
    from pipeline.config import ResolvedRecipe


INIT_BATCH = 500  # real images D's data-dependent initialisation sees (the paper's code: 500)
AVERAGE_RATE = 1e-4  # the reference's running average of D's parameters: a <- a + 1e-4 (p - a), from zero


class ParameterAverage:
    """The running average of a module's trained parameters that improved-gan tests instead of the raw D: every
    parameter that trains starts at zero in the average and moves 1e-4 of the way to the parameter after each update,
    without a bias correction (after 6,000 updates the average holds 45% of the weights' scale, after 30,000 95%).
    Parameters that do not train (D's fixed hidden scales) are used as they are."""

    def __init__(self, module: torch.nn.Module, rate: float = AVERAGE_RATE) -> None:
        self.module, self.rate = module, rate
        self.averages = {name: torch.zeros_like(p) for name, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self) -> None:
        params = dict(self.module.named_parameters())
        for name, average in self.averages.items():
            average.add_(params[name] - average, alpha=self.rate)

    def averaged(self) -> torch.nn.Module:
        """A copy of the module with the averaged parameters, in eval mode."""
        import copy

        clone = copy.deepcopy(self.module)
        with torch.no_grad():
            params = dict(clone.named_parameters())
            for name, average in self.averages.items():
                params[name].copy_(average)
        return clone.eval()

    def state_dict(self) -> dict[str, Tensor]:
        return dict(self.averages)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for name, average in self.averages.items():
            average.copy_(state[name])


def epoch_batch(n: int, batch_size: int, step: int, seed: int) -> Tensor:
    """The indices of step `step`'s batch (1-based) in a walk through a new permutation of range(n) each epoch
    (seeded by `seed` and the epoch; an epoch is n // batch_size batches, the rest is dropped, as the reference)."""
    per_epoch = n // batch_size
    epoch, position = divmod(step - 1, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[position * batch_size:(position + 1) * batch_size]


def tiled_batch(n: int, batch_size: int, step: int, seed: int) -> Tensor:
    """A batch of the labelled set (`n` images) tiled in permutations: each image at most once until every one has
    been used, ceil(batch_size / n) permutations a step (the reference tiles the labelled set in permutations)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.cat([torch.randperm(n, generator=gen) for _ in range(-(-batch_size // n))])[:batch_size]


def labelled_subset(labels: Tensor, per_class: int, seed: int) -> Tensor:
    """Indices of `per_class` training images of each class, drawn with `seed` (sorted): the labelled set.
    Each seed draws another subset, as the paper's trials do."""
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for k in range(int(labels.max()) + 1):
        members = (labels == k).nonzero().flatten()
        if len(members) < per_class:
            raise ConfigError(f"data.labels_per_class {per_class}: class {k} has only {len(members)} training "
                              f"images; choose at most {len(members)}")
        picked.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    return torch.cat(picked).sort().values


@dataclass
class SemiRun(RunCounters):
    """A semi-supervised GAN's training run (`pipeline.training.loop.TaskRun`): G, the K-class D, their optimisers,
    D's running average, the labelled indices and the training images on the device."""

    generator: SemiGenerator
    discriminator: SemiDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator
    labelled: Tensor                    # indices into the training set
    d_average: ParameterAverage         # the D the reference tests
    historical: tuple[HistoricalAverage, HistoricalAverage] | None = None
    recipe: Any = None
    loss: Any = None
    x: Tensor | None = None             # the training images and labels on the device
    y: Tensor | None = None
    autocast: Callable[[], Any] = contextlib.nullcontext

    def modules(self) -> dict[str, Any]:
        out: dict[str, Any] = {"generator": self.generator, "discriminator": self.discriminator,
                               "opt_g": self.opt_g, "opt_d": self.opt_d, "d_average": self.d_average}
        if self.historical is not None:
            out.update(historical_g=self.historical[0], historical_d=self.historical[1])
        return out

    def iteration(self, step: int, logged: bool) -> dict[str, Tensor]:
        """One D update on a labelled, an unlabelled and a generated batch, then one G update."""
        t, recipe, loss, autocast = self.recipe.train, self.recipe, self.loss, self.autocast
        x, y, device = self.x, self.y, self.x.device
        x_lab, y_lab = x[self.labelled], y[self.labelled]
        lab = tiled_batch(len(x_lab), t.batch_size, step, recipe.seed).to(device)
        unl = epoch_batch(len(x), t.batch_size, step, recipe.seed).to(device)
        unl2 = epoch_batch(len(x), t.batch_size, step, recipe.seed + 7919).to(device)  # G's own walk
        z = torch.randn(t.batch_size, t.z_dim, device=device, generator=self.gen)
        with autocast():
            with torch.no_grad():
                fake = self.generator(z)
            logits_lab = self.discriminator(x_lab[lab])
            logits_unl, logits_gen = self.discriminator(x[unl]), self.discriminator(fake)
            loss_d, terms = discriminator_loss(logits_lab, y_lab[lab], logits_unl, logits_gen, loss.discriminator,
                                               1.0 - t.label_smoothing)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.d_average.update()
        self.d_updates += 1
        z = torch.randn(t.batch_size, t.z_dim, device=device, generator=self.gen)
        with autocast(), frozen(self.discriminator):
            fake = self.generator(z)
            if t.g_objective == "feature_matching":
                with torch.no_grad():
                    real_features = self.discriminator.hidden(x[unl2])
                loss_g = feature_matching(real_features, self.discriminator.hidden(fake))
            else:
                loss_g = loss.generator(torch.logsumexp(self.discriminator(fake).float(), dim=1))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        batch_error = (logits_lab.detach().argmax(1) != y_lab[lab]).float().mean()
        return {"loss_d": loss_d.detach(), **terms, "loss_g": loss_g.detach(), "train_error_labelled": batch_error,
                "d_real": real_probability(logits_unl.detach()).mean(),
                "d_fake": real_probability(logits_gen.detach()).mean()}

    def images_seen(self) -> int:
        return self.step * self.recipe.train.batch_size

    def finish(self) -> "SemiRun":
        self.generator.eval()
        self.discriminator.eval()
        return self


def build(recipe: ResolvedRecipe, prepared: Prepared, device: torch.device, loss: Any,
          world: World = World()) -> SemiRun:
    t = recipe.train
    if len(prepared.x_train) < t.batch_size:
        raise ConfigError(f"train.batch_size {t.batch_size} is larger than {prepared.name!r}'s "
                          f"{len(prepared.x_train)} training images")
    torch.manual_seed(recipe.seed)
    generator = SemiGenerator(t.z_dim, prepared.data_shape, uniform=t.z_dist == "uniform").to(device)
    discriminator = SemiDiscriminator(prepared.data_shape, prepared.num_classes).to(device)
    make = OPTIMIZERS.get(t.optimizer, "train.optimizer")
    opt_g = make(generator.parameters(), t.lr_g, t.betas, device)
    opt_d = make(discriminator.parameters(), t.lr_d, t.betas, device)
    labelled = labelled_subset(prepared.y_train, recipe.data.labels_per_class, recipe.seed)
    init_batch = torch.randperm(len(prepared.x_train), generator=torch.Generator().manual_seed(recipe.seed))[:INIT_BATCH]
    discriminator.data_init(prepared.x_train[init_batch].to(device))
    historical = None
    if t.historical_averaging > 0:  # after the initialisation: the average starts from the weights training starts from
        historical = (HistoricalAverage(generator, t.historical_averaging),
                      HistoricalAverage(discriminator, t.historical_averaging))
        historical[0].attach(opt_g)
        historical[1].attach(opt_d)
    return SemiRun(generator, discriminator, opt_g, opt_d, torch.Generator(device=device).manual_seed(recipe.seed),
                   labelled.to(device), ParameterAverage(discriminator), historical, recipe, loss,
                   prepared.x_train.to(device), prepared.y_train.to(device), autocast_factory(t.precision, device),
                   world=world)


def check_semi_data(prepared: Prepared) -> None:
    if not kind_of(prepared).images or not prepared.num_classes or prepared.y_test is None:
        raise ConfigError(f"task semi needs a labelled image dataset; {prepared.name!r} is not one "
                          f"(choose mnist, mnist5k, fashion_mnist, digits or cifar10)")


class SemiCheck:
    """The held-out classification error of the averaged D (what the reference tests) and of the raw D, on the first
    `train.eval_samples` test images."""

    def __init__(self, recipe: ResolvedRecipe, prepared: Prepared) -> None:
        n = min(recipe.train.eval_samples, len(prepared.x_test))
        self.x, self.y, self.n = prepared.x_test[:n], prepared.y_test[:n], n

    def __call__(self, run: SemiRun) -> dict[str, float]:
        return {"test_error": count_errors(run.d_average.averaged(), self.x, self.y) / self.n,
                "test_error_raw": count_errors(run.discriminator, self.x, self.y) / self.n}

    def picture(self, run: SemiRun) -> None:
        return None
