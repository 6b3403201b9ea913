"""Fully connected G and D of the original GAN (Goodfellow et al. 2014) and the MNIST course notebooks:
LeakyReLU, dropout in D, tanh output. Shapes below are for 28x28x1, width 64."""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from pipeline.models.common import ARCHITECTURES, Discriminator, ModelSpec, input_size, with_label


class MLPGenerator(nn.Module):
    def __init__(self, spec: ModelSpec, hidden: list[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.data_shape, self.num_classes = spec.data_shape, spec.num_classes
        dims = [spec.z_dim + spec.num_classes, *hidden]  # 64 -> 256 -> 512 -> 1024
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Linear(dims[-1], spec.data_dim))  # -> 784
        if spec.images:
            layers.append(nn.Tanh())  # images live in [-1, 1]; 2D points are unbounded
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        z = with_label(z, y, self.num_classes)
        return self.net(z).view(z.shape[0], *self.data_shape)


def mlp_discriminator(spec: ModelSpec, hidden: list[int], dropout: float, slope: float = 0.2) -> Discriminator:
    """Fully connected layers down to features (LeakyReLU, dropout); the label is concatenated to the
    input and packing and the head are the wrapper's."""
    dims = [input_size(spec), *hidden]  # 784 -> 1024 -> 512 -> 256
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(slope, True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return Discriminator(nn.Sequential(*layers), dims[-1], spec, conditioning="input")


@ARCHITECTURES.register("mlp")
def build_mlp(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    hidden = [4 * spec.width, 8 * spec.width, 16 * spec.width]
    return MLPGenerator(spec, hidden), mlp_discriminator(spec, hidden[::-1], dropout=0.3 if spec.d_dropout else 0.0)
