"""The training loop: `train` resumes, runs the iterations, logs, checks and checkpoints.

Logged values are accumulated on the device and fetched once every `log_every` steps (the only
host-device sync in the loop); Adam is fused; NHWC (channels_last) convolutions; bf16 autocast and
`torch.compile` on request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from torch import Tensor
from tqdm.auto import tqdm

from pipeline import distributed
from pipeline.checkpoint import read_state, restore_run_state, run_state
from pipeline.config import Recipe
from pipeline.data import Prepared
from pipeline.device import autocast_factory
from pipeline.distributed import World, mean_over_ranks, rank_device, world_from_env
from pipeline.errors import TrainingDiverged
from pipeline.images import image_grid
from pipeline.io import save_torch
from pipeline.losses import LOSSES
from pipeline.models import ModelSpec
from pipeline.sampling import generate
from pipeline.tracking import TRAIN, TRAIN_EVAL, NullTracker, Tracker, in_section
from pipeline.training.setup import Run, device_data, setup_run
from pipeline.training.steps import critic_steps, iteration, samples_per_step
from pipeline.variants import ResolvedRecipe, for_this_machine, is_resolved

Evaluator = Callable[[nn.Module], dict[str, float]]  # generator -> cheap mode-collapse metrics


@dataclass
class TrainResult:
    generator: nn.Module            # the weights to sample from (the EMA copy when train.ema > 0)
    discriminator: nn.Module
    spec: ModelSpec
    log_rows: list[dict[str, float]] = field(default_factory=list)
    eval_rows: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    d_updates: int = 0              # critic updates in all (d_steps per G step, more during WGAN's warm-up)


def try_resume(run: Run, recipe: Recipe, state_path: Path | None) -> int:
    """Resume from `state_path` when it was written by the same recipe and code; returns the step.
    With several processes rank 0 alone reads it and every rank resumes from what rank 0 read (or
    all start at step 0): all ranks run the same steps from the same weights."""
    world = run.world
    state = read_state(recipe, state_path, run.gen.device if world.size == 1 else "cpu") if world.main else None
    state = distributed.from_rank0(state, world)
    if state is None:
        return 0
    restore_run_state(run, state)
    if run.world.rank:  # the state holds rank 0's random streams; the others draw their own batches
        run.gen.manual_seed(recipe.seed + run.world.rank + 7919 * run.step)
    return run.step


def train(recipe: ResolvedRecipe, prepared: Prepared, *, variant: str = "variant", tracker: Tracker | None = None,
          evaluator: Evaluator | None = None, state_path: Path | None = None, progress: bool = True) -> TrainResult:
    """Train a resolved `recipe` (`pipeline.variants`) on `prepared`. Resumes from `state_path` if it
    holds a matching checkpoint, writes it every `checkpoint_every` steps, and raises
    TrainingDiverged on a NaN/Inf loss."""
    if not is_resolved(recipe):
        raise ValueError("train() needs a resolved recipe: pipeline.variants.resolve() fills in the loss's defaults")
    recipe = for_this_machine(recipe)  # a no-op when the caller did it
    tracker = tracker or NullTracker()
    t, loss = recipe.train, LOSSES.get(recipe.loss, "loss")
    world = world_from_env()
    device = rank_device(torch.device(t.device), world)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    distributed.start(world, device, samples_per_step(recipe))
    run, spec = setup_run(recipe, prepared, loss, device, world)
    start = try_resume(run, recipe, state_path)
    x, y = device_data(prepared, device, world)
    if not world.main:  # rank 0 alone logs, checks and writes
        tracker, evaluator, state_path = NullTracker(), None, None
        progress = False
    autocast = autocast_factory(t.precision, device)
    sums: dict[str, Tensor] = {}
    last: dict[str, Tensor] = {}
    last_time, last_step = time.perf_counter(), start
    bar = tqdm(total=t.steps, initial=start, desc=f"train {variant}", disable=None if progress else True, unit="step")
    last_d_updates, clock = run.d_updates, time.perf_counter()
    for step in range(start + 1, t.steps + 1):
        logged = step % t.log_every == 0 or step == t.steps
        d_logs, g_logs = iteration(run, loss, recipe, x, y, autocast, logged, critic_steps(recipe, step))
        if run.ema is not None:
            run.ema.update(run.generator)
        _accumulate(sums, last, {**d_logs, **g_logs})
        run.step = step
        bar.update()
        if logged:
            now = time.perf_counter()
            row = _flush(sums, last, step, step - last_step, now - last_time,
                         samples_per_step(recipe) * (run.d_updates - last_d_updates) / (step - last_step), variant, world)
            last_d_updates = run.d_updates
            row.update(lr_g=run.opt_g.param_groups[0]["lr"], lr_d=run.opt_d.param_groups[0]["lr"])
            last_time, last_step, sums, last = now, step, {}, {}
            run.log_rows.append(row)
            tracker.log_metrics(in_section(TRAIN, row), step)
            bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{row['loss_g']:.3f}")
        checking = evaluator is not None and (step % t.eval_every == 0 or step == t.steps)
        saving = state_path is not None and step % t.checkpoint_every == 0 and step < t.steps
        if checking or saving:  # the checks' own time is not training time
            run.train_seconds, clock = run.train_seconds + time.perf_counter() - clock, time.perf_counter()
        if checking:
            _evaluate(run, evaluator, tracker, step, spec, recipe, device)
            clock = time.perf_counter()
        if saving:
            save_torch(run_state(run, recipe), state_path)
    bar.close()
    distributed.stop(world)
    return TrainResult(run.sampler, run.discriminator, spec, run.log_rows, run.eval_rows, start, run.d_updates)


def _accumulate(sums: dict[str, Tensor], last: dict[str, Tensor], logs: dict[str, Tensor]) -> None:
    """Add a step's values to the interval's sums, on the device (no sync); gradient norms are
    measured on logged steps only and kept as that step's value."""
    for key, value in logs.items():
        if key.startswith("grad_norm"):
            last[key] = value
        else:
            sums[key] = sums[key] + value if key in sums else value.clone()


