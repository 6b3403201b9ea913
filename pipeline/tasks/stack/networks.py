"""StackGAN's networks (Zhang et al. 2017, hanzhanggit/StackGAN-Pytorch's model.py) at digit scale: a description's
embedding e through conditioning augmentation (CA: c ~ N(mu(e), sigma(e)^2), with its KL term) to

- Stage I: G maps [z, c] to a 14x14 digit (fc to 7x7, an upsampling block); D judges a 14x14 image with the
  description (its features at 7x7 joined with the CA mean mu of the description, spatially replicated);
- Stage II: G encodes the Stage-I image down to 7x7, joins its own CA code, refines it through two residual blocks and
  upsamples to 28x28; D judges a 28x28 image with the description.

The CA noise is part of G's latent (z, then one noise vector per CA), so sampling with a seed is deterministic and the
lab's latent tools draw it as they draw z. `stages: 1` is the baseline: one G from [z, c] straight to 28x28 with about
as many weights as Stage I and II together, judged by the Stage-II D.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.weights import normal_init


class ConditioningAugmentation(nn.Module):
    """fc(e) -> ReLU -> (mu, log sigma^2) -> c = mu + sigma * noise (model.py's CA_NET, its ReLU included: log sigma^2
    >= 0, so the noise is never below 1, and a unit the KL term pushes below zero passes no gradient back). The code
    needs room for that: at c_dim 16 the KL term silenced almost every unit (measured: 0.4% active after 1,000 Stage-I
    steps, class accuracy at chance); at the reference's 128 they learn the class (0.59 at 800 steps, one seed; 0.71
    without the ReLU)."""

    def __init__(self, e_dim: int, c_dim: int) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.fc = nn.Linear(e_dim, 2 * c_dim)

    def forward(self, e: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = F.relu(self.fc(e))
        mu, logvar = h[:, :self.c_dim], h[:, self.c_dim:]
        return mu + torch.exp(0.5 * logvar) * noise, mu, logvar


def kl_loss(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per dimension of c, averaged over c's dimensions and the batch, as the
    reference's KL_loss (miscc/utils.py) takes the mean over every element: a sum over c's dimensions would weigh the
    KL c_dim times more than `stack.kl_weight` says, and (measured) drown the description at this scale."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(True))


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class StageIGenerator(nn.Module):
    """[z, c] -> fc 4w x 7 x 7 -> upsample 2w x 14 x 14 -> 1 x 14 x 14 (tanh). `one_stage`: then two residual blocks
    at 14x14 and one more upsampling to w x 28 x 28 (the baseline's G)."""

    def __init__(self, z_dim: int, c_dim: int, width: int, one_stage: bool = False) -> None:
        super().__init__()
        self.w = width
        self.fc = nn.Sequential(nn.Linear(z_dim + c_dim, 4 * width * 49, bias=False), nn.BatchNorm1d(4 * width * 49),
                                nn.ReLU(True))
        blocks: list[nn.Module] = [up_block(4 * width, 2 * width)]
        if one_stage:
            blocks += [ResBlock(2 * width), ResBlock(2 * width), up_block(2 * width, width)]
        self.up = nn.Sequential(*blocks)
        self.out = nn.Sequential(nn.Conv2d(width if one_stage else 2 * width, 1, 3, 1, 1), nn.Tanh())

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        h = self.fc(torch.cat([z, c], 1)).view(len(z), 4 * self.w, 7, 7)
        return self.out(self.up(h))


class StageIIGenerator(nn.Module):
    """The Stage-I image (14x14) -> 2w x 7 x 7, joined with c -> two residual blocks -> 28x28 (tanh)."""

    def __init__(self, c_dim: int, width: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1), nn.ReLU(True),
                                    nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width),
                                    nn.ReLU(True))
        self.joint = nn.Sequential(nn.Conv2d(2 * width + c_dim, 2 * width, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(2 * width), nn.ReLU(True))
        self.residual = nn.Sequential(ResBlock(2 * width), ResBlock(2 * width))
        self.up = nn.Sequential(up_block(2 * width, width), up_block(width, max(width // 2, 4)))
        self.out = nn.Sequential(nn.Conv2d(max(width // 2, 4), 1, 3, 1, 1), nn.Tanh())

    def forward(self, low: Tensor, c: Tensor) -> Tensor:
        h = self.encode(low)
        h = self.joint(torch.cat([h, c[:, :, None, None].expand(-1, -1, *h.shape[2:])], 1))
        return self.out(self.up(self.residual(h)))


class StackGenerator(nn.Module):
    """The text-to-digit generator: forward(latent, e) -> 28x28; `stages(latent, e)` -> (14x14 or None, 28x28, the CA
    means and log-variances). latent = [z, Stage I's CA noise, Stage II's CA noise] (`latent_dim`)."""

    def __init__(self, z_dim: int, e_dim: int, c_dim: int, width: int, stages: int) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.n_stages = z_dim, c_dim, stages
        self.ca1 = ConditioningAugmentation(e_dim, c_dim)
        if stages == 2:
            self.stage1 = StageIGenerator(z_dim, c_dim, width)
            self.ca2 = ConditioningAugmentation(e_dim, c_dim)
            self.stage2 = StageIIGenerator(c_dim, width)
        else:  # one stage of about the same size: [z, c] straight to 28x28
            self.stage1 = StageIGenerator(z_dim, c_dim, width, one_stage=True)
        normal_init(self, 0.02)

    @property
    def latent_dim(self) -> int:
        return self.z_dim + self.c_dim * self.n_stages

    def stages(self, latent: Tensor, e: Tensor) -> tuple[Tensor | None, Tensor, list[tuple[Tensor, Tensor]]]:
        z, noise1 = latent[:, :self.z_dim], latent[:, self.z_dim:self.z_dim + self.c_dim]
        c1, mu1, logvar1 = self.ca1(e, noise1)
        if self.n_stages == 1:
            return None, self.stage1(z, c1), [(mu1, logvar1)]
        low = self.stage1(z, c1)
        c2, mu2, logvar2 = self.ca2(e, latent[:, self.z_dim + self.c_dim:])
        return low, self.stage2(low, c2), [(mu1, logvar1), (mu2, logvar2)]

    def forward(self, latent: Tensor, e: Tensor) -> Tensor:
        return self.stages(latent, e)[1]


class TextDiscriminator(nn.Module):
    """A matching-aware D (model.py's STAGE1_D / STAGE2_D with D_GET_LOGITS): strided convolutions to 2w x 7 x 7, the
    condition replicated over 7x7, a 1x1 convolution over both, a linear logit. The condition is what the reference
    gives it: the mean mu of G's conditioning augmentation for the description (c_dim wide, detached), not the raw
    embedding."""

    def __init__(self, side: int, c_dim: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # side / 2
        if side == 28:
            layers += [nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width),
                       nn.LeakyReLU(0.2, True)]
        else:
            layers += [nn.Conv2d(width, 2 * width, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * width),
                       nn.LeakyReLU(0.2, True)]
        self.image = nn.Sequential(*layers)  # -> 2w x 7 x 7
        self.joint = nn.Sequential(nn.Conv2d(2 * width + c_dim, 2 * width, 1, bias=False), nn.BatchNorm2d(2 * width),
                                   nn.LeakyReLU(0.2, True), nn.Flatten(), nn.Linear(2 * width * 49, 1))
        normal_init(self, 0.02)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        h = self.image(x)
        c = condition[:, :, None, None].expand(-1, -1, *h.shape[2:])
        return self.joint(torch.cat([h, c], 1)).squeeze(1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
