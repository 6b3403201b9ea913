"""Evaluation that tells the truth, checked on the real bundled digits: the classifier is accurate,
FID separates real from noise, collapse shows up, stacked MNIST counts its modes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import tiny_recipe

from pipeline.checkpoint import load_classifier, save_classifier
from pipeline.config import ClassifierConfig, DataConfig, EvalConfig
from pipeline.data import prepare_dataset
from pipeline.kinds import kind_of
from pipeline.metrics.classifier import ChannelwiseClassifier, classify, train_classifier
from pipeline.metrics.diversity import mean_pairwise_ssim, ssim_kind
from pipeline.metrics.evaluate import evaluate_samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist():
    return prepare_dataset("mnist5k", DataConfig())


@pytest.fixture(scope="module")
def classifier(mnist, tmp_path_factory):
    """The classifier stage's training, with the shipped settings, on the real 4,500 training digits."""
    result = train_classifier(mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test, 10, ClassifierConfig(),
                              progress=False)
    path = tmp_path_factory.mktemp("classifier") / "mnist5k.pt"
    save_classifier(path, result, "mnist5k", mnist.info["class_names"])
    return result, path, load_classifier(path)


def test_classifier_accuracy_on_held_out_mnist5k(classifier):
    result, _, _ = classifier
    assert result.n_test == 500
    assert result.test_accuracy >= 0.97


