"""Pieces every architecture shares: the spec, the D wrapper (packing, label conditioning, head), init,
spectral norm."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import ConfigError
from pipeline.registry import Registry
from pipeline.weights import normal_init


@dataclass(frozen=True)
class ModelSpec:
    """All an architecture needs to know; saved inside every generator checkpoint."""

    data_shape: tuple[int, ...]     # (C, H, W) for images, (2,) for points
    kind: str                       # the data kind's name (pipeline.kinds): image | stacked | points
    z_dim: int = 64
    width: int = 64
    num_classes: int = 0            # > 0: conditional G and D
    d_norm: str = "batch"           # batch | layer | none (the critic's normalisation)
    spectral_norm: bool = False
    pac: int = 1
    d_dropout: bool = True          # False: no dropout in D (a Wasserstein critic must be a fixed function)
    z_dist: str = "normal"          # the prior G was trained on: normal | uniform (see UniformPrior)
    minibatch_discrimination: bool = False  # D's head sees MinibatchDiscrimination's features too
    minibatch_std: bool = False     # D's head sees MinibatchStd's feature too

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

    @property
    def images(self) -> bool:
        """Whether G makes images (N x C x H x W), as the data's kind says."""
        from pipeline.kinds import KINDS  # the kinds sit above the models; only this question goes up

        return KINDS.get(self.kind, "data kind").images


def require_square_images(spec: ModelSpec, arch: str, alternative: str = "use arch: toy or mlp for 2D points") -> int:
    """The side of `spec`'s square images, or a ConfigError naming `arch` and what to use instead."""
    if not spec.images or len(spec.data_shape) != 3 or spec.data_shape[1] != spec.data_shape[2]:
        raise ConfigError(f"arch: {arch} needs square images, the dataset has shape {list(spec.data_shape)}; "
                          f"{alternative}")
    return spec.data_shape[-1]


def require_points(spec: ModelSpec, arch: str) -> None:
    if spec.images:
        raise ConfigError(f"arch: {arch} is for 2D point datasets (ring8, grid25); "
                          f"the dataset has shape {list(spec.data_shape)}: use dcgan or mlp")


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


def with_label(z: Tensor, y: Tensor | None, num_classes: int) -> Tensor:
    """A generator's input: the noise, and for a conditional G the one-hot class concatenated to it."""
    check_labels(y, num_classes, "generator")
    return torch.cat([z, one_hot(y, num_classes)], dim=1) if num_classes else z


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


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, "Improved Techniques for Training GANs", sec. 3.2, as improved-gan's nn.MinibatchLayer:
    D's features f(x_i) (A) times a tensor T (A x B x C) give M_i (B x C); o(x_i)_b = sum over the other samples j of
    exp(-||M_i,b - M_j,b||_1) + bias_b. The B values say how close a sample is to the rest of its batch, so a
    collapsed batch of fakes is easy to tell from a varied batch of real images. B = 100 kernels of C = 5 dimensions;
    T is weight-normalised (a direction theta ~ N(0, 0.05) over A, times a learned scale, exp(log_scale)) and
    `data_init` sets the scale and the bias on a real batch, as the reference (its CIFAR-10 and SVHN scripts)."""

    def __init__(self, features: int, kernels: int = 100, kernel_dim: int = 5) -> None:
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.theta = nn.Parameter(torch.randn(features, kernels, kernel_dim) * 0.05)
        self.log_scale = nn.Parameter(torch.zeros(kernels, kernel_dim))
        self.bias = nn.Parameter(torch.full((kernels,), -1.0))

    def distances(self, h: Tensor) -> Tensor:
        """(N, B, N): ||M_i,b - M_j,b||_1, a sample's distance to itself made infinite (it is not its own neighbour)."""
        weight = self.theta * (self.log_scale.exp() / self.theta.float().pow(2).sum(0).sqrt())  # (A, B, C)
        m = torch.einsum("na,abc->nbc", h, weight)                                          # (N, B, C)
        l1 = (m.unsqueeze(3) - m.permute(1, 2, 0).unsqueeze(0)).abs().sum(2)                  # (N, B, N)
        return l1 + torch.diag(torch.full((h.shape[0],), float("inf"), device=h.device)).unsqueeze(1)

    def forward(self, h: Tensor) -> Tensor:
        return torch.exp(-self.distances(h)).sum(2) + self.bias

    @torch.no_grad()
    def data_init(self, h: Tensor) -> None:
        """The reference's initialisation on a batch of real features: each kernel's scale makes the batch's mean
        distance to the nearest other sample 2, and the bias makes each output's batch mean 0."""
        l1 = self.distances(h)
        mean_min = 0.5 * l1.min(dim=2).values.mean(0)                                         # (B,)
        self.log_scale.sub_(mean_min.log().unsqueeze(1))
        self.bias.copy_(-torch.exp(-l1 / mean_min[None, :, None]).sum(2).mean(0))


