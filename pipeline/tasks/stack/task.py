"""Task stack's side of the task contract (`StackTask`): StackGAN (Zhang et al. 2017) on digits described by their
measured class, thickness, slant and width (`attributes`). Its stages write what every task writes:

- train: models/<v>/seed<s>/generator.pt (G: both stages and their conditioning augmentation) and checkpoint.pt (G,
  the D's, the attribute bins), the loss tables (Stage I's steps, then Stage II's, `stage` in the curves), an MLflow
  run and G as an MLflow model (`predict([latent, embedding])`);
- sample: data/generated/<v>/seed<s>.pt (one digit for each held-out digit's description), samples.png (one row of
  digits per description of `sample.descriptions`), latent/stages.png (Stage I above Stage II for the same latents);
- evaluate: metrics.json: does a digit match its description (the classifier's class, each attribute's error and bin
  accuracy), FID on the classifier's features against the described digits, the variety of one description's digits.
"""

from __future__ import annotations

from typing import Any

import torch

from pipeline import paths
from pipeline.config import SampleConfig, StackConfig
from pipeline.errors import CheckpointError, ConfigError
from pipeline.io import atomic_dir, load_torch, save_torch, write_json
from pipeline.tasks.base import Evaluation, Task, misfit, section_keys

KEYS = {**section_keys("stack", StackConfig), "sample.descriptions": SampleConfig().descriptions}
DIVERSITY_SAMPLES = 100  # digits drawn for one description to measure their variety
CHECK_DIGITS = 500       # held-out digits (their descriptions) a training-time check draws for, at most


def load_stack(path: Any) -> tuple[Any, dict[str, Any]]:
    """(G in eval mode, the checkpoint's header) of a stack run's generator.pt or checkpoint.pt."""
    from pipeline.checkpoint import reading_checkpoint
    from pipeline.tasks.stack.attributes import EMBEDDING_DIM, Bins
    from pipeline.tasks.stack.networks import StackGenerator

    with reading_checkpoint(path, "StackGAN generator"):
        ckpt = load_torch(path)
        if ckpt.get("task") != "stack":
            raise CheckpointError(f"{path} is not a StackGAN checkpoint (task {ckpt.get('task')!r})")
        generator = StackGenerator(ckpt["z_dim"], EMBEDDING_DIM, ckpt["c_dim"], ckpt["width"], ckpt["stages"])
        generator.load_state_dict(ckpt.pop("state_dict"))
        ckpt["bins"] = Bins.from_list(ckpt["bins"])
    return generator.eval(), ckpt


class DescribedGenerator(torch.nn.Module):
    """G as one function of [latent, embedding] (what the MLflow model predicts from)."""

    def __init__(self, generator: Any) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x[:, :self.generator.latent_dim], x[:, self.generator.latent_dim:])


class StackCheck:
    """Every `train.eval_every` steps: the current stage's digits for the first held-out digits' descriptions, how
    well they match them and FID (`metrics.description_metrics`); Stage I's are upscaled to 28x28."""

    def __init__(self, recipe: Any, data: Any) -> None:
        from pipeline.checkpoint import load_dataset_classifier

        n = min(recipe.train.eval_samples, CHECK_DIGITS, len(data.x_test))
        self.recipe, self.x, self.y = recipe, data.x_test[:n], data.y_test[:n]
        self.classifier = load_dataset_classifier(recipe.dataset)

    def __call__(self, run: Any) -> dict[str, Any]:
        from pipeline.tasks.stack.metrics import description_metrics

        stage = run.stage(max(run.step, 1))
        return {"stage": stage, **description_metrics(run.generator, self.classifier, self.x, self.y, run.bins,
                                                      self.recipe.seed + 1, stage)}

    def picture(self, run: Any) -> tuple[str, torch.Tensor] | None:
        from pipeline.images import image_grid
        from pipeline.tasks.stack.metrics import described, draw

        asked = described(self.x[:32], self.y[:32], run.bins)
        _, digits = draw(run.generator, self.y[:32], asked, self.recipe.seed, run.stage(max(run.step, 1)))
        return "samples", image_grid(digits, 8)


