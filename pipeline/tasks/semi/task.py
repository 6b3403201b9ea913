"""Task semi's side of the task contract (`SemiTask`). Its stages write the files every task writes, so DVC, MLflow
and the report treat it alike:

- train: models/<v>/seed<s>/generator.pt (G) and checkpoint.pt (G, D, D's running average and the labelled indices),
  the loss and held-out tables, resolved.yaml, training.json, an MLflow run (every loss term, the held-out
  classification error of the averaged and the raw D as stepped metrics) and the averaged D as an MLflow model that
  classifies images;
- sample: data/generated/<v>/seed<s>.pt (G's samples, uint8) and samples.png; latent/ says why there is no
  latent walk here;
- evaluate: metrics.json: the averaged D's errors on the whole test split (`test_errors`, what the reference reports),
  the raw D's (`test_errors_raw`), beside the lab's classifier trained on the same labels alone and on every label;
  class_hist.json (the classifier's reading of G's samples).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline import paths
from pipeline.errors import CheckpointError, ConfigError
from pipeline.images import from_uint8, image_grid, save_png, to_uint8
from pipeline.io import atomic_dir, load_torch, save_torch, write_json
from pipeline.tasks.base import Evaluation, Task

SAMPLES = 1000  # G's samples written for the class histogram
BASELINE_STEPS_PER_EPOCH = 50  # the labels-only classifier takes this many Adam steps per `classifier.epochs`


def load_semi(path: str | Path) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(G, D, D's running average (the D the reference tests), the checkpoint's header) of a semi run's checkpoint.pt,
    in eval mode."""
    from pipeline.checkpoint import reading_checkpoint
    from pipeline.tasks.semi.networks import SemiDiscriminator, SemiGenerator

    with reading_checkpoint(path, "semi-supervised GAN"):
        ckpt = load_torch(path)
        if ckpt.get("task") != "semi":
            raise CheckpointError(f"{path} is not a semi-supervised GAN's checkpoint (task {ckpt.get('task')!r})")
        generator = SemiGenerator(ckpt["z_dim"], tuple(ckpt["data_shape"]), uniform=ckpt["z_dist"] == "uniform")
        generator.load_state_dict(ckpt.pop("state_dict"))
        discriminators = []
        for key in ("discriminator", "discriminator_average"):
            discriminators.append(SemiDiscriminator(tuple(ckpt["data_shape"]), len(ckpt["class_names"])))
            discriminators[-1].load_state_dict(ckpt.pop(key))
    return generator.eval(), discriminators[0].eval(), discriminators[1].eval(), ckpt


KEYS = {"train.g_objective": None, "train.historical_averaging": 0.0, "data.labels_per_class": None}


