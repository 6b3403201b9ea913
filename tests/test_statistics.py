"""Is the difference real? The statistics over seeds, density and coverage, the Fréchet distance used
during training, the convergence mark, and CAS."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import tiny_recipe

from pipeline.evaluation.checks import still_improving
from pipeline.metrics.frechet import frechet_distance, gaussian
from pipeline.metrics.prdc import prdc
from pipeline.stats import permutation_test, smallest_p, summarize


def test_summary_of_seeds_mean_sd_and_bootstrap_interval():
    s = summarize([3.0, 3.5, 4.0])
    assert s["mean"] == pytest.approx(3.5) and s["sd"] == pytest.approx(0.5) and s["n"] == 3
    assert 3.0 <= s["ci_low"] < 3.5 < s["ci_high"] <= 4.0
    # ten values 1..10: the percentile bootstrap of the mean is near mean +- 1.96 sd / sqrt(n) = 5.5 +- 1.78 (the
    # population sd of the resamples, 2.87 / sqrt(10)), far inside (min, max) = (1, 10)
    ten = summarize([float(v) for v in range(1, 11)])
    assert ten["ci_low"] == pytest.approx(5.5 - 1.78, abs=0.2) and ten["ci_high"] == pytest.approx(5.5 + 1.78, abs=0.2)
    assert summarize([3.0, 3.5, 4.0]) == s  # seeded: the same page twice
    wide, narrow = summarize(np.random.default_rng(0).normal(10, 5, 5)), summarize(np.random.default_rng(0).normal(10, 5, 50))
    assert (wide["ci_high"] - wide["ci_low"]) > (narrow["ci_high"] - narrow["ci_low"])
    assert summarize([2.0]) == {"mean": 2.0, "sd": None, "ci_low": None, "ci_high": None, "n": 1}
    assert summarize([float("nan"), None])["n"] == 0


def test_permutation_test_is_exact_for_few_seeds():
    """Complete separation: 2 of C(n+m, n) relabellings are as extreme (the two-sided floor)."""
    assert permutation_test([1, 2, 3], [7, 8, 9]) == pytest.approx(2 / 20) == smallest_p(3, 3)
    assert permutation_test([1, 2, 3, 4, 5], [10, 11, 12, 13, 14]) == pytest.approx(2 / 252)
    assert permutation_test([1, 9, 2, 8, 3], [2, 8, 3, 9, 1]) == pytest.approx(1.0)  # same values: no difference
    assert permutation_test([1.0], [2.0, 3.0]) is None  # one seed cannot be tested
    # unequal groups: the mirror of the most extreme split is a different, less extreme one, so the floor is 1 / C
    assert permutation_test([1, 2], [10, 11, 12]) == pytest.approx(1 / 10) == smallest_p(2, 3)
    assert smallest_p(3, 5) == pytest.approx(1 / 56) and smallest_p(4, 4) == pytest.approx(2 / 70)
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 15), rng.normal(3, 1, 15)  # C(30, 15) relabellings: sampled, seeded
    assert permutation_test(a, b) < 0.001


def test_frechet_distance_matches_torch_fidelity():
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 16, generator=gen) @ torch.randn(16, 16, generator=gen)
    b = torch.randn(400, 16, generator=gen) * 1.5 + 0.3
    ours = frechet_distance(gaussian(a), gaussian(b))
    theirs = fid_statistics_to_metric({"mu": a.double().mean(0).numpy(), "sigma": np.cov(a.double().numpy(), rowvar=False)},
                                      {"mu": b.double().mean(0).numpy(), "sigma": np.cov(b.double().numpy(), rowvar=False)},
                                      verbose=False)["frechet_inception_distance"]
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert frechet_distance(gaussian(a), gaussian(a)) == pytest.approx(0.0, abs=1e-6)


def test_a_sample_on_a_balls_boundary_is_outside_as_in_the_reference():
    """clovaai/generative-evaluation-prdc counts a sample inside a k-NN ball when strictly closer than its radius."""
    real = torch.tensor([[0.0], [2.0]])  # k = 1: each real ball has radius 2
    on_boundary = prdc(real, torch.tensor([[-2.0], [4.0]]), k=1)
    assert on_boundary["precision"] == 0.0 and on_boundary["density"] == 0.0 and on_boundary["coverage"] == 0.0
    inside = prdc(real, torch.tensor([[-1.9], [3.9]]), k=1)
    assert inside["precision"] == 1.0 and inside["coverage"] == 1.0


@pytest.mark.slow
def test_density_and_coverage_on_the_papers_sanity_case():
    """Naeem et al. 2020: two sets of 10,000 samples of the same 1000-d standard Gaussian, k = 5,
    give precision about 0.48, recall 0.47, density 1.06 and coverage 0.97 (their run; density is
    the noisiest: 0.95 to 1.13 over four seeds here)."""
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(10_000, 1000, generator=gen), torch.randn(10_000, 1000, generator=gen)
    got = prdc(real, fake, k=5)
    assert got["precision"] == pytest.approx(0.48, abs=0.02) and got["recall"] == pytest.approx(0.47, abs=0.02)
    assert got["density"] == pytest.approx(1.06, abs=0.1) and got["coverage"] == pytest.approx(0.97, abs=0.015)


def test_density_sees_crowding_and_coverage_sees_dropped_modes():
    gen = torch.Generator().manual_seed(0)
    centre = torch.zeros(8)
    centre[0] = 10.0
    real = torch.cat([torch.randn(300, 8, generator=gen), torch.randn(300, 8, generator=gen) + centre])  # two modes
    same = prdc(real, torch.cat([torch.randn(300, 8, generator=gen), torch.randn(300, 8, generator=gen) + centre]))
    one_mode = prdc(real, torch.randn(600, 8, generator=gen))  # the second mode dropped
    crowded = prdc(real, torch.cat([0.2 * torch.randn(300, 8, generator=gen), 0.2 * torch.randn(300, 8, generator=gen)
                                    + centre]))  # piled up where real samples are dense
    assert 0.8 < same["density"] < 1.2 and same["coverage"] > 0.9
    assert one_mode["coverage"] < 0.55 and one_mode["precision"] > 0.9  # real-looking, yet half the data is missing
    assert crowded["density"] > 2 * same["density"] and crowded["coverage"] < same["coverage"]


def test_still_improving_compares_the_last_quarter():
    rows = [{"step": s, "fid_classifier": f} for s, f in ((200, 80.0), (400, 50.0), (600, 40.0), (800, 30.0))]
    assert still_improving(rows, 800) == {"fid_drop_last_quarter": pytest.approx(0.25), "still_improving": True}
    flat = [{**r, "fid_classifier": f} for r, f in zip(rows, (80.0, 40.0, 31.0, 30.0))]
    assert still_improving(flat, 800)["still_improving"] is False  # 31 -> 30: 3%, a plateau
    assert still_improving([{"step": 800, "modes_captured": 8}], 800) == {}  # no FID curve: no mark


def test_training_checks_log_fid_and_the_cost_axes(images):
    """Every check records FID on the classifier's features against fixed real images, real images
    seen by D and seconds of training; a 5-critic-step loss sees five batches a generator step."""
    from pipeline.evaluation.checks import make_training_evaluator
    from pipeline.metrics.classifier import Classifier
    from pipeline.tasks import train
    from pipeline.tasks.generate import GenerateCheck

    classifier = Classifier(1, 10).eval()
    for loss, per_step in (("ns", 16), ("wgan_gp", 16 * 2)):
        recipe = tiny_recipe(loss=loss, train={"steps": 4, "eval_every": 2, "d_steps": 2 if loss == "wgan_gp" else 1})
        result = train(recipe, images, checker=GenerateCheck(make_training_evaluator(recipe, images, classifier), recipe),
                       progress=False)
        assert [r["step"] for r in result.eval_rows] == [2, 4]
        assert [r["images_d"] for r in result.eval_rows] == [2 * per_step, 4 * per_step]
        assert 0 < result.eval_rows[0]["seconds"] <= result.eval_rows[1]["seconds"]
        assert all(math.isfinite(r["fid_classifier"]) and r["fid_classifier"] >= 0 for r in result.eval_rows)


@pytest.mark.slow
def test_cas_tells_right_labels_from_wrong_ones(tmp_path):
    """CAS: a classifier trained on (image, label) pairs alone, tested on real held-out images. Real
    digits with their own labels score near the real classifier; the same digits with shuffled
    labels score near chance."""
    from pipeline.config import ClassifierConfig, DataConfig, EvalConfig
    from pipeline.data import prepare_dataset
    from pipeline.metrics.classifier import train_classifier
    from pipeline.evaluation.evaluate import evaluate_samples

    data = prepare_dataset("mnist5k", DataConfig())
    cfg = ClassifierConfig(epochs=2)
    classifier = train_classifier(data.x_train, data.y_train, data.x_test, data.y_test, 10, cfg, progress=False).model
    recipe = dataclasses.replace(tiny_recipe(conditional=True), eval=EvalConfig(metrics=("cas",)))
    x, y = data.x_train, data.y_train
    right = evaluate_samples(x, recipe, data, None, classifier, sample_labels=y, cache_root=tmp_path,
                             classifier_config=cfg).metrics
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    wrong = evaluate_samples(x, recipe, data, None, classifier, sample_labels=shuffled, cache_root=tmp_path,
                             classifier_config=cfg).metrics
    assert right["cas_real"] == wrong["cas_real"] > 0.9
    assert right["cas"] > 0.85 and wrong["cas"] < 0.3, (right, wrong)
    unconditional = evaluate_samples(x, dataclasses.replace(recipe, conditional=False), data, None, classifier,
                                     cache_root=tmp_path).metrics
    assert "cas" not in unconditional  # no labels: CAS does not apply


