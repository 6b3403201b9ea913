"""Every architecture: output shapes and ranges for every supported size, conditional or not."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.models import ARCHITECTURES, ModelSpec, build_models
from pipeline.models.dcgan import upsampling_plan


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_image_shapes_and_range(arch, shape, num_classes):
    spec = ModelSpec(data_shape=shape, kind="image", z_dim=8, width=8, num_classes=num_classes)
    generator, discriminator = build_models(arch, spec)
    z = torch.randn(4, 8)
    y = torch.tensor([0, 3, 9, 1]) if num_classes else None
    x = generator(z, y)
    assert x.shape == (4, *shape)
    assert x.min() >= -1 and x.max() <= 1  # tanh output, like the data
    assert discriminator(x, y).shape == (4,)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_pac_packs_samples(arch):
    spec = ModelSpec(data_shape=(1, 28, 28), kind="image", z_dim=8, width=8, pac=4, num_classes=10)
    generator, discriminator = build_models(arch, spec)
    y = torch.arange(8) % 10
    assert discriminator(generator(torch.randn(8, 8), y), y).shape == (2,)


def test_toy_and_points():
    spec = ModelSpec(data_shape=(2,), kind="points", z_dim=2, width=8)
    generator, discriminator = build_models("toy", spec)
    x = generator(torch.randn(5, 2))
    assert x.shape == (5, 2)
    assert discriminator(x).shape == (5,)
    with pytest.raises(ConfigError, match="arch: dcgan needs square images"):
        build_models("dcgan", spec)
    with pytest.raises(ConfigError, match="arch: toy is for 2D point datasets"):
        build_models("toy", ModelSpec(data_shape=(1, 8, 8), kind="image"))


def test_conditional_generator_uses_the_label():
    spec = ModelSpec(data_shape=(1, 28, 28), kind="image", z_dim=8, width=8, num_classes=10)
    generator, _ = build_models("dcgan", spec)
    generator.eval()
    z = torch.randn(1, 8)
    assert not torch.allclose(generator(z, torch.tensor([1])), generator(z, torch.tensor([7])))
    with pytest.raises(ValueError, match="needs class labels"):
        generator(z)


def test_gradient_penalty_critic_has_no_batch_norm():
    spec = ModelSpec(data_shape=(1, 28, 28), kind="image", width=8, d_norm="layer")
    _, discriminator = build_models("dcgan", spec)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in discriminator.modules())


def test_spectral_norm_wraps_every_layer_of_d():
    spec = ModelSpec(data_shape=(1, 28, 28), kind="image", width=8, spectral_norm=True, d_norm="none")
    _, discriminator = build_models("dcgan", spec)
    layers = [m for m in discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)


def test_unsupported_image_size_is_a_clear_error():
    assert upsampling_plan(28) == (7, 2) and upsampling_plan(64) == (4, 4) and upsampling_plan(8) == (4, 1)
    with pytest.raises(ConfigError, match="got 100. Set data.image_size"):
        upsampling_plan(100)


def test_spec_round_trip():
    spec = ModelSpec(data_shape=(3, 32, 32), kind="image", num_classes=10, pac=2)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert ARCHITECTURES.names() == ["dcgan", "mlp", "toy"]
