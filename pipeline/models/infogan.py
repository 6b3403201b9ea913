"""The InfoGAN-style networks that "Are GANs Created Equal?" (Lucic et al. 2018, compare_gan) uses for
MNIST and Fashion-MNIST: G is FC 1024, FC 128 x 7 x 7, a 4x4 transposed convolution to 64 x 14 x 14
and one to the image, batch norm and leaky ReLU between; D is a 4x4 stride-2 convolution to 64, one
to 128, FC 1024, FC 1, leaky ReLU, with D's normalisation (batch norm, or layer norm for a
gradient-penalty critic) on the second convolution and the FC layer. The reference's sigmoid
output on [0, 1] images becomes tanh on the lab's [-1, 1] images (the same function, rescaled).
Shapes below are for 28x28x1 (any side divisible by 4 works).
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from pipeline.errors import ConfigError
from pipeline.models.common import (ARCHITECTURES, Discriminator, ModelSpec, d_norm_layer, dcgan_init,
                                    input_channels, require_square_images, with_label)

FC = 1024


class InfoGANGenerator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        channels, size = spec.data_shape[0], spec.data_shape[-1]
        self.num_classes, self.s0 = spec.num_classes, size // 4
        self.project = nn.Sequential(  # z (+ one-hot y) -> 1024 -> 128 x 7 x 7
            nn.Linear(spec.z_dim + spec.num_classes, FC), nn.BatchNorm1d(FC), nn.LeakyReLU(0.2, True),
            nn.Linear(FC, 128 * self.s0 ** 2), nn.BatchNorm1d(128 * self.s0 ** 2), nn.LeakyReLU(0.2, True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2, True),  # 64 x 14 x 14
            nn.ConvTranspose2d(64, channels, 4, 2, 1), nn.Tanh())                                # 1 x 28 x 28
        dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        z = with_label(z, y, self.num_classes)
        return self.up(self.project(z).view(z.shape[0], 128, self.s0, self.s0))


def infogan_discriminator(spec: ModelSpec) -> Discriminator:
    """Two convolutions and a fully connected layer down to 1024 features; packing, conditioning and
    the head are the wrapper's."""
    size, norm = spec.data_shape[-1], spec.d_norm
    body = nn.Sequential(
        nn.Conv2d(input_channels(spec), 64, 4, 2, 1), nn.LeakyReLU(0.2, True),                     # 64 x 14 x 14
        nn.Conv2d(64, 128, 4, 2, 1, bias=norm != "batch"), d_norm_layer(norm, 128), nn.LeakyReLU(0.2, True),
        nn.Flatten(),                                                                             # 128 x 7 x 7
        nn.Linear(128 * (size // 4) ** 2, FC, bias=norm != "batch"), _fc_norm(norm), nn.LeakyReLU(0.2, True))
    discriminator = Discriminator(body, FC, spec)
    dcgan_init(discriminator)
    return discriminator


def _fc_norm(kind: str) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(FC)
    if kind == "layer":
        return nn.LayerNorm(FC)
    return nn.Identity()


@ARCHITECTURES.register("infogan")
def build_infogan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    hint = "a side divisible by 4 (28 for MNIST)"
    if require_square_images(spec, "infogan", f"it needs {hint}") % 4:
        raise ConfigError(f"arch: infogan needs square images with {hint}; the dataset has shape "
                          f"{list(spec.data_shape)}")
    return InfoGANGenerator(spec), infogan_discriminator(spec)
