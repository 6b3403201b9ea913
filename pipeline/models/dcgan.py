"""DCGAN (Radford et al. 2016): transposed convolutions up, strided convolutions down.

Sizes follow the data: an image of side s0 * 2^k (s0 in 3..7) gets k up/down-sampling layers,
so 8x8, 28x28, 32x32 and 64x64 (and more) all work. Shapes below are for 28x28x1, width 64.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from pipeline.errors import ConfigError
from pipeline.models.common import (
    ARCHITECTURES,
    Discriminator,
    ModelSpec,
    d_norm_layer,
    dcgan_init,
    input_channels,
    require_square_images,
    with_label,
)


def upsampling_plan(size: int, arch: str = "dcgan") -> tuple[int, int]:
    """(s0, k) with size == s0 * 2**k, 3 <= s0 <= 7, k >= 1; else a ConfigError naming `arch`."""
    s0, k = size, 0
    while s0 > 7 and s0 % 2 == 0:
        s0, k = s0 // 2, k + 1
    if not 3 <= s0 <= 7 or k == 0:
        raise ConfigError(
            f"arch: {arch} needs square images of side s*2^k with s in 3..7 (8, 28, 32, 64, ...); "
            f"got {size}. Set data.image_size to such a size, or use arch: mlp"
        )
    return s0, k


class DCGANGenerator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        channels, size = spec.data_shape[0], spec.data_shape[-1]
        self.s0, k = upsampling_plan(size)
        self.num_classes = spec.num_classes
        widths = [spec.width * 2 ** (k - 1 - i) for i in range(k)]  # e.g. [128, 64]
        self.c0 = widths[0]
        self.project = nn.Sequential(  # z (+ one-hot y) -> 128 x 7 x 7
            nn.Linear(spec.z_dim + spec.num_classes, self.c0 * self.s0 * self.s0, bias=False),
            nn.BatchNorm1d(self.c0 * self.s0 * self.s0),
            nn.ReLU(True),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):  # 128 x 7 x 7 -> 64 x 14 x 14
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]  # -> 1 x 28 x 28
        self.up = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        z = with_label(z, y, self.num_classes)
        h = self.project(z).view(z.shape[0], self.c0, self.s0, self.s0)
        return self.up(h)


def dcgan_discriminator(spec: ModelSpec) -> Discriminator:
    """Strided convolutions down to features; packing, conditioning and the head are the wrapper's."""
    s0, k = upsampling_plan(spec.data_shape[-1])
    widths = [spec.width * 2 ** i for i in range(k)]  # e.g. [64, 128]
    layers: list[nn.Module] = [nn.Conv2d(input_channels(spec), widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for c_in, c_out in zip(widths[:-1], widths[1:]):  # 64 x 14 x 14 -> 128 x 7 x 7
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=spec.d_norm != "batch"),
                   d_norm_layer(spec.d_norm, c_out), nn.LeakyReLU(0.2, True)]
    discriminator = Discriminator(nn.Sequential(*layers, nn.Flatten()), widths[-1] * s0 * s0, spec)
    dcgan_init(discriminator)
    return discriminator


@ARCHITECTURES.register("dcgan")
def build_dcgan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    require_square_images(spec, "dcgan")
    return DCGANGenerator(spec), dcgan_discriminator(spec)
