"""2D Gaussian mixtures (VEEGAN / PacGAN): modes and quality from the mixture's own geometry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.nn as nn
from torch import Tensor

from pipeline.kinds.base import DataKind

if TYPE_CHECKING:
    from pipeline.data import Prepared

PROTOCOL_SAMPLES = 2500  # VEEGAN / PacGAN


class PointsKind(DataKind):
    name = "points"
    images = False

    def protocol_samples(self, prepared: "Prepared") -> int:
        return PROTOCOL_SAMPLES

    def mode_metrics(self, samples: Tensor, prepared: "Prepared", classifier: nn.Module | None, min_share: float,
                     labels: Tensor | None = None) -> dict[str, Any]:
        from pipeline.metrics.modes import mixture_metrics

        return mixture_metrics(samples, prepared.modes, prepared.info["mode_std"])

    def histogram_labels(self, samples: Tensor, prepared: "Prepared", labels: Tensor | None) -> Tensor | None:
        """As in the protocol, only high-quality points count, each for its nearest mode."""
        from pipeline.metrics.modes import mixture_assignments

        nearest, hq = mixture_assignments(samples, prepared.modes, prepared.info["mode_std"])
        return nearest[hq]

    def classifier_data(self, prepared: "Prepared") -> "Prepared | str":
        return "2D points: metrics use the mixture geometry"
