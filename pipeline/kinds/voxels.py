"""3D voxel grids (task voxel, 3D-GAN): N x 1 x D x H x W occupancy in [-1, 1] (occupied > 0). Their measurements
(a 3D classifier's classes and features, voxel IoU) belong to the voxel task, which trains that classifier itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.nn as nn
from torch import Tensor

from pipeline.kinds.base import DataKind

if TYPE_CHECKING:
    from pipeline.data import Prepared

PROTOCOL_SAMPLES = 1000


class VoxelKind(DataKind):
    name = "voxels"
    images = False

    def protocol_samples(self, prepared: "Prepared") -> int:
        """As many as the held-out shapes (capped at 1,000): FID on the 3D classifier compares sets of equal size."""
        return min(len(prepared.x_test), PROTOCOL_SAMPLES)

    def mode_metrics(self, samples: Tensor, prepared: "Prepared", classifier: nn.Module | None, min_share: float,
                     labels: Tensor | None = None) -> dict[str, Any]:
        return {}  # the voxel task's own check and evaluation measure its classes

    def classifier_data(self, prepared: "Prepared") -> "Prepared | str":
        return "3D voxels: task voxel trains its own 3D classifier in the evaluate stage"
