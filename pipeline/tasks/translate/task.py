"""Task translate's side of the task contract (`TranslateTask`). Its stages write the same files as the generate
task's, so DVC, MLflow and the report treat both alike:

- train: models/<v>/seed<s>/generator.pt (the U-Net and what rebuilding it needs) and checkpoint.pt
  (+ the PatchGAN); the translator is an MLflow model that takes input images;
- sample: data/generated/<v>/seed<s>.pt (`outputs_per_input` outputs for every test input, uint8) and
  samples.png (rows of input | outputs | truth); latent/ says why there is no latent walk;
- evaluate: metrics.json (`pipeline.metrics.translation`), class_hist.json (the classifier's reading of
  the outputs) and fid_protocol.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pipeline import paths
from pipeline.config import TranslateConfig, choice
from pipeline.errors import CheckpointError, ConfigError
from pipeline.images import from_uint8, save_png, to_uint8
from pipeline.io import atomic_dir, load_torch, save_torch, write_json
from pipeline.models.unet import UNet
from pipeline.tasks.base import Evaluation, Task, section_keys
from pipeline.tasks.translate.problems import PROBLEMS, comparison_grid

SAMPLE_ROWS = 8  # test inputs shown in samples.png and the report
SHOWN_FILE = "translations.pt"  # in the run's latent/ folder: the first output for each shown input


# ---- the translator on disk -------------------------------------------------------------------


def save_translator(run: str, tr: Any, recipe: dict[str, Any], variant: str, data_shape: tuple[int, ...],
                    class_names: list[str]) -> None:
    header = {"task": "translate", "problem": recipe["data"]["translate"], "data_shape": list(data_shape),
              "width": recipe["train"]["width"], "dropout": recipe["translate"]["dropout"], "variant": variant,
              "recipe": recipe, "class_names": class_names}
    with atomic_dir(paths.model_dir(run)) as out:
        save_torch({"state_dict": tr.generator.state_dict(), **header}, out / paths.GENERATOR_FILE)
        full = {"state_dict": tr.generator.state_dict(), **header}
        if tr.discriminator is not None:
            full["discriminator"] = tr.discriminator.state_dict()
        save_torch(full, out / paths.FULL_CHECKPOINT_FILE)


def load_translator(path: str | Path, device: torch.device | str = "cpu") -> tuple[UNet, dict[str, Any]]:
    """(the U-Net in eval mode, dropout still on, the checkpoint's header). A CycleGAN's checkpoint gives
    its G_AB (header problem: None, the image is translated as given)."""
    from pipeline.checkpoint import reading_checkpoint

    with reading_checkpoint(path, "translator"):
        ckpt = load_torch(path)
        if ckpt.get("task") not in ("translate", "cycle"):
            raise CheckpointError(f"{path} is a generator of task {ckpt.get('task', 'generate')!r}, not a translator "
                                  f"(task translate or cycle)")
        generator = UNet(ckpt["data_shape"][0], ckpt["width"], ckpt["dropout"], norm=ckpt.get("norm", "batch"))
        generator.load_state_dict(ckpt.pop("state_dict"))
    return generator.to(device).eval(), ckpt


@torch.no_grad()
def translate(generator: UNet, sources: Tensor, outputs_per_input: int, seed: int, batch_size: int = 500) -> Tensor:
    """K x N x C x H x W outputs, K = `outputs_per_input` draws of the dropout noise for each input,
    reproducible from `seed` (the global random state is left as it was)."""
    device = next(generator.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return torch.stack([torch.cat([generator(sources[i:i + batch_size].to(device)).float().cpu()
                                       for i in range(0, len(sources), batch_size)])
                            for _ in range(outputs_per_input)])


def _test_pairs(recipe: Any, prepared: Any) -> tuple[Tensor, Tensor]:
    """(inputs, true images) of the test split, through the recipe's problem."""
    targets = prepared.x_test
    return PROBLEMS.get(recipe.data.translate, "data.translate").degrade(targets), targets


KEYS = {**section_keys("translate", TranslateConfig), "data.translate": None, "train.lr_schedule": None}


class TranslateTask(Task):
    def __init__(self) -> None:
        super().__init__("translate", KEYS, uses_arch=False,
                         own_arch=("unet_patchgan", "U-Net generators and PatchGAN discriminators"),
                         extra_losses=("none",), lr_schedule="linear_decay")

    def check_names(self, recipe: Any, prefix: str = "") -> None:
        if recipe.data.translate is not None:
            PROBLEMS.get(recipe.data.translate, f"{prefix}data.translate")

    def check(self, recipe: Any, prefix: str = "") -> None:
        tr = recipe.translate
        if recipe.data.translate is None:
            raise ConfigError(f"{prefix}data.translate: task translate needs a problem: sr4 | inpaint | edges")
        choice(tr.reconstruction, ("l1", "l2"), f"{prefix}translate.reconstruction")
        if tr.l1_weight < 0:
            raise ConfigError(f"{prefix}translate.l1_weight must be >= 0, got {tr.l1_weight}")
        if not 0.0 <= tr.dropout < 1.0:
            raise ConfigError(f"{prefix}translate.dropout must be in [0, 1), got {tr.dropout}")
        if tr.outputs_per_input < 2:
            raise ConfigError(f"{prefix}translate.outputs_per_input must be >= 2 (the per-input diversity compares "
                              f"outputs), got {tr.outputs_per_input}")
        if recipe.loss == "none" and tr.l1_weight == 0:
            raise ConfigError(f"{prefix}translate.l1_weight: 0 with loss none leaves nothing to train; "
                              f"set l1_weight > 0 or choose a GAN loss")

    def check_fit(self, recipe: Any, facts: Any, prefix: str = "") -> None:
        super().check_fit(recipe, facts, prefix)
        h, w = facts.data_shape[-2:]
        if h % 4 or w % 4:
            raise ConfigError(f"{prefix}task: translate and {prefix}dataset: {facts.name} do not fit: the U-Net halves "
                              f"the image twice (and sr4 averages 4x4 blocks), so sides must be divisible by 4, "
                              f"{facts.name} holds {facts.describe()}; set {prefix}data.image_size to a multiple of 4")

    def check_data(self, data: Any) -> None:
        from pipeline.tasks.translate.train import check_translate_data

        check_translate_data(data)

    def build(self, recipe: Any, data: Any, device: torch.device, world: Any) -> Any:
        from pipeline.tasks.translate.train import build

        return build(recipe, data, device, self.loss(recipe.loss), world)

    def checker(self, recipe: Any, data: Any, device: torch.device) -> Any:
        from pipeline.checkpoint import load_dataset_classifier
        from pipeline.tasks.translate.train import HeldOutCheck

        return HeldOutCheck(recipe, data, load_dataset_classifier(recipe.dataset, device), device)

    def save(self, run_key: str, result: Any, recipe: Any, variant: str, data: Any) -> None:
        save_translator(run_key, result, recipe.to_dict(), variant, data.data_shape, data.info["class_names"])

    def log_model(self, tracker: Any, result: Any, data: Any) -> None:
        from pipeline.tracking_mlflow import log_translator_model

        log_translator_model(tracker, result.generator, data.data_shape)

    def summary(self, run_key: str, result: Any, recipe: Any) -> str:
        last = result.log_rows[-1]
        return f"trained {run_key}: {recipe.train.steps} steps, loss_g {last['loss_g']:.4f}, loss_rec {last['loss_rec']:.4f}"

    def sample(self, recipe: Any, run_key: str) -> None:
        from pipeline.data import load_prepared
        from pipeline.device import resolve_device

        prepared = load_prepared(recipe.dataset)
        generator, _ = load_translator(paths.generator_path(run_key), resolve_device(recipe.train.device))
        sources, targets = _test_pairs(recipe, prepared)
        outputs = translate(generator, sources, recipe.translate.outputs_per_input, seed=recipe.seed + 2)
        save_torch({"outputs": to_uint8(outputs), "problem": recipe.data.translate}, paths.generated_path(run_key))
        n = min(SAMPLE_ROWS, len(sources))
        save_png(comparison_grid(sources[:n], outputs[:3, :n], targets[:n]), paths.samples_png(run_key))
        with atomic_dir(paths.latent_dir(run_key)) as out:
            reason = "task translate: G has no latent space (its only noise is dropout)"
            write_json({key: {"unavailable": reason} for key in ("interpolation", "direction", "arithmetic")},
                       out / "index.json")
            # the first output of the shown inputs: the report sets the variants of one problem side by side
            save_torch({"outputs": to_uint8(outputs[0, :n]), "problem": recipe.data.translate}, out / SHOWN_FILE)
        print(f"sampled {run_key}: {outputs.shape[0]} outputs for each of {outputs.shape[1]} test inputs "
              f"-> {paths.generated_path(run_key)}, grid (input | outputs | truth) -> {paths.samples_png(run_key)}")

    def evaluate(self, recipe: Any, params: Any, run_key: str) -> Evaluation:
        from pipeline.checkpoint import load_dataset_classifier
        from pipeline.data import load_prepared
        from pipeline.metrics.classifier import classify
        from pipeline.metrics.fidelity import fidelity_protocol
        from pipeline.metrics.modes import class_histogram
        from pipeline.metrics.translation import translation_metrics

        prepared = load_prepared(recipe.dataset)
        stored = load_torch(paths.generated_path(run_key))
        outputs = from_uint8(stored["outputs"])
        sources, targets = _test_pairs(recipe, prepared)
        classifier = load_dataset_classifier(recipe.dataset)
        metrics = translation_metrics(outputs, sources, targets, prepared.y_test, classifier)
        histogram, protocol = {}, {}
        if classifier is not None:
            k = prepared.num_classes
            histogram = {"class_names": prepared.info["class_names"],
                         "generated": class_histogram(classify(classifier, outputs[0]), k).tolist(),
                         "real": class_histogram(prepared.y_test, k).tolist()}
            measured = fidelity_protocol("classifier", paths.classifier_path(recipe.dataset), outputs[0], targets, 0)
            measured.pop("kid_subset_size")  # no KID here
            protocol = {"classifier": {**measured, "reference": f"{prepared.name} test split: the true images of the inputs"}}
        return Evaluation(metrics, histogram, protocol)
