"""The D and G updates: one critic step, one generator step (plain or unrolled), and the iteration
that schedules them (critic steps, WGAN's warm-up, generator steps, alternating or simultaneous).

Why they are fast (measured by benchmarks/step_speed.py): batches are random index draws from a
device tensor (no DataLoader workers); with `train.g_noise: reuse` the G step judges the last D
step's fakes instead of generating a second batch; the G step's backward skips D's weight
gradients (`frozen`); gradient norms are computed on logged steps only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
from torch import Tensor
from torch.func import functional_call

from pipeline.config import Recipe
from pipeline.distributed import local
from pipeline.losses import GanLoss, feature_matching, gradient_penalty
from pipeline.tasks.generate.unrolled import DSnapshot, lookahead, snapshot
from pipeline.training.parts import frozen


@dataclass
class Batch:
    real: Tensor
    y_real: Tensor | None
    z: Tensor
    y_fake: Tensor | None


def draw_batch(x: Tensor, y: Tensor | None, batch_size: int, z_dim: int, conditional: bool,
               gen: torch.Generator, reals: Callable[[Tensor], Tensor] | None = None) -> Batch:
    """Random real examples (indexing a device tensor: no DataLoader) and fresh noise; `reals`: how D sees real
    images (progressive growing blurs them to the current level of detail)."""
    idx = torch.randint(len(x), (batch_size,), device=x.device, generator=gen)
    z = torch.randn(batch_size, z_dim, device=x.device, generator=gen)
    y_real = y[idx] if conditional else None
    # fakes are conditioned on the real labels: same class marginal, and GP interpolates share a label
    return Batch(x[idx] if reals is None else reals(x[idx]), y_real, z, y_real)


def samples_per_step(recipe: Recipe) -> int:
    """Samples of each kind (real, fake) one step draws: PacGAN's D judges `batch_size` packs of
    `pac` samples each, as in the PacGAN reference, so packing does not shrink D's batch."""
    return recipe.train.batch_size * recipe.train.pac


def _output_stats(loss: GanLoss, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
    if loss.probabilistic:
        return {"d_real": torch.sigmoid(real_out).mean(), "d_fake": torch.sigmoid(fake_out).mean()}
    stats = {"d_real": real_out.mean(), "d_fake": fake_out.mean()}
    if loss.wasserstein:  # only a Lipschitz critic's gap estimates the Wasserstein-1 distance
        stats["wasserstein"] = real_out.mean() - fake_out.mean()
    return stats


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def eager(module: nn.Module) -> nn.Module:
    """The module itself inside a DDP and/or torch.compile wrapper (same parameters)."""
    return getattr(local(module), "_orig_mod", local(module))


def d_step(generator: nn.Module, discriminator: nn.Module, opt_d: torch.optim.Optimizer, loss: GanLoss,
           batch: Batch, recipe: Recipe, autocast: Callable[[], Any], gen: torch.Generator,
           fake: Tensor | None = None, measure: bool = True) -> dict[str, Tensor]:
    """One discriminator (critic) update; returns detached values to log (D's gradient norm only
    when `measure`). `fake`: G's output for `batch.z` when the caller already has it."""
    t = recipe.train
    if fake is None:
        with torch.no_grad(), autocast():
            fake = generator(batch.z, batch.y_fake)
    fake = fake.detach()
    with autocast():
        real_out = discriminator(batch.real, batch.y_real).float()
        fake_out = discriminator(fake, batch.y_fake).float()
        loss_d = loss.discriminator(real_out, fake_out, 1.0 - t.label_smoothing)
        logs = {"loss_d": loss_d.detach(), **{k: v.detach() for k, v in _output_stats(loss, real_out, fake_out).items()}}
        if loss.gradient_penalty:
            # eager D: a compiled graph does not support the penalty's double backward
            gp = gradient_penalty(lambda xh: eager(discriminator)(xh, batch.y_real), batch.real, fake, t.pac, gen)
            loss_d = loss_d + t.gp_weight * gp
            logs["gradient_penalty"] = gp.detach()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if measure:
        logs["grad_norm_d"] = grad_norm(discriminator).detach()
    opt_d.step()
    if loss.weight_clipping:
        with torch.no_grad():
            for p in discriminator.parameters():
                p.clamp_(-t.clip_value, t.clip_value)
    return logs


def g_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer, loss: GanLoss,
           batch: Batch, autocast: Callable[[], Any], recipe: Recipe | None = None,
           before: DSnapshot | None = None, fake: Tensor | None = None,
           measure: bool = True) -> dict[str, Tensor]:
    """One generator update against the current discriminator (its output, or with `train.g_objective:
    feature_matching` its features' batch mean against a real batch's), or, with `train.unroll_steps` k > 0,
    against D after k differentiable look-ahead steps on this batch taken from `before`, D as it was
    before this iteration's D update (Metz et al.; D itself is not changed). `fake`: G's output for
    `batch.z`, still attached to G's graph, when the caller reuses the D step's fakes
    (`train.g_noise: reuse`)."""
    k = recipe.train.unroll_steps if recipe is not None else 0
    with autocast():
        if fake is None:
            fake = generator(batch.z, batch.y_fake)
        if k:
            if before is None:
                raise ValueError("an unrolled G step needs the snapshot of D taken before its D update")
            loss_g = _unrolled_generator_loss(eager(discriminator), before, loss, batch, fake, recipe, k)
        elif recipe is not None and recipe.train.g_objective == "feature_matching":
            with frozen(discriminator):  # the features of D's body on a real and a fake batch
                with torch.no_grad():
                    real_features = eager(discriminator).hidden(batch.real, batch.y_real)
                loss_g = feature_matching(real_features, eager(discriminator).hidden(fake, batch.y_fake))
        else:
            with frozen(discriminator):  # D's local module: DDP must not wait for D's gradients here
                loss_g = loss.generator(local(discriminator)(fake, batch.y_fake).float())
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    logs = {"loss_g": loss_g.detach()}
    if measure:
        logs["grad_norm_g"] = grad_norm(generator).detach()
    opt_g.step()
    return logs


