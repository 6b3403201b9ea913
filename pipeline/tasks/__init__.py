"""Tasks by name (`task:` in params.yaml): what a variant learns to do, each a package implementing one contract
(`pipeline.tasks.base.Task`):

- `generate`: images (or points) from noise, the GAN course's main line;
- `translate`: paired image-to-image translation (pix2pix): a U-Net maps a degraded image (`data.translate`: sr4,
  inpaint, edges) back to the image, with a reconstruction loss, an adversarial loss or both;
- `cycle`: unpaired image-to-image translation (CycleGAN) between `dataset` and `data.cycle_with`;
- `semi`: a classifier from `data.labels_per_class` labels per class and the unlabelled rest (Salimans et al. 2016);
- `voxel`: 3D voxel shapes from noise (3D-GAN, Wu et al. 2016), trained as `generate` trains, on `dataset: shapes3d`;
- `stack`: digits from descriptions of their measured stroke, in two stages (StackGAN, Zhang et al. 2017).

`train(recipe, data)` trains any of them: the task builds its run, `pipeline.training.loop` drives it. Adding a
task: a package under pipeline/tasks/ whose `Task` subclass implements the contract, and one `TASKS.add` line here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline.errors import ConfigError
from pipeline.registry import Registry
from pipeline.tasks.base import Evaluation, Task
from pipeline.tasks.cycle import CycleTask
from pipeline.tasks.generate import GenerateTask
from pipeline.tasks.generate.voxel import VoxelTask
from pipeline.tasks.semi import SemiTask
from pipeline.tasks.stack import StackTask
from pipeline.tasks.translate import TranslateTask

TASKS: Registry[Task] = Registry("task")
TASKS.add("generate", GenerateTask())
TASKS.add("translate", TranslateTask())
TASKS.add("cycle", CycleTask())
TASKS.add("semi", SemiTask())
TASKS.add("voxel", VoxelTask())
TASKS.add("stack", StackTask())

__all__ = ["TASKS", "Evaluation", "Task", "task_keys", "task_names", "train"]


def task_keys() -> dict[str, tuple[tuple[str, ...], Any]]:
    """key -> (the tasks that use it, its "unused" value): every key of params.yaml that only some tasks use.
    `pipeline.variants.resolve` makes one an error where a variant sets it itself for another task, and drops it
    with a note where it comes from the shared recipe (so `-S train.ema=0.999` still trains the translate variants)."""
    out: dict[str, tuple[tuple[str, ...], Any]] = {}
    for name in TASKS.names():
        for key, unused in TASKS.get(name).keys.items():
            owners, _ = out.get(key, ((), unused))
            out[key] = ((*owners, name), unused)
    return out


def task_names(owners: tuple[str, ...]) -> str:
    """("generate", "semi", "voxel") -> "generate, semi or voxel": how errors name the tasks a key applies to."""
    return owners[0] if len(owners) == 1 else f"{', '.join(owners[:-1])} or {owners[-1]}"


def train(recipe: Any, data: Any, *, variant: str = "variant", tracker: Any = None, checker: Any = None,
          state_path: Path | None = None, progress: bool = True) -> Any:
    """Train a resolved `recipe` (`pipeline.variants.resolve`) of any task on `data` (what its task's `load_data` returns):
    resumes from `state_path` when it holds a matching state, writes it every `checkpoint_every` steps, raises
    TrainingDiverged on a NaN/Inf loss; `checker` (the task's `checker`) measures every `eval_every` steps. Returns
    what the task's run finishes with. With several processes (torchrun, `train.nproc`) each trains its shard."""
    from pipeline import distributed
    from pipeline.distributed import rank_device, world_from_env
    from pipeline.training.loop import run_loop
    from pipeline.config import is_resolved
    from pipeline.device import for_this_machine

    if not is_resolved(recipe):
        raise ValueError("train() needs a resolved recipe: pipeline.variants.resolve() fills in the loss's defaults")
    recipe = for_this_machine(recipe)  # a no-op when the caller did it
    task = TASKS.get(recipe.task, "task")
    task.check_data(data)
    world = world_from_env()
    device = rank_device(torch.device(recipe.train.device), world)
    if world.size > 1 and not task.data_parallel:
        raise ConfigError(f"train.nproc: task {recipe.task!r} trains in one process; tasks that train in several: "
                          f"{', '.join(n for n in TASKS.names() if TASKS.get(n).data_parallel)}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    distributed.start(world, device, recipe.train.batch_size * recipe.train.pac)
    run = task.build(recipe, data, device, world)
    try:
        return run_loop(run, recipe, variant=variant, tracker=tracker, check=checker, state_path=state_path,
                        progress=progress)
    finally:
        distributed.stop(world)
