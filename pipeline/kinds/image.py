"""Labelled (or unlabelled) images: classes covered and their KL, by the classifier's labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.nn as nn
from torch import Tensor

from pipeline.kinds.base import DataKind

if TYPE_CHECKING:
    from pipeline.data import Prepared

MAX_EVAL_SAMPLES = 10_000


class ImageKind(DataKind):
    name = "image"

    def protocol_samples(self, prepared: "Prepared") -> int:
        """As many as the real training images (capped at 10,000): FID compares sets of equal size."""
        return min(len(prepared.x_train), MAX_EVAL_SAMPLES)

    def mode_metrics(self, samples: Tensor, prepared: "Prepared", classifier: nn.Module | None, min_share: float,
                     labels: Tensor | None = None) -> dict[str, Any]:
        from pipeline.metrics.classifier import classify
        from pipeline.metrics.modes import class_coverage

        if classifier is None or prepared.y_train is None:
            return {}
        labels = classify(classifier, samples) if labels is None else labels
        return class_coverage(labels, prepared.y_train, prepared.num_classes, min_share)

    def classifier_data(self, prepared: "Prepared") -> "Prepared | str":
        if prepared.y_train is None:
            return "no labels: classifier-feature FID and class coverage are unavailable"
        return prepared
