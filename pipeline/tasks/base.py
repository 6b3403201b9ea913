"""The task contract: what a variant learns to do (`task:` in params.yaml) is a `Task`, and every task implements the
same methods, so one loop trains every task (`pipeline.training.loop`) and one shell runs each DVC stage (`stages/`).

Modelled on pytorch-CycleGAN-and-pix2pix's `BaseModel` chosen by `--model` and StyleGAN2-ADA's one training loop:
- configuration: the keys of params.yaml only this task uses (`keys`, with their "unused" values: a key of another
  task is an error where a variant sets it, dropped with a note where a shared `task:` switched it), its defaults
  for what the recipe leaves to it, its range checks (`check`) and whether the dataset is data it trains on and its
  networks fit that data's shape (`data_kinds`, `check_fit`, judged on the dataset's facts before anything loads);
- training: its data (`load_data`, `check_data`), its networks, optimisers and one training iteration (`build`
  returns a `pipeline.training.loop.TaskRun`), its measurements during training (`checker`);
- results: what the train stage writes of a trained run (`save`), its MLflow model (`log_model`), what the sample
  stage draws (`sample`) and the evaluate stage measures (`evaluate`).
A new task is one package under `pipeline/tasks/`, one `TASKS.add` line and, where it has keys of its own, a
section of the recipe (`pipeline.config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from pipeline.config import Params, Recipe
    from pipeline.data.sources import Facts
    from pipeline.distributed import World
    from pipeline.losses import GanLoss


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate stage writes for a run: metrics.json, class_hist.json and fid_protocol.json."""

    metrics: dict[str, Any]
    histogram: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    line: str = ""  # what the stage prints (empty: every metric)


def section_keys(section: str, config: Any) -> dict[str, Any]:
    """Every key of a task's section of the recipe (a dataclass), with its default as the "unused" value."""
    return {f"{section}.{f.name}": getattr(config(), f.name) for f in dataclasses.fields(config)}


KIND_WORDS = {"image": "images", "stacked": "stacked-digit images", "points": "2D points", "voxels": "3D voxel grids"}


def misfit(prefix: str, task: "Task", facts: "Facts", why: str = "", choices: list[str] | None = None,
           dataset_key: str = "dataset") -> str:
    """'task X and dataset Y do not fit: ...', with the datasets this task trains on and the tasks for this data
    (`dataset_key`: the parameter that names the dataset, e.g. CycleGAN's second domain, data.cycle_with)."""
    from pipeline.data.sources import datasets_of_kind
    from pipeline.tasks import TASKS

    wants = " or ".join(KIND_WORDS[k] for k in task.data_kinds)
    why = why or f"task {task.name} trains on {wants}, dataset {facts.name} holds {facts.describe()}"
    others = [name for name in TASKS.names() if facts.kind in TASKS.get(name).data_kinds and name != task.name]
    return (f"{prefix}task: {task.name} and {prefix}{dataset_key}: {facts.name} do not fit: {why}; choose a dataset of "
            f"{wants} ({', '.join(choices or datasets_of_kind(*task.data_kinds))})"
            + (f" or a task for {facts.name} ({', '.join(others)})" if others else ""))


