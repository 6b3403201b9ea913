"""Tasks by name (`task:` in params.yaml): what a variant learns to do. The stages dispatch on the task.

- `generate`: images (or points) from noise, the GAN course's main line.
- `translate`: paired image-to-image translation (pix2pix): a U-Net maps a degraded image (`data.translate`:
  sr4, inpaint, edges) back to the image, trained with a reconstruction loss, an adversarial loss or both.
- `cycle`: unpaired image-to-image translation (CycleGAN) between `dataset` and `data.cycle_with`.
- `semi`: a classifier from `data.labels_per_class` labels per class and the unlabelled rest (Salimans et al.
  2016): D is a K-class classifier whose real/fake probability comes from its logits.

A task names, for each of the train, sample and evaluate stages, the function that runs it, as an import
path: a stage loads only its own task's code. Adding a task is one `Task(...)` here and its stage functions.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from pipeline.errors import ConfigError
from pipeline.registry import Registry

if TYPE_CHECKING:
    from pipeline.losses import GanLoss

StageFunction = Callable[[str, "int | None", str], None]  # (variant, seed, params file) -> None


@dataclass(frozen=True)
class Task:
    name: str
    stages: dict[str, str]          # stage -> "module:function" running it for this task
    uses_arch: bool = True          # `arch` picks the networks (translate always trains a U-Net and a PatchGAN)
    own_arch: tuple[str, str] = ("unet_patchgan", "U-Net generators and PatchGAN discriminators")  # what `arch`
                                    # resolves to where it does not apply, and what that is
    extra_losses: tuple[str, ...] = ()  # losses beyond the GAN losses (`pipeline.losses.TASK_LOSSES`) it accepts
    g_objective: str | None = None  # what `train.g_objective: null` means for it (None: the key does not apply)
    gan_losses: tuple[str, ...] | None = None  # the GAN losses it can train with (None: every registered one)
    default_optimizer: str | None = None  # what `train.optimizer: auto` means for it (None: the loss's optimizer)
    lr_schedule: str | None = None  # what `train.lr_schedule: null` means for it (None: the key does not apply)

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

    def stage(self, stage: str) -> StageFunction:
        module, _, function = self.stages[stage].partition(":")
        return getattr(importlib.import_module(module), function)


TASKS: Registry[Task] = Registry("task")
TASKS.add("generate", Task("generate", {stage: f"stages.{stage}:{stage}_generate"
                                        for stage in ("train", "sample", "evaluate")}, g_objective="adversarial"))
TASKS.add("translate", Task("translate", {stage: f"pipeline.translate.stages:{stage}"
                                          for stage in ("train", "sample", "evaluate")},
                            uses_arch=False, extra_losses=("none",), lr_schedule="linear_decay"))
TASKS.add("cycle", Task("cycle", {stage: f"pipeline.translate.cycle:{stage}" for stage in ("train", "sample", "evaluate")},
                        uses_arch=False, lr_schedule="linear_decay"))


TASKS.add("semi", Task("semi", {stage: f"pipeline.semi.stages:{stage}" for stage in ("train", "sample", "evaluate")},
                       uses_arch=False, own_arch=("semi_mlp", "the paper's MLPs, a K-class D and a feature-matching G"),
                       g_objective="feature_matching", gan_losses=("ns", "minimax"),
                       default_optimizer="adam_eps_inside"))  # the reference's Adam (pipeline/optim.py)


def run_stage(stage: str, variant: str, seed: int | None, params_file: str) -> None:
    """Run `stage` for a variant at one seed with the function its task names."""
    from pipeline.config import load_params

    recipe = load_params(params_file).merged(variant, seed)
    TASKS.get(recipe.task, f"variants.{variant}.task").stage(stage)(variant, seed, params_file)
