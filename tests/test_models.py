"""Every architecture: output shapes and ranges for every supported size, conditional or not."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.models import ARCHITECTURES, ModelSpec, build_models
from pipeline.models.dcgan import upsampling_plan

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 28, 28), (3, 32, 32), (3, 64, 64)]


@pytest.mark.parametrize("arch, shape", [(a, s) for a in ("dcgan", "dcgan4", "mlp") for s in SHAPES
                                         if a != "dcgan4" or s[-1] >= 16])  # dcgan4 at 8x8: an error, tested below
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


def test_packing_groups_consecutive_samples_along_channels():
    """pack(x, 3): pack i holds samples 3i, 3i+1, 3i+2, their channels side by side, in that order."""
    from pipeline.models.common import pack

    x = torch.arange(6 * 2 * 1 * 1, dtype=torch.float32).reshape(6, 2, 1, 1)  # sample s, channel c = 2s + c
    packed = pack(x, 3)
    assert packed.shape == (2, 6, 1, 1)
    assert packed.flatten(1).tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert pack(x.flatten(1), 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_a_packed_discriminator_judges_each_pack_as_one():
    """Changing a sample changes only its own pack's output."""
    spec = ModelSpec(data_shape=(1, 8, 8), kind="image", z_dim=8, width=8, pac=2, d_norm="none")
    _, discriminator = build_models("dcgan", spec)
    x = torch.rand(6, 1, 8, 8)
    out = discriminator(x)
    x2 = x.clone()
    x2[3] = -x2[3]  # sample 3 sits in pack 1 (samples 2 and 3)
    changed = (discriminator(x2) != out).tolist()
    assert changed == [False, True, False]


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


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_spectral_norm_wraps_every_layer_of_d_and_the_projection_embedding(arch):
    torch.manual_seed(0)  # the power iteration starts from a random vector: the same one whatever ran before
    spec = ModelSpec(data_shape=(1, 28, 28), kind="image", width=8, spectral_norm=True, d_norm="none",
                     num_classes=10 if arch == "dcgan" else 0)
    _, discriminator = build_models(arch, spec)
    layers = [m for m in discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    if arch == "dcgan":
        embed = discriminator.projection.embed
        assert hasattr(embed, "parametrizations")
        for _ in range(100):  # power iteration converges in training mode (30 left 1.03% in one CI run's RNG state)
            embed(torch.tensor([0]))
        assert torch.linalg.matrix_norm(embed.weight.detach(), ord=2).item() == pytest.approx(1.0, rel=1e-2)


def test_no_dropout_in_a_wasserstein_critic():
    from conftest import image_data, tiny_recipe

    from pipeline.losses import LOSSES
    from pipeline.tasks.generate.setup import model_spec

    data = image_data()
    for loss, dropout in (("ns", True), ("minimax", True), ("wgan", False), ("wgan_gp", False)):
        _, discriminator = build_models("mlp", model_spec(tiny_recipe(loss=loss, arch="mlp"), data, LOSSES.get(loss)))
        assert any(isinstance(m, torch.nn.Dropout) for m in discriminator.modules()) is dropout, loss


def test_unsupported_image_size_is_a_clear_error():
    assert upsampling_plan(28) == (7, 2) and upsampling_plan(64) == (4, 4) and upsampling_plan(8) == (4, 1)
    with pytest.raises(ConfigError, match="got 100. Set data.image_size"):
        upsampling_plan(100)


def test_spec_round_trip():
    spec = ModelSpec(data_shape=(3, 32, 32), kind="image", num_classes=10, pac=2)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert ARCHITECTURES.names() == ["dcgan", "dcgan4", "infogan", "mlp", "progressive", "toy", "toy_pacgan", "voxel3d"]


def test_uniform_prior_turns_standard_normal_noise_into_u_minus_1_1():
    """train.z_dist: uniform: G sees z = 2 Phi(noise) - 1, so everything that draws N(0, I) noise
    (sampling, latent tools, the MLflow model) feeds it the prior it trained on."""
    from pipeline.models.common import UniformPrior

    seen = []
    prior = UniformPrior(lambda z, y: seen.append(z) or z)
    prior(torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0)))
    z = seen[0]
    assert z.min() > -1 and z.max() < 1
    assert torch.allclose(torch.histc(z, bins=10, min=-1, max=1) / z.numel(), torch.full((10,), 0.1), atol=0.003)
    spec = ModelSpec(data_shape=(1, 28, 28), kind="image", z_dim=8, z_dist="uniform")
    generator, _ = build_models("dcgan", spec)
    assert isinstance(generator, UniformPrior) and generator(torch.randn(4, 8)).shape == (4, 1, 28, 28)


