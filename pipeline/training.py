"""GAN training: `d_step` and `g_step` are separate; `train` only coordinates.

Why it is fast (measured by benchmarks/step_speed.py): the dataset sits on the device as one tensor
and batches are random index draws (no DataLoader workers); with `train.g_noise: reuse` the G step
judges the last D step's fakes instead of generating a second batch; the G step's backward skips
D's weight gradients (`frozen`); gradient norms are computed on logged steps only; logged values
are accumulated on the device and fetched once every `log_every` steps (the only host-device sync
in the loop); Adam is fused on CUDA; NHWC (channels_last) convolutions; bf16 autocast and
`torch.compile` on request.
"""

from __future__ import annotations

import copy
import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from torch import Tensor
from torch.func import functional_call
from tqdm.auto import tqdm

from pipeline import distributed
from pipeline.config import Recipe
from pipeline.data import Prepared
from pipeline.device import autocast_factory, resolve_device, resolve_precision
from pipeline.distributed import World, local, mean_over_ranks, rank_device, world_from_env
from pipeline.errors import ConfigError, TrainingDiverged
from pipeline.images import image_grid
from pipeline.io import load_torch, save_torch
from pipeline.losses import LOSSES, GanLoss, gradient_penalty
from pipeline.models import ModelSpec, build_models
from pipeline.optim import OPTIMIZERS
from pipeline.sampling import generate
from pipeline.tracking import NullTracker, Tracker
from pipeline.unrolled import DSnapshot, lookahead, snapshot
from pipeline.variants import is_resolved

Evaluator = Callable[[nn.Module], dict[str, float]]  # generator -> cheap mode-collapse metrics


def model_spec(recipe: Recipe, prepared: Prepared, loss: GanLoss) -> ModelSpec:
    t = recipe.train
    if recipe.conditional and not prepared.num_classes:
        raise ConfigError(f"conditional: true needs a labelled dataset; {prepared.name!r} has no labels")
    # Batch norm makes D's output for one sample depend on the others: that breaks the per-sample
    # gradient penalty (WGAN-GP paper, sec. 4), and spectral norm does the job of keeping D tame.
    d_norm = "layer" if loss.gradient_penalty else ("none" if t.spectral_norm else "batch")
    # dropout makes the critic a random function: its Lipschitz constraint and its W estimate lose their meaning
    kind = "image" if len(prepared.data_shape) == 3 else "points"
    return ModelSpec(data_shape=prepared.data_shape, kind=kind, z_dim=t.z_dim, width=t.width,
                     num_classes=prepared.num_classes if recipe.conditional else 0, d_norm=d_norm,
                     spectral_norm=t.spectral_norm, pac=t.pac, d_dropout=not loss.wasserstein, z_dist=t.z_dist)


def make_optimizers(recipe: Recipe, generator: nn.Module, discriminator: nn.Module,
                    device: torch.device) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """The recipe's optimizer (resolved from the loss when `auto`) for G and for D."""
    t = recipe.train
    make = OPTIMIZERS.get(t.optimizer, "train.optimizer")
    return make(generator.parameters(), t.lr_g, t.betas, device), make(discriminator.parameters(), t.lr_d, t.betas, device)


@dataclass
class Batch:
    real: Tensor
    y_real: Tensor | None
    z: Tensor
    y_fake: Tensor | None


def draw_batch(x: Tensor, y: Tensor | None, batch_size: int, z_dim: int, conditional: bool,
               gen: torch.Generator) -> Batch:
    """Random real examples (indexing a device tensor: no DataLoader) and fresh noise."""
    idx = torch.randint(len(x), (batch_size,), device=x.device, generator=gen)
    z = torch.randn(batch_size, z_dim, device=x.device, generator=gen)
    y_real = y[idx] if conditional else None
    # fakes are conditioned on the real labels: same class marginal, and GP interpolates share a label
    return Batch(x[idx], y_real, z, y_real)


def samples_per_step(recipe: Recipe) -> int:
    """Samples of each kind (real, fake) one step draws: PacGAN's D judges `batch_size` packs of
    `pac` samples each, as in the PacGAN reference, so packing does not shrink D's batch."""
    return recipe.train.batch_size * recipe.train.pac


WARMUP_G_STEPS, WARMUP_EVERY = 25, 500  # WGAN's reference: 100 critic steps while gen_iterations < 25 or % 500 == 0