class SemiTask(Task):
    def __init__(self) -> None:
        super().__init__("semi", KEYS, uses_arch=False,
                         own_arch=("semi_mlp", "the paper's MLPs, a K-class D and a feature-matching G"),
                         gan_losses=("ns", "minimax"), g_objective="feature_matching",
                         default_optimizer="adam_eps_inside")

    def check(self, recipe: Any, prefix: str = "") -> None:
        n = recipe.data.labels_per_class
        if n is None:
            raise ConfigError(f"{prefix}data.labels_per_class: task semi needs the number of labelled images per "
                              f"class, e.g. 10 (100 labels on MNIST)")
        if n < 1:
            raise ConfigError(f"{prefix}data.labels_per_class must be >= 1, got {n}")

    def check_data(self, data: Any) -> None:
        from pipeline.tasks.semi.train import check_semi_data

        check_semi_data(data)

    def build(self, recipe: Any, data: Any, device: torch.device, world: Any) -> Any:
        from pipeline.tasks.semi.train import build

        return build(recipe, data, device, self.loss(recipe.loss), world)

    def checker(self, recipe: Any, data: Any, device: torch.device) -> Any:
        from pipeline.tasks.semi.train import SemiCheck

        return SemiCheck(recipe, data)

    def _header(self, recipe: Any, variant: str, data: Any) -> dict[str, Any]:
        return {"task": "semi", "variant": variant, "recipe": recipe.to_dict(), "z_dim": recipe.train.z_dim,
                "z_dist": recipe.train.z_dist, "data_shape": list(data.data_shape),
                "class_names": data.info["class_names"]}

    def save(self, run_key: str, result: Any, recipe: Any, variant: str, data: Any) -> None:
        header = self._header(recipe, variant, data)
        averaged = result.d_average.averaged()
        with atomic_dir(paths.model_dir(run_key)) as out:
            save_torch({"state_dict": result.generator.state_dict(), **header}, out / paths.GENERATOR_FILE)
            save_torch({"state_dict": result.generator.state_dict(), "discriminator": result.discriminator.state_dict(),
                        "discriminator_average": averaged.state_dict(), "labelled": result.labelled.cpu(), **header},
                       out / paths.FULL_CHECKPOINT_FILE)

    def log_model(self, tracker: Any, result: Any, data: Any) -> None:
        from pipeline.tracking_mlflow import log_classifier_model

        log_classifier_model(tracker, result.d_average.averaged(), data.data_shape)  # the D the reference tests

    def summary(self, run_key: str, result: Any, recipe: Any) -> str:
        if not result.eval_rows:
            return super().summary(run_key, result, recipe)
        last = result.eval_rows[-1]
        return (f"trained {run_key}: {recipe.train.steps} steps, {len(result.labelled)} labels, held-out error "
                f"{last['test_error']:.4f} (averaged D; raw D {last['test_error_raw']:.4f}; first "
                f"{recipe.train.eval_samples} test images)")

    def sample(self, recipe: Any, run_key: str) -> None:
        from pipeline.sampling import generate

        generator, _, _, header = load_semi(paths.full_checkpoint_path(run_key))
        images, _ = generate(generator, SAMPLES, header["z_dim"], seed=recipe.seed + 2)
        save_torch({"images": to_uint8(images)}, paths.generated_path(run_key))
        grid = recipe.sample.grid
        save_png(image_grid(images[:grid * grid], grid), paths.samples_png(run_key))
        with atomic_dir(paths.latent_dir(run_key)) as out:
            reason = "task semi: its G serves the classifier (feature matching), its latent space is not explored here"
            write_json({key: {"unavailable": reason} for key in ("interpolation", "direction", "arithmetic")},
                       out / "index.json")
        print(f"sampled {run_key}: {SAMPLES} images -> {paths.generated_path(run_key)}, grid -> {paths.samples_png(run_key)}")

    def evaluate(self, recipe: Any, params: Any, run_key: str) -> Evaluation:
        from pipeline.checkpoint import load_dataset_classifier
        from pipeline.data import load_prepared
        from pipeline.metrics.classifier import classify
        from pipeline.metrics.modes import class_histogram
        from pipeline.tasks.semi.metrics import classification_baseline, count_errors, semi_errors

        prepared = load_prepared(recipe.dataset)
        _, raw, discriminator, header = load_semi(paths.full_checkpoint_path(run_key))
        n = len(prepared.x_test)
        errors = count_errors(discriminator, prepared.x_test, prepared.y_test)
        per_class = [count_errors(discriminator, prepared.x_test[prepared.y_test == k], prepared.y_test[prepared.y_test == k])
                     for k in range(prepared.num_classes)]
        alone = classification_baseline(prepared, header["labelled"], recipe.seed,
                                        BASELINE_STEPS_PER_EPOCH * params.classifier.epochs, params.classifier.lr)
        metrics: dict[str, Any] = {
            "test_errors": errors, "test_error": errors / n, "n_test": n, "n_labels": len(header["labelled"]),
            "test_errors_raw": count_errors(raw, prepared.x_test, prepared.y_test),
            "labels_only_errors": semi_errors(alone, prepared.x_test, prepared.y_test),
        }
        classifier = load_dataset_classifier(recipe.dataset)
        histogram: dict[str, Any] = {}
        if classifier is not None:
            metrics["all_labels_errors"] = semi_errors(classifier, prepared.x_test, prepared.y_test)
            samples = from_uint8(load_torch(paths.generated_path(run_key))["images"])
            k = prepared.num_classes
            histogram = {"class_names": prepared.info["class_names"],
                         "generated": class_histogram(classify(classifier, samples), k).tolist(),
                         "real": class_histogram(prepared.y_test, k).tolist()}
        metrics["errors_per_class"] = per_class
        line = (f"the averaged D misclassifies {errors} of {n} test images (the raw D {metrics['test_errors_raw']}; "
                f"{len(header['labelled'])} labels); the lab's classifier on those labels alone: "
                f"{metrics['labels_only_errors']}"
                + (f", on every label: {metrics['all_labels_errors']}" if "all_labels_errors" in metrics else ""))
        return Evaluation(metrics, histogram, {}, line)
