"""Task generate: images (or 2D points) from noise, the GAN course's main line. Its run is `setup.Run` (G, D, their
optimisers, the EMA and historical averages), its iteration `steps.iteration`; it writes models/<v>/seed<s>/
generator.pt and checkpoint.pt, samples and draws what the data kind shows (a grid, one row per class when
conditional, or a scatter over the true mixture) and the latent space (interpolation, class direction and its
entanglement, latent arithmetic, real test images projected into it), and evaluates with the registered metrics."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from pipeline import paths
from pipeline.config import TrainConfig
from pipeline.errors import ConfigError
from pipeline.tasks.base import Evaluation, Task

if TYPE_CHECKING:
    from pipeline.tasks.generate.setup import TrainResult

KEYS = {"conditional": False, "train.pac": 1, "train.unroll_steps": 0, "train.ema": 0.0, "train.ema_ramp": "stylegan2",
        "train.g_steps": 1, "train.updates": "alternating", "train.nproc": 1, "train.compile": False,
        "train.minibatch_discrimination": False, "train.minibatch_std": False, "train.g_objective": None,
        "train.historical_averaging": 0.0, "train.progressive": 1, "train.stage_images": TrainConfig().stage_images,
        "train.fade_images": TrainConfig().fade_images}


class GenerateCheck:
    """The training-time check: the data kind's cheap mode-collapse metrics and, for images, FID on the classifier's
    features (`pipeline.evaluation.checks`), of the weights samples come from; a grid of 64 samples beside them."""

    def __init__(self, evaluator: Any, recipe: Any) -> None:
        self.evaluator, self.recipe = evaluator, recipe

    def __call__(self, run: Any) -> dict[str, Any]:
        return self.evaluator(run.sampler)

    def picture(self, run: Any) -> tuple[str, Tensor] | None:
        from pipeline.images import image_grid
        from pipeline.sampling import generate

        if not run.spec.images:
            return None
        device = next(run.sampler.parameters()).device
        images, _ = generate(run.sampler, 64, run.spec.z_dim, run.spec.num_classes, seed=self.recipe.seed, device=device)
        return "samples", image_grid(images, 8)


class GenerateTask(Task):
    def __init__(self, name: str = "generate", keys: dict[str, Any] | None = None, **contract: Any) -> None:
        contract.setdefault("data_kinds", ("image", "stacked", "points"))
        super().__init__(name, KEYS if keys is None else keys, g_objective="adversarial", data_parallel=True, **contract)

    def check_fit(self, recipe: Any, facts: Any, prefix: str = "") -> None:
        """The kind (Task.check_fit), then the networks themselves, built on the meta device (no memory, no compute)
        for the dataset's shape: every architecture's own shape rules and the growth schedule, before any work."""
        super().check_fit(recipe, facts, prefix)
        from pipeline.models import ARCHITECTURES, build_models
        from pipeline.models.progressive import schedule_for
        from pipeline.tasks.generate.spec import model_spec

        n = facts.num_classes  # None: a folder's labels are known once loaded (the train stage checks them)
        spec = model_spec(recipe, facts if n is not None else dataclasses.replace(facts, num_classes=2),
                          self.loss(recipe.loss))
        ARCHITECTURES.get(recipe.arch, f"{prefix}arch")  # an unknown name: the registry's own error
        try:
            with torch.device("meta"):
                generator, _ = build_models(recipe.arch, spec)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}arch: {recipe.arch} and {prefix}dataset: {facts.name} do not fit: {exc}") from None
        t = recipe.train
        if t.progressive > 1:
            try:
                schedule_for(generator, t.progressive, t.stage_images, t.fade_images)
            except ConfigError as exc:
                raise ConfigError(f"{prefix}{exc} (dataset {facts.name})") from None
        if n and facts.images:  # the sample stage's class walks and arithmetic name classes of the dataset
            for key, values in (("sample.arithmetic", recipe.sample.arithmetic),
                                ("sample.direction_class", (recipe.sample.direction_class,))):
                bad = [v for v in values if not 0 <= v < n]
                if bad:
                    raise ConfigError(f"{prefix}{key}: class {bad[0]} is out of range; valid classes: 0..{n - 1} "
                                      f"(dataset {facts.name})")

    def check_data(self, data: Any) -> None:
        if data.kind == "voxels":
            raise ConfigError(f"dataset {data.name!r} holds 3D voxel grids: train it with task: voxel (3D-GAN's "
                              f"networks), not task generate")

    def check(self, recipe: Any, prefix: str = "") -> None:
        t = recipe.train
        if recipe.arch == "progressive" and t.minibatch_std:
            raise ConfigError(f"{prefix}train.minibatch_std: arch progressive has the minibatch standard deviation in "
                              f"its discriminator already (before its last convolution, as the reference); remove it")
        if t.progressive == 1:
            return
        key = f"{prefix}train.progressive"
        if recipe.arch != "progressive":
            raise ConfigError(f"{key}: {t.progressive} grows arch: progressive's networks, not arch {recipe.arch!r} "
                              f"(its layers are made for one resolution); set arch: progressive or train.progressive: 1")
        for name, on, off, why in (
                ("compile", t.compile, "false", "a compiled graph would be recompiled at every level of detail"),
                ("nproc", t.nproc > 1, "1", "DDP needs every parameter used at every step; the coarse levels skip "
                                             "the rest")):
            if on:
                raise ConfigError(f"{key}: progressive growing trains in one uncompiled process ({why}); set "
                                  f"train.{name}: {off} or train.progressive: 1")
        growth = (t.progressive - 1) * (t.stage_images + t.fade_images)
        seen = t.steps * t.d_steps * t.batch_size * t.pac
        if growth >= seen:
            raise ConfigError(
                f"{key}: the schedule reaches the full resolution after {growth:,} real images ({t.progressive - 1} x "
                f"(stage_images {t.stage_images:,} + fade_images {t.fade_images:,})), but training shows D only "
                f"{seen:,} (steps {t.steps} x d_steps {t.d_steps} x batch_size {t.batch_size} x pac {t.pac}); raise "
                f"train.steps or lower train.stage_images and train.fade_images")

    def build(self, recipe: Any, data: Any, device: torch.device, world: Any) -> Any:
        from pipeline.tasks.generate.setup import setup_run

        return setup_run(recipe, data, self.loss(recipe.loss), device, world)

    def checker(self, recipe: Any, data: Any, device: torch.device) -> GenerateCheck | None:
        from pipeline.checkpoint import load_dataset_classifier
        from pipeline.evaluation.checks import make_training_evaluator

        evaluator = make_training_evaluator(recipe, data, load_dataset_classifier(recipe.dataset))
        return GenerateCheck(evaluator, recipe) if evaluator is not None else None

    def save(self, run_key: str, result: TrainResult, recipe: Any, variant: str, data: Any) -> None:
        from pipeline import checkpoint
        from pipeline.checkpoint import GeneratorCheckpoint

        meta = GeneratorCheckpoint(result.spec, recipe.arch, variant, recipe.to_dict(), data.info["class_names"])
        checkpoint.save_trained(run_key, result.generator, result.discriminator, meta)

    def log_model(self, tracker: Any, result: TrainResult, data: Any) -> None:
        from pipeline.tracking_mlflow import log_generator_model

        log_generator_model(tracker, result.generator, result.spec)

    def sample(self, recipe: Any, run_key: str) -> None:
        from pipeline.checkpoint import load_dataset_classifier, load_generator, save_generated
        from pipeline.data import load_prepared
        from pipeline.device import resolve_device
        from pipeline.figures import sample_figure, save_growth, save_latent_figures, save_projection
        from pipeline.io import atomic_dir, write_json
        from pipeline.kinds import kind_of
        from pipeline.sampling import generate

        prepared = load_prepared(recipe.dataset)
        kind = kind_of(prepared)
        device = resolve_device(recipe.train.device)
        generator, meta = load_generator(paths.generator_path(run_key), device)
        spec, s = meta.spec, recipe.sample
        n = s.n or kind.protocol_samples(prepared)
        samples, labels = generate(generator, n, spec.z_dim, spec.num_classes, seed=recipe.seed + 2, device=device)
        save_generated(paths.generated_path(run_key), samples, labels, kind.images)
        sample_figure(kind.name, generator, spec, prepared, s.grid, recipe.seed, paths.samples_png(run_key), device)
        classifier = load_dataset_classifier(recipe.dataset, device)
        with atomic_dir(paths.latent_dir(run_key)) as out:
            index = save_latent_figures(generator, spec, prepared, classifier, s.interpolation, s.direction_class,
                                        s.arithmetic, s.grid, recipe.seed, out, s.latent_samples)
            index["projection"] = save_projection(generator, spec, prepared, classifier, s, recipe.seed, out)
            if recipe.train.progressive > 1:
                index["growth"] = save_growth(generator, spec, recipe.train.progressive, s.grid, recipe.seed, out)
            write_json(index, out / "index.json")
        print(f"sampled {run_key}: {n} samples -> {paths.generated_path(run_key)}, grid -> "
              f"{paths.samples_png(run_key)}")

    def evaluate(self, recipe: Any, params: Any, run_key: str) -> Evaluation:
        from pipeline.checkpoint import load_dataset_classifier, load_generated
        from pipeline.data import load_prepared
        from pipeline.evaluation.evaluate import evaluate_samples

        prepared = load_prepared(recipe.dataset)
        generated = load_generated(paths.generated_path(run_key))
        classifier = load_dataset_classifier(recipe.dataset)
        classifier_path = paths.classifier_path(recipe.dataset) if classifier is not None else None
        evaluation = evaluate_samples(generated.samples, recipe, prepared, classifier_path, classifier,
                                      sample_labels=generated.labels, classifier_config=params.classifier)
        return Evaluation({**evaluation.metrics, **projection_metrics(run_key)}, evaluation.histogram,
                          evaluation.protocol)


def projection_metrics(run_key: str) -> dict[str, object]:
    """The sample stage's latent projection of real test images (latent/projection.json): the mean pixel error and the
    worst classes, into metrics.json."""
    from pipeline.io import read_json

    path = paths.latent_dir(run_key) / "projection.json"
    if not path.exists():
        return {}
    found = read_json(path)
    return {k: found[k] for k in ("projection_mse", "projection_worst_classes") if k in found}
