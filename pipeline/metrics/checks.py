"""The training-time checks: the data kind's cheap mode-collapse metrics on freshly drawn samples,
every `train.eval_every` steps, so collapse shows up as a curve."""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from pipeline.config import Recipe
from pipeline.data import Prepared
from pipeline.kinds import kind_of
from pipeline.sampling import generate


def make_training_evaluator(recipe: Recipe, prepared: Prepared, classifier: nn.Module | None
                            ) -> Callable[[nn.Module], dict[str, Any]] | None:
    """The check run every `train.eval_every` steps: the kind's mode metrics on freshly drawn samples
    (`train.eval_samples`, or what the kind needs); None when there is nothing to measure with."""
    kind = kind_of(prepared)
    if kind.images and classifier is None:
        return None
    num_classes = prepared.num_classes if recipe.conditional else 0
    n = kind.check_samples(recipe.train.eval_samples, prepared)

    def evaluate(generator: nn.Module) -> dict[str, Any]:
        device = next(generator.parameters()).device
        samples, _ = generate(generator, n, recipe.train.z_dim, num_classes, seed=recipe.seed + 1, device=device)
        return kind.mode_metrics(samples, prepared, classifier, recipe.eval.class_share)

    return evaluate
