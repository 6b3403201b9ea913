"""What the evaluate stage and training-time checks compute, from generated samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from pipeline import paths
from pipeline.config import Recipe
from pipeline.data import Prepared
from pipeline.metrics.modes import (class_coverage, class_histogram, mixture_assignments, mixture_metrics,
                                   tuple_mode_metrics)
from pipeline.models.classifier import Classifier
from pipeline.sampling import from_uint8, generate, to_uint8
from pipeline.training import Evaluator


@torch.inference_mode()
def classify(classifier: Classifier, x: Tensor, batch_size: int = 1000) -> Tensor:
    """Argmax labels of images in [-1, 1], batched (on the classifier's device)."""
    device = next(classifier.parameters()).device
    return torch.cat([classifier(x[i:i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(x), batch_size)])


def mode_metrics(samples: Tensor, prepared: Prepared, classifier: Classifier | None,
                 min_share: float, labels: Tensor | None = None) -> dict[str, float | None]:
    """Cheap mode-collapse metrics for the dataset's kind (empty when nothing applies).
    `labels`: the classifier's labels for `samples`, when the caller already has them."""
    if prepared.kind == "points":
        return mixture_metrics(samples, prepared.modes, prepared.info["mode_std"])
    if classifier is not None and prepared.y_train is not None:
        labels = classify(classifier, samples) if labels is None else labels
        if prepared.info.get("stacked"):
            return tuple_mode_metrics(labels, prepared.num_classes)
        return class_coverage(labels, prepared.y_train, prepared.num_classes, min_share)
    return {}


def make_training_evaluator(recipe: Recipe, prepared: Prepared, classifier: Classifier | None) -> Evaluator | None:
    """The check run every `train.eval_every` steps: mode metrics on `train.eval_samples` samples."""
    if prepared.kind != "points" and classifier is None:
        return None
    num_classes = prepared.num_classes if recipe.conditional else 0
    n = training_eval_count(recipe.train.eval_samples, prepared)

    def evaluate(generator: nn.Module) -> dict[str, float]:
        device = next(generator.parameters()).device
        samples, _ = generate(generator, n, recipe.train.z_dim, num_classes, seed=recipe.seed + 1, device=device)
        return mode_metrics(samples, prepared, classifier, recipe.eval.class_share)

    return evaluate


def training_eval_count(eval_samples: int, prepared: Prepared) -> int:
    """Samples for a training-time check: `train.eval_samples`, but for Stacked MNIST enough to
    reach its 1000 modes (a perfect sampler shows only about 630 of them in 1,000 samples;
    10 per mode reach 999.95 on average)."""
    return max(eval_samples, 10 * prepared.num_classes) if prepared.info.get("stacked") else eval_samples


def evaluate_samples(samples: Tensor, recipe: Recipe, prepared: Prepared, classifier_path: Path | None,
                     classifier: Classifier | None, sample_labels: Tensor | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Final metrics (flat, for metrics.json) and the class histograms (for the report).
    `sample_labels`: the labels a conditional generator was given."""
    metrics: dict[str, Any] = {"n_samples": len(samples)}
    labels = classify(classifier, samples) if classifier is not None and prepared.kind == "image" else None
    metrics.update(mode_metrics(samples, prepared, classifier, recipe.eval.class_share, labels))
    histogram: dict[str, Any] = {}
    if prepared.kind == "image":
        from pipeline.metrics.fidelity import fidelity_metrics, intra_fid

        generated_u8, real_u8 = to_uint8(samples), to_uint8(prepared.x_train)
        weights = recipe.eval.inception_weights if recipe.eval.features == "inception" else classifier_path
        if weights is not None:
            metrics.update(fidelity_metrics(
                generated_u8, real_u8, real_name=f"{prepared.name}-train",
                features=recipe.eval.features, weights_path=weights,
                kid_subset_size=recipe.eval.kid_subset_size, cache_root=paths.FIDELITY_CACHE,
                batch_size=recipe.eval.batch_size, seed=recipe.seed))
        if classifier is not None and sample_labels is not None and prepared.y_train is not None:
            metrics.update(intra_fid(classifier, from_uint8(generated_u8), sample_labels, from_uint8(real_u8),
                                     prepared.y_train, prepared.num_classes, seed=recipe.seed))
        from pipeline.metrics.diversity import mean_pairwise_ssim

        pairs = recipe.eval.diversity_pairs
        metrics["diversity_ssim"] = mean_pairwise_ssim(samples, pairs, seed=recipe.seed)
        metrics["diversity_ssim_real"] = mean_pairwise_ssim(prepared.x_train, pairs, seed=recipe.seed)
    elif prepared.kind == "points":  # as in the protocol, only high-quality points count, for their nearest mode
        nearest, hq = mixture_assignments(samples, prepared.modes, prepared.info["mode_std"])
        labels = nearest[hq]
    if labels is not None:
        histogram = {"class_names": prepared.info["class_names"],
                     "generated": class_histogram(labels, prepared.num_classes).tolist(),
                     "real": class_histogram(prepared.y_train, prepared.num_classes).tolist()}
    return metrics, histogram


def default_sample_count(prepared: Prepared) -> int:
    """The protocol's sample count: 2,500 for 2D mixtures (VEEGAN/PacGAN), 26,000 for stacked MNIST, else as many as the
    real training images (capped at 10,000) so FID compares sets of equal size."""
    if prepared.kind == "points":
        return 2500
    if prepared.info.get("stacked"):
        return 26_000  # the VEEGAN stacked-MNIST protocol
    return min(len(prepared.x_train), 10_000)
