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
from pipeline.tasks.semi.networks import SemiDiscriminator, discriminator_loss, real_logit, real_probability
from pipeline.tasks.semi.metrics import count_errors
from pipeline.tasks import train
from pipeline.tasks.semi.train import ParameterAverage, SemiCheck, epoch_batch, labelled_subset, tiled_batch


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
    recipe = semi_recipe(historical_averaging=0.1)
    full = train(recipe, data, checker=SemiCheck(recipe, data), progress=False)  # its averages resume too
    assert [r["step"] for r in full.eval_rows] == [2, 4]
    assert all(0.0 <= r["test_error"] <= 1.0 and 0.0 <= r["test_error_raw"] <= 1.0 for r in full.eval_rows)
    # the held-out error is the averaged D's, the reference's test; the raw D's beside it
    x, y = data.x_test[:16], data.y_test[:16]  # min(eval_samples, the 16 test images)
    assert full.eval_rows[-1]["test_error"] == count_errors(full.d_average.averaged(), x, y) / 16
    assert full.eval_rows[-1]["test_error_raw"] == count_errors(full.discriminator, x, y) / 16
    row = full.log_rows[-1]
    assert {"loss_lab", "loss_unl", "loss_g", "train_error_labelled", "d_real", "d_fake"} <= set(row)
    assert len(full.labelled) == 20
    state = tmp_path / "state.pt"
    crashing = semi_recipe(log_every=1, historical_averaging=0.1)
    with pytest.raises(Crash):
        train(crashing, data, progress=False, tracker=CrashingTracker(3), state_path=state)
    resumed = train(crashing, data, progress=False, state_path=state)
    for a, b in zip([*full.generator.parameters(), *full.discriminator.parameters(),
                     *full.d_average.averages.values()],
                    [*resumed.generator.parameters(), *resumed.discriminator.parameters(),
                     *resumed.d_average.averages.values()]):
        assert torch.equal(a, b)


def test_g_minimises_the_feature_matching_distance_on_ds_last_hidden_layer(monkeypatch):
    """The logged G loss is the feature-matching distance each step computed, on D's 250 features of a real and a
    generated batch; with `g_objective: adversarial` G's loss is another one."""
    import pipeline.tasks.semi.train as semi_train

    seen = []
    plain = semi_train.feature_matching
    monkeypatch.setattr(semi_train, "feature_matching",
                        lambda real, fake: seen.append((real.shape, fake.shape, plain(real, fake).item()))
                        or plain(real, fake))
    data = image_data(n=80)
    run = train(semi_recipe(log_every=1), data, progress=False)
    assert [r[:2] for r in seen] == [((8, 250), (8, 250))] * 4
    assert [r["loss_g"] for r in run.log_rows] == pytest.approx([r[2] for r in seen], rel=1e-5)
    adversarial = train(semi_recipe(log_every=1, g_objective="adversarial"), data, progress=False)
    assert len(seen) == 4 and adversarial.log_rows[-1]["loss_g"] != pytest.approx(run.log_rows[-1]["loss_g"])


def test_semi_configuration_errors_name_the_key_and_the_choices():
    with pytest.raises(ConfigError, match="task 'semi' trains with loss ns or minimax, not 'wgan_gp'"):
        tiny_recipe(task="semi", loss="wgan_gp", data=DataConfig(labels_per_class=2))
    with pytest.raises(ConfigError, match=r"data\.labels_per_class: applies to task semi only, not 'generate'"):
        tiny_recipe(data=DataConfig(labels_per_class=10))
    with pytest.raises(ConfigError, match=r"train\.pac: applies to task generate or voxel only, not 'semi'"):
        tiny_recipe(task="semi", data=DataConfig(labels_per_class=2), train={"pac": 2})
    assert semi_recipe().train.g_objective == "feature_matching" and semi_recipe().arch == "semi_mlp"
    assert semi_recipe(g_objective="adversarial").train.g_objective == "adversarial"


def test_data_dependent_init_standardises_each_layer_with_the_noise_on_as_the_reference():
    """improved-gan runs its initialisation pass with D's Gaussian noise on, and sets each layer from the population
    standard deviation of its pre-activations: replaying the same noise, every layer's pre-activations have mean 0 and
    (population) sd 1 over the batch."""
    torch.manual_seed(0)
    d = SemiDiscriminator((1, 28, 28), 10)
    x = torch.rand(300, 1, 28, 28) * 2 - 1
    torch.manual_seed(1)
    d.data_init(x)
    torch.manual_seed(1)  # the same noise again
    h = (x.flatten(1) + 1) / 2
    h = h + 0.3 * torch.randn_like(h)
    layers = [m for m in d.body if isinstance(m, torch.nn.Linear)] + [d.classes]
    for i, layer in enumerate(layers):
        t = layer(h)
        assert t.mean(0).abs().max() < 1e-4 and (t.std(0, unbiased=False) - 1).abs().max() < 1e-4, i
        h = torch.relu(t)
        h = h + 0.5 * torch.randn_like(h)


