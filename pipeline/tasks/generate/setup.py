"""Set-up: the networks a recipe describes, their optimizers, the data on the device, and the run (`Run`: what
changes during training, and the generate task's side of the training loop's contract,
`pipeline.training.loop.TaskRun`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
from torch import Tensor

from pipeline import distributed
from pipeline.config import Recipe
from pipeline.data import Prepared
from pipeline.device import autocast_factory
from pipeline.distributed import World
from pipeline.losses import GanLoss
from pipeline.models import ModelSpec, build_models
from pipeline.models.progressive import ProgressiveSchedule, process_reals, schedule_for, set_level_of_detail
from pipeline.optim import OPTIMIZERS
from pipeline.tasks.generate.ema import Ema
from pipeline.tasks.generate.spec import model_spec
from pipeline.tasks.generate.steps import iteration, samples_per_step
from pipeline.training.historical import HistoricalAverage
from pipeline.training.loop import RunCounters
from pipeline.training.parts import critic_steps


def make_optimizers(recipe: Recipe, generator: nn.Module, discriminator: nn.Module,
                    device: torch.device) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """The recipe's optimizer (resolved from the loss when `auto`) for G and for D."""
    t = recipe.train
    make = OPTIMIZERS.get(t.optimizer, "train.optimizer")
    return make(generator.parameters(), t.lr_g, t.betas, device), make(discriminator.parameters(), t.lr_d, t.betas, device)


@dataclass
class TrainResult:
    generator: nn.Module            # the weights to sample from (the EMA copy when train.ema > 0)
    discriminator: nn.Module
    spec: Any                       # pipeline.models.ModelSpec
    log_rows: list[dict[str, float]]
    eval_rows: list[dict[str, float]]
    resumed_from: int = 0
    d_updates: int = 0              # critic updates in all (d_steps per G step, more during WGAN's warm-up)


@dataclass
class Run(RunCounters):
    """Everything that changes during training (and is saved to resume), and how one iteration goes."""

    generator: nn.Module
    discriminator: nn.Module
    ema: Ema | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator
    g_fast: nn.Module | None = None   # the G and D the steps call: compiled (train.compile), in DDP (nproc > 1)
    d_fast: nn.Module | None = None
    historical: tuple[HistoricalAverage, HistoricalAverage] | None = None  # G's and D's (train.historical_averaging)
    recipe: Recipe | None = None
    loss: GanLoss | None = None
    spec: ModelSpec | None = None
    x: Tensor | None = None           # the training set on the device (this rank's shard)
    y: Tensor | None = None
    autocast: Callable[[], Any] | None = None
    schedule: ProgressiveSchedule | None = None  # progressive growing's level of detail by images seen
    lod: float = 0.0                  # the level of detail the networks are at (0: the full image)

    @property
    def sampler(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def grow(self) -> None:
        """Progressive growing: G, D and the EMA copy at the level of detail for the images D has seen so far."""
        if self.schedule is not None:
            self.lod = self.schedule.lod(self.images_seen())
            set_level_of_detail(self.lod, self.generator, self.discriminator,
                                self.ema.module if self.ema is not None else None)

    def process_reals(self, x: Tensor) -> Tensor:
        """Real images as D sees them now (blurred to the level of detail while growing)."""
        return x if self.schedule is None else process_reals(x, self.lod)

    def iteration(self, step: int, logged: bool) -> dict[str, Tensor]:
        self.grow()
        d_logs, g_logs = iteration(self, self.loss, self.recipe, self.x, self.y, self.autocast, logged,
                                   critic_steps(self.recipe, step))
        if self.ema is not None:
            self.ema.update(self.generator)
        return {**d_logs, **g_logs}

    def row_extras(self) -> dict[str, float]:
        extras = {"lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"]}
        if self.schedule is not None:  # the level of detail of the last step
            extras.update(self.schedule.describe(self.lod))
        return extras

    def images_seen(self) -> int:
        """Real images D has seen (one batch of packs a critic update)."""
        return self.d_updates * samples_per_step(self.recipe)

    def costs(self) -> dict[str, float]:
        """The x-axes of an equal-cost comparison: real images D has seen, and seconds of training."""
        return {"images_d": self.images_seen(), "seconds": round(self.train_seconds, 3)}

    def modules(self) -> dict[str, Any]:
        out: dict[str, Any] = {"generator": self.generator, "discriminator": self.discriminator,
                               "opt_g": self.opt_g, "opt_d": self.opt_d}
        if self.ema is not None:
            out["ema"] = self.ema
        if self.historical is not None:
            out.update(historical_g=self.historical[0], historical_d=self.historical[1])
        return out

    def finish(self) -> Any:
        self.grow()  # the level after the last update: the full resolution once the schedule is through
        return TrainResult(self.sampler, self.discriminator, self.spec, self.log_rows, self.eval_rows,
                           self.resumed_from, self.d_updates)


