"""The one training loop, every task's: `run_loop` resumes a task's run from its state, drives its iterations,
accumulates what they log on the device and fetches it once every `log_every` steps (the loop's only host-device
sync, and the NaN/Inf stop), runs the task's checks every `eval_every` steps, writes the resumable state every
`checkpoint_every` steps, shows progress, and steps the tracker. With several processes (torchrun) the logged values
are averaged over the ranks and rank 0 alone checks, logs and writes.

A task plugs in through `TaskRun` (what one run of its training holds and how one iteration goes) and `Check` (its
measurements during training): `pipeline.tasks` builds both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pipeline import distributed
from pipeline.checkpoint import read_state, restore_run_state, run_state
from pipeline.config import Recipe
from pipeline.distributed import World, mean_over_ranks
from pipeline.errors import TrainingDiverged
from pipeline.io import save_torch
from pipeline.tracking import TRAIN, TRAIN_EVAL, NullTracker, Tracker, in_section


class TaskRun(Protocol):
    """One task's training in progress: its networks, optimisers and counters, and its iteration."""

    step: int                             # the last step done
    d_updates: int                        # critic updates so far
    train_seconds: float                  # wall-clock seconds of training so far (checks excluded)
    resumed_from: int                     # the step a resume started after (0: none)
    log_rows: list[dict[str, float]]
    eval_rows: list[dict[str, Any]]
    gen: torch.Generator                  # the run's own random stream (batches, noise)
    world: World

    def iteration(self, step: int, logged: bool) -> dict[str, Tensor]:
        """One training iteration (step `step`, 1-based): every update it makes; returns the values to log as device
        tensors, means over the interval (or, for keys starting with grad_norm, the value of a `logged` step)."""

    def row_extras(self) -> dict[str, float]:
        """Values a logged row also holds, read on the host (learning rates)."""

    def images_seen(self) -> int:
        """Training images the run has consumed so far (its images per second come from it)."""

    def costs(self) -> dict[str, float]:
        """What a check row says of the cost so far (images seen, seconds), its x-axes."""

    def modules(self) -> dict[str, Any]:
        """Everything with a state_dict the resumable state saves, by name."""

    def finish(self) -> Any:
        """What training returns (networks in eval mode, tables)."""


@dataclass(kw_only=True)
class RunCounters:
    """What every task's run counts for the loop (a `TaskRun`'s bookkeeping): a task's run is a dataclass deriving
    from it that adds its networks, optimisers and data. Its `costs` are images seen and seconds."""

    step: int = 0                         # the last step done
    d_updates: int = 0                    # critic updates so far
    train_seconds: float = 0.0            # wall-clock seconds of training so far (checks excluded)
    resumed_from: int = 0                 # the step a resume started after (0: none)
    log_rows: list[dict[str, float]] = field(default_factory=list)
    eval_rows: list[dict[str, Any]] = field(default_factory=list)
    world: World = World()

    def images_seen(self) -> int:
        raise NotImplementedError

    def row_extras(self) -> dict[str, float]:
        return {}

    def costs(self) -> dict[str, float]:
        return {"images_seen": self.images_seen(), "seconds": round(self.train_seconds, 3)}


class Check(Protocol):
    """A task's measurements during training, every `train.eval_every` steps."""

    def __call__(self, run: Any) -> dict[str, Any]:
        """The metrics of the run as it is now (without changing what training draws next)."""

    def picture(self, run: Any) -> tuple[str, Tensor] | None:
        """(name, uint8 image) to log beside them, or None."""


def resume(run: TaskRun, recipe: Recipe, state_path: Path | None) -> int:
    """Resume `run` from `state_path` when the same recipe and code wrote it; the step to continue after (0: none).
    With several processes rank 0 alone reads it and every rank resumes from what rank 0 read (or all start at step
    0), so all ranks run the same steps from the same weights."""
    world = run.world
    state = read_state(recipe, state_path) if world.main else None
    state = distributed.from_rank0(state, world)
    if state is None:
        return 0
    restore_run_state(run, state)
    if world.rank:  # the state holds rank 0's random streams; the others draw their own batches
        run.gen.manual_seed(recipe.seed + world.rank + 7919 * run.step)
    return run.step


def run_loop(run: TaskRun, recipe: Recipe, *, variant: str = "variant", tracker: Tracker | None = None,
             check: Check | None = None, state_path: Path | None = None, progress: bool = True) -> Any:
    """Train `run` to `train.steps` (resuming first) and return `run.finish()`."""
    t = recipe.train
    tracker = tracker or NullTracker()
    start = run.resumed_from = resume(run, recipe, state_path)
    if not run.world.main:  # rank 0 alone logs, checks and writes
        tracker, check, state_path, progress = NullTracker(), None, None, False
    sums: dict[str, Tensor] = {}
    last: dict[str, Tensor] = {}
    last_time, last_step, last_images = time.perf_counter(), start, run.images_seen()
    bar = tqdm(total=t.steps, initial=start, desc=f"train {variant}", disable=None if progress else True, unit="step")
    clock = time.perf_counter()
    for step in range(start + 1, t.steps + 1):
        logged = step % t.log_every == 0 or step == t.steps
        _accumulate(sums, last, run.iteration(step, logged))
        run.step = step
        bar.update()
        if logged:
            now = time.perf_counter()
            row = _flush(sums, last, step, step - last_step, variant, run.world)
            row["images_per_s"] = (run.images_seen() - last_images) / max(now - last_time, 1e-9)
            row.update(run.row_extras())
            last_time, last_step, last_images, sums, last = now, step, run.images_seen(), {}, {}
            run.log_rows.append(row)
            tracker.log_metrics(in_section(TRAIN, row), step)
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(row.items())[1:3]})
        checking = check is not None and (step % t.eval_every == 0 or step == t.steps)
        saving = state_path is not None and step % t.checkpoint_every == 0 and step < t.steps
        if checking or saving:  # the checks' own time is not training time
            run.train_seconds, clock = run.train_seconds + time.perf_counter() - clock, time.perf_counter()
        if checking:
            row = {"step": step, **run.costs(), **check(run)}
            run.eval_rows.append(row)
            tracker.log_metrics(in_section(TRAIN_EVAL, row), step)
            picture = check.picture(run)
            if picture is not None:
                tracker.log_image(picture[1], picture[0], step)
            clock = time.perf_counter()
        if saving:
            save_torch(run_state(run, recipe), state_path)
    bar.close()
    return run.finish()


def _accumulate(sums: dict[str, Tensor], last: dict[str, Tensor], logs: dict[str, Tensor]) -> None:
    """Add a step's values to the interval's sums, on the device (no sync); gradient norms are
    measured on logged steps only and kept as that step's value."""
    for key, value in logs.items():
        if key.startswith("grad_norm"):
            last[key] = value
        else:
            sums[key] = sums[key] + value if key in sums else value.clone()


def _flush(sums: dict[str, Tensor], last: dict[str, Tensor], step: int, num_steps: int, variant: str,
           world: World = World()) -> dict[str, float]:
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
    return row
