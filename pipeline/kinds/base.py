"""The interface every kind of data implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.nn as nn
from torch import Tensor

if TYPE_CHECKING:
    from pipeline.data import Prepared


class DataKind:
    name: str = ""
    images: bool = True  # N x C x H x W in [-1, 1]: FID, grids, latent pictures, uint8 storage

    def protocol_samples(self, prepared: "Prepared") -> int:
        """How many samples the final evaluation draws (`sample.n: null`)."""
        raise NotImplementedError

    def check_samples(self, eval_samples: int, prepared: "Prepared") -> int:
        """How many samples a training-time check draws, given `train.eval_samples`."""
        return eval_samples

    def mode_metrics(self, samples: Tensor, prepared: "Prepared", classifier: nn.Module | None, min_share: float,
                     labels: Tensor | None = None) -> dict[str, Any]:
        """The cheap mode-collapse metrics (empty when nothing applies). `labels`: the classifier's
        labels of `samples`, when the caller has them."""
        raise NotImplementedError

    def histogram_labels(self, samples: Tensor, prepared: "Prepared", labels: Tensor | None) -> Tensor | None:
        """The mode of each sample that the report's histogram counts (None: no histogram)."""
        return labels

    def classifier_data(self, prepared: "Prepared") -> "Prepared | str":
        """The labelled data the classifier trains on, or why there is no classifier."""
        raise NotImplementedError
