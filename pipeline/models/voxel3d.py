"""3D-GAN (Wu et al. 2016, "Learning a Probabilistic Latent Space of Object Shapes via 3D Generative-Adversarial
Modeling"): G maps z through 3D transposed convolutions (4x4x4 kernels, stride 2, batch norm and ReLU) to a voxel grid;
D mirrors it with 3D convolutions (batch norm, leaky ReLU 0.2). The paper's G is 5 layers from a 200-d z to 64^3
(4^3 x 512 -> 8^3 -> 16^3 -> 32^3 -> 64^3); here a grid of side 4 x 2^k gets k + 1 layers (16^3: 3), widths
`train.width` x 2^(k-1) .. `train.width`. The paper's sigmoid output on {0, 1} voxels becomes tanh on the lab's
{-1, 1} (the same function, rescaled); D's last 4^3 convolution is the lab's discriminator head on its features.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from pipeline.errors import ConfigError
from pipeline.models.common import ARCHITECTURES, Discriminator, ModelSpec, dcgan_init, input_channels, with_label


def voxel_plan(spec: ModelSpec) -> int:
    """k: the grid's side is 4 x 2^k (k >= 1); else a ConfigError naming the sides the network can make."""
    if spec.kind != "voxels" or len(spec.data_shape) != 4:
        raise ConfigError(f"arch: voxel3d makes 3D voxel grids (dataset: shapes3d); the dataset has shape "
                          f"{list(spec.data_shape)}")
    side = spec.data_shape[-1]
    k = (side // 4).bit_length() - 1
    if side < 8 or 4 * 2 ** k != side or len(set(spec.data_shape[1:])) != 1:
        raise ConfigError(f"arch: voxel3d makes cubic grids of side 4 x 2^k (8, 16, 32, 64), got "
                          f"{'x'.join(map(str, spec.data_shape[1:]))}; set data.image_size to one of those")
    return k


def norm3d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "layer":  # per sample: safe under a gradient penalty
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class VoxelGenerator(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        k = voxel_plan(spec)
        self.num_classes = spec.num_classes
        widths = [spec.width * 2 ** (k - 1 - i) for i in range(k)]  # 16^3, width 64: [128, 64]
        layers: list[nn.Module] = [  # z as a 1^3 grid -> widths[0] x 4^3
            nn.ConvTranspose3d(spec.z_dim + spec.num_classes, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm3d(widths[0]), nn.ReLU(True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose3d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose3d(widths[-1], spec.data_shape[0], 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        z = with_label(z, y, self.num_classes)
        return self.net(z[:, :, None, None, None])


@ARCHITECTURES.register("voxel3d")
def build_voxel3d(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    k = voxel_plan(spec)
    widths = [spec.width * 2 ** i for i in range(k)]  # 16^3, width 64: [64, 128]
    layers: list[nn.Module] = [nn.Conv3d(input_channels(spec), widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv3d(c_in, c_out, 4, 2, 1, bias=spec.d_norm != "batch"), norm3d(spec.d_norm, c_out),
                   nn.LeakyReLU(0.2, True)]
    discriminator = Discriminator(nn.Sequential(*layers, nn.Flatten()), widths[-1] * 4 ** 3, spec)
    dcgan_init(discriminator)
    return VoxelGenerator(spec), discriminator
