"""Mode-collapse metrics: perfect and collapsed samplers give the values the protocols promise."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.data.sources import grid_modes, ring_modes, sample_mixture
from pipeline.metrics.modes import class_coverage, kl_divergence, mixture_metrics


def test_kl_divergence_by_hand():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert kl_divergence(torch.tensor([3.0, 1.0]), torch.tensor([3.0, 1.0])) == pytest.approx(0.0)


def test_class_coverage_balanced_and_collapsed():
    real = torch.arange(1000) % 10
    balanced = class_coverage(torch.arange(500) % 10, real, 10, min_share=0.2)
    assert balanced == {"classes_covered": 10, "class_kl": pytest.approx(0.0, abs=1e-12)}
    collapsed = class_coverage(torch.full((500,), 3), real, 10, min_share=0.2)
    assert collapsed["classes_covered"] == 1 and collapsed["class_kl"] == pytest.approx(math.log(10))
    # a class with fewer than 20% of its expected share does not count
    few = torch.cat([torch.arange(450) % 9, torch.full((5,), 9)])
    assert class_coverage(few, real, 10, min_share=0.2)["classes_covered"] == 9


@pytest.mark.parametrize("modes, std", [(ring_modes(), 0.01), (grid_modes(), 0.05)])
def test_perfect_sampler_captures_every_mode(modes, std):
    points, _ = sample_mixture(modes, std, 2500, seed=1)
    m = mixture_metrics(points, modes, std)
    assert m["modes_captured"] == len(modes)
    # within 3 std of the mean of a 2D Gaussian: 1 - exp(-9/2) = 98.9% of the points
    assert m["high_quality_frac"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    assert m["reverse_kl"] < 0.02


def test_one_mode_sampler_captures_one():
    modes = ring_modes()
    points = modes[2] + 0.01 * torch.randn(2500, 2)
    m = mixture_metrics(points, modes, 0.01)
    assert m["modes_captured"] == 1 and m["reverse_kl"] == pytest.approx(math.log(8), rel=1e-6)


def test_no_high_quality_points_gives_no_kl():
    m = mixture_metrics(torch.full((100, 2), 10.0), ring_modes(), 0.01)
    assert m == {"modes_captured": 0, "high_quality_frac": 0.0, "reverse_kl": None}


def test_2d_histogram_counts_high_quality_points_only():
    """The report's mode histogram follows the protocol: a point far from every mode counts for none."""
    from conftest import point_data, tiny_recipe

    from pipeline.evaluation.evaluate import evaluate_samples

    data = point_data()
    modes = data.modes
    near = modes[torch.arange(80) % 2] + 0.001 * torch.randn(80, 2)  # 40 on mode 0, 40 on mode 1
    far = (modes[5] * 0.5).expand(20, 2)  # halfway to the centre: nearest mode 5, but low quality
    evaluation = evaluate_samples(torch.cat([near, far]), tiny_recipe(dataset="ring8", arch="toy"), data, None, None)
    metrics, hist = evaluation.metrics, evaluation.histogram
    assert hist["generated"] == [40, 40, 0, 0, 0, 0, 0, 0]
    assert metrics["modes_captured"] == 2 and metrics["high_quality_frac"] == pytest.approx(0.8)
    assert metrics["reverse_kl"] == pytest.approx(math.log(4), rel=1e-6)  # uniform over 2 of 8 modes


def test_stacked_mnist_training_checks_draw_enough_samples_for_1000_modes():
    from conftest import image_data

    from pipeline.kinds import KINDS

    stacked = image_data(n=16, channels=3, num_classes=1000)
    assert KINDS.get("stacked").check_samples(1000, stacked) == 10_000
    assert KINDS.get("image").check_samples(1000, image_data()) == 1000
    # why: a perfect sampler (uniform over the 1000 triples) shows about 632 of them in 1,000 draws, and all but
    # a handful in the check's 10,000 draws
    gen = torch.Generator().manual_seed(0)
    shown = {n: len(torch.randint(1000, (n,), generator=gen).unique()) for n in (1000, 10_000)}
    assert 600 < shown[1000] < 665 and shown[10_000] >= 998
