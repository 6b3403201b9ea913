"""Fully connected G and D of the original GAN (Goodfellow et al. 2014) and the MNIST course notebooks:
LeakyReLU, dropout in D, tanh output. Shapes below are for 28x28x1, width 64."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.models.common import ARCHITECTURES, ModelSpec, check_labels, one_hot, pack


class MLPGenerator(nn.Module):
    def __init__(self, spec: ModelSpec, hidden: list[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.data_shape, self.num_classes = spec.data_shape, spec.num_classes
        dims = [spec.z_dim + spec.num_classes, *hidden]  # 64 -> 256 -> 512 -> 1024
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Linear(dims[-1], spec.data_dim))  # -> 784
        if spec.kind == "image":
            layers.append(nn.Tanh())  # images live in [-1, 1]; 2D points are unbounded
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "generator")
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes)], dim=1)
        return self.net(z).view(z.shape[0], *self.data_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, spec: ModelSpec, hidden: list[int], dropout: float, slope: float = 0.2) -> None:
        super().__init__()
        self.pac, self.num_classes = spec.pac, spec.num_classes
        dims = [spec.pac * (spec.data_dim + spec.num_classes), *hidden]  # 784 -> 1024 -> 512 -> 256
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(slope, True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "discriminator")
        h = x.flatten(1)
        if self.num_classes:
            h = torch.cat([h, one_hot(y, self.num_classes)], dim=1)  # label concatenated to the input
        return self.net(pack(h, self.pac)).squeeze(1)


@ARCHITECTURES.register("mlp")
def build_mlp(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    hidden = [4 * spec.width, 8 * spec.width, 16 * spec.width]
    return MLPGenerator(spec, hidden), MLPDiscriminator(spec, hidden[::-1], dropout=0.3 if spec.d_dropout else 0.0)