@dataclass(frozen=True)
class Task:
    """A task's configuration; its behaviour comes from the methods a subclass implements."""

    name: str
    keys: dict[str, Any] = field(default_factory=dict)  # params.yaml keys only this task (and others naming them) uses
    uses_arch: bool = True          # `arch` picks the networks (the image-to-image and semi tasks train their own)
    own_arch: tuple[str, str] = ("", "")  # what `arch` resolves to where it does not apply, and what that is
    extra_losses: tuple[str, ...] = ()  # losses beyond the GAN losses (`pipeline.losses.TASK_LOSSES`) it accepts
    g_objective: str | None = None  # what `train.g_objective: null` means for it (None: the key does not apply)
    gan_losses: tuple[str, ...] | None = None  # the GAN losses it can train with (None: every registered one)
    default_optimizer: str | None = None  # what `train.optimizer: auto` means for it (None: the loss's optimizer)
    lr_schedule: str | None = None  # what `train.lr_schedule: null` means for it (None: the key does not apply)
    data_parallel: bool = False     # trains in several processes (torchrun, `train.nproc`)
    data_kinds: tuple[str, ...] = ("image", "stacked")  # the kinds of dataset it trains on (pipeline.data.sources.Facts)

    def loss(self, name: str, key: str = "loss") -> "GanLoss":
        """The loss `name` for this task; the error lists the task's valid losses."""
        from pipeline.losses import LOSSES, TASK_LOSSES

        extra = {n: TASK_LOSSES[n] for n in self.extra_losses}
        if name in extra:
            return extra[name]
        if self.gan_losses is not None and name not in self.gan_losses:
            raise ConfigError(f"{key}: task {self.name!r} trains with loss {' or '.join(self.gan_losses)}, not "
                              f"{name!r}: its D's real/fake probability is Z / (Z + 1) of its class logits")
        if name in LOSSES or not extra:
            return LOSSES.get(name, key)
        raise ConfigError(f"{key}: unknown loss {name!r} for task {self.name!r}; valid losses: "
                          f"{', '.join([*LOSSES.names(), *extra])}")

    # ---- configuration ----

    def check_names(self, recipe: "Recipe", prefix: str = "") -> None:
        """The names in the task's own keys are ones their registries know (checked before anything is computed);
        nothing to check by default."""

    def check(self, recipe: "Recipe", prefix: str = "") -> None:
        """The task's own keys in range, on a resolved recipe (errors name the key); nothing to check by default."""

    def check_fit(self, recipe: "Recipe", facts: "Facts", prefix: str = "") -> None:
        """The dataset is data this task trains on and the task's networks fit its shape, judged on the dataset's
        `Facts` when params.yaml is read, before any stage loads data or trains; an error names the two things that
        do not fit. By default: the dataset's kind is one of `data_kinds`."""
        if facts.kind not in self.data_kinds:
            raise ConfigError(misfit(prefix, self, facts))

    # ---- training ----

    def load_data(self, recipe: "Recipe") -> Any:
        """The prepared data a run trains on."""
        from pipeline.data import load_prepared

        return load_prepared(recipe.dataset)

    def check_data(self, data: Any) -> None:
        """A clear error when the data is not of a kind the task can train on."""

    def build(self, recipe: "Recipe", data: Any, device: "torch.device", world: "World") -> Any:
        """A new run of the task's training (`pipeline.training.loop.TaskRun`): networks, optimisers, the data on the
        device, the random stream; seeded by the recipe."""
        raise NotImplementedError

    def checker(self, recipe: "Recipe", data: Any, device: "torch.device") -> Any:
        """The measurements during training (`pipeline.training.loop.Check`), or None; may load the classifier."""
        return None

    # ---- results ----

    def save(self, run_key: str, result: Any, recipe: "Recipe", variant: str, data: Any) -> None:
        """models/<variant>/seed<s>/: what sampling and evaluating the trained run need (pipeline.checkpoint)."""
        raise NotImplementedError

    def log_model(self, tracker: Any, result: Any, data: Any) -> None:
        """The trained run's product as an MLflow model (on the tracker's worker thread)."""

    def summary(self, run_key: str, result: Any, recipe: "Recipe") -> str:
        """The train stage's last line."""
        last = result.log_rows[-1]
        shown = ", ".join(f"{k} {v:.4f}" for k, v in list(last.items())[1:3])
        return f"trained {run_key}: {recipe.train.steps} steps, {shown}"

    def sample(self, recipe: "Recipe", run_key: str) -> None:
        """The sample stage: data/generated/<v>/seed<s>.pt, samples.png and latent/ of a trained run."""
        raise NotImplementedError

    def evaluate(self, recipe: "Recipe", params: "Params", run_key: str) -> Evaluation:
        """The evaluate stage's measurements of a sampled run."""
        raise NotImplementedError


