"""The 2D networks of PacGAN's ring and grid experiments (Lin et al. 2018, its reference code):
G is 4 hidden layers of 400 with batch norm and ReLU (no biases before batch norm), D is 3 maxout
layers of 200 units with 5 pieces each and a linear output; weights N(0, 0.02), biases 0.
Batch norm as Blocks has it: epsilon 1e-4, running statistics moved 5% a step. Shapes below are
for 2D points, pac = 4.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.errors import ConfigError
from pipeline.models.common import ARCHITECTURES, ModelSpec, check_labels, one_hot, pack

G_HIDDEN, D_HIDDEN, MAXOUT_PIECES = 400, 200, 5


class Maxout(nn.Module):
    """Linear to `features` x `pieces` outputs, then the max over each unit's pieces (Goodfellow et al. 2013)."""

    def __init__(self, d_in: int, features: int, pieces: int) -> None:
        super().__init__()
        self.features, self.pieces = features, pieces
        self.linear = nn.Linear(d_in, features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        # max(), not amax(): its backward routes the gradient through the argmax, amax's compares every piece
        return self.linear(x).view(x.shape[0], self.features, self.pieces).max(dim=2).values


class PacGAN2DGenerator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.num_classes = spec.num_classes
        dims = [spec.z_dim + spec.num_classes] + [G_HIDDEN] * 4  # 2 -> 400 -> 400 -> 400 -> 400
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out, eps=1e-4, momentum=0.05),
                       nn.ReLU(True)]
        self.net = nn.Sequential(*layers, nn.Linear(G_HIDDEN, spec.data_dim))  # -> 2
        _init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "generator")
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes)], dim=1)
        return self.net(z)


class PacGAN2DDiscriminator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.pac, self.num_classes = spec.pac, spec.num_classes
        d_in = spec.pac * (spec.data_dim + spec.num_classes)  # 2 x pac -> 200 -> 200 -> 200 -> 1
        self.net = nn.Sequential(Maxout(d_in, D_HIDDEN, MAXOUT_PIECES), Maxout(D_HIDDEN, D_HIDDEN, MAXOUT_PIECES),
                                 Maxout(D_HIDDEN, D_HIDDEN, MAXOUT_PIECES), nn.Linear(D_HIDDEN, 1))
        _init(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "discriminator")
        h = x.flatten(1)
        if self.num_classes:
            h = torch.cat([h, one_hot(y, self.num_classes)], dim=1)
        return self.net(pack(h, self.pac)).squeeze(1)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@ARCHITECTURES.register("toy_pacgan")
def build_toy_pacgan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    if spec.kind != "points":
        raise ConfigError(f"arch: toy_pacgan is for 2D point datasets (ring8, grid25); "
                          f"the dataset has shape {list(spec.data_shape)}: use dcgan or mlp")
    return PacGAN2DGenerator(spec), PacGAN2DDiscriminator(spec)
