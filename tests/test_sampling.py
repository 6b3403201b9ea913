"""Sampling and the latent-space tools: interpolation, class grids, classifier directions, entanglement,
arithmetic; exact on toy modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from pipeline.errors import ConfigError, GanLabError
from pipeline.images import to_uint8
from pipeline.latent import (
    class_grid,
    direction_profile,
    feature_direction,
    interpolation_latents,
    latent_arithmetic,
    lerp,
    slerp,
    walk_strip,
)
from pipeline.sampling import balanced_labels, decode, draw_labels, generate


class LinearImageGenerator(nn.Module):
    """G(z, y) = reshape(A z) + y: a generator whose every gradient is known."""

    def __init__(self, z_dim: int = 4) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.randn(16, z_dim, generator=torch.Generator().manual_seed(0)))
        self.seen: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(self, z, y=None):
        self.seen.append((z.detach().clone(), None if y is None else y.clone()))
        x = (z @ self.A.T).reshape(-1, 1, 4, 4)
        return x if y is None else x + y.float()[:, None, None, None]


class LinearClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(3, 16, generator=torch.Generator().manual_seed(1)))
        self.num_classes = 3

    def forward(self, x):
        return x.flatten(1) @ self.W.T


def test_lerp_and_slerp_endpoints_and_norm():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    t = torch.linspace(0, 1, 5)
    for f in (lerp, slerp):
        path = f(z0, z1, t)
        assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(slerp(z0, z1, t).norm(dim=1), torch.full((5,), 3.0), atol=1e-5)  # stays on the sphere
    assert lerp(z0, z1, t)[2].norm() == pytest.approx(3 / 2 ** 0.5)  # lerp cuts inside it
    assert torch.allclose(slerp(z0, 2 * z0, t), lerp(z0, 2 * z0, t))  # parallel: falls back to lerp


def test_interpolation_latents_rows_walk_between_random_ends():
    z = interpolation_latents(z_dim=6, rows=3, steps=5, mode="spherical", seed=0)
    assert z.shape == (15, 6)
    rows = z.reshape(3, 5, 6)
    assert not torch.allclose(rows[0, 0], rows[1, 0])
    with pytest.raises(ConfigError, match="unknown interpolation 'cubic'; valid: linear, spherical"):
        interpolation_latents(6, 1, 2, "cubic", 0)


def test_class_grid_shares_latents_across_classes():
    generator = LinearImageGenerator()
    images = class_grid(generator, z_dim=4, num_classes=3, per_class=2, seed=0)
    assert images.shape == (6, 1, 4, 4)
    z, y = generator.seen[-1]
    assert y.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(z[0:2], z[2:4]) and torch.equal(z[0:2], z[4:6])
    assert torch.allclose(images[2] - images[0], torch.ones(1, 4, 4))  # only the label term changed


def test_feature_direction_is_the_normalised_gradient():
    generator, classifier = LinearImageGenerator(), LinearClassifier()
    d = feature_direction(generator, classifier, z_dim=4, target=2, n=8)
    expected = generator.A.T @ classifier.W[2]  # d/dz of W[2] . (A z)
    assert torch.allclose(d, expected / expected.norm(), atol=1e-6)
    assert generator.training  # mode restored


def test_walk_strip_raises_the_target_logit():
    generator, classifier = LinearImageGenerator(), LinearClassifier()
    d = feature_direction(generator, classifier, z_dim=4, target=1)
    images = walk_strip(generator, 4, d, rows=2, steps=5, strength=2.0)
    with torch.no_grad():
        logits = classifier(images.clone())[:, 1].reshape(2, 5)
    assert (logits.diff(dim=1) > 0).all()


def test_generate_and_labels():
    generator = LinearImageGenerator()
    x, y = generate(generator, 7, 4, num_classes=3, batch_size=3)
    assert x.shape == (7, 1, 4, 4) and y.tolist() == [0, 1, 2, 0, 1, 2, 0]
    a, _ = generate(generator, 4, 4, seed=5)
    b, _ = generate(generator, 4, 4, seed=5)
    assert torch.equal(a, b)
    assert balanced_labels(3, 0) is None
    assert draw_labels(3, 10, 4).tolist() == [4, 4, 4]
    assert torch.equal(decode(generator, torch.zeros(2, 4)), torch.zeros(2, 1, 4, 4))


def test_to_uint8_range():
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0, 5.0])).tolist() == [0, 128, 255, 255]


class FirstCoordinateGenerator(nn.Module):
    """G(z) = z[:, :3] as a 1 x 1 x 3 'image': the image is the latent, so arithmetic is checkable."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, z, y=None):
        return (self.scale * z[:, :3]).reshape(-1, 1, 1, 3)


