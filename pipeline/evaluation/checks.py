"""The training-time checks, every `train.eval_every` steps on freshly drawn samples: the data kind's
cheap mode-collapse metrics and, for images, FID on the classifier's features against a fixed set
of real images (its statistics computed once), so collapse and convergence show up as curves."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from pipeline.config import Recipe
from pipeline.data import Prepared
from pipeline.kinds import kind_of
from pipeline.metrics.frechet import frechet_distance, gaussian
from pipeline.sampling import generate

FID_KEY = "fid_classifier"


def make_training_evaluator(recipe: Recipe, prepared: Prepared, classifier: nn.Module | None
                            ) -> Callable[[nn.Module], dict[str, Any]] | None:
    """The check run every `train.eval_every` steps (`train.eval_samples` samples, or what the kind
    needs); None when there is nothing to measure with."""
    kind = kind_of(prepared)
    if kind.images and classifier is None:
        return None
    num_classes = prepared.num_classes if recipe.conditional else 0
    n = kind.check_samples(recipe.train.eval_samples, prepared)
    real_stats = None
    if kind.images:  # FID of n samples against n fixed real images (biased at this size, but the same every time)
        pick = torch.randperm(len(prepared.x_train), generator=torch.Generator().manual_seed(0))[:n]
        real_stats = gaussian(_features(classifier, prepared.x_train[pick]))

    def evaluate(generator: nn.Module) -> dict[str, Any]:
        device = next(generator.parameters()).device
        samples, _ = generate(generator, n, recipe.train.z_dim, num_classes, seed=recipe.seed + 1, device=device)
        metrics = kind.mode_metrics(samples, prepared, classifier, recipe.eval.class_share)
        if real_stats is not None:
            metrics[FID_KEY] = frechet_distance(gaussian(_features(classifier, samples)), real_stats)
        return metrics

    return evaluate


@torch.inference_mode()
def _features(classifier: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = next(classifier.parameters()).device
    return torch.cat([classifier.features(x[i:i + batch_size].to(device)).double().cpu()
                      for i in range(0, len(x), batch_size)])


def still_improving(eval_rows: list[dict[str, Any]], steps: int, threshold: float = 0.10) -> dict[str, Any]:
    """Whether FID (classifier features, as measured during training) fell by more than `threshold`
    over the last quarter of training: then the final number is not the run's plateau.
    {"fid_drop_last_quarter": relative fall (0.12 = 12%), "still_improving": bool}, or {} without an
    FID curve."""
    rows = [r for r in eval_rows if r.get(FID_KEY) is not None]
    earlier = [r for r in rows if r["step"] <= 0.75 * steps]
    if not rows or not earlier or rows[-1]["step"] <= earlier[-1]["step"]:
        return {}
    before, last = earlier[-1][FID_KEY], rows[-1][FID_KEY]
    drop = (before - last) / before if before > 0 else 0.0
    return {"fid_drop_last_quarter": float(drop), "still_improving": bool(drop > threshold)}