def test_reference_networks_have_the_published_shapes():
    """toy_pacgan: PacGAN's 2D G (4 x 400, batch norm) and D (3 x 200 maxout, 5 pieces, on packs);
    infogan: Lucic et al.'s MNIST networks (FC 1024, 128 x 7 x 7, two 4x4 transposed convolutions)."""
    from pipeline.models.toy_pacgan import Maxout

    points = ModelSpec(data_shape=(2,), kind="points", z_dim=2, pac=4)
    G, D = build_models("toy_pacgan", points)
    assert [m.out_features for m in G.modules() if isinstance(m, torch.nn.Linear)] == [400, 400, 400, 400, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.modules()) == 4
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.features, m.pieces) for m in maxouts] == [(8, 200, 5), (200, 200, 5), (200, 200, 5)]
    x = G(torch.randn(16, 2))
    assert x.shape == (16, 2) and D(x).shape == (4,)
    m = Maxout(3, 2, 5)
    h = torch.randn(7, 3)
    assert torch.equal(m(h), m.linear(h).view(7, 2, 5).max(dim=2).values)

    images = ModelSpec(data_shape=(1, 28, 28), kind="image", z_dim=64, d_norm="layer")
    G, D = build_models("infogan", images)
    x = G(torch.randn(5, 64))
    assert x.shape == (5, 1, 28, 28) and D(x).shape == (5,) and x.abs().max() <= 1
    assert [m.out_features for m in G.modules() if isinstance(m, torch.nn.Linear)] == [1024, 128 * 7 * 7]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())  # a GP critic: layer norm
    with pytest.raises(ConfigError, match="arch: infogan needs square images with a side divisible by 4"):
        build_models("infogan", ModelSpec(data_shape=(1, 30, 30), kind="image"))
    with pytest.raises(ConfigError, match="arch: toy_pacgan is for 2D point datasets"):
        build_models("toy_pacgan", images)


def test_dcgan4_is_the_stacked_mnist_reference_network():
    """4 layers each way, 5x5 kernels, widths 64..512, 28 -> 14 -> 7 -> 4 -> 2 and back."""
    from pipeline.models.dcgan4 import side_lengths

    assert side_lengths(28) == [28, 14, 7, 4, 2] and side_lengths(64) == [64, 32, 16, 8, 4]
    generator, discriminator = build_models("dcgan4", ModelSpec(data_shape=(3, 28, 28), kind="image", z_dim=100))
    g_convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    d_convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in g_convs] == [256, 128, 64, 3] and len(d_convs) == 4
    assert [m.out_channels for m in d_convs] == [64, 128, 256, 512]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in g_convs + d_convs)
    assert generator(torch.randn(2, 100)).shape == (2, 3, 28, 28)
    with pytest.raises(ConfigError, match="dcgan4 halves the image four times"):
        build_models("dcgan4", ModelSpec(data_shape=(1, 8, 8), kind="image"))


def test_a_new_architecture_is_one_builder_packing_and_conditioning_come_with_the_wrapper(images):
    """All a new architecture writes is how a pack becomes features (and its G); PacGAN packing,
    projection conditioning and the head are the `Discriminator` wrapper's, and it trains."""
    import torch.nn as nn

    from conftest import tiny_recipe
    from pipeline.models.common import ARCHITECTURES, Discriminator, input_channels, with_label
    from pipeline.tasks import train

    class TinyG(nn.Module):
        def __init__(self, spec):
            super().__init__()
            self.num_classes, self.shape = spec.num_classes, spec.data_shape
            self.net = nn.Sequential(nn.Linear(spec.z_dim + spec.num_classes, spec.data_dim), nn.Tanh())

        def forward(self, z, y=None):
            return self.net(with_label(z, y, self.num_classes)).view(len(z), *self.shape)

    def build_tiny(spec):
        body = nn.Sequential(nn.Conv2d(input_channels(spec), 4, 4, 4), nn.LeakyReLU(0.2), nn.Flatten())
        return TinyG(spec), Discriminator(body, 4 * 7 * 7, spec)

    ARCHITECTURES.add("tiny_test_arch", build_tiny)
    try:
        result = train(tiny_recipe(arch="tiny_test_arch", conditional=True, train={"pac": 2, "steps": 2}), images,
                       progress=False)
    finally:
        ARCHITECTURES._items.pop("tiny_test_arch")
    d = result.discriminator
    assert d.pac == 2 and d.projection is not None  # packing and the projection head, without writing them
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    assert d(x, y).shape == (4,)  # 8 samples in packs of 2: 4 decisions
    assert torch.isfinite(torch.tensor(result.log_rows[-1]["loss_d"]))