def test_frechet_distance_matches_the_closed_form():
    """FD(N(m1, S1), N(m2, S2)) = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)); for commuting
    covariances S = R diag(s) R^T the square root is R diag(sqrt(s1 s2)) R^T."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    s1, s2 = rng.uniform(0.5, 3.0, 6), rng.uniform(0.5, 3.0, 6)
    m1, m2 = rng.standard_normal(6), rng.standard_normal(6)
    stat = lambda m, s: {"mu": m, "sigma": rotation @ np.diag(s) @ rotation.T}  # noqa: E731
    expected = np.sum((m1 - m2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = fid_statistics_to_metric(stat(m1, s1), stat(m2, s2), verbose=False)["frechet_inception_distance"]
    assert got == pytest.approx(expected, rel=1e-6)


def evaluate(samples, mnist, classifier, **eval_changes):
    _, path, model = classifier
    recipe = tiny_recipe()
    recipe = dataclasses.replace(recipe, eval=dataclasses.replace(EvalConfig(kid_subset_size=500), **eval_changes))
    return evaluate_samples(samples, recipe, mnist, path, model)


def test_fid_real_halves_small_noise_large_collapse_obvious(mnist, classifier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # torch-fidelity's cache of real features goes to data/fidelity_cache here
    perm = torch.randperm(len(mnist.x_train), generator=torch.Generator().manual_seed(0))
    half = mnist.x_train[perm[len(perm) // 2:]]  # a random half: FID against all real images
    real, _ = evaluate(half, mnist, classifier)
    noise, _ = evaluate(torch.rand(2000, 1, 28, 28) * 2 - 1, mnist, classifier)
    repeated, hist = evaluate(mnist.x_train[:1].expand(2000, -1, -1, -1).clone(), mnist, classifier)

    assert real["fid_classifier"] < 5 and noise["fid_classifier"] > 50 * real["fid_classifier"]
    assert noise["kid_mean_classifier"] > 20 * max(real["kid_mean_classifier"], 1e-3)
    assert real["classes_covered"] == 10 and real["class_kl"] < 0.01
    assert repeated["classes_covered"] == 1 and repeated["class_kl"] > 2.0  # log 10 = 2.30 for one class
    assert sum(1 for g in hist["generated"] if g) == 1 and hist["real"] == torch.bincount(mnist.y_train).tolist()
    assert repeated["diversity_ssim"] == pytest.approx(1.0) and real["diversity_ssim"] < 0.6
    assert real["recall_classifier"] > 0.5 and repeated["recall_classifier"] < 0.05

    cache_dir = tmp_path / "data/fidelity_cache"
    cache = sorted(cache_dir.iterdir())
    kinds = {prefix: [p for p in cache if p.name.startswith(prefix)]
             for prefix in ("mnist5k-train-classifier-", "generated-classifier-", "labels-")}
    assert all(kinds.values()) and sum(map(len, kinds.values())) == len(cache), cache  # real, generated, labels
    stamps = {p.name: p.stat().st_mtime_ns for p in cache}
    again, _ = evaluate(half, mnist, classifier)  # features and labels come from the cache, not recomputed
    assert {p.name: p.stat().st_mtime_ns for p in cache_dir.iterdir()} == stamps
    assert again["fid_classifier"] == real["fid_classifier"]
    evaluate(half[:1000], mnist, classifier)  # another real subset (1,000 images): its own cache entry
    assert set(stamps) < {p.name for p in cache_dir.iterdir()}


def test_stacked_mnist_of_real_digits_covers_close_to_1000_modes(mnist, classifier):
    stacked = prepare_dataset("stacked_mnist", DataConfig())
    assert stacked.x_train.shape[1:] == (3, 28, 28) and stacked.num_classes == 1000
    assert kind_of(stacked).protocol_samples(stacked) == 26_000
    base = classifier[2]
    model = ChannelwiseClassifier(base, 3)
    samples = stacked.x_train[:9000]
    labels = classify(model, samples)
    assert (labels == stacked.y_train[:9000]).float().mean() > 0.9  # 3 digits right at once
    metrics = kind_of(stacked).mode_metrics(samples, stacked, model, 0.2, labels)
    assert metrics["modes_covered"] >= 990 and metrics["mode_kl"] < 0.15
    collapsed = kind_of(stacked).mode_metrics(samples[:1].expand(500, -1, -1, -1), stacked, model, 0.2)
    assert collapsed["modes_covered"] == 1 and collapsed["mode_kl"] == pytest.approx(math.log(1000), rel=1e-6)


def test_fidelity_sets_are_cut_to_equal_size_by_a_seeded_subset(monkeypatch, tmp_path):
    """FID/KID/precision/recall compare sets of equal size: the larger one is subsampled."""
    import torch_fidelity

    from pipeline.metrics.fidelity import fidelity_metrics

    seen = []
    monkeypatch.setattr(torch_fidelity, "calculate_metrics",
                        lambda **kw: seen.append(kw) or {"frechet_inception_distance": 1.0})
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    gen = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1)
    real = torch.arange(100, 130, dtype=torch.uint8).reshape(30, 1, 1, 1)
    kw = dict(real_name="r", features="classifier", weights_path=weights, kid_subset_size=1000, cache_root=tmp_path)
    fidelity_metrics(gen, real, seed=0, **kw)
    fidelity_metrics(real, gen, seed=0, **kw)
    fidelity_metrics(gen, real, seed=0, **kw)
    fidelity_metrics(gen, real, seed=1, **kw)
    first, swapped, same, other = seen
    assert len(first["input1"]) == len(first["input2"]) == 10 and first["kid_subset_size"] == 10
    assert len(swapped["input1"]) == len(swapped["input2"]) == 10
    subset = lambda call: sorted(int(call["input2"][i]) for i in range(10))  # noqa: E731
    assert set(subset(first)) < set(range(100, 130))  # a random subset of the real images
    assert subset(first) == subset(same) != subset(other)  # seeded
    assert first["input2_cache_name"] == same["input2_cache_name"] != other["input2_cache_name"]


def test_real_feature_cache_is_keyed_by_contents_extractor_and_weights(tmp_path):
    from pipeline.metrics.fidelity import real_cache_name

    w1, w2 = tmp_path / "a.pt", tmp_path / "b.pt"
    w1.write_bytes(b"one")
    w2.write_bytes(b"two")
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    name = real_cache_name(x, "mnist5k-train", "classifier", w1)
    assert name == real_cache_name(x.clone(), "mnist5k-train", "classifier", w1)  # same contents, same entry
    resized = torch.zeros(4, 1, 16, 16, dtype=torch.uint8)  # same dataset name, another image size
    other_split = x.clone()
    other_split[0, 0, 0, 0] = 1
    assert len({name, real_cache_name(resized, "mnist5k-train", "classifier", w1),
                real_cache_name(other_split, "mnist5k-train", "classifier", w1),
                real_cache_name(x, "mnist5k-train", "inception", w1),
                real_cache_name(x, "mnist5k-train", "classifier", w2)}) == 5


def test_intra_fid_sees_collapse_inside_a_class(mnist, classifier):
    """A 'conditional generator' that returns the right class but one image per class covers all
    classes (class metrics are perfect) yet its intra-FID is far above that of real images."""
    from pipeline.metrics.fidelity import intra_fid

    _, _, model = classifier
    x, y = mnist.x_train, mnist.y_train
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    honest = intra_fid(model, x[perm[:2250]], y[perm[:2250]], x, y, 10)
    first_of_class = torch.stack([x[(y == k).nonzero()[0, 0]] for k in range(10)])
    labels = torch.arange(2250) % 10
    collapsed = intra_fid(model, first_of_class[labels], labels, x, y, 10)
    assert set(honest) == {"intra_fid_classifier", "intra_fid_max_classifier"}
    assert honest["intra_fid_classifier"] < 15 and honest["intra_fid_max_classifier"] >= honest["intra_fid_classifier"]
    assert collapsed["intra_fid_classifier"] > 10 * honest["intra_fid_classifier"]
    labelled = kind_of(mnist).mode_metrics(first_of_class[labels], mnist, model, 0.2)
    assert labelled["classes_covered"] == 10 and labelled["class_kl"] < 0.01  # blind to it
    assert intra_fid(model, x[:50], y[:50], x, y, 10) == {}  # too few per class for a covariance


def test_inception_features_use_the_local_weights(monkeypatch, tmp_path):
    import torch_fidelity

    from pipeline.metrics.fidelity import fidelity_metrics

    seen = {}

    def fake_calculate_metrics(**kwargs):
        seen.update(kwargs)
        return {"frechet_inception_distance": 12.5, "kernel_inception_distance_mean": 0.1,
                "kernel_inception_distance_std": 0.01, "precision": 0.5, "recall": 0.4, "f_score": 0.44}

    monkeypatch.setattr(torch_fidelity, "calculate_metrics", fake_calculate_metrics)
    weights = tmp_path / "pt_inception-2015-12-05.pth"
    weights.write_bytes(b"weights")
    images = torch.zeros(10, 1, 28, 28, dtype=torch.uint8)
    out = fidelity_metrics(images, images, real_name="mnist5k-train", features="inception", weights_path=weights,
                           kid_subset_size=1000, cache_root=tmp_path)
    assert seen["feature_extractor"] == "inception-v3-compat"
    assert seen["feature_extractor_weights_path"] == str(weights)
    assert seen["input1"][0].shape == (3, 28, 28)  # grayscale is given to Inception as RGB
    assert seen["kid_subset_size"] == 10  # never more than the samples
    assert out == {"fid_inception": 12.5, "kid_mean_inception": 0.1, "kid_std_inception": 0.01,
                   "precision_inception": 0.5, "recall_inception": 0.4}


def test_ssim_window_fits_the_image_size():
    assert ssim_kind(8) == ("ssim", 3) and ssim_kind(28) == ("ssim", 7) and ssim_kind(64) == ("ssim", 11)
    assert ssim_kind(256) == ("ms_ssim", 11)
    same = torch.rand(1, 3, 256, 256).expand(4, -1, -1, -1) * 2 - 1
    assert mean_pairwise_ssim(same, num_pairs=4) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="at least two images"):
        mean_pairwise_ssim(same[:1])