def critic_steps(recipe: Recipe, step: int) -> int:
    """D updates before generator step `step` (1-based): `d_steps`, or `d_steps_warmup` for the first
    25 generator steps and every 500th after (the WGAN reference's schedule, so the critic is near
    optimal when G learns from it)."""
    t = recipe.train
    g_iterations = step - 1  # the reference counts from 0
    if t.d_steps_warmup and (g_iterations < WARMUP_G_STEPS or g_iterations % WARMUP_EVERY == 0):
        return t.d_steps_warmup
    return t.d_steps


class Ema:
    """Exponential moving average of G's weights (`train.ema`), as StyleGAN2-ADA keeps it: the decay
    warms up, decay_t = min(decay, (1 + t) / (10 + t)) at the t-th update, so the first steps' weights
    do not linger (at a constant 0.999 a third of the average would still be them after 1,200
    steps), and buffers (batch-norm statistics) are copied from G, not averaged."""

    def __init__(self, generator: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(generator).requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.module.parameters(), generator.parameters()):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.module.buffers(), generator.buffers()):
            average.copy_(current)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]


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


def _eager(module: nn.Module) -> nn.Module:
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
            gp = gradient_penalty(lambda xh: _eager(discriminator)(xh, batch.y_real), batch.real, fake, t.pac, gen)
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


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for `module`'s parameters while the graph is built: the G step's backward then
    computes only what reaches G, not D's weight gradients (which the next D step would discard)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def g_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer, loss: GanLoss,
           batch: Batch, autocast: Callable[[], Any], recipe: Recipe | None = None,
           before: DSnapshot | None = None, fake: Tensor | None = None,
           measure: bool = True) -> dict[str, Tensor]:
    """One generator update against the current discriminator, or, with `train.unroll_steps` k > 0,
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
            loss_g = _unrolled_generator_loss(_eager(discriminator), before, loss, batch, fake, recipe, k)
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


@dataclass
class TrainResult:
    generator: nn.Module            # the weights to sample from (the EMA copy when train.ema > 0)
    discriminator: nn.Module
    spec: ModelSpec
    log_rows: list[dict[str, float]] = field(default_factory=list)
    eval_rows: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    d_updates: int = 0              # critic updates in all (d_steps per G step, more during WGAN's warm-up)


@dataclass
class _Run:
    """Everything that changes during training (and is saved to resume)."""

    generator: nn.Module
    discriminator: nn.Module
    ema: Ema | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator
    step: int = 0
    d_updates: int = 0                # critic updates so far
    train_seconds: float = 0.0        # wall-clock seconds spent training so far (checks excluded)
    log_rows: list[dict[str, float]] = field(default_factory=list)
    eval_rows: list[dict[str, float]] = field(default_factory=list)
    g_fast: nn.Module | None = None   # the G and D the steps call: compiled (train.compile), in DDP (nproc > 1)
    d_fast: nn.Module | None = None
    world: World = World()

    @property
    def sampler(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator


def _setup(recipe: Recipe, prepared: Prepared, loss: GanLoss, device: torch.device,
           world: World = World()) -> tuple[_Run, ModelSpec]:
    torch.manual_seed(recipe.seed)  # the same initial weights on every rank
    spec = model_spec(recipe, prepared, loss)
    generator, discriminator = build_models(recipe.arch, spec)
    generator, discriminator = generator.to(device), discriminator.to(device)
    if spec.kind == "image":  # NHWC convolutions: faster on CUDA and on CPU (oneDNN), measured
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    ema = Ema(generator, recipe.train.ema) if recipe.train.ema > 0 else None
    opt_g, opt_d = make_optimizers(recipe, generator, discriminator, device)
    gen = torch.Generator(device=device).manual_seed(recipe.seed + world.rank)  # each rank its own batches
    g_fast, d_fast = distributed.wrap(generator, world, device), distributed.wrap(discriminator, world, device)
    if recipe.train.compile:  # fixed shapes: one graph per mode (training/no-grad) and input, compiled once
        g_fast, d_fast = torch.compile(g_fast, dynamic=False), torch.compile(d_fast, dynamic=False)
    return _Run(generator, discriminator, ema, opt_g, opt_d, gen, g_fast=g_fast, d_fast=d_fast, world=world), spec


def _state(run: _Run, recipe: Recipe) -> dict[str, Any]:
    return {
        "training_hash": recipe.training_hash(), "code_digest": code_digest(), "step": run.step,
        "d_updates": run.d_updates, "train_seconds": run.train_seconds,
        "generator": run.generator.state_dict(), "discriminator": run.discriminator.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "opt_g": run.opt_g.state_dict(), "opt_d": run.opt_d.state_dict(),
        "gen_state": run.gen.get_state(), "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "log_rows": run.log_rows, "eval_rows": run.eval_rows,
    }


def _restore(run: _Run, state: dict[str, Any]) -> None:
    run.generator.load_state_dict(state["generator"])
    run.discriminator.load_state_dict(state["discriminator"])
    if run.ema is not None:
        run.ema.load_state_dict(state["ema"])
    run.opt_g.load_state_dict(state["opt_g"])
    run.opt_d.load_state_dict(state["opt_d"])
    run.gen.set_state(state["gen_state"])
    torch.set_rng_state(state["cpu_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    run.step, run.d_updates, run.train_seconds = state["step"], state["d_updates"], state["train_seconds"]
    run.log_rows, run.eval_rows = state["log_rows"], state["eval_rows"]


WEIGHT_CODE = ("training", "losses", "optim", "unrolled", "device", "distributed", "models")  # modules and packages of pipeline/


def code_digest() -> str:
    """Digest of the code that decides the weights: a checkpoint from other code is not resumed."""
    root = Path(__file__).parent
    files = sorted(f for name in WEIGHT_CODE
                   for f in ((root / name).glob("*.py") if (root / name).is_dir() else [root / f"{name}.py"]))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def read_state(recipe: Recipe, state_path: Path | None, device: torch.device | str = "cpu",
               quiet: bool = False) -> dict[str, Any] | None:
    """The resumable state at `state_path` when it was written by the same recipe and code, else
    None (and, unless `quiet`, a note why when there is a file)."""
    if state_path is None or not state_path.exists():
        return None
    try:
        state = load_torch(state_path, map_location=device)
    except Exception as exc:  # a truncated or foreign file: start over rather than stop
        if not quiet:
            print(f"note: {state_path} is not a readable training state ({type(exc).__name__}); starting from step 0")
        return None
    if state.get("training_hash") != recipe.training_hash() or state.get("code_digest") != code_digest():
        if not quiet:
            print(f"note: {state_path} was written with other training settings or code; starting from step 0")
        return None
    return state


def try_resume(run: _Run, recipe: Recipe, state_path: Path | None) -> int:
    """Resume from `state_path` when it was written by the same recipe and code; returns the step.
    With several processes rank 0 alone reads it and every rank resumes from what rank 0 read (or
    all start at step 0): all ranks run the same steps from the same weights."""
    world = run.world
    state = read_state(recipe, state_path, run.gen.device if world.size == 1 else "cpu") if world.main else None
    state = distributed.from_rank0(state, world)
    if state is None:
        return 0
    _restore(run, state)
    if run.world.rank:  # the state holds rank 0's random streams; the others draw their own batches
        run.gen.manual_seed(recipe.seed + run.world.rank + 7919 * run.step)
    return run.step


def train(recipe: Recipe, prepared: Prepared, *, variant: str = "variant", tracker: Tracker | None = None,
          evaluator: Evaluator | None = None, state_path: Path | None = None, progress: bool = True) -> TrainResult:
    """Train a resolved `recipe` (`pipeline.variants`) on `prepared`. Resumes from `state_path` if it
    holds a matching checkpoint, writes it every `checkpoint_every` steps, and raises
    TrainingDiverged on a NaN/Inf loss."""
    if not is_resolved(recipe):
        raise ValueError("train() needs a resolved recipe: pipeline.variants.resolve() fills in the loss's defaults")
    tracker = tracker or NullTracker()
    t, loss = recipe.train, LOSSES.get(recipe.loss, "loss")
    world = world_from_env()
    device = rank_device(resolve_device(t.device), world)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    distributed.start(world, device, samples_per_step(recipe))
    run, spec = _setup(recipe, prepared, loss, device, world)
    start = try_resume(run, recipe, state_path)
    x, y = _device_data(prepared, device, world)
    if not world.main:  # rank 0 alone logs, checks and writes
        tracker, evaluator, state_path = NullTracker(), None, None
        progress = False
    autocast = autocast_factory(resolve_precision(t.precision, device), device)
    sums: dict[str, Tensor] = {}
    last: dict[str, Tensor] = {}
    last_time, last_step = time.perf_counter(), start
    bar = tqdm(total=t.steps, initial=start, desc=f"train {variant}", disable=None if progress else True, unit="step")
    last_d_updates, clock = run.d_updates, time.perf_counter()
    for step in range(start + 1, t.steps + 1):
        logged = step % t.log_every == 0 or step == t.steps
        d_logs, g_logs = _step(run, loss, recipe, x, y, autocast, logged, critic_steps(recipe, step))
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
            tracker.log_metrics({k: v for k, v in row.items() if k != "step"}, step)
            bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{row['loss_g']:.3f}")
        checking = evaluator is not None and (step % t.eval_every == 0 or step == t.steps)
        saving = state_path is not None and step % t.checkpoint_every == 0 and step < t.steps
        if checking or saving:  # the checks' own time is not training time
            run.train_seconds, clock = run.train_seconds + time.perf_counter() - clock, time.perf_counter()
        if checking:
            _evaluate(run, evaluator, tracker, step, spec, recipe, device)
            clock = time.perf_counter()
        if saving:
            save_torch(_state(run, recipe), state_path)
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


def _device_data(prepared: Prepared, device: torch.device, world: World) -> tuple[Tensor, Tensor | None]:
    """The training set on the device (NHWC for images); with several ranks, this rank's shard."""
    x, y = prepared.x_train, prepared.y_train
    if world.size > 1:
        x, y = x[world.rank::world.size], (y[world.rank::world.size] if y is not None else None)
    x = x.to(device)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, (y.to(device) if y is not None else None)