class StackTask(Task):
    def __init__(self) -> None:
        super().__init__("stack", KEYS, uses_arch=False,
                         own_arch=("stackgan", "StackGAN's two text-conditioned stages (or the one-stage baseline)"),
                         gan_losses=("ns",), data_kinds=("image",))

    def check(self, recipe: Any, prefix: str = "") -> None:
        from pipeline.tasks.stack.attributes import parse

        s, t = recipe.stack, recipe.train
        if s.stages not in (1, 2):
            raise ConfigError(f"{prefix}stack.stages must be 2 (Stage I, then Stage II) or 1 (the one-stage "
                              f"baseline), got {s.stages}")
        if s.stages == 2 and s.stage1_steps is not None and not 1 <= s.stage1_steps < t.steps:
            raise ConfigError(f"{prefix}stack.stage1_steps must leave both stages steps: between 1 and train.steps - 1 "
                              f"({t.steps - 1}), got {s.stage1_steps}")
        if s.stages == 1 and s.stage1_steps is not None:
            raise ConfigError(f"{prefix}stack.stage1_steps applies to the two-stage model; remove it or set "
                              f"stack.stages: 2")
        if s.c_dim < 1 or s.kl_weight < 0:
            raise ConfigError(f"{prefix}stack.c_dim must be >= 1 and stack.kl_weight >= 0, got {s.c_dim} and "
                              f"{s.kl_weight}")
        for i, description in enumerate(recipe.sample.descriptions):
            try:
                parse(description)
            except ConfigError as exc:
                raise ConfigError(f"{prefix}sample.descriptions[{i}]: {exc}") from None

    def check_fit(self, recipe: Any, facts: Any, prefix: str = "") -> None:
        super().check_fit(recipe, facts, prefix)
        if facts.num_classes != 10 or facts.data_shape != (1, 28, 28):
            raise ConfigError(misfit(prefix, self, facts, f"task stack describes 28x28 grey digits zero to nine, "
                                                          f"dataset {facts.name} holds {facts.num_classes or 'unknown'} "
                                                          f"classes of {facts.describe()}", ["mnist5k", "mnist"]))

    def check_data(self, data: Any) -> None:
        from pipeline.tasks.stack.train import check_stack_data

        check_stack_data(data)

    def build(self, recipe: Any, data: Any, device: torch.device, world: Any) -> Any:
        from pipeline.tasks.stack.train import build

        return build(recipe, data, device, world)

    def checker(self, recipe: Any, data: Any, device: torch.device) -> StackCheck:
        return StackCheck(recipe, data)

    def save(self, run_key: str, result: Any, recipe: Any, variant: str, data: Any) -> None:
        s, t = recipe.stack, recipe.train
        header = {"task": "stack", "variant": variant, "recipe": recipe.to_dict(), "z_dim": t.z_dim, "c_dim": s.c_dim,
                  "width": t.width, "stages": s.stages, "bins": result.bins.to_list(),
                  "class_names": data.info["class_names"]}
        with atomic_dir(paths.model_dir(run_key)) as out:
            save_torch({"state_dict": result.generator.state_dict(), **header}, out / paths.GENERATOR_FILE)
            discriminators = {"d_high": result.d_high.state_dict()}
            if result.d_low is not None:
                discriminators["d_low"] = result.d_low.state_dict()
            save_torch({"state_dict": result.generator.state_dict(), **discriminators, **header},
                       out / paths.FULL_CHECKPOINT_FILE)

    def log_model(self, tracker: Any, result: Any, data: Any) -> None:
        import copy

        import numpy as np

        from pipeline.tasks.stack.attributes import EMBEDDING_DIM, embed, parse
        from pipeline.tracking_mlflow import _log_model

        generator = copy.deepcopy(result.generator).cpu().eval()
        label, bins = parse("a thick, right-slanted, wide seven")
        e = embed(torch.tensor([label, label]), bins.expand(2, -1)).numpy()
        latent = np.random.default_rng(0).standard_normal((2, generator.latent_dim)).astype(np.float32)
        assert e.shape[1] == EMBEDDING_DIM
        _log_model(tracker, DescribedGenerator(generator), np.concatenate([latent, e], axis=1).astype(np.float32),
                   "generator")

    def summary(self, run_key: str, result: Any, recipe: Any) -> str:
        if not result.eval_rows:
            return super().summary(run_key, result, recipe)
        last = result.eval_rows[-1]
        return (f"trained {run_key}: {recipe.train.steps} steps ({recipe.stack.stages} stage(s)), class accuracy "
                f"{last.get('class_accuracy', float('nan')):.3f}, thickness within its bin "
                f"{last['thickness_accuracy']:.3f}, slant {last['slant_accuracy']:.3f}")

    def sample(self, recipe: Any, run_key: str) -> None:
        from pipeline.checkpoint import save_generated
        from pipeline.data import load_prepared
        from pipeline.images import image_grid, save_png
        from pipeline.tasks.stack.attributes import parse
        from pipeline.tasks.stack.metrics import described, draw

        prepared = load_prepared(recipe.dataset)
        generator, header = load_stack(paths.generator_path(run_key))
        bins = header["bins"]
        n = recipe.sample.n or min(len(prepared.x_test), 1000)
        x, y = prepared.x_test[:n], prepared.y_test[:n]
        low, digits = draw(generator, y, described(x, y, bins), recipe.seed + 2)
        save_generated(paths.generated_path(run_key), digits, y, images=True)
        grid = recipe.sample.grid
        rows = []
        for description in recipe.sample.descriptions:  # one description, many digits
            label, asked = parse(description)
            rows.append(draw(generator, torch.full((grid,), label), asked.expand(grid, -1), recipe.seed)[1])
        save_png(image_grid(torch.cat(rows), grid), paths.samples_png(run_key))
        with atomic_dir(paths.latent_dir(run_key)) as out:
            index: dict[str, Any] = {"descriptions": {"unavailable": "shown as the samples: one row a description"}}
            if low is not None:  # Stage I's 14x14 digit (upscaled) above Stage II's from it
                up = torch.nn.functional.interpolate(low[:grid], scale_factor=2, mode="nearest")
                save_png(image_grid(torch.cat([up, digits[:grid]]), grid), out / "stages.png")
                index["stages"] = {"file": "stages.png", "count": grid}
            else:
                index["stages"] = {"unavailable": "the one-stage baseline has no Stage I"}
            write_json(index, out / "index.json")
        print(f"sampled {run_key}: {n} digits for the held-out digits' descriptions -> "
              f"{paths.generated_path(run_key)}; {len(recipe.sample.descriptions)} descriptions -> "
              f"{paths.samples_png(run_key)}")

    def evaluate(self, recipe: Any, params: Any, run_key: str) -> Evaluation:
        from pipeline.checkpoint import load_dataset_classifier, load_generated
        from pipeline.data import load_prepared
        from pipeline.metrics.modes import class_histogram
        from pipeline.tasks.stack.metrics import match_metrics, one_description_diversity
        from pipeline.tasks.stack.networks import count_parameters

        prepared = load_prepared(recipe.dataset)
        generator, header = load_stack(paths.generator_path(run_key))
        generated = load_generated(paths.generated_path(run_key))  # the sample stage's digit for each description
        n = len(generated.samples)
        classifier = load_dataset_classifier(recipe.dataset)
        x, y = prepared.x_test[:n], prepared.y_test[:n]
        matched, labels = match_metrics(generated.samples, classifier, x, y, header["bins"])
        metrics: dict[str, Any] = {"n_samples": n, **matched}
        metrics.update(one_description_diversity(generator, recipe.sample.descriptions[0], DIVERSITY_SAMPLES,
                                                 recipe.seed))
        metrics["g_parameters"] = count_parameters(generator)
        histogram: dict[str, Any] = {}
        if labels is not None:
            k = prepared.num_classes
            histogram = {"class_names": prepared.info["class_names"], "generated": class_histogram(labels, k).tolist(),
                         "real": class_histogram(y, k).tolist()}
        line = (f"{n} digits drawn for held-out digits' descriptions: class accuracy "
                f"{metrics.get('class_accuracy', float('nan')):.3f}, in the asked bin: thickness "
                f"{metrics['thickness_accuracy']:.3f}, slant {metrics['slant_accuracy']:.3f}, width "
                f"{metrics['width_accuracy']:.3f}; FID {metrics.get('fid_classifier', float('nan')):.2f}; "
                f"G has {metrics['g_parameters']:,} weights")
        return Evaluation(metrics, histogram, {"reference": "test", "n_real": n, "n_generated": n}, line)