def setup_run(recipe: Recipe, prepared: Prepared, loss: GanLoss, device: torch.device,
              world: World = World()) -> Run:
    torch.manual_seed(recipe.seed)  # the same initial weights on every rank
    spec = model_spec(recipe, prepared, loss)
    generator, discriminator = build_models(recipe.arch, spec)
    generator, discriminator = generator.to(device), discriminator.to(device)
    if spec.images:  # NHWC convolutions: faster on CUDA and on CPU (oneDNN), measured
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    t = recipe.train
    if spec.minibatch_discrimination:  # its data-dependent initialisation, on up to 500 real images (the reference's)
        n = min(500, len(prepared.x_train)) // spec.pac * spec.pac
        pick = torch.randperm(len(prepared.x_train), generator=torch.Generator().manual_seed(recipe.seed))[:n]
        labels = prepared.y_train[pick].to(device) if spec.num_classes else None
        discriminator.data_init(prepared.x_train[pick].to(device), labels)
    ema = Ema(generator, t.ema, t.batch_size, t.ema_ramp) if t.ema > 0 else None
    opt_g, opt_d = make_optimizers(recipe, generator, discriminator, device)
    historical = None
    if recipe.train.historical_averaging > 0:
        historical = (HistoricalAverage(generator, recipe.train.historical_averaging),
                      HistoricalAverage(discriminator, recipe.train.historical_averaging))
        historical[0].attach(opt_g)
        historical[1].attach(opt_d)
    gen = torch.Generator(device=device).manual_seed(recipe.seed + world.rank)  # each rank its own batches
    g_fast, d_fast = distributed.wrap(generator, world, device), distributed.wrap(discriminator, world, device)
    if recipe.train.compile:  # fixed shapes: one graph per mode (training/no-grad) and input, compiled once
        g_fast, d_fast = torch.compile(g_fast, dynamic=False), torch.compile(d_fast, dynamic=False)
    x, y = device_data(prepared, device, world)
    schedule = (schedule_for(generator, t.progressive, t.stage_images, t.fade_images) if t.progressive > 1 else None)
    run = Run(generator, discriminator, ema, opt_g, opt_d, gen, g_fast=g_fast, d_fast=d_fast, world=world,
              historical=historical, recipe=recipe, loss=loss, spec=spec, x=x, y=y,
              autocast=autocast_factory(recipe.train.precision, device), schedule=schedule)
    run.grow()  # the training-time check before the first step, and a resumed run, see the right level
    return run


def device_data(prepared: Prepared, device: torch.device, world: World) -> tuple[Tensor, Tensor | None]:
    """The training set on the device (NHWC for images); with several ranks, this rank's shard."""
    x, y = prepared.x_train, prepared.y_train
    if world.size > 1:
        x, y = x[world.rank::world.size], (y[world.rank::world.size] if y is not None else None)
    x = x.to(device)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, (y.to(device) if y is not None else None)

