"""Task cycle's side of the task contract (`CycleTask`): unpaired translation between `dataset` (domain A) and
`data.cycle_with` (domain B). Its stages write the files every task writes:

- train: models/<v>/seed<s>/generator.pt (G_AB and G_BA) and checkpoint.pt (+ D_A, D_B); G_AB is an MLflow model
  that takes domain-A images;
- sample: data/generated/<v>/seed<s>.pt (both domains' test images translated and translated back, uint8) and
  samples.png (rows of image | translated | back); latent/ says why there is no latent walk;
- evaluate: metrics.json (`pipeline.tasks.cycle.translations.cycle_metrics`, with FID) and fid_protocol.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from pipeline import paths
from pipeline.config import CycleConfig
from pipeline.errors import ConfigError
from pipeline.images import from_uint8, save_png, to_uint8
from pipeline.io import atomic_dir, load_torch, save_torch, write_json
from pipeline.models.unet import UNet
from pipeline.tasks.base import Evaluation, Task, misfit, section_keys

if TYPE_CHECKING:  # the training code loads where a cycle variant trains, samples or evaluates, not with the registry
    from pipeline.tasks.cycle.train import CycleCheck, CycleModels
    from pipeline.tasks.cycle.translations import Domains

KEYS = {**section_keys("cycle", CycleConfig), "data.cycle_with": None, "train.lr_schedule": None}


def _classifiers(recipe: Any, device: Any = "cpu") -> tuple[nn.Module | None, nn.Module | None]:
    """(A's classifier, B's), each None where its dataset has none."""
    from pipeline.checkpoint import load_dataset_classifier

    return load_dataset_classifier(recipe.dataset, device), load_dataset_classifier(recipe.data.cycle_with, device)


def _load(run_key: str, shape: list[int], width: int) -> tuple[UNet, UNet]:
    ckpt = load_torch(paths.generator_path(run_key))
    g_ab, g_ba = (UNet(shape[0], width, 0.0, norm=ckpt.get("norm", "batch")) for _ in range(2))
    g_ab.load_state_dict(ckpt["state_dict"])
    g_ba.load_state_dict(ckpt["g_ba"])
    return g_ab.eval(), g_ba.eval()


@dataclass
class _Pair:
    g_ab: UNet
    g_ba: UNet


class CycleTask(Task):
    def __init__(self) -> None:
        super().__init__("cycle", KEYS, uses_arch=False, data_kinds=("image",),
                         own_arch=("unet_patchgan", "U-Net generators and PatchGAN discriminators"),
                         lr_schedule="linear_decay")

    def check_names(self, recipe: Any, prefix: str = "") -> None:
        from pipeline.data.sources import DATASETS

        if recipe.data.cycle_with is not None:
            DATASETS.get(recipe.data.cycle_with, f"{prefix}data.cycle_with")

    def check(self, recipe: Any, prefix: str = "") -> None:
        if recipe.data.cycle_with is None:
            raise ConfigError(f"{prefix}data.cycle_with: task cycle needs a second image dataset (domain B), "
                              f"e.g. digits")
        if recipe.data.cycle_with == recipe.dataset:
            raise ConfigError(f"{prefix}data.cycle_with: domain B must be another dataset than domain A "
                              f"({recipe.dataset!r})")
        for key in ("cycle_weight", "identity_weight", "pool_size"):
            if getattr(recipe.cycle, key) < 0:
                raise ConfigError(f"{prefix}cycle.{key} must be >= 0, got {getattr(recipe.cycle, key)}")

    def load_data(self, recipe: Any) -> Domains:
        from pipeline.data import load_prepared
        from pipeline.tasks.cycle.translations import domains

        return domains(load_prepared(recipe.dataset), load_prepared(recipe.data.cycle_with))

    def check_fit(self, recipe: Any, facts: Any, prefix: str = "") -> None:
        from pipeline.data.sources import dataset_facts

        super().check_fit(recipe, facts, prefix)
        if recipe.data.cycle_with is not None:
            b = dataset_facts(recipe.data.cycle_with, recipe.data, f"{prefix}data.cycle_with")
            if b.kind not in self.data_kinds:
                raise ConfigError(misfit(prefix, self, b, f"task cycle translates between two image datasets, "
                                                          f"data.cycle_with: {b.name} holds {b.describe()}",
                                         dataset_key="data.cycle_with"))

    def check_data(self, data: Any) -> None:
        from pipeline.tasks.cycle.translations import Domains

        if not isinstance(data, Domains):
            raise TypeError(f"task cycle trains on pipeline.tasks.cycle.translations.Domains (CycleTask.load_data), "
                            f"got {type(data).__name__}")

    def build(self, recipe: Any, data: Domains, device: torch.device, world: Any) -> CycleModels:
        from pipeline.tasks.cycle.train import build

        return build(recipe, data, device, self.loss(recipe.loss), world)

    def checker(self, recipe: Any, data: Domains, device: torch.device) -> CycleCheck:
        from pipeline.tasks.cycle.train import CycleCheck

        return CycleCheck(recipe, data, _classifiers(recipe, device))

    def save(self, run_key: str, result: CycleModels, recipe: Any, variant: str, data: Domains) -> None:
        header = {"task": "cycle", "problem": None, "data_shape": list(data.a_train.shape[1:]),
                  "width": recipe.train.width, "dropout": 0.0, "norm": "instance", "variant": variant,
                  "recipe": recipe.to_dict(), "domains": [recipe.dataset, recipe.data.cycle_with]}
        generators = {"state_dict": result.g_ab.state_dict(), "g_ba": result.g_ba.state_dict()}
        with atomic_dir(paths.model_dir(run_key)) as out:
            save_torch({**generators, **header}, out / paths.GENERATOR_FILE)
            save_torch({**generators, "d_a": result.d_a.state_dict(), "d_b": result.d_b.state_dict(), **header},
                       out / paths.FULL_CHECKPOINT_FILE)

    def log_model(self, tracker: Any, result: CycleModels, data: Domains) -> None:
        from pipeline.tracking_mlflow import log_translator_model

        log_translator_model(tracker, result.g_ab, tuple(data.a_train.shape[1:]))

    def summary(self, run_key: str, result: CycleModels, recipe: Any) -> str:
        last = result.log_rows[-1]
        return (f"trained {run_key}: {recipe.train.steps} steps, loss_g {last['loss_g']:.4f}, "
                f"cycle {last['loss_cycle']:.4f}")

    def sample(self, recipe: Any, run_key: str) -> None:
        from pipeline.tasks.cycle.translations import SAMPLE_ROWS, Translations, sample_grid

        d = self.load_data(recipe)
        m = _Pair(*_load(run_key, list(d.a_train.shape[1:]), recipe.train.width))
        tr = Translations.of(m, d.a_test, d.b_test)
        save_torch({k: to_uint8(getattr(tr, k)) for k in ("ab", "ba", "aba", "bab")}, paths.generated_path(run_key))
        save_png(sample_grid(m, d.a_test[:SAMPLE_ROWS], d.b_test[:SAMPLE_ROWS]), paths.samples_png(run_key))
        with atomic_dir(paths.latent_dir(run_key)) as out:
            reason = "task cycle: G has no latent space"
            write_json({key: {"unavailable": reason} for key in ("interpolation", "direction", "arithmetic")},
                       out / "index.json")
        print(f"sampled {run_key}: {len(d.a_test)} A->B and {len(d.b_test)} B->A translations, grid (image | "
              f"translated | back) -> {paths.samples_png(run_key)}")

    def evaluate(self, recipe: Any, params: Any, run_key: str) -> Evaluation:
        from pipeline.tasks.cycle.translations import Translations, cycle_metrics

        d = self.load_data(recipe)
        stored = load_torch(paths.generated_path(run_key))
        tr = Translations(**{k: from_uint8(stored[k]) for k in ("ab", "ba", "aba", "bab")})
        metrics = {"n_a": len(d.a_test), "n_b": len(d.b_test),
                   **cycle_metrics(tr, d.a_test, d.b_test, d.a_labels, d.b_labels, _classifiers(recipe), d.b_native)}
        protocol = {"classifier": {"features": "classifier", "network": "each target domain's classifier "
                                   "(models/classifier), translations resized to its input size",
                                   "reference": "the target domain's test split", "n_generated": len(d.a_test),
                                   "n_reference": len(d.b_test)}}
        return Evaluation(metrics, {}, protocol)
