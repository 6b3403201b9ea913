"""The semi-supervised GAN's networks, as in Salimans et al.'s permutation-invariant MNIST code
(improved-gan, train_mnist_feature_matching.py and nn.py):

- D: an MLP 784-1000-500-250-250-250-K with weight normalisation, ReLU, and Gaussian noise on the input
  (sd 0.3) and after every hidden layer (sd 0.5), on images in [0, 1] as the paper's code sees them; directions
  N(0, 0.1), the hidden layers' scales fixed after the initialisation, the last layer's trained;
- G: z -> 500 -> 500 (batch norm without a scale, softplus) -> 784 (weight norm with scale 1 and bias 0 to start,
  sigmoid), Glorot-uniform weights as Lasagne's, mapped to the lab's [-1, 1]; on `uniform` z (U(-1, 1): the
  paper's U(0, 1) is the same to G, whose first layer's batch norm removes any shift and scale of z).

D's weight-normalised layers get the paper's data-dependent initialisation (`data_init`, Salimans & Kingma
2016), on a batch of real images with D's noise on, as the reference runs it: without it the default
initialisation shrinks the signal layer by layer until the noise of sd 0.5 drowns it. D's real/fake logit is
log Z(x), Z = sum_k exp(l_k): D(x) = Z / (Z + 1) (`real_logit`)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.parametrizations import weight_norm

HIDDEN = (1000, 500, 250, 250, 250)


class GaussianNoise(nn.Module):
    """x + N(0, sd^2) while training; the identity in eval mode."""

    def __init__(self, sd: float) -> None:
        super().__init__()
        self.sd = sd

    def forward(self, x: Tensor) -> Tensor:
        return x + self.sd * torch.randn_like(x) if self.training else x


class SemiDiscriminator(nn.Module):
    """Images (N x C x H x W in [-1, 1]) -> K class logits; `hidden` gives the last hidden layer (250, before
    its noise), the features G matches, as in the paper's code."""

    def __init__(self, data_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [GaussianNoise(0.3)]
        dims = [math.prod(data_shape), *HIDDEN]
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers += [weight_norm(nn.Linear(d_in, d_out)), nn.ReLU()] + ([GaussianNoise(0.5)] if i < len(HIDDEN) - 1
                                                                          else [])
        self.body = nn.Sequential(*layers)
        self.last_noise = GaussianNoise(0.5)
        self.classes = weight_norm(nn.Linear(dims[-1], num_classes))
        self.num_classes = num_classes
        with torch.no_grad():  # directions ~ N(0, 0.1) as the paper's code (PyTorch's default is 3-5x smaller, so
            for layer in [*self.body, self.classes]:  # Adam's steps would turn them 3-5x faster)
                if isinstance(layer, nn.Linear):
                    layer.parametrizations.weight.original1.normal_(0.0, 0.1)
        for layer in self.body:  # the hidden layers' scales stay where the initialisation puts them (the paper's
            if isinstance(layer, nn.Linear):  # train_scale=False): D cannot outgrow its noise; the last layer's trains
                layer.parametrizations.weight.original0.requires_grad_(False)

    def hidden(self, x: Tensor) -> Tensor:
        return self.body((x.flatten(1) + 1) / 2)  # the paper's code sees pixels in [0, 1]

    def forward(self, x: Tensor) -> Tensor:
        return self.classes(self.last_noise(self.hidden(x)))

    @torch.no_grad()
    def data_init(self, x: Tensor) -> None:
        """Salimans & Kingma 2016's initialisation of weight-normalised layers, on a batch of real images, as
        improved-gan's DenseLayer does it with D's noise on: layer by layer, each layer's scale and bias are set so
        its pre-activations have mean 0 and standard deviation 1 over the batch (the population sd, no epsilon)."""
        h = self.noises[0]((x.flatten(1) + 1) / 2)
        linears = [m for m in self.body if isinstance(m, nn.Linear)] + [self.classes]
        for i, layer in enumerate(linears):
            v = layer.parametrizations.weight.original1
            t = h @ (v / v.norm(dim=1, keepdim=True)).T
            mean = t.mean(0)
            sd = (t - mean).square().mean(0).sqrt()
            layer.parametrizations.weight.original0.copy_((1.0 / sd).unsqueeze(1))
            layer.bias.copy_(-mean / sd)
            if i < len(linears) - 1:
                h = self.noises[i + 1](torch.relu(layer(h)))

    @property
    def noises(self) -> list[GaussianNoise]:
        """The noise layers in order: the input's, then one after each hidden layer (the last one `last_noise`)."""
        return [m for m in self.body if isinstance(m, GaussianNoise)] + [self.last_noise]


class Bias(nn.Module):
    """A learned bias: the shift of a batch norm without a scale (Lasagne's batch_norm with g=None)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias


class SemiGenerator(nn.Module):
    def __init__(self, z_dim: int, data_shape: tuple[int, ...], uniform: bool = False) -> None:
        super().__init__()
        self.z_dim, self.data_shape, self.uniform = z_dim, tuple(data_shape), uniform
        layers: list[nn.Module] = []
        for d_in in (z_dim, 500):  # Lasagne's DenseLayer under nn.batch_norm(g=None): no bias of its own, no scale
            layers += [nn.Linear(d_in, 500, bias=False), nn.BatchNorm1d(500, eps=1e-6, affine=False), Bias(500),
                       nn.Softplus()]
        last = nn.Linear(500, math.prod(data_shape))
        with torch.no_grad():
            for layer in [*layers, last]:
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)  # Lasagne's default: Glorot uniform, zero bias
            last.bias.zero_()
        last = weight_norm(last)
        with torch.no_grad():  # nn.l2normalize: the scale starts at 1 (PyTorch's weight_norm starts it at |v|)
            last.parametrizations.weight.original0.fill_(1.0)
        self.net = nn.Sequential(*layers, last, nn.Sigmoid())

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.uniform:  # standard normal noise in, U(-1, 1) to the network (as UniformPrior does for generate)
            z = torch.erf(z * 0.5 ** 0.5)
        return (self.net(z) * 2 - 1).view(z.shape[0], *self.data_shape)


def real_logit(logits: Tensor) -> Tensor:
    """The logit of D(x) = Z(x) / (Z(x) + 1), Z = sum_k exp(l_k(x)): log Z = logsumexp of the class logits,
    so sigmoid(real_logit) = D(x) and the usual binary cross-entropy on it is the paper's unsupervised loss."""
    return torch.logsumexp(logits.float(), dim=1)


def real_probability(logits: Tensor) -> Tensor:
    return torch.sigmoid(real_logit(logits))


def discriminator_loss(logits_lab: Tensor, labels: Tensor, logits_unl: Tensor, logits_gen: Tensor,
                       gan_d_loss, real_target: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """The paper's D loss: cross-entropy on the labelled batch plus half the GAN loss of the real/fake
    decision on the unlabelled and generated batches (-1/2 [E log D(x) + E log(1 - D(G(z)))])."""
    supervised = F.cross_entropy(logits_lab.float(), labels)
    unsupervised = 0.5 * gan_d_loss(real_logit(logits_unl), real_logit(logits_gen), real_target)
    return supervised + unsupervised, {"loss_lab": supervised.detach(), "loss_unl": unsupervised.detach()}
