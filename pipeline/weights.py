"""Weight initialisations shared by the lab's networks (a floor of its own, so the image-to-image networks and the
generate task's architectures use one function without importing each other's registries)."""

from __future__ import annotations

import torch.nn as nn


def normal_init(module: nn.Module, gain: float = 0.02) -> None:
    """N(0, `gain`) weights and zero biases for every convolution and linear layer, N(1, `gain`) scales and zero shifts
    for batch norm: the DCGAN paper's initialisation, and pix2pix's and CycleGAN's (`init_weights(net, 'normal',
    0.02)` in junyanz/pytorch-CycleGAN-and-pix2pix). Layers without weights (instance norm without affine) are left."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
