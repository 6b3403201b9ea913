"""The 2D networks of PacGAN's ring and grid experiments (Lin et al. 2018, its reference code):
G is 4 hidden layers of 400 with batch norm and ReLU (no biases before batch norm), D is 3 maxout
layers of 200 units with 5 pieces each and a linear output; weights N(0, 0.02), biases 0.
Batch norm as Blocks has it: epsilon 1e-4, running statistics moved 5% a step. Shapes below are
for 2D points, pac = 4.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from pipeline.models.common import ARCHITECTURES, Discriminator, ModelSpec, input_size, require_points, with_label

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
        z = with_label(z, y, self.num_classes)
        return self.net(z)


def pacgan2d_discriminator(spec: ModelSpec) -> Discriminator:
    """Three maxout layers down to features (2 x pac -> 200 -> 200 -> 200); packing, the label and the
    head are the wrapper's."""
    body = nn.Sequential(Maxout(input_size(spec), D_HIDDEN, MAXOUT_PIECES), Maxout(D_HIDDEN, D_HIDDEN, MAXOUT_PIECES),
                         Maxout(D_HIDDEN, D_HIDDEN, MAXOUT_PIECES))
    discriminator = Discriminator(body, D_HIDDEN, spec, conditioning="input")
    _init(discriminator)
    return discriminator


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@ARCHITECTURES.register("toy_pacgan")
def build_toy_pacgan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    require_points(spec, "toy_pacgan")
    return PacGAN2DGenerator(spec), pacgan2d_discriminator(spec)
