"""GAN losses as small pure functions of discriminator outputs (logits or critic values).

No Sigmoid + BCELoss anywhere: log D(x) = -softplus(-logit) and log(1 - D(x)) = -softplus(logit)
are exact and stable for any logit. Adding a loss is one `GanLoss(...)` and one registry line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.registry import Registry


@dataclass(frozen=True)
class GanLoss:
    """A loss and its published training recipe: what `null` in params.yaml resolves to."""

    name: str
    # (real_out, fake_out, real_target) -> scalar discriminator loss; real_target < 1 is label smoothing
    discriminator: Callable[[Tensor, Tensor, float], Tensor]
    generator: Callable[[Tensor], Tensor]
    probabilistic: bool = True      # outputs are logits of P(real); False: an unbounded critic
    wasserstein: bool = False       # E[D(x)] - E[D(G(z))] estimates the Wasserstein-1 distance (a Lipschitz critic)
    gradient_penalty: bool = False  # add gp_weight * GP on interpolates
    weight_clipping: bool = False   # clip D's weights to [-clip_value, clip_value] after each step
    smoothing: bool = True          # one-sided label smoothing is meaningful for this loss
    zero_sum: bool = False          # G's loss is minus D's: the game has one value function (minimax, WGAN)
    factor: float = 1.0             # the factor the loss's paper puts on both players' terms (LSGAN: 1/2, Mao et al.)
    # the published defaults, used where train.optimizer is auto and lr_g, lr_d, betas, d_steps are null
    default_optimizer: str = "adam"
    default_lr: float = 2.0e-4      # DCGAN paper (Radford et al. 2016)
    default_betas: tuple[float, float] = (0.5, 0.999)  # DCGAN paper
    default_d_steps: int = 1        # critic steps per generator step
    default_d_steps_warmup: int = 0  # critic steps for the first 25 and every 500th G step (0: d_steps throughout)
    default_g_noise: str = "reuse"  # reuse: G judges the last D step's fakes (pytorch/examples' DCGAN) | fresh


LOSSES: Registry[GanLoss] = Registry("loss", "losses")


def bce_discriminator(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """-[t log D(x) + (1 - t) log(1 - D(x))] - log(1 - D(G(z))), on logits."""
    real_loss = F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_target))
    fake_loss = F.softplus(fake).mean()  # -log(1 - sigmoid(fake))
    return real_loss + fake_loss


def minimax_generator(fake: Tensor) -> Tensor:
    """The original saturating game: G minimises log(1 - D(G(z))) = -softplus(logit)."""
    return -F.softplus(fake).mean()


def ns_generator(fake: Tensor) -> Tensor:
    """Non-saturating: G maximises log D(G(z)), i.e. minimises softplus(-logit)."""
    return F.softplus(-fake).mean()


def lsgan_discriminator(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    return 0.5 * ((real - real_target).pow(2).mean() + fake.pow(2).mean())


def lsgan_generator(fake: Tensor) -> Tensor:
    return 0.5 * (fake - 1.0).pow(2).mean()


def hinge_discriminator(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def wasserstein_discriminator(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """The critic maximises E[D(x)] - E[D(G(z))]."""
    return fake.mean() - real.mean()


def wasserstein_generator(fake: Tensor) -> Tensor:
    """Also the hinge generator loss."""
    return -fake.mean()


LOSSES.add("minimax", GanLoss("minimax", bce_discriminator, minimax_generator, zero_sum=True))
LOSSES.add("ns", GanLoss("ns", bce_discriminator, ns_generator))
LOSSES.add("lsgan", GanLoss("lsgan", lsgan_discriminator, lsgan_generator, probabilistic=False, factor=0.5))
LOSSES.add("hinge", GanLoss("hinge", hinge_discriminator, wasserstein_generator, probabilistic=False, smoothing=False))
# WGAN (Arjovsky et al. 2017, Algorithm 1): RMSprop at 5e-5 -- momentum destabilises the clipped critic -- n_critic 5;
# the reference code (main.py) trains the critic 100 steps per G step for the first 25 G steps and every 500th, so
# it starts near optimal, and draws fresh noise for the G step
LOSSES.add("wgan", GanLoss("wgan", wasserstein_discriminator, wasserstein_generator, probabilistic=False,
                           wasserstein=True, weight_clipping=True, smoothing=False, zero_sum=True,
                           default_optimizer="rmsprop", default_lr=5.0e-5, default_d_steps=5,
                           default_d_steps_warmup=100, default_g_noise="fresh"))
# WGAN-GP (Gulrajani et al. 2017, Algorithm 1): Adam, alpha 1e-4, beta1 0, beta2 0.9, n_critic 5, fresh noise for G
LOSSES.add("wgan_gp", GanLoss("wgan_gp", wasserstein_discriminator, wasserstein_generator, probabilistic=False,
                              wasserstein=True, gradient_penalty=True, smoothing=False, zero_sum=True,
                              default_lr=1.0e-4, default_betas=(0.0, 0.9), default_d_steps=5, default_g_noise="fresh"))

def image_to_image_terms(loss: GanLoss) -> tuple[Callable[[Tensor, Tensor, float], Tensor], Callable[[Tensor], Tensor]]:
    """(D's loss, G's adversarial term) as pix2pix's and CycleGAN's reference code weighs them (junyanz/pytorch-
    CycleGAN-and-pix2pix, models/networks.py GANLoss): each term without the loss paper's factor (LSGAN's G term is
    MSE(D(G(x)), 1), not half of it), and D's loss halved, (loss_D_real + loss_D_fake) x 0.5, "which slows down the rate
    at which D learns relative to G". Against the reconstruction, cycle and identity weights (100, 10, 5) that is the
    balance the papers' numbers come from."""
    return (lambda real, fake, target=1.0: 0.5 * loss.discriminator(real, fake, target) / loss.factor,
            lambda fake: loss.generator(fake) / loss.factor)


def _no_adversary(*_args) -> Tensor:
    raise RuntimeError("loss none has no discriminator: nothing calls it")


# Losses some task accepts beside the GAN losses (`pipeline.tasks`): translate's reconstruction-only
# baseline, `loss: none` (no discriminator; Adam 2e-4, betas (0.5, 0.999), as pix2pix trains)
TASK_LOSSES = {"none": GanLoss("none", _no_adversary, _no_adversary, probabilistic=False, smoothing=False)}


def feature_matching(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Salimans et al. 2016, sec. 3.1: G matches the mean of D's features on real data,
    ||E f(x) - E f(G(z))||^2, as the paper's code computes it: the mean over features of the squared
    difference of the batch means. The real side is a target (no gradient)."""
    return (real_features.detach().float().mean(0) - fake_features.float().mean(0)).pow(2).mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, pac: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP: E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat of real and fake.

    `critic` maps a batch to one output per (packed) sample; conditional critics are passed as a
    closure over the labels. With PacGAN packing (`pac` > 1) a pack is one point of D's input
    space: it gets one interpolation coefficient, and the norm is taken over the whole pack.
    Gradients are cast to float32 before the norm so the penalty is correct under bf16 autocast.
    """
    packs = real.shape[0] // pac
    eps = torch.rand((packs,) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype, generator=generator)
    eps = eps.repeat_interleave(pac, dim=0)  # the members of a pack share their coefficient
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    grad = grad.float().reshape(out.shape[0], -1)  # one row per critic output (a pack with PacGAN)
    return (grad.norm(2, dim=1) - 1.0).pow(2).mean()
