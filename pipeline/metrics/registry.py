"""Evaluation metrics by name, selected by `eval.metrics` (in the manner of StyleGAN2-ADA's metric
registry): each metric says whether it applies to a run and computes a flat dict of numbers.

Adding a metric is one function (here or in its own module) and one `METRICS.add` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pipeline.registry import Registry

if TYPE_CHECKING:
    import torch.nn as nn
    from torch import Tensor

    from pipeline.config import ClassifierConfig, Recipe
    from pipeline.data import Prepared
    from pipeline.kinds import DataKind


@dataclass
class EvalContext:
    """Everything a metric may look at."""

    samples: "Tensor"                 # float: images in [-1, 1] or 2D points
    sample_labels: "Tensor | None"    # the labels a conditional generator was given
    recipe: "Recipe"
    prepared: "Prepared"
    kind: "DataKind"
    classifier: "nn.Module | None"
    classifier_path: Path | None
    cache_root: Path
    inception_weights: Path | None = None  # when eval.features asks for Inception: its weights file
    classifier_config: "ClassifierConfig | None" = None  # how the lab's classifier trains (for CAS)
    protocol: dict[str, dict[str, Any]] = field(default_factory=dict)  # how each FID was measured, by features
    load_classifier: "Callable[[str], nn.Module] | None" = None  # reads classifier_path (storage's, handed in)

    @cached_property
    def labels(self) -> "Tensor | None":
        """The classifier's label of every generated image (computed once, shared by the metrics, and
        kept in the cache keyed by the samples' and the classifier's contents)."""
        from pipeline.io import load_torch, save_torch
        from pipeline.metrics.classifier import classify
        from pipeline.metrics.fidelity import file_digest, tensor_digest

        if self.classifier is None or not self.kind.images:
            return None
        if self.classifier_path is None:
            return classify(self.classifier, self.samples)
        path = self.cache_root / f"labels-{tensor_digest(self.samples)}-{file_digest(self.classifier_path)}.pt"
        if path.exists():
            return load_torch(path)
        labels = classify(self.classifier, self.samples)
        save_torch(labels, path)
        return labels


@dataclass(frozen=True)
class Metric:
    compute: Callable[[EvalContext], dict[str, Any]]
    applies: Callable[[EvalContext], bool] = lambda ctx: True
    about: str = ""


METRICS: Registry[Metric] = Registry("metric")


def _modes(ctx: EvalContext) -> dict[str, Any]:
    return ctx.kind.mode_metrics(ctx.samples, ctx.prepared, ctx.classifier, ctx.recipe.eval.class_share, ctx.labels)


def _fidelity_weights(ctx: EvalContext, features: str) -> Path | None:
    """The weights file of a feature extractor: the classifier's checkpoint, or the Inception weights."""
    return ctx.classifier_path if features == "classifier" else ctx.inception_weights


def _fidelity_applies(ctx: EvalContext) -> bool:
    return ctx.kind.images and any(_fidelity_weights(ctx, f) is not None for f in ctx.recipe.eval.features)


def _fidelity(ctx: EvalContext) -> dict[str, Any]:
    from pipeline.images import to_uint8
    from pipeline.metrics.fidelity import fidelity_metrics

    e, prepared = ctx.recipe.eval, ctx.prepared
    real = prepared.x_test if e.reference == "test" else prepared.x_train
    out: dict[str, Any] = {}
    for features in e.features:
        weights = _fidelity_weights(ctx, features)
        if weights is None:  # no classifier for this dataset (unlabelled images)
            continue
        metrics, protocol = fidelity_metrics(
            to_uint8(ctx.samples), to_uint8(real), real_name=f"{prepared.name}-{e.reference}", features=features,
            weights_path=weights, kid_subset_size=e.kid_subset_size, cache_root=ctx.cache_root,
            batch_size=e.batch_size, seed=ctx.recipe.seed, load_classifier=ctx.load_classifier)
        out.update(metrics)
        ctx.protocol[features] = {**protocol, "reference": f"{prepared.name} {e.reference} split"}
    return out


def _intra_fid(ctx: EvalContext) -> dict[str, Any]:
    from pipeline.images import from_uint8, to_uint8
    from pipeline.metrics.fidelity import intra_fid

    quantised = lambda x: from_uint8(to_uint8(x))  # noqa: E731  (as the images are stored and compared)
    return intra_fid(ctx.classifier, quantised(ctx.samples), ctx.sample_labels, quantised(ctx.prepared.x_train),
                     ctx.prepared.y_train, ctx.prepared.num_classes, seed=ctx.recipe.seed)


def _diversity(ctx: EvalContext) -> dict[str, Any]:
    from pipeline.metrics.diversity import mean_pairwise_ssim

    pairs, seed = ctx.recipe.eval.diversity_pairs, ctx.recipe.seed
    return {"diversity_ssim": mean_pairwise_ssim(ctx.samples, pairs, seed=seed),
            "diversity_ssim_real": mean_pairwise_ssim(ctx.prepared.x_train, pairs, seed=seed)}


def _cas(ctx: EvalContext) -> dict[str, Any]:
    """Classification accuracy score (Ravuri & Vinyals 2019): the lab's classifier trained on the
    generated (image, label) pairs alone, tested on the real held-out images; beside it, the same
    classifier trained on real images. Low CAS with good FID: samples that look right but carry the
    wrong class, or too little of each class's variety."""
    from pipeline.config import ClassifierConfig
    from pipeline.metrics.classifier import accuracy, train_classifier

    p, cfg = ctx.prepared, ctx.classifier_config or ClassifierConfig()
    cfg = ClassifierConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed + ctx.recipe.seed)
    result = train_classifier(ctx.samples, ctx.sample_labels, p.x_test, p.y_test, p.num_classes, cfg, progress=False)
    return {"cas": result.test_accuracy, "cas_real": accuracy(ctx.classifier, p.x_test, p.y_test)}


METRICS.add("modes", Metric(_modes, about="mode collapse: classes covered, Stacked MNIST modes, 2D modes and quality"))
METRICS.add("fidelity", Metric(_fidelity, _fidelity_applies, "FID, KID, precision and recall (torch-fidelity), "
                                                                "density and coverage, on each of eval.features"))
METRICS.add("intra_fid", Metric(_intra_fid, lambda ctx: ctx.kind.images and ctx.classifier is not None
                                and ctx.sample_labels is not None and ctx.prepared.y_train is not None,
                                "per-class FID of conditional generators"))
METRICS.add("diversity", Metric(_diversity, lambda ctx: ctx.kind.images, "mean SSIM of random pairs of samples"))
METRICS.add("cas", Metric(_cas, lambda ctx: ctx.kind.images and ctx.kind.name == "image" and ctx.classifier is not None
                          and ctx.sample_labels is not None and ctx.prepared.y_test is not None,
                          "conditional models: a classifier trained on generated pairs, tested on real images"))
