"""Small MLPs for the 2D ring/grid mixtures (the VEEGAN / PacGAN setting): 3 hidden layers."""

from __future__ import annotations

import torch.nn as nn

from pipeline.models.common import ARCHITECTURES, ModelSpec, require_points
from pipeline.models.mlp import MLPGenerator, mlp_discriminator


@ARCHITECTURES.register("toy")
def build_toy(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    require_points(spec, "toy")
    hidden = [2 * spec.width] * 3  # 128 x 3 with width 64
    return MLPGenerator(spec, hidden), mlp_discriminator(spec, hidden, dropout=0.0)