class ArgmaxClassifier(nn.Module):
    """Class k when coordinate k is the largest: logits are the pixels themselves, sharpened."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return 20 * self.w * x.flatten(1)


def test_latent_arithmetic_averages_the_most_confident_exemplars():
    result = latent_arithmetic(FirstCoordinateGenerator(), ArgmaxClassifier(), 3, (0, 1, 2), per_concept=3, n=200,
                               results=4, noise=0.25, seed=0)
    assert result.exemplars.shape == (3, 3, 1, 1, 3) and result.results.shape == (4, 1, 1, 3)
    for k in range(3):  # every exemplar of concept k is read as k
        assert (result.exemplars[k].flatten(1).argmax(1) == k).all()
    means = result.exemplars.flatten(2).mean(1)  # G is linear: G(mean z) = mean G(z)
    assert torch.allclose(result.means.flatten(1), means, atol=1e-6)
    assert torch.allclose(result.results[0].flatten(), means[0] - means[1] + means[2], atol=1e-6)
    assert not torch.allclose(result.results[1], result.results[0])  # noisy neighbours
    assert result.result_classes.tolist()[0] == int((means[0] - means[1] + means[2]).argmax())


def test_latent_arithmetic_errors_name_the_problem():
    with pytest.raises(GanLabError, match="concept 5 is not a class; valid classes: 0..2"):
        latent_arithmetic(FirstCoordinateGenerator(), ArgmaxClassifier(), 3, (0, 1, 5), n=50)

    class Collapsed(FirstCoordinateGenerator):
        def forward(self, z, y=None):
            return torch.tensor([1.0, 0.0, 0.0]).expand(len(z), 3).reshape(-1, 1, 1, 3) * self.scale

    with pytest.raises(GanLabError, match="drew class 1 only 0 times in 50 samples"):
        latent_arithmetic(Collapsed(), ArgmaxClassifier(), 3, (0, 1, 2), n=50)


def test_direction_profile_shows_what_moves_with_the_target():
    """Walking along +e0 raises p(0); with an entangled direction (e0 + e1), class 1 rises with it."""
    g, c = FirstCoordinateGenerator(), ArgmaxClassifier()
    clean = torch.tensor([1.0, 0.0, 0.0, 0.0])
    alphas, probs = direction_profile(g, c, 4, clean, n=64, steps=5, strength=2.0)
    assert alphas.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0] and probs.shape == (5, 3)
    assert torch.allclose(probs.sum(1), torch.ones(5)) and (probs[:, 0].diff() > 0).all()
    assert (probs[:, 1].diff() < 0).all() and (probs[:, 2].diff() < 0).all()
    _, tangled = direction_profile(g, c, 4, torch.tensor([1.0, 1.0, 0.0, 0.0]) / 2 ** 0.5, n=64, steps=5)
    assert tangled[-1, 1] > tangled[0, 1] and tangled[-1, 2] < tangled[0, 2]


@pytest.mark.parametrize("n, channels, nrow", [(64, 1, 8), (10, 1, 4), (7, 3, 3), (1, 1, 8), (3, 3, 8)])
def test_image_grid_is_torchvisions_make_grid(n, channels, nrow):
    """The lab draws grids itself (importing torchvision costs each stage about a second); the
    picture must be exactly the one torchvision draws."""
    from torchvision.utils import make_grid

    from pipeline.images import image_grid

    x = torch.rand(n, channels, 12, 10, generator=torch.Generator().manual_seed(n)) * 2 - 1
    expected = make_grid(to_uint8(x), nrow=nrow, padding=2, pad_value=255)
    got = image_grid(x, nrow)
    assert got.dtype == torch.uint8 and got.shape == expected.shape
    assert torch.equal(got, expected)
