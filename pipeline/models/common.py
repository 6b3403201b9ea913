"""Pieces every architecture shares: the spec, packing, label conditioning, init, spectral norm."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """All an architecture needs to know; saved inside every generator checkpoint."""

    data_shape: tuple[int, ...]     # (C, H, W) for images, (2,) for points
    kind: str                       # "image" | "points"
    z_dim: int = 64
    width: int = 64
    num_classes: int = 0            # > 0: conditional G and D
    d_norm: str = "batch"           # batch | layer | none (the critic's normalisation)
    spectral_norm: bool = False
    pac: int = 1
    d_dropout: bool = True          # False: no dropout in D (a Wasserstein critic must be a fixed function)
    z_dist: str = "normal"          # the prior G was trained on: normal | uniform (see UniformPrior)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_shape"] = list(self.data_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        return cls(**{**d, "data_shape": tuple(d["data_shape"])})

    @property
    def data_dim(self) -> int:
        return math.prod(self.data_shape)


Builder = Callable[[ModelSpec], tuple[nn.Module, nn.Module]]
ARCHITECTURES: Registry[Builder] = Registry("architecture")


def build_models(arch: str, spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    generator, discriminator = ARCHITECTURES.get(arch, "arch")(spec)
    if spec.spectral_norm:
        apply_spectral_norm(discriminator)
    if spec.z_dist == "uniform":
        generator = UniformPrior(generator)
    return generator, discriminator


class UniformPrior(nn.Module):
    """A generator trained on z ~ U(-1, 1) (DCGAN-tensorflow, PacGAN's Stacked MNIST code). It takes
    standard normal noise like every other generator and maps it to z = 2 Phi(noise) - 1, exactly
    uniform on (-1, 1) (the probability integral transform), so sampling, the latent tools and the
    MLflow model draw z ~ N(0, I) whatever the prior."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.net = generator

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(torch.erf(z * 0.5 ** 0.5), y)  # 2 Phi(z) - 1 = erf(z / sqrt 2)


def one_hot(y: Tensor | None, num_classes: int) -> Tensor | None:
    return None if y is None or num_classes == 0 else F.one_hot(y, num_classes).float()


def check_labels(y: Tensor | None, num_classes: int, who: str) -> None:
    if num_classes and y is None:
        raise ValueError(f"conditional {who} needs class labels y")


def pack(x: Tensor, pac: int) -> Tensor:
    """PacGAN: (N, C, ...) -> (N/pac, pac*C, ...), so D judges `pac` samples jointly."""
    if pac == 1:
        return x
    return x.reshape(x.shape[0] // pac, pac * x.shape[1], *x.shape[2:])


class Projection(nn.Module):
    """Projection-discriminator conditioning: <embed(y), h>, summed over the members of a pack."""

    def __init__(self, num_classes: int, features: int, pac: int) -> None:
        super().__init__()
        self.pac = pac
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, h: Tensor, y: Tensor) -> Tensor:
        e = self.embed(y).reshape(h.shape[0], self.pac, -1).sum(1)  # (N/pac, features)
        return (e * h).sum(1)


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's init: N(0, 0.02) weights, BN gains N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def apply_spectral_norm(module: nn.Module) -> None:
    """Wrap every conv and linear layer of `module`, and the class embedding of a projection
    discriminator, in spectral normalisation (Miyato et al. 2018; Miyato & Koyama 2018 for the
    embedding): otherwise <embed(y), h> is an unconstrained path around the normalised layers."""
    for m in [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]:
        nn.utils.parametrizations.spectral_norm(m)  # registers the parametrization in place


def d_norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # layer norm over (C, H, W): per-sample, safe under a gradient penalty
        return nn.GroupNorm(1, channels)
    return nn.Identity()
