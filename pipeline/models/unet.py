"""The image-to-image tasks' networks (translate and cycle): pix2pix's, sized for the lab's small images (sides
divisible by 4, 28x28 for the digits), initialised as the reference's `init_weights(net, 'normal', 0.02)`, with batch
norm (pix2pix) or instance norm (CycleGAN).

- `UNet`: an encoder-decoder whose decoder sees the encoder's features at the same scale (skip
  connections), so the input's layout passes through. pix2pix gives G no z (it found G ignores one);
  its only noise is dropout in the decoder, kept on at test time, as in pix2pix.
- `PatchGAN`: a conditional discriminator on (input, output) pairs, concatenated on channels (or on
  one image, for CycleGAN), that outputs one real/fake logit per patch (7x7 patches of a 28x28 image, each seeing 16x16 pixels):
  it judges local texture and sharpness; the reconstruction loss takes care of the layout.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.weights import normal_init

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """batch (pix2pix) | instance (CycleGAN: per image, no affine, no running statistics, as the reference's
    InstanceNorm2d) | none (a critic under a gradient penalty, or spectral norm)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; valid norms: {', '.join(NORMS)}")


class UNet(nn.Module):
    def __init__(self, channels: int = 1, width: int = 64, dropout: float = 0.5, norm: str = "batch") -> None:
        super().__init__()
        w = width
        self.dropout = dropout
        self.down1 = nn.Sequential(nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.2))                       # H/2
        self.down2 = nn.Sequential(nn.Conv2d(w, 2 * w, 4, 2, 1), norm_layer(norm, 2 * w), nn.LeakyReLU(0.2))  # H/4
        self.middle = nn.Sequential(nn.Conv2d(2 * w, 2 * w, 3, 1, 1), norm_layer(norm, 2 * w), nn.ReLU())     # H/4
        self.up2 = nn.Sequential(nn.ConvTranspose2d(4 * w, w, 4, 2, 1), norm_layer(norm, w), nn.ReLU())      # H/2
        self.up1 = nn.ConvTranspose2d(2 * w, channels, 4, 2, 1)                                               # H
        normal_init(self)

    def forward(self, source: Tensor) -> Tensor:
        d1 = self.down1(source)
        d2 = self.down2(d1)
        m = F.dropout(self.middle(d2), self.dropout, training=True)  # on at test time too: G's noise
        u2 = F.dropout(self.up2(torch.cat([m, d2], 1)), self.dropout, training=True)
        return torch.tanh(self.up1(torch.cat([u2, d1], 1)))


class PatchGAN(nn.Module):
    """`norm`: batch (pix2pix) | instance (CycleGAN) | none (with spectral norm, or a gradient penalty, which needs a
    per-sample critic). `inputs`: images judged together, concatenated on channels (2: pix2pix's
    (input, output) pairs; 1: CycleGAN's unconditional D)."""

    def __init__(self, channels: int = 1, width: int = 64, norm: str = "batch", spectral_norm: bool = False,
                 inputs: int = 2) -> None:
        super().__init__()
        w = width
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        layers = [nn.Conv2d(inputs * channels, w, 4, 2, 1), nn.LeakyReLU(0.2),      # H/2
                  nn.Conv2d(w, 2 * w, 4, 2, 1), norm_layer(norm, 2 * w), nn.LeakyReLU(0.2),  # H/4
                  nn.Conv2d(2 * w, 1, 3, 1, 1)]                                 # one logit per patch
        normal_init(nn.Sequential(*layers))  # before spectral norm wraps the weights
        self.net = nn.Sequential(*[sn(m) if isinstance(m, nn.Conv2d) else m for m in layers])

    def forward(self, *images: Tensor) -> Tensor:
        return self.net(torch.cat(images, 1))
