"""The Improved-Techniques tricks (Salimans et al. 2016) and progressive GANs' minibatch std as options any
generate variant can use: each layer against a hand computation, and each trains."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import image_data, point_data, raw_recipe, tiny_recipe
from pipeline.config import DataConfig, check_values
from pipeline.errors import ConfigError
from pipeline.losses import feature_matching
from pipeline.models import ModelSpec, build_models
from pipeline.models.common import MinibatchDiscrimination, MinibatchStd
from pipeline.tasks import train
from pipeline.training.historical import HistoricalAverage


def test_minibatch_discrimination_matches_the_references_formula_and_sees_across_the_batch():
    """improved-gan's MinibatchLayer: M = h T with T = theta x exp(log_scale) / |theta| (over the features),
    o_b = sum over the other samples of exp(-|M_i,b - M_j,b|_1) + bias_b (the bias starts at -1)."""
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(features=3, kernels=4, kernel_dim=2)
    with torch.no_grad():
        layer.log_scale.normal_()
    h = torch.randn(5, 3)
    o = layer(h)
    assert o.shape == (5, 4)
    theta, scale = layer.theta.detach(), layer.log_scale.detach().exp()
    weight = theta * scale / theta.pow(2).sum(0).sqrt()
    m = torch.einsum("na,abc->nbc", h, weight)
    for i in range(5):
        for b in range(4):
            expected = sum(math.exp(-float((m[i, b] - m[j, b]).abs().sum())) for j in range(5) if j != i) - 1.0
            assert o[i, b].item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    changed = h.clone()
    changed[4] += 1.0  # another sample moves: sample 0's features change
    assert not torch.allclose(layer(changed)[0], o[0])
    same = layer(h[:1].repeat(6, 1))  # a collapsed batch: every other sample at distance 0
    assert torch.allclose(same, torch.full((6, 4), 5.0 - 1.0))


def test_minibatch_discriminations_data_dependent_init_as_the_reference():
    """On the init batch: each kernel's scale makes the mean distance to the nearest other sample 2 (the reference
    divides by half the mean), and the bias centres each output at 0."""
    torch.manual_seed(1)
    layer = MinibatchDiscrimination(features=6, kernels=3, kernel_dim=4)
    h = torch.randn(32, 6) * 5
    layer.data_init(h)
    nearest = layer.distances(h).min(dim=2).values.mean(0)
    assert torch.allclose(nearest, torch.full((3,), 2.0), rtol=1e-4)
    assert torch.allclose(layer(h).mean(0), torch.zeros(3), atol=1e-5)
    assert not torch.equal(layer.log_scale, torch.zeros(3, 4))


def test_minibatch_std_is_each_groups_mean_standard_deviation():
    h = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 5.0], [6.0, 5.0],
                      [0.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 2.0]])
    out = MinibatchStd(group_size=4)(h)  # 8 samples: 2 groups of 4, strided: {0, 2, 4, 6} and {1, 3, 5, 7}
    assert out.shape == (8, 1)
    group0 = h[[0, 2, 4, 6]].var(0, unbiased=False).add(1e-8).sqrt().mean()
    group1 = h[[1, 3, 5, 7]].var(0, unbiased=False).add(1e-8).sqrt().mean()
    assert torch.allclose(out[[0, 2, 4, 6], 0], group0.expand(4))
    assert torch.allclose(out[[1, 3, 5, 7], 0], group1.expand(4))
    assert group0 != group1
    assert MinibatchStd()(torch.ones(6, 3)).max() < 1e-3  # a collapsed batch: no spread (6 samples: groups of 3)


def test_feature_matching_is_the_squared_difference_of_the_feature_means():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # means 2, 3
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)  # means 1, 1
    loss = feature_matching(real, fake)
    assert loss.item() == pytest.approx(((2 - 1) ** 2 + (3 - 1) ** 2) / 2)
    loss.backward()
    assert fake.grad is not None and feature_matching(real, real).item() == 0.0


def test_historical_averaging_pulls_towards_the_mean_of_past_weights():
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = HistoricalAverage(layer, weight=0.25)
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    average.attach(opt)
    history = [1.0]
    for target in (3.0, 0.0):
        opt.zero_grad()
        layer.weight.grad = torch.zeros_like(layer.weight)  # the game's gradient 0: only the pull moves it
        with torch.no_grad():  # set the weight by hand, as if the game had moved it
            layer.weight.fill_(target)
        mean = sum(history) / len(history)
        opt.step()  # w <- w - lr * 2 * 0.25 * (w - mean)
        expected = target - 0.5 * (target - mean)
        assert layer.weight.item() == pytest.approx(expected)
        history.append(expected)
        assert average.average[0].item() == pytest.approx(sum(history) / len(history))
    assert average.penalty().item() == pytest.approx(0.25 * (history[-1] - sum(history) / len(history)) ** 2)


@pytest.mark.parametrize("arch", ["dcgan", "mlp", "toy"])
def test_the_batch_layers_widen_the_head_and_make_each_output_depend_on_the_batch(arch):
    spec = ModelSpec(data_shape=(2,) if arch == "toy" else (1, 28, 28), kind="points" if arch == "toy" else "image",
                     z_dim=4, width=8, minibatch_discrimination=True, minibatch_std=True)
    plain = build_models(arch, ModelSpec(**{**spec.__dict__, "minibatch_discrimination": False,
                                            "minibatch_std": False}))[1]
    _, d = build_models(arch, spec)
    # with the minibatch std, the reference's epilogue: two dense layers after the batch features
    assert d.head[0].in_features == plain.head.in_features + 100 + 1 and d.head[0].out_features == plain.head.in_features
    assert isinstance(d.head[1], torch.nn.LeakyReLU) and d.head[2].out_features == 1
    d.eval()
    x = torch.randn(8, *spec.data_shape)
    other = x.clone()
    other[1:] = torch.randn(7, *spec.data_shape)
    assert d(x).shape == (8,)
    assert d(x)[0].item() != pytest.approx(d(other)[0].item(), abs=1e-7)  # same sample 0, other batch
    assert d.hidden(x).shape == (8, plain.head.in_features)


@pytest.mark.parametrize("train_options", [
    {"g_objective": "feature_matching"}, {"minibatch_discrimination": True}, {"minibatch_std": True},
    {"historical_averaging": 0.01}, {"minibatch_std": True, "pac": 2, "g_objective": "feature_matching"}])
def test_each_trick_reaches_training_and_changes_it(train_options, monkeypatch):
    """Each option is wired into what trains: the same seed without it ends elsewhere; the batch layers are in the D
    that trained (its head's width); historical averaging's pull is in the optimiser steps."""
    data = point_data(n=512)
    options = {"steps": 4, "z_dim": 2, **train_options}
    recipe = tiny_recipe(dataset="ring8", arch="toy", train=options)
    plain = tiny_recipe(dataset="ring8", arch="toy", train={"steps": 4, "z_dim": 2, "pac": options.get("pac", 1)})
    pulls = []
    if "historical_averaging" in train_options:
        from pipeline.training import historical

        plain_pull = historical.HistoricalAverage.pull
        monkeypatch.setattr(historical.HistoricalAverage, "pull", lambda self: pulls.append(1) or plain_pull(self))
    result = train(recipe, data, progress=False)
    baseline = train(plain, data, progress=False)
    assert len(result.log_rows) == 2
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in result.log_rows)
    assert not torch.allclose(torch.cat([p.flatten() for p in result.generator.parameters()]),
                              torch.cat([p.flatten() for p in baseline.generator.parameters()]))
    head = result.discriminator.head
    width = (head[0] if isinstance(head, torch.nn.Sequential) else head).in_features
    base_head = baseline.discriminator.head
    extra = 100 * bool(train_options.get("minibatch_discrimination")) + bool(train_options.get("minibatch_std"))
    assert width == base_head.in_features + extra
    if "historical_averaging" in train_options:
        assert len(pulls) == 2 * 4  # G's and D's pull before each of their 4 optimiser steps


def test_feature_matching_is_what_g_minimises(monkeypatch):
    """The logged G loss is the feature-matching distance the step computed (a mean over the log interval), on D's
    features of real and generated points: not D's output."""
    import pipeline.tasks.generate.steps as training_steps

    seen = []
    plain = training_steps.feature_matching
    monkeypatch.setattr(training_steps, "feature_matching",
                        lambda real, fake: seen.append((real.shape, fake.shape, plain(real, fake).item()))
                        or plain(real, fake))
    recipe = tiny_recipe(dataset="ring8", arch="toy", train={"steps": 4, "z_dim": 2, "log_every": 2,
                                                             "g_objective": "feature_matching"})
    result = train(recipe, point_data(n=512), progress=False)
    assert len(seen) == 4 and all(r[1] == (16, 16) for r in seen)  # D's 16 features of each of the 16 points
    for i, row in enumerate(result.log_rows):
        assert row["loss_g"] == pytest.approx((seen[2 * i][2] + seen[2 * i + 1][2]) / 2, rel=1e-5)


def test_feature_matching_trains_g_on_features_not_on_ds_output():
    images = image_data()
    adversarial = train(tiny_recipe(train={"steps": 2}), images, progress=False)
    matching = train(tiny_recipe(train={"steps": 2, "g_objective": "feature_matching"}), images, progress=False)
    # the G loss is a squared feature distance (>= 0), where the non-saturating loss is softplus(-D)
    assert matching.log_rows[-1]["loss_g"] >= 0
    assert matching.log_rows[-1]["loss_g"] != pytest.approx(adversarial.log_rows[-1]["loss_g"])


def test_the_tricks_resolve_and_refuse_what_they_cannot_do():
    assert tiny_recipe().train.g_objective == "adversarial"  # null: the task's objective
    with pytest.raises(ConfigError, match="feature_matching matches D's features, an unrolled G step"):
        tiny_recipe(train={"g_objective": "feature_matching", "unroll_steps": 1})
    with pytest.raises(ConfigError, match=r"train\.g_objective: unknown value 'moments'; valid values: "
                                          r"adversarial, feature_matching"):
        check_values(raw_recipe(train={"g_objective": "moments"}))
    with pytest.raises(ConfigError, match="historical_averaging must be >= 0"):
        check_values(raw_recipe(train={"historical_averaging": -1.0}))
    with pytest.raises(ConfigError, match=r"train\.minibatch_std: applies to task generate or voxel only, not 'translate'"):
        tiny_recipe(task="translate", data=DataConfig(translate="sr4"), train={"minibatch_std": True})
    with pytest.raises(ConfigError, match=r"train\.g_objective: applies to task generate, semi or voxel only, not 'cycle'"):
        tiny_recipe(task="cycle", data=DataConfig(cycle_with="digits"), train={"g_objective": "adversarial"})
