"""What the evaluate stage computes from generated samples: the `eval.metrics` that apply, and the
mode histogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn
from torch import Tensor

from pipeline import paths
from pipeline.config import Recipe
from pipeline.data import Prepared
from pipeline.kinds import kind_of
from pipeline.metrics.modes import class_histogram
from pipeline.metrics.registry import METRICS, EvalContext


def evaluate_samples(samples: Tensor, recipe: Recipe, prepared: Prepared, classifier_path: Path | None,
                     classifier: nn.Module | None, sample_labels: Tensor | None = None,
                     cache_root: Path = paths.FIDELITY_CACHE) -> tuple[dict[str, Any], dict[str, Any]]:
    """Final metrics (flat, for metrics.json: the `eval.metrics` that apply, in that order) and the
    mode histogram for the report. `sample_labels`: the labels a conditional generator was given."""
    ctx = EvalContext(samples, sample_labels, recipe, prepared, kind_of(prepared), classifier, classifier_path,
                      cache_root)
    metrics: dict[str, Any] = {"n_samples": len(samples)}
    for name in recipe.eval.metrics:
        metric = METRICS.get(name, "eval.metrics")
        if metric.applies(ctx):
            metrics.update(metric.compute(ctx))
    return metrics, mode_histogram(ctx)


def mode_histogram(ctx: EvalContext) -> dict[str, Any]:
    """Generated and real counts per class (or mode): the picture of mode collapse."""
    labels = ctx.kind.histogram_labels(ctx.samples, ctx.prepared, ctx.labels)
    if labels is None:
        return {}
    k = ctx.prepared.num_classes
    return {"class_names": ctx.prepared.info["class_names"], "generated": class_histogram(labels, k).tolist(),
            "real": class_histogram(ctx.prepared.y_train, k).tolist()}