def _unrolled_generator_loss(discriminator: nn.Module, before: DSnapshot, loss: GanLoss, batch: Batch,
                             fake: Tensor, recipe: Recipe, k: int) -> Tensor:
    """Metz et al. 2016: G's loss against D_k, D after k look-ahead steps from `before` (D before this
    iteration's update, so the first look-ahead step is that update, differentiated). For a zero-sum
    loss G minimises the game's value at D_k, f(G, D_k) = -loss_D(D_k): the real-data term now
    depends on G too, through D_k (the surrogate objective of the paper); otherwise G's own loss at D_k."""
    t = recipe.train
    smoothing = 1.0 - t.label_smoothing
    d_loss = lambda D: loss.discriminator(D(batch.real, batch.y_real).float(),  # noqa: E731
                                          D(fake, batch.y_fake).float(), smoothing)
    params, buffers = lookahead(discriminator, before, k, d_loss, t.clip_value if loss.weight_clipping else None)
    critic = lambda x, y: functional_call(discriminator, (params, buffers), (x, y))  # noqa: E731
    return -d_loss(critic) if loss.zero_sum else loss.generator(critic(fake, batch.y_fake).float())


def iteration(run: Any, loss: GanLoss, recipe: Recipe, x: Tensor, y: Tensor | None, autocast: Callable[[], Any],
          measure: bool, d_steps: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One iteration: `d_steps` critic updates, then `g_steps` generator updates on one noise draw.

    With `train.g_noise: fresh` (Goodfellow et al., Algorithm 1; the WGAN references) the G updates
    draw their own noise; with `reuse` (pytorch/examples' DCGAN) the first reuses the last D step's
    fakes, computed once with G's graph kept: one G forward fewer. An unrolled G step looks ahead
    from D as it was before the last D update, on that update's batch. `train.updates:
    simultaneous` (the PacGAN 2D reference) takes G's and D's gradients at the same weights."""
    t = recipe.train
    n = samples_per_step(recipe) // run.world.size  # each rank's share of the global batch
    if t.updates == "simultaneous":
        return simultaneous_iteration(run, loss, recipe, x, y, autocast, measure, n)
    reuse = t.g_noise == "reuse"
    fake, before = None, None
    for i in range(d_steps):
        batch = draw_batch(x, y, n, t.z_dim, recipe.conditional, run.gen, run.process_reals)
        last = i == d_steps - 1
        if reuse and last:
            with autocast():
                fake = run.g_fast(batch.z, batch.y_fake)
        if t.unroll_steps and last:
            before = snapshot(eager(run.d_fast), run.opt_d)
        d_logs = d_step(run.g_fast, run.d_fast, run.opt_d, loss, batch, recipe, autocast, run.gen, fake, measure)
        run.d_updates += 1
    if not reuse:
        batch = draw_batch(x, y, n, t.z_dim, recipe.conditional, run.gen, run.process_reals)
    for j in range(t.g_steps):  # the later updates redraw G(z) for the same z, as PacGAN's Stacked MNIST code
        g_logs = g_step(run.g_fast, run.d_fast, run.opt_g, loss, batch, autocast, recipe, before,
                        fake if j == 0 else None, measure and j == t.g_steps - 1)
    return d_logs, g_logs


def simultaneous_iteration(run: Any, loss: GanLoss, recipe: Recipe, x: Tensor, y: Tensor | None,
                       autocast: Callable[[], Any], measure: bool, n: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """G's and D's gradients at the same (G, D) on one batch, then both updates (ALI's training
    algorithm, which PacGAN's 2D experiments use): G steps first against the current D, then D
    steps on the fakes G made before its update."""
    batch = draw_batch(x, y, n, recipe.train.z_dim, recipe.conditional, run.gen, run.process_reals)
    with autocast():
        fake = run.g_fast(batch.z, batch.y_fake)
    g_logs = g_step(run.g_fast, run.d_fast, run.opt_g, loss, batch, autocast, recipe, None, fake, measure)
    d_logs = d_step(run.g_fast, run.d_fast, run.opt_d, loss, batch, recipe, autocast, run.gen, fake, measure)
    run.d_updates += 1
    return d_logs, g_logs