def _step(run: _Run, loss: GanLoss, recipe: Recipe, x: Tensor, y: Tensor | None, autocast: Callable[[], Any],
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
        return _simultaneous_step(run, loss, recipe, x, y, autocast, measure, n)
    reuse = t.g_noise == "reuse"
    fake, before = None, None
    for i in range(d_steps):
        batch = draw_batch(x, y, n, t.z_dim, recipe.conditional, run.gen)
        last = i == d_steps - 1
        if reuse and last:
            with autocast():
                fake = run.g_fast(batch.z, batch.y_fake)
        if t.unroll_steps and last:
            before = snapshot(_eager(run.d_fast), run.opt_d)
        d_logs = d_step(run.g_fast, run.d_fast, run.opt_d, loss, batch, recipe, autocast, run.gen, fake, measure)
        run.d_updates += 1
    if not reuse:
        batch = draw_batch(x, y, n, t.z_dim, recipe.conditional, run.gen)
    for j in range(t.g_steps):  # the later updates redraw G(z) for the same z, as PacGAN's Stacked MNIST code
        g_logs = g_step(run.g_fast, run.d_fast, run.opt_g, loss, batch, autocast, recipe, before,
                        fake if j == 0 else None, measure and j == t.g_steps - 1)
    return d_logs, g_logs


def _simultaneous_step(run: _Run, loss: GanLoss, recipe: Recipe, x: Tensor, y: Tensor | None,
                       autocast: Callable[[], Any], measure: bool, n: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """G's and D's gradients at the same (G, D) on one batch, then both updates (ALI's training
    algorithm, which PacGAN's 2D experiments use): G steps first against the current D, then D
    steps on the fakes G made before its update."""
    batch = draw_batch(x, y, n, recipe.train.z_dim, recipe.conditional, run.gen)
    with autocast():
        fake = run.g_fast(batch.z, batch.y_fake)
    g_logs = g_step(run.g_fast, run.d_fast, run.opt_g, loss, batch, autocast, recipe, None, fake, measure)
    d_logs = d_step(run.g_fast, run.d_fast, run.opt_d, loss, batch, recipe, autocast, run.gen, fake, measure)
    run.d_updates += 1
    return d_logs, g_logs


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


def _evaluate(run: _Run, evaluator: Evaluator, tracker: Tracker, step: int, spec: ModelSpec,
              recipe: Recipe, device: torch.device) -> None:
    metrics = evaluator(run.sampler)
    # the x-axes of an equal-cost comparison: real images D has seen, and seconds of training
    costs = {"images_d": run.d_updates * samples_per_step(recipe), "seconds": round(run.train_seconds, 3)}
    run.eval_rows.append({"step": step, **costs, **metrics})
    tracker.log_metrics({**metrics, **costs}, step)
    if spec.kind == "image":
        images, _ = generate(run.sampler, 64, spec.z_dim, spec.num_classes, seed=recipe.seed, device=device)
        tracker.log_image(image_grid(images, 8), "samples", step)