class MinibatchStd(nn.Module):
    """Progressive GANs' minibatch standard deviation (Karras et al. 2018, sec. 3): the standard deviation
    of each feature over a group of `group_size` samples, averaged over the features, as one more
    feature for each member of the group. Groups are strided (sample i is in group i mod N/g) as in
    the reference; g is the largest divisor of the batch up to `group_size`. On D's feature vector here: the
    reference (tkarras/progressive_growing_of_gans, networks2.py) puts it on D's last 4x4 feature map, before a 3x3
    convolution and two dense layers; the lab's bodies end in a vector, so the head after it is the two dense layers
    (`Discriminator`) without the convolution."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, h: Tensor) -> Tensor:
        n = h.shape[0]
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        groups = h.float().reshape(g, n // g, -1)  # [a, b] = sample a * (n / g) + b: group b
        std = (groups.var(0, unbiased=False) + 1e-8).sqrt().mean(1)  # (n / g,)
        return std.repeat(g).unsqueeze(1).to(h.dtype)  # sample i gets its group's value, std[i mod n / g]


class Discriminator(nn.Module):
    """What every registered D gets around its architecture's `body`: PacGAN packing, label
    conditioning, the batch layers and the real/fake head, so an architecture only says how a pack
    becomes features.

    `body` maps one pack to features (N/pac, `features`): a convolutional body sees (N/pac, pac * C,
    H, W), a fully connected one (N/pac, pac * (C*H*W + classes)) (see `input_size`). Conditioning:
    - "projection" (convolutional bodies; Miyato & Koyama 2018): out = head(h) + <embed(y), h>, the
      embeddings of a pack's labels summed;
    - "input" (fully connected bodies, the original conditional GAN): each sample's one-hot label is
      concatenated to it before packing.
    With `minibatch_discrimination` / `minibatch_std` the head sees those layers' outputs beside h (with the minibatch
    std, through two dense layers, as progressive GANs' D ends). `hidden(x, y)` is h itself (what feature matching
    matches); `data_init` initialises the batch layers that learn from a real batch.
    """

    def __init__(self, body: nn.Module, features: int, spec: ModelSpec, conditioning: str = "projection") -> None:
        super().__init__()
        if conditioning not in ("projection", "input"):
            raise ValueError(f"conditioning must be 'projection' or 'input', got {conditioning!r}")
        self.pac, self.num_classes, self.flat_input = spec.pac, spec.num_classes, conditioning == "input"
        self.features = body
        mbd = MinibatchDiscrimination(features) if spec.minibatch_discrimination else None
        extra = (mbd.kernels if mbd is not None else 0) + int(spec.minibatch_std)
        # the real/fake head: one linear layer, or with the minibatch std the reference's epilogue of two dense layers
        self.head = (nn.Sequential(nn.Linear(features + extra, features), nn.LeakyReLU(0.2), nn.Linear(features, 1))
                     if spec.minibatch_std else nn.Linear(features + extra, 1))
        self.projection = (Projection(spec.num_classes, features, spec.pac)
                           if spec.num_classes and conditioning == "projection" else None)
        self.batch_layers = nn.ModuleList([m for m in (mbd, MinibatchStd() if spec.minibatch_std else None)
                                           if m is not None])

    def hidden(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The body's features of each pack, (N/pac, features)."""
        check_labels(y, self.num_classes, "discriminator")
        if self.flat_input:
            x = x.flatten(1)
            if self.num_classes:
                x = torch.cat([x, one_hot(y, self.num_classes)], dim=1)  # label concatenated to the input
        return self.features(pack(x, self.pac))

    @torch.no_grad()
    def data_init(self, x: Tensor, y: Tensor | None = None) -> None:
        """Minibatch discrimination's data-dependent initialisation on real images `x` (labels `y` when conditional),
        D in training mode as the reference runs it; D's running statistics are left as they were."""
        layers = [m for m in self.batch_layers if hasattr(m, "data_init")]
        if not layers:
            return
        buffers = [b.clone() for b in self.buffers()]
        h = self.hidden(x, y)
        for layer in layers:
            layer.data_init(h.float())
        for b, saved in zip(self.buffers(), buffers):
            b.copy_(saved)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.hidden(x, y)
        seen = torch.cat([h, *(layer(h) for layer in self.batch_layers)], dim=1) if len(self.batch_layers) else h
        out = self.head(seen).squeeze(1)
        return out + self.projection(h, y) if self.projection is not None else out


def input_size(spec: ModelSpec) -> int:
    """What a fully connected body's first layer takes: a pack of flattened samples with their labels."""
    return spec.pac * (spec.data_dim + spec.num_classes)


def input_channels(spec: ModelSpec) -> int:
    """What a convolutional body's first layer takes: a pack's images stacked along the channels."""
    return spec.pac * spec.data_shape[0]


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's init: N(0, 0.02) weights, BN gains N(1, 0.02)."""
    normal_init(module, 0.02)


def apply_spectral_norm(module: nn.Module) -> None:
    """Wrap every conv and linear layer of `module`, and the class embedding of a projection
    discriminator, in spectral normalisation (Miyato et al. 2018; Miyato & Koyama 2018 for the
    embedding): otherwise <embed(y), h> is an unconstrained path around the normalised layers."""
    for m in [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding))]:
        nn.utils.parametrizations.spectral_norm(m)  # registers the parametrization in place


def d_norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # layer norm over (C, H, W): per-sample, safe under a gradient penalty
        return nn.GroupNorm(1, channels)
    return nn.Identity()
