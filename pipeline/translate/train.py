"""Training a translator: G (a U-Net) maps each degraded input to an output; its loss is
`translate.l1_weight` x reconstruction (L1, or L2 with `translate.reconstruction: l2`) plus, unless
`loss: none`, the GAN loss of a PatchGAN D that judges (input, output) pairs against (input, image).

As pix2pix's reference code (junyanz/pytorch-CycleGAN-and-pix2pix, pix2pix_model.py) trains: one batch and one G
output per step, D updated on it first (the output detached) and G then on the same output; D's loss halved and G's
adversarial term without the loss paper's factor (`pipeline.losses.image_to_image_terms`); the learning rate constant
for the first half of the steps, then falling linearly to zero (`train.lr_schedule: linear_decay`). The GAN loss is
any registered one: a gradient penalty interpolates outputs with the input held fixed; weight clipping, label
smoothing, spectral norm and the critic-step schedule are the recipe's, as in the generate task (with several critic
steps, the earlier ones draw batches of their own). The training state is saved every `checkpoint_every` steps and a
matching one is resumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from tqdm.auto import tqdm

from pipeline.checkpoint import code_digest
from pipeline.data import Prepared
from pipeline.device import autocast_factory
from pipeline.errors import ConfigError, TrainingDiverged
from pipeline.io import load_torch, save_torch
from pipeline.kinds import kind_of
from pipeline.losses import GanLoss, gradient_penalty, image_to_image_terms
from pipeline.optim import OPTIMIZERS, scheduled_lr, set_lr
from pipeline.tasks import TASKS
from pipeline.tracking import TRAIN, TRAIN_EVAL, NullTracker, Tracker, in_section
from pipeline.training.steps import critic_steps, frozen
from pipeline.translate.metrics import l1_error, psnr
from pipeline.translate.networks import PatchGAN, UNet
from pipeline.translate.problems import PROBLEMS, comparison_grid
from pipeline.variants import ResolvedRecipe, for_this_machine


@dataclass
class Translator:
    generator: UNet
    discriminator: PatchGAN | None      # None with loss: none
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    gen: torch.Generator
    step: int = 0
    d_updates: int = 0
    log_rows: list[dict[str, float]] = field(default_factory=list)
    eval_rows: list[dict[str, float]] = field(default_factory=list)

    def modules(self) -> dict[str, Any]:
        """What the resumable state saves, by name."""
        out = {"generator": self.generator, "opt_g": self.opt_g}
        if self.discriminator is not None:
            out.update(discriminator=self.discriminator, opt_d=self.opt_d)
        return out


class LossLog:
    """Per-step losses averaged over `log_every` steps into one row (a NaN/Inf stops training), logged."""

    def __init__(self, variant: str, tracker: Tracker) -> None:
        self.variant, self.tracker = variant, tracker
        self.sums: dict[str, float] = {}
        self.count, self.clock = 0, time.perf_counter()

    def add(self, logs: dict[str, Tensor]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1

    def flush(self, step: int) -> dict[str, float]:
        row = {"step": step, **{k: v / self.count for k, v in self.sums.items()},
               "seconds_per_step": (time.perf_counter() - self.clock) / self.count}
        if any(not torch.isfinite(torch.tensor(v)) for v in row.values()):
            raise TrainingDiverged(f"{self.variant}: a loss became NaN/Inf by step {step}: {row}")
        self.tracker.log_metrics(in_section(TRAIN, row), step)
        self.sums, self.count, self.clock = {}, 0, time.perf_counter()
        return row


def save_state(run: Any, recipe: ResolvedRecipe, path: Path) -> None:
    """The resumable state of a translate or cycle run (`run.modules()`, counters, tables, random streams)."""
    save_torch({"hash": recipe.training_hash(), "code": code_digest(), "step": run.step, "d_updates": run.d_updates,
                "log_rows": run.log_rows, "eval_rows": run.eval_rows, "gen": run.gen.get_state(),
                "torch_rng": torch.get_rng_state(), **{k: m.state_dict() for k, m in run.modules().items()}}, path)


def resume(run: Any, recipe: ResolvedRecipe, state_path: Path | None) -> int:
    """Restore `run` from a state the same recipe and code wrote; the step to continue after (0: none)."""
    if state_path is None or not state_path.exists():
        return 0
    state = load_torch(state_path)
    if state.get("hash") != recipe.training_hash() or state.get("code") != code_digest():
        print(f"note: {state_path} was written by another recipe or code version; training from scratch")
        return 0
    for key, module in run.modules().items():
        module.load_state_dict(state[key])
    run.gen.set_state(state["gen"])
    torch.set_rng_state(state["torch_rng"])
    run.step, run.d_updates = state["step"], state["d_updates"]
    run.log_rows, run.eval_rows = list(state["log_rows"]), list(state["eval_rows"])
    return run.step


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


def build(recipe: ResolvedRecipe, prepared: Prepared, device: torch.device) -> Translator:
    t, tr = recipe.train, recipe.translate
    loss = TASKS.get("translate").loss(recipe.loss)
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
    return Translator(generator, discriminator, opt_g, opt_d, torch.Generator(device=device).manual_seed(recipe.seed))


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

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        from pipeline.metrics.classifier import classify
        from pipeline.metrics.fidelity import classifier_features
        from pipeline.metrics.frechet import frechet_distance, gaussian

        output = self.outputs(generator, self.source)
        out = {"l1": l1_error(output, self.target), "psnr": psnr(output, self.target)}
        if self.classifier is not None:
            out["fid_classifier"] = frechet_distance(gaussian(classifier_features(self.classifier, output)), self.real)
            if self.labels is not None:
                out["accuracy"] = float((classify(self.classifier, output) == self.labels).float().mean())
        return out

    def grid(self, generator: nn.Module) -> Tensor:
        source, target = self.source[:8], self.target[:8]
        return comparison_grid(source.cpu(), self.outputs(generator, source)[None].cpu(), target.cpu())


def train_translator(recipe: ResolvedRecipe, prepared: Prepared, *, variant: str = "variant",
                     tracker: Tracker | None = None, checker: HeldOutCheck | None = None, state_path: Path | None = None,
                     progress: bool = True) -> Translator:
    recipe = for_this_machine(recipe)
    tracker = tracker or NullTracker()
    t = recipe.train
    if not kind_of(prepared).images:
        raise ConfigError(f"task translate needs an image dataset; {prepared.name!r} is {prepared.kind!r} data "
                          f"(choose mnist5k, mnist, fashion_mnist, digits, cifar10, stacked_mnist or folder)")
    device = torch.device(t.device)
    loss = TASKS.get("translate").loss(recipe.loss)
    problem = PROBLEMS.get(recipe.data.translate, "data.translate")
    tr = build(recipe, prepared, device)
    start = resume(tr, recipe, state_path)
    x = prepared.x_train.to(device)
    autocast = autocast_factory(t.precision, device)
    log = LossLog(variant, tracker)
    bar = tqdm(total=t.steps, initial=start, desc=f"train {variant}", disable=None if progress else True, unit="step")

    def batch() -> tuple[Tensor, Tensor]:
        target = x[torch.randint(len(x), (t.batch_size,), device=device, generator=tr.gen)]
        return problem.degrade(target), target

    for step in range(start + 1, t.steps + 1):
        logs: dict[str, Tensor] = {}
        for optimizer, base in ((tr.opt_g, t.lr_g), (tr.opt_d, t.lr_d)):
            if optimizer is not None:
                set_lr(optimizer, scheduled_lr(base, step, t.steps, t.lr_schedule))
        source, target = batch()
        with autocast():
            output = tr.generator(source)  # one output a step: D's last update and G's see the same
        if tr.discriminator is not None:
            steps_d = critic_steps(recipe, step)
            for k in range(steps_d):
                d_source, d_target, d_output = source, target, output
                if k < steps_d - 1:  # extra critic steps: batches of their own
                    d_source, d_target = batch()
                    with torch.no_grad(), autocast():
                        d_output = tr.generator(d_source)
                with autocast():
                    loss_d, d_terms = discriminator_loss(loss, tr.discriminator, d_source, d_output, d_target, recipe,
                                                         tr.gen)
                tr.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                tr.opt_d.step()
                if loss.weight_clipping:
                    with torch.no_grad():
                        for p in tr.discriminator.parameters():
                            p.clamp_(-t.clip_value, t.clip_value)
                tr.d_updates += 1
                logs.update(d_terms)
        with autocast():
            loss_g, g_terms = generator_loss(loss, tr.discriminator, source, output, target, recipe)
        tr.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        tr.opt_g.step()
        log.add({**logs, "loss_g": loss_g.detach(), **g_terms})
        tr.step = step
        bar.update()
        if step % t.log_every == 0 or step == t.steps:
            tr.log_rows.append(log.flush(step))
            bar.set_postfix(loss_g=f"{tr.log_rows[-1]['loss_g']:.3f}", loss_rec=f"{tr.log_rows[-1]['loss_rec']:.4f}")
        if checker is not None and (step % t.eval_every == 0 or step == t.steps):
            row = {"step": step, "images_seen": step * t.batch_size, **checker(tr.generator)}
            tr.eval_rows.append(row)
            tracker.log_metrics(in_section(TRAIN_EVAL, row), step)
            tracker.log_image(checker.grid(tr.generator), "translations", step)
        if state_path is not None and step % t.checkpoint_every == 0 and step < t.steps:
            save_state(tr, recipe, state_path)
    bar.close()
    tr.generator.eval()
    return tr
