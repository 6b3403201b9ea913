"""Task stack (StackGAN): the measured attributes, the descriptions and their embedding, conditioning augmentation
and its KL, the two stages' training (Stage I frozen under Stage II), resume, the metrics of matching a description,
and bad inputs, each against a hand computation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from conftest import assert_resumes_to_the_same_generator, image_data, point_data, raw_recipe

from pipeline.config import SampleConfig, StackConfig
from pipeline.errors import ConfigError
from pipeline.tasks import TASKS, train
from pipeline.tasks.stack.attributes import (EMBEDDING_DIM, VOCABULARY, WORD_VECTORS, Bins, bag_of_words, describe,
                                             embed, measure, parse)
from pipeline.tasks.stack.metrics import description_metrics
from pipeline.tasks.stack.networks import ConditioningAugmentation, StackGenerator, TextDiscriminator, kl_loss
from pipeline.variants import resolve


def stack_recipe(stack: dict | None = None, sample: dict | None = None, **train_keys):
    raw = raw_recipe(task="stack", train={"width": 8, "z_dim": 8, **train_keys})
    raw = dataclasses.replace(raw, stack=StackConfig(**(stack or {})),
                              sample=dataclasses.replace(SampleConfig(), **(sample or {})))
    return resolve(raw)[0]


def bar(shear_per_row: float = 0.0) -> torch.Tensor:
    """A 3-pixel-wide, 15-row stroke in a 28x28 image, its rows shifted right by `shear_per_row` per row upwards."""
    x = torch.full((1, 1, 28, 28), -1.0)
    for row in range(6, 21):
        left = 12 + round(shear_per_row * (20 - row))
        x[0, 0, row, left:left + 3] = 1.0
    return x


def test_thickness_slant_and_width_of_hand_drawn_strokes():
    upright = measure(bar())
    # area 45; the 13 middle pixels of the centre column have ink on all four sides: perimeter 32
    assert upright["thickness"].item() == pytest.approx(45 / 16)
    assert upright["slant"].item() == pytest.approx(0.0, abs=1e-5) and upright["width"].item() == pytest.approx(3.0)
    leaning = measure(bar(shear_per_row=0.5))  # 7 pixels right over 14 rows up: leans right by about atan(0.5)
    assert 20 < leaning["slant"].item() < 30
    assert leaning["width"].item() == pytest.approx(3.0, abs=1.0)  # the shear undone, still about 3 wide
    assert measure(-torch.ones(1, 1, 28, 28))["thickness"].item() == 0.0  # a blank image measures 0


def test_bins_are_tertiles_within_each_class_for_thickness_and_width_and_over_all_for_slant():
    values = torch.arange(12, dtype=torch.float32)
    labels = torch.tensor([0] * 6 + [1] * 6)
    measured = {"thickness": values, "slant": values, "width": values}
    bins = Bins.fit(measured, labels, 2)
    assert bins.edges[0]["thickness"] == pytest.approx((5 / 3, 10 / 3))  # class 0 holds 0..5
    assert bins.edges[1]["thickness"] == pytest.approx((6 + 5 / 3, 6 + 10 / 3))
    assert bins.edges[0]["slant"] == bins.edges[1]["slant"] == pytest.approx((11 / 3, 22 / 3))
    assert bins.bin(measured, labels)[:, 0].tolist() == [0, 0, 1, 1, 2, 2] * 2
    assert bins.bin(measured, labels)[:, 1].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert Bins.from_list(bins.to_list()) == bins


def test_descriptions_read_back_and_embed_as_their_bag_of_words():
    text = describe(7, torch.tensor([2, 2, 0]))
    assert text == "a thick, right-slanted, narrow seven"
    label, bins = parse(text)
    assert label == 7 and bins.tolist() == [2, 2, 0]
    bag = bag_of_words(torch.tensor([label]), bins.unsqueeze(0))
    assert bag.shape == (1, len(VOCABULARY)) and bag.sum() == 4
    words = [VOCABULARY[i] for i in bag[0].nonzero().flatten().tolist()]
    assert set(words) == {"thick", "right-slanted", "narrow", "seven"}
    # the embedding: the sum of the four words' fixed N(0, 1) vectors, the same in every process
    e = embed(torch.tensor([label]), bins.unsqueeze(0))
    assert e.shape == (1, EMBEDDING_DIM)
    torch.testing.assert_close(e[0], sum(WORD_VECTORS[VOCABULARY.index(w)] for w in words))
    again = torch.randn(len(VOCABULARY), EMBEDDING_DIM, generator=torch.Generator().manual_seed(0))
    assert torch.equal(WORD_VECTORS, again) and 0.8 < float(WORD_VECTORS.std()) < 1.2


@pytest.mark.parametrize("text, message", [
    ("a huge, upright, wide seven", r"unknown word 'huge'; the vocabulary: thickness: thin, medium, thick; slant: "
                                    r"left-slanted, upright, right-slanted; width: narrow, regular, wide; digits: zero"),
    ("a thick seven", r"does not say its slant, width"),
])
def test_a_description_outside_the_vocabulary_is_named_before_training(text, message):
    with pytest.raises(ConfigError, match=r"sample\.descriptions\[1\]: description .*" + message):
        stack_recipe(sample={"descriptions": ("a thin, upright, narrow two", text)})


def test_conditioning_augmentation_and_its_kl():
    ca = ConditioningAugmentation(4, 3)
    e = torch.rand(5, 4)
    c, mu, logvar = ca(e, torch.zeros(5, 3))
    assert torch.equal(c, mu)  # no noise: the mean
    c2, _, _ = ca(e, torch.ones(5, 3))
    torch.testing.assert_close(c2, mu + torch.exp(0.5 * logvar))
    assert kl_loss(torch.zeros(2, 3), torch.zeros(2, 3)).item() == 0.0
    # 0.5 mu^2 in each of the 3 dimensions, averaged over them (the reference's mean over every element)
    assert kl_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(0.5)
    mu, logvar = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])  # 0.5 (4 + 1 - 1 - 0), 0.5 (4 - 1 - ln 4)
    assert kl_loss(mu, logvar).item() == pytest.approx((2.0 + 0.5 * (3 - math.log(4.0))) / 2)
    # the reference's ReLU on fc's output: a negative pre-activation gives mu 0 and log-variance 0 (unit noise)
    ca.fc.bias.data.fill_(-1.0)
    ca.fc.weight.data.zero_()
    _, mu, logvar = ca(e, torch.zeros(5, 3))
    assert torch.equal(logvar, torch.zeros(5, 3)) and torch.equal(mu, torch.zeros(5, 3))


def test_the_two_stages_and_the_one_stage_baseline_make_28x28_digits_of_about_one_size():
    two, one = StackGenerator(8, EMBEDDING_DIM, 4, 16, 2), StackGenerator(8, EMBEDDING_DIM, 4, 16, 1)
    assert two.latent_dim == 8 + 2 * 4 and one.latent_dim == 8 + 4
    e = embed(torch.tensor([3, 5]), torch.tensor([[0, 1, 2], [2, 1, 0]]))
    low, high, kls = two.stages(torch.randn(2, two.latent_dim), e)
    assert low.shape == (2, 1, 14, 14) and high.shape == (2, 1, 28, 28) and len(kls) == 2
    assert one(torch.randn(2, one.latent_dim), e).shape == (2, 1, 28, 28)
    n_two, n_one = (sum(p.numel() for p in g.parameters()) for g in (two, one))
    assert 0.8 < n_one / n_two < 1.0
    assert TextDiscriminator(14, 4, 8)(low, kls[0][0]).shape == (2,)  # D reads the CA's mean, c_dim wide


def test_stage_two_trains_on_a_frozen_stage_one_and_a_resume_ends_at_the_same_weights(tmp_path):
    data = image_data(64)
    recipe = stack_recipe(stack={"stage1_steps": 3}, steps=6, log_every=1)
    full = train(recipe, data, progress=False)
    assert [row["stage"] for row in full.log_rows] == [1, 1, 1, 2, 2, 2]
    assert all(math.isfinite(row["loss_d"]) and "d_wrong" in row for row in full.log_rows)
    assert_resumes_to_the_same_generator(recipe, data, full, tmp_path)


def test_stage_one_does_not_change_while_stage_two_trains():
    class Snapshot:
        def __init__(self):
            self.seen = {}

        def __call__(self, run):
            self.seen[run.step] = {k: v.clone() for k, v in run.generator.stage1.state_dict().items()}
            return {}

        def picture(self, run):
            return None

    snapshot = Snapshot()
    train(stack_recipe(stack={"stage1_steps": 3}, steps=6, eval_every=3), image_data(64), progress=False,
          checker=snapshot)
    after_stage_one, end = snapshot.seen[3], snapshot.seen[6]
    assert all(torch.equal(after_stage_one[k], end[k]) for k in end)  # weights and batch-norm statistics


def test_matching_a_description_is_scored_by_measuring_the_digit():
    class Replay(torch.nn.Module):
        """A 'generator' that returns given digits, whatever it is asked."""
        latent_dim, z_dim, c_dim = 4, 4, 0

        def __init__(self, digits):
            super().__init__()
            self.digits, self.weight = digits, torch.nn.Parameter(torch.zeros(1))

        def stages(self, latent, e):
            return None, self.digits[:len(latent)], []

    x = torch.cat([bar(), bar(0.5), bar(-0.5), bar(0.25)] * 3)
    y = torch.tensor([0, 1] * 6)
    bins = Bins.fit(measure(x), y, 2)
    exact = description_metrics(Replay(x), None, x, y, bins, seed=0)
    assert exact["slant_accuracy"] == 1.0 and exact["slant_error"] == 0.0 and exact["thickness_error"] == 0.0
    shuffled = description_metrics(Replay(x.roll(1, 0)), None, x, y, bins, seed=0)
    assert shuffled["slant_accuracy"] < 1.0 and shuffled["slant_error"] > 5.0


def test_task_stack_refuses_what_it_cannot_train():
    with pytest.raises(ConfigError, match=r"task 'stack' trains with loss ns, not 'wgan'"):
        resolve(dataclasses.replace(raw_recipe(task="stack"), loss="wgan"))
    with pytest.raises(ConfigError, match=r"stack\.stage1_steps must leave both stages steps: between 1 and "
                                          r"train\.steps - 1 \(3\), got 4"):
        stack_recipe(stack={"stage1_steps": 4})
    with pytest.raises(ConfigError, match=r"stack\.stages must be 2 .* or 1 .*, got 3"):
        stack_recipe(stack={"stages": 3})
    with pytest.raises(ConfigError, match=r"task stack describes 28x28 grey digits .* dataset 'ring8' \(points"):
        TASKS.get("stack").check_data(point_data())
    with pytest.raises(ConfigError, match=r"stack\.stages: applies to task stack only, not 'generate'"):
        resolve(dataclasses.replace(raw_recipe(), stack=StackConfig(stages=1)), own={"stack": {"stages": 1}})
