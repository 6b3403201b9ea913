"""Stacked MNIST (VEEGAN setting): three digits as the channels, 1000 modes, counted by a digit
classifier applied channel by channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.nn as nn
from torch import Tensor

from pipeline.kinds.image import ImageKind

if TYPE_CHECKING:
    from pipeline.data import Prepared

PROTOCOL_SAMPLES = 26_000       # the VEEGAN / PacGAN Stacked MNIST evaluation
CHECK_SAMPLES_PER_MODE = 10     # a perfect sampler shows ~630 of 1000 modes in 1,000 samples, 999.95 in 10,000

class StackedKind(ImageKind):
    name = "stacked"

    def protocol_samples(self, prepared: "Prepared") -> int:
        return PROTOCOL_SAMPLES

    def check_samples(self, eval_samples: int, prepared: "Prepared") -> int:
        """Enough samples to reach every mode during training."""
        return max(eval_samples, CHECK_SAMPLES_PER_MODE * prepared.num_classes)

    def mode_metrics(self, samples: Tensor, prepared: "Prepared", classifier: nn.Module | None, min_share: float,
                     labels: Tensor | None = None) -> dict[str, Any]:
        from pipeline.metrics.classifier import classify
        from pipeline.metrics.modes import tuple_mode_metrics

        if classifier is None:
            return {}
        labels = classify(classifier, samples) if labels is None else labels
        return tuple_mode_metrics(labels, prepared.num_classes)

    def classifier_data(self, prepared: "Prepared") -> "Prepared | str":
        """One digit classifier, trained on the single digits the stacks are made of."""
        return prepared.digits if prepared.digits is not None else "no single digits saved with the stacks"
