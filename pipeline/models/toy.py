"""Small MLPs for the 2D ring/grid mixtures (the VEEGAN / PacGAN setting): 3 hidden layers."""

from __future__ import annotations

import torch.nn as nn

from pipeline.errors import ConfigError
from pipeline.models.common import ARCHITECTURES, ModelSpec
from pipeline.models.mlp import MLPDiscriminator, MLPGenerator


@ARCHITECTURES.register("toy")
def build_toy(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    if spec.kind != "points":
        raise ConfigError(f"arch: toy is for 2D point datasets (ring8, grid25); "
                          f"the dataset has shape {list(spec.data_shape)}: use dcgan or mlp")
    hidden = [2 * spec.width] * 3  # 128 x 3 with width 64
    return MLPGenerator(spec, hidden), MLPDiscriminator(spec, hidden, dropout=0.0)
