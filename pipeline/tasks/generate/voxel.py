"""Task voxel: 3D-GAN (Wu et al. 2016), voxel shapes from noise. It trains as task generate does (the same run, loop,
losses and tricks: `setup.Run`) with 3D-GAN's networks (`pipeline.models.voxel3d`) on 3D voxel grids
(`dataset: shapes3d`), and samples and measures what a 3D generator is judged by:

- sample: data/generated/<v>/seed<s>.pt (the generated grids, uint8), samples.png (each shape seen along its three
  axes, shaded by depth; conditional: one row per shape class), latent/interpolation.png (walks between two shapes);
- evaluate: a small 3D classifier trained on the real shapes (seeded; its held-out accuracy reported beside) reads
  the shape classes G covers (mode collapse in 3D) and gives the features of a Frechet distance; voxel IoU of each
  generated shape with its nearest training shape (memorisation; the held-out shapes' own value beside it), the mean
  IoU of random generated pairs (diversity; the real shapes' beside it) and the occupied share.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from pipeline import paths
from pipeline.errors import ConfigError
from pipeline.tasks.base import Evaluation
from pipeline.tasks.generate.task import KEYS as GENERATE_KEYS
from pipeline.tasks.generate.task import GenerateTask

KEYS = {k: v for k, v in GENERATE_KEYS.items() if k not in ("train.progressive", "train.stage_images",
                                                             "train.fade_images")}
CHECK_CLASSIFIER_EPOCHS = 2  # the training-time check's classifier: a quick one with the default classifier settings
                             # (the evaluate stage's takes params.yaml's classifier section)


class VoxelCheck:
    """The training-time check: shape classes covered, FID on a quickly trained 3D classifier's features against the
    held-out shapes, the pairwise IoU and the occupied share of `train.eval_samples` generated shapes."""

    def __init__(self, recipe: Any, data: Any, classifier_config: Any) -> None:
        import dataclasses

        from pipeline.metrics.frechet import gaussian
        from pipeline.tasks.generate.voxel_metrics import predict, train_voxel_classifier

        self.recipe, self.data = recipe, data
        quick = dataclasses.replace(classifier_config, epochs=CHECK_CLASSIFIER_EPOCHS)
        self.classifier = train_voxel_classifier(data.x_train, data.y_train, data.num_classes, quick)
        self.real = gaussian(predict(self.classifier, data.x_test)[1])

    def __call__(self, run: Any) -> dict[str, Any]:
        from pipeline.sampling import generate
        from pipeline.tasks.generate.voxel_metrics import voxel_metrics

        device = next(run.sampler.parameters()).device
        samples, _ = generate(run.sampler, self.recipe.train.eval_samples, run.spec.z_dim, run.spec.num_classes,
                              seed=self.recipe.seed + 1, device=device)
        metrics, _ = voxel_metrics(samples, self.data, self.classifier, self.real, self.recipe.eval.class_share,
                                   pairs=500, seed=self.recipe.seed)
        return metrics

    def picture(self, run: Any) -> tuple[str, Tensor] | None:
        from pipeline.images import depth_views, image_grid
        from pipeline.sampling import generate

        device = next(run.sampler.parameters()).device
        volumes, _ = generate(run.sampler, 16, run.spec.z_dim, run.spec.num_classes, seed=self.recipe.seed,
                              device=device)
        return "samples", image_grid(depth_views(volumes), 4)


class VoxelTask(GenerateTask):
    def __init__(self) -> None:
        super().__init__("voxel", KEYS, uses_arch=False, own_arch=("voxel3d", "3D-GAN's 3D (transposed) convolutions"),
                         data_kinds=("voxels",))

    def check_data(self, data: Any) -> None:
        if data.kind != "voxels":
            raise ConfigError(f"task voxel trains on 3D voxel grids (dataset: shapes3d); dataset {data.name!r} holds "
                              f"{data.kind} data: use task generate for it")

    def checker(self, recipe: Any, data: Any, device: torch.device) -> VoxelCheck:
        from pipeline.config import ClassifierConfig

        return VoxelCheck(recipe, data, ClassifierConfig())

    def sample(self, recipe: Any, run_key: str) -> None:
        from pipeline.checkpoint import load_generator, save_generated
        from pipeline.data import load_prepared
        from pipeline.device import resolve_device
        from pipeline.figures import sample_figure
        from pipeline.figures.voxels import save_voxel_strip
        from pipeline.io import atomic_dir, write_json
        from pipeline.kinds import kind_of
        from pipeline.latent import interpolation_strip
        from pipeline.sampling import generate

        prepared = load_prepared(recipe.dataset)
        device = resolve_device(recipe.train.device)
        generator, meta = load_generator(paths.generator_path(run_key), device)
        spec, s = meta.spec, recipe.sample
        n = s.n or kind_of(prepared).protocol_samples(prepared)
        samples, labels = generate(generator, n, spec.z_dim, spec.num_classes, seed=recipe.seed + 2, device=device)
        save_generated(paths.generated_path(run_key), samples, labels, images=True)  # uint8: occupied > 0 is kept
        sample_figure(prepared.kind, generator, spec, prepared, s.grid, recipe.seed, paths.samples_png(run_key), device)
        with atomic_dir(paths.latent_dir(run_key)) as out:
            walk = interpolation_strip(generator, spec.z_dim, spec.num_classes, rows=2, steps=s.grid,
                                       mode=s.interpolation, seed=recipe.seed)
            save_voxel_strip(walk, s.grid, out / "interpolation.png")
            reason = "task voxel: no classifier-guided latent walks for 3D shapes here"
            write_json({"interpolation": {"file": "interpolation.png", "mode": s.interpolation, "rows": 2,
                                          "steps": s.grid},
                        **{key: {"unavailable": reason} for key in ("direction", "entanglement", "arithmetic")}},
                       out / "index.json")
        print(f"sampled {run_key}: {n} voxel grids -> {paths.generated_path(run_key)}, views -> "
              f"{paths.samples_png(run_key)}")

    def evaluate(self, recipe: Any, params: Any, run_key: str) -> Evaluation:
        from pipeline.checkpoint import load_generated
        from pipeline.data import load_prepared
        from pipeline.metrics.frechet import gaussian
        from pipeline.metrics.modes import class_histogram
        from pipeline.tasks.generate.voxel_metrics import (nearest_iou, pairwise_iou, predict, train_voxel_classifier,
                                                           voxel_metrics)

        prepared = load_prepared(recipe.dataset)
        generated = load_generated(paths.generated_path(run_key))
        samples = generated.samples
        classifier = train_voxel_classifier(prepared.x_train, prepared.y_train, prepared.num_classes, params.classifier)
        test_labels, test_features = predict(classifier, prepared.x_test)
        accuracy = float((test_labels == prepared.y_test).float().mean())
        pairs = recipe.eval.diversity_pairs
        metrics, labels = voxel_metrics(samples, prepared, classifier, gaussian(test_features),
                                        recipe.eval.class_share, pairs, recipe.seed)
        metrics = {"n_samples": len(samples), **metrics,
                   "nearest_real_iou": float(nearest_iou(samples, prepared.x_train).mean()),
                   "nearest_real_iou_test": float(nearest_iou(prepared.x_test, prepared.x_train).mean()),
                   "pairwise_iou_real": pairwise_iou(prepared.x_test, pairs, recipe.seed),
                   "occupancy_real": float((prepared.x_test > 0).float().mean()),
                   "classifier_accuracy": accuracy}
        k = prepared.num_classes
        histogram = {"class_names": prepared.info["class_names"], "generated": class_histogram(labels, k).tolist(),
                     "real": class_histogram(prepared.y_test, k).tolist()}
        protocol = {"features": "the task's 3D classifier (trained in this stage, seeded)", "n_generated": len(samples),
                    "n_real": len(prepared.x_test), "reference": "test", "classifier_accuracy": accuracy}
        line = (f"{metrics['classes_covered']}/{k} shape classes, FID (3D classifier) {metrics['fid_classifier']:.2f}, "
                f"nearest-real IoU {metrics['nearest_real_iou']:.3f} (held-out shapes "
                f"{metrics['nearest_real_iou_test']:.3f}), pairwise IoU {metrics['pairwise_iou']:.3f} (real "
                f"{metrics['pairwise_iou_real']:.3f}); the 3D classifier's held-out accuracy {accuracy:.3f}")
        return Evaluation(metrics, histogram, protocol, line)
