"""Each loss against hand-computed values on fixed logits; the gradient penalty in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.losses import LOSSES, gradient_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def log_sigmoid(v: float) -> float:
    return -math.log1p(math.exp(-v))


def log1m_sigmoid(v: float) -> float:
    return -math.log1p(math.exp(v))


def mean(*xs: float) -> float:
    return sum(xs) / len(xs)


def test_bce_discriminator_by_hand():
    expected = -mean(log_sigmoid(2.0), log_sigmoid(-1.0)) - mean(log1m_sigmoid(0.5), log1m_sigmoid(-3.0))
    for name in ("minimax", "ns"):
        assert LOSSES.get(name).discriminator(REAL, FAKE, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_one_sided_label_smoothing_by_hand():
    t = 0.9
    real_term = -mean(*[t * log_sigmoid(v) + (1 - t) * log1m_sigmoid(v) for v in (2.0, -1.0)])
    fake_term = -mean(log1m_sigmoid(0.5), log1m_sigmoid(-3.0))  # fakes keep label 0: one-sided
    assert LOSSES.get("ns").discriminator(REAL, FAKE, t).item() == pytest.approx(real_term + fake_term, rel=1e-6)


def test_generator_losses_by_hand():
    assert LOSSES.get("minimax").generator(FAKE).item() == pytest.approx(mean(log1m_sigmoid(0.5), log1m_sigmoid(-3.0)))
    assert LOSSES.get("ns").generator(FAKE).item() == pytest.approx(-mean(log_sigmoid(0.5), log_sigmoid(-3.0)))
    assert LOSSES.get("lsgan").generator(FAKE).item() == pytest.approx(0.5 * mean(0.25, 16.0))
    assert LOSSES.get("hinge").generator(FAKE).item() == pytest.approx(-mean(0.5, -3.0))
    assert LOSSES.get("wgan").generator(FAKE).item() == pytest.approx(1.25)


def test_other_discriminator_losses_by_hand():
    assert LOSSES.get("lsgan").discriminator(REAL, FAKE, 1.0).item() == pytest.approx(0.5 * (mean(1.0, 4.0) + mean(0.25, 9.0)))
    assert LOSSES.get("hinge").discriminator(REAL, FAKE, 1.0).item() == pytest.approx(mean(0.0, 2.0) + mean(1.5, 0.0))
    for name in ("wgan", "wgan_gp"):
        assert LOSSES.get(name).discriminator(REAL, FAKE, 1.0).item() == pytest.approx(mean(0.5, -3.0) - mean(2.0, -1.0))


def test_saturation_is_why_ns_exists():
    """When D confidently rejects fakes (logit -10), minimax gives G almost no gradient; ns gives ~1."""
    fake = torch.tensor([-10.0], requires_grad=True)
    (grad_mm,) = torch.autograd.grad(LOSSES.get("minimax").generator(fake), fake)
    (grad_ns,) = torch.autograd.grad(LOSSES.get("ns").generator(fake), fake)
    assert abs(grad_mm.item()) < 1e-4 and abs(grad_ns.item()) > 0.99


def test_losses_are_stable_on_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for name in LOSSES.names():
        loss = LOSSES.get(name)
        assert torch.isfinite(loss.discriminator(big, -big, 1.0)) and torch.isfinite(loss.generator(big))


def test_flags():
    assert LOSSES.get("wgan").weight_clipping and not LOSSES.get("wgan").gradient_penalty
    assert LOSSES.get("wgan_gp").gradient_penalty and not LOSSES.get("wgan_gp").probabilistic
    with pytest.raises(ConfigError, match="valid losses: minimax, ns, lsgan, hinge, wgan, wgan_gp"):
        LOSSES.get("bce")


def test_gradient_penalty_closed_form():
    """A linear critic D(x) = <w, x> has gradient w everywhere, so GP = (||w|| - 1)^2 exactly."""
    w = torch.tensor([3.0, 4.0])  # ||w|| = 5
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(16.0, rel=1e-6)
    unit = torch.tensor([0.6, 0.8])
    assert gradient_penalty(lambda x: x @ unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_on_images_with_packing_and_labels():
    """Packed critic (2 samples per output) with a label term: the norm is over each pack."""
    w = torch.full((2 * 1 * 2 * 2,), 0.5)  # ||w|| = sqrt(8 * 0.25) = sqrt(2)
    labels = torch.tensor([0, 1, 0, 1])
    critic = lambda x: x.reshape(2, -1) @ w + labels.reshape(2, 2).sum(1).float()  # noqa: E731
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake, pac=2)
    assert gp.item() == pytest.approx((math.sqrt(2) - 1) ** 2, rel=1e-6)


def test_gradient_penalty_draws_one_interpolation_coefficient_per_pack():
    """A pack is one point of D's input: its samples are interpolated with the same eps."""
    seen = []
    critic = lambda x: seen.append(x.detach().clone()) or x.reshape(3, -1).sum(1)  # noqa: E731
    real, fake = torch.ones(6, 1, 2, 2), torch.zeros(6, 1, 2, 2)  # x_hat = eps exactly
    gradient_penalty(critic, real, fake, pac=2, generator=torch.Generator().manual_seed(0))
    eps = seen[0].flatten(1)[:, 0]
    assert torch.equal(eps[0::2], eps[1::2])  # the two members of each pack
    assert len(set(eps[0::2].tolist())) == 3  # and the three packs differ