def _flush(sums: dict[str, Tensor], last: dict[str, Tensor], step: int, num_steps: int, seconds: float,
           images_per_step: int, variant: str, world: World = World()) -> dict[str, float]:
    """Fetch the accumulated means (and the last measured values) in one transfer, the loop's only
    sync point, and check them."""
    keys, last_keys = sorted(sums), sorted(last)
    values = torch.stack([sums[k].float() / num_steps for k in keys] + [last[k].float() for k in last_keys])
    values = mean_over_ranks(values, world).cpu().tolist()  # every rank's batch counts
    row = {"step": step, **dict(zip(keys + last_keys, values))}
    bad = [k for k in keys if not torch.isfinite(torch.tensor(row[k]))]
    if bad:
        raise TrainingDiverged(
            f"variant {variant!r}: {', '.join(bad)} became NaN/Inf by step {step}; the last good checkpoint "
            f"is kept. Try a lower learning rate, another loss, or train.precision: fp32"
        )
    row["images_per_s"] = num_steps * images_per_step / max(seconds, 1e-9)
    return row


def _evaluate(run: Run, evaluator: Evaluator, tracker: Tracker, step: int, spec: ModelSpec,
              recipe: Recipe, device: torch.device) -> None:
    metrics = evaluator(run.sampler)
    # the x-axes of an equal-cost comparison: real images D has seen, and seconds of training
    costs = {"images_d": run.d_updates * samples_per_step(recipe), "seconds": round(run.train_seconds, 3)}
    run.eval_rows.append({"step": step, **costs, **metrics})
    tracker.log_metrics(in_section(TRAIN_EVAL, {**metrics, **costs}), step)
    if spec.images:
        images, _ = generate(run.sampler, 64, spec.z_dim, spec.num_classes, seed=recipe.seed, device=device)
        tracker.log_image(image_grid(images, 8), "samples", step)

