"""Task semi: the semi-supervised GAN of Salimans et al. 2016 (D a K-class classifier whose real/fake
probability is Z / (Z + 1), trained on few labels, the unlabelled rest and G's samples; G by feature
matching)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import CrashingTracker, Crash, image_data, tiny_recipe
from pipeline.config import DataConfig
from pipeline.errors import ConfigError
from pipeline.losses import LOSSES
from pipeline.semi.networks import SemiDiscriminator, discriminator_loss, real_logit, real_probability
from pipeline.semi.metrics import count_errors
from pipeline.semi.train import labelled_subset, train_semi


def semi_recipe(**train):
    return tiny_recipe(task="semi", data=DataConfig(labels_per_class=2), train={"steps": 4, "batch_size": 8, **train})


def test_the_real_probability_is_z_over_z_plus_one():
    logits = torch.tensor([[0.0, math.log(3.0)], [-50.0, -50.0], [10.0, 20.0]])
    z = logits.exp().sum(1)
    assert torch.allclose(real_probability(logits), z / (z + 1))
    assert real_probability(logits)[0].item() == pytest.approx(4 / 5)  # Z = 1 + 3
    assert torch.isfinite(real_logit(torch.full((1, 10), 1e4))).all()  # no overflow for large logits


def test_the_discriminator_loss_is_cross_entropy_plus_half_the_gan_loss_by_hand():
    lab, unl, gen = torch.randn(4, 10), torch.randn(5, 10), torch.randn(6, 10)
    labels = torch.tensor([0, 3, 9, 3])
    loss, terms = discriminator_loss(lab, labels, unl, gen, LOSSES.get("ns").discriminator)
    d_unl = unl.exp().sum(1) / (unl.exp().sum(1) + 1)
    d_gen = gen.exp().sum(1) / (gen.exp().sum(1) + 1)
    by_hand = F.cross_entropy(lab, labels) - 0.5 * (d_unl.log().mean() + (1 - d_gen).log().mean())
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert terms["loss_lab"].item() == pytest.approx(F.cross_entropy(lab, labels).item(), rel=1e-6)


def test_the_labelled_subset_is_stratified_and_seeded():
    labels = torch.arange(200) % 10
    subset = labelled_subset(labels, 3, seed=0)
    assert len(subset) == 30 and torch.bincount(labels[subset]).tolist() == [3] * 10
    assert torch.equal(subset, labelled_subset(labels, 3, seed=0))
    assert not torch.equal(subset, labelled_subset(labels, 3, seed=1))  # another trial, another labelled set
    with pytest.raises(ConfigError, match="data.labels_per_class 21: class 0 has only 20 training images"):
        labelled_subset(labels, 21, seed=0)


def test_the_discriminator_classifies_and_its_noise_is_off_in_eval_mode():
    d = SemiDiscriminator((1, 28, 28), 10)
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    assert d(x).shape == (6, 10) and d.hidden(x).shape == (6, 250)
    d.eval()
    assert torch.equal(d(x), d(x))
    d.train()
    assert not torch.equal(d(x), d(x))  # Gaussian noise layers while training
    y = d.eval()(x).argmax(1)
    assert count_errors(d, x, y) == 0 and count_errors(d, x, (y + 1) % 10) == 6


def test_a_semi_run_trains_logs_its_held_out_error_and_resumes_to_the_same_weights(tmp_path):
    data = image_data(n=80)
    full = train_semi(semi_recipe(historical_averaging=0.1), data, progress=False)  # its averages resume too
    assert [r["step"] for r in full.eval_rows] == [2, 4]
    assert all(0.0 <= r["test_error"] <= 1.0 for r in full.eval_rows)
    row = full.log_rows[-1]
    assert {"loss_lab", "loss_unl", "loss_g", "train_error_labelled", "d_real", "d_fake"} <= set(row)
    assert row["loss_g"] >= 0  # feature matching: a squared distance
    assert len(full.labelled) == 20
    state = tmp_path / "state.pt"
    crashing = semi_recipe(log_every=1, historical_averaging=0.1)
    with pytest.raises(Crash):
        train_semi(crashing, data, progress=False, tracker=CrashingTracker(3), state_path=state)
    resumed = train_semi(crashing, data, progress=False, state_path=state)
    for a, b in zip([*full.generator.parameters(), *full.discriminator.parameters()],
                    [*resumed.generator.parameters(), *resumed.discriminator.parameters()]):
        assert torch.equal(a, b)


def test_semi_configuration_errors_name_the_key_and_the_choices():
    with pytest.raises(ConfigError, match="task 'semi' trains with loss ns or minimax, not 'wgan_gp'"):
        tiny_recipe(task="semi", loss="wgan_gp", data=DataConfig(labels_per_class=2))
    with pytest.raises(ConfigError, match=r"data\.labels_per_class: applies to task semi only, not 'generate'"):
        tiny_recipe(data=DataConfig(labels_per_class=10))
    with pytest.raises(ConfigError, match=r"train\.pac: applies to task generate only, not 'semi'"):
        tiny_recipe(task="semi", data=DataConfig(labels_per_class=2), train={"pac": 2})
    assert semi_recipe().train.g_objective == "feature_matching" and semi_recipe().arch == "semi_mlp"
    assert semi_recipe(g_objective="adversarial").train.g_objective == "adversarial"


def test_data_dependent_init_gives_each_layer_zero_mean_unit_sd_pre_activations():
    torch.manual_seed(0)
    d = SemiDiscriminator((1, 28, 28), 10)
    x = torch.rand(300, 1, 28, 28) * 2 - 1
    d.data_init(x)
    h = (x.flatten(1) + 1) / 2
    layers = [m for m in d.body if isinstance(m, torch.nn.Linear)] + [d.classes]
    for i, layer in enumerate(layers):
        t = layer(h)
        assert t.mean(0).abs().max() < 1e-4 and (t.std(0) - 1).abs().max() < 1e-3, i
        h = torch.relu(t)


def test_a_shared_task_switch_turns_every_shipped_variant_into_a_semi_supervised_gan_with_notes():
    """`dvc exp run -S task=semi -S data.labels_per_class=10` on the shipped variants: wgan_gp's own loss, cdcgan's
    conditioning and vanilla's arch do not apply, and are dropped with a note each."""
    import copy

    import yaml

    from conftest import REPO
    from pipeline.variants import lab_from_raw

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["task"] = "semi"
    raw["data"] = {**raw["data"], "labels_per_class": 10}
    lab = lab_from_raw(copy.deepcopy(raw))
    assert {v.recipe.task for v in lab.variants.values()} == {"semi"}
    assert {v.recipe.arch for v in lab.variants.values()} == {"semi_mlp"}
    assert lab.variants["wgan_gp"].recipe.loss == "ns" and lab.variants["vanilla"].recipe.loss == "minimax"
    assert lab.variants["wgan_gp"].recipe.train.d_steps == 1  # ns's recipe, not WGAN-GP's five critic steps
    assert any("loss=wgan_gp: task 'semi' trains with loss ns or minimax" in n for n in lab.variants["wgan_gp"].notes)
    assert any("conditional=True applies to task generate only" in n for n in lab.variants["cdcgan"].notes)
    raw["loss"] = "wgan_gp"  # a shared loss the task cannot use is the user's explicit choice: an error
    with pytest.raises(ConfigError, match="task 'semi' trains with loss ns or minimax, not 'wgan_gp'"):
        lab_from_raw(raw)