def test_the_generator_is_the_references():
    """improved-gan's G: batch norm without a scale (a shift only), Glorot-uniform weights, the last layer weight-
    normalised with its scale at 1 and its bias at 0; uniform z goes in as U(-1, 1)."""
    from pipeline.tasks.semi.networks import Bias, SemiGenerator

    torch.manual_seed(0)
    g = SemiGenerator(100, (1, 28, 28))
    norms = [m for m in g.net if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 2 and all(not m.affine and m.eps == 1e-6 for m in norms)
    assert sum(isinstance(m, Bias) for m in g.net) == 2
    linears = [m for m in g.net if isinstance(m, torch.nn.Linear)]
    hidden = linears[1].weight  # 500 x 500: Glorot's bound sqrt(6 / 1000) = 0.077, PyTorch's 1 / sqrt(500) = 0.045
    assert 0.06 < hidden.abs().max() <= (6 / 1000) ** 0.5 and linears[0].bias is None and linears[1].bias is None
    last = linears[-1]
    assert torch.equal(last.parametrizations.weight.original0, torch.ones(784, 1)) and torch.equal(last.bias, torch.zeros(784))
    uniform = SemiGenerator(100, (1, 28, 28), uniform=True).eval()
    seen = []
    uniform.net[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    uniform(torch.randn(2000, 100))
    assert -1 < seen[0].min() < -0.99 and 0.99 < seen[0].max() < 1 and abs(seen[0].mean()) < 0.01


def test_the_references_adam_has_its_epsilon_inside_the_root():
    """p -= lr m_hat / sqrt(v_hat + 1e-8): with gradients of 1e-6 the step is 1e-6 / sqrt(1e-12 + 1e-8) ~ 0.01 lr,
    where PyTorch's Adam (eps after the root) steps ~0.99 lr. The semi task's `optimizer: auto` is this Adam."""
    from pipeline.optim import OPTIMIZERS

    steps = {}
    for name in ("adam", "adam_eps_inside"):
        p = torch.nn.Parameter(torch.zeros(3))
        opt = OPTIMIZERS.get(name)([p], 0.1, (0.5, 0.999), torch.device("cpu"))
        for _ in range(2):
            p.grad = torch.full((3,), 1e-6)
            opt.step()
        steps[name] = -p.detach()[0].item() / 2
    assert steps["adam_eps_inside"] == pytest.approx(0.1 * 1e-6 / (1e-12 + 1e-8) ** 0.5, rel=1e-4)
    assert steps["adam"] == pytest.approx(0.1 * 1e-6 / (1e-6 + 1e-8), rel=1e-3)
    assert semi_recipe().train.optimizer == "adam_eps_inside" and tiny_recipe().train.optimizer == "adam"


def test_the_average_of_d_starts_at_zero_and_moves_a_ten_thousandth_of_the_way_each_update():
    """a <- a + 1e-4 (p - a) from zero, for the parameters that train; D's fixed hidden scales are used as they are."""
    d = SemiDiscriminator((1, 4, 4), 3)
    average = ParameterAverage(d)
    assert all(not torch.count_nonzero(a) for a in average.averages.values())
    for _ in range(3):
        average.update()
    fixed = d.body[1].parametrizations.weight.original0
    assert not fixed.requires_grad and "body.1.parametrizations.weight.original0" not in average.averages
    averaged = dict(average.averaged().named_parameters())
    factor = 1 - (1 - 1e-4) ** 3
    for name, p in d.named_parameters():
        expected = p * factor if p.requires_grad else p
        assert torch.allclose(averaged[name], expected, rtol=1e-5, atol=1e-9), name


def test_the_batches_walk_permutations_as_the_reference():
    """Unlabelled: a new permutation each epoch, walked batch by batch (the rest dropped); labelled: the labelled set
    tiled in permutations, so 20 labels in batches of 20 give every label once a batch."""
    epoch = torch.cat([epoch_batch(45, 10, step, seed=3) for step in range(1, 5)])
    assert len(epoch) == 40 and len(set(epoch.tolist())) == 40  # 4 batches of 10, no index twice
    assert torch.equal(epoch_batch(45, 10, 2, seed=3), epoch_batch(45, 10, 2, seed=3))  # a function of seed and step
    assert not torch.equal(epoch_batch(45, 10, 5, seed=3), epoch_batch(45, 10, 1, seed=3))  # epoch 2: another order
    for step in (1, 2, 7):
        assert sorted(tiled_batch(20, 20, step, seed=0).tolist()) == list(range(20))
    counts = torch.bincount(tiled_batch(3, 8, 1, seed=0), minlength=3)
    assert counts.sum() == 8 and counts.min() >= 2 and counts.max() <= 3  # 8 of 3 labels: each 2 or 3 times


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
    assert any("conditional=True applies to task generate or voxel only" in n for n in lab.variants["cdcgan"].notes)
    raw["loss"] = "wgan_gp"  # a shared loss the task cannot use is the user's explicit choice: an error
    with pytest.raises(ConfigError, match="task 'semi' trains with loss ns or minimax, not 'wgan_gp'"):
        lab_from_raw(raw)
