"""The 4-layer DCGAN of the Stacked MNIST experiments in VEEGAN and PacGAN (the DCGAN-tensorflow
network): 5x5 kernels, stride 2, four transposed convolutions up and four convolutions down,
widths 8w, 4w, 2w, w (w = train.width, 64 in the papers) and batch norm everywhere but D's first
layer. Shapes below are for 28x28x3, width 64; any square size works (sizes halve rounding up).
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

LAYERS = 4


def side_lengths(size: int) -> list[int]:
    """[28, 14, 7, 4, 2]: the feature-map side after each stride-2 layer ('same' padding)."""
    sides = [size]
    for _ in range(LAYERS):
        sides.append((sides[-1] + 1) // 2)
    return sides


class DCGAN4Generator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        channels, sides = spec.data_shape[0], side_lengths(spec.data_shape[-1])
        self.num_classes = spec.num_classes
        widths = [spec.width * 2 ** (LAYERS - 1 - i) for i in range(LAYERS)]  # [512, 256, 128, 64]
        self.c0, self.s0 = widths[0], sides[-1]
        self.project = nn.Sequential(  # z (+ one-hot y) -> 512 x 2 x 2
            nn.Linear(spec.z_dim + spec.num_classes, self.c0 * self.s0 ** 2), nn.BatchNorm1d(self.c0 * self.s0 ** 2),
            nn.ReLU(True))
        layers: list[nn.Module] = []
        outs = [*widths[1:], channels]
        for i, (c_in, c_out) in enumerate(zip(widths, outs)):  # 2 -> 4 -> 7 -> 14 -> 28
            side_in, side_out = sides[LAYERS - i], sides[LAYERS - i - 1]
            layers.append(nn.ConvTranspose2d(c_in, c_out, 5, 2, 2, output_padding=side_out - (2 * side_in - 1)))
            layers += [nn.BatchNorm2d(c_out), nn.ReLU(True)] if i < LAYERS - 1 else [nn.Tanh()]
        self.up = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        z = with_label(z, y, self.num_classes)
        return self.up(self.project(z).view(z.shape[0], self.c0, self.s0, self.s0))


def dcgan4_discriminator(spec: ModelSpec) -> Discriminator:
    """Four 5x5 stride-2 convolutions down to features; packing, conditioning and the head are the wrapper's."""
    sides = side_lengths(spec.data_shape[-1])
    widths = [spec.width * 2 ** i for i in range(LAYERS)]  # [64, 128, 256, 512]
    layers: list[nn.Module] = [nn.Conv2d(input_channels(spec), widths[0], 5, 2, 2), nn.LeakyReLU(0.2, True)]
    for c_in, c_out in zip(widths[:-1], widths[1:]):  # 64 x 14 x 14 -> ... -> 512 x 2 x 2
        layers += [nn.Conv2d(c_in, c_out, 5, 2, 2, bias=spec.d_norm != "batch"), d_norm_layer(spec.d_norm, c_out),
                   nn.LeakyReLU(0.2, True)]
    discriminator = Discriminator(nn.Sequential(*layers, nn.Flatten()), widths[-1] * sides[-1] ** 2, spec)
    dcgan_init(discriminator)
    return discriminator


@ARCHITECTURES.register("dcgan4")
def build_dcgan4(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    require_square_images(spec, "dcgan4")
    if spec.data_shape[-1] < 16:
        raise ConfigError(f"arch: dcgan4 halves the image four times and needs a side of at least 16; "
                          f"got {spec.data_shape[-1]}. Use arch: dcgan, or set data.image_size")
    return DCGAN4Generator(spec), dcgan4_discriminator(spec)
