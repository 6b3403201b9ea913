"""What task stack measures: whether a generated digit is what its description asked for (the dataset classifier
reads its class; its thickness, slant and width are measured as the description's were, and fall in the asked bin or
not), how real it looks (FID on the classifier's features against the described test digits), and how varied the
digits of one description are (mean pairwise SSIM: lower is more varied)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pipeline.tasks.stack.attributes import ATTRIBUTES, Bins, embed, measure, parse


@torch.no_grad()
def draw(generator: nn.Module, labels: Tensor, bins: Tensor, seed: int, stage: int = 2,
         batch_size: int = 500) -> tuple[Tensor | None, Tensor]:
    """(Stage-I images or None, the images at `stage`: Stage I's upscaled to 28x28 when 1) for descriptions given as
    classes and attribute bins, one each, from seeded latents; G is left in the mode it was in."""
    was_training = generator.training
    generator.eval()
    gen = torch.Generator().manual_seed(seed)
    lows, outs = [], []
    device = next(generator.parameters()).device
    for start in range(0, len(labels), batch_size):
        e = embed(labels[start:start + batch_size], bins[start:start + batch_size]).to(device)
        latent = torch.randn(len(e), generator.latent_dim, generator=gen).to(device)
        if stage == 1:
            c, _, _ = generator.ca1(e, latent[:, generator.z_dim:generator.z_dim + generator.c_dim])
            low = generator.stage1(latent[:, :generator.z_dim], c).float().cpu()
            lows.append(low)
            outs.append(F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False))
        else:
            low, high, _ = generator.stages(latent, e)
            lows.append(low.float().cpu() if low is not None else None)
            outs.append(high.float().cpu())
    generator.train(was_training)
    low = None if lows[0] is None else torch.cat(lows)
    return low, torch.cat(outs)


def described(x: Tensor, y: Tensor, bins: Bins) -> Tensor:
    """Each real digit's description as attribute bins (N, 3)."""
    return bins.bin(measure(x), y)


def description_metrics(generator: nn.Module, classifier: nn.Module | None, x_ref: Tensor, y_ref: Tensor, bins: Bins,
                        seed: int, stage: int = 2) -> dict[str, Any]:
    """G drawn once for each reference digit's description (`draw`), scored by `match_metrics`."""
    asked = described(x_ref, y_ref, bins)
    _, samples = draw(generator, y_ref, asked, seed, stage)
    return match_metrics(samples, classifier, x_ref, y_ref, bins, asked)[0]


def match_metrics(samples: Tensor, classifier: nn.Module | None, x_ref: Tensor, y_ref: Tensor, bins: Bins,
                  asked: Tensor | None = None) -> tuple[dict[str, Any], Tensor | None]:
    """How well `samples` (one for each reference digit's description) match them: the classifier's agreement with
    the asked class, each attribute's mean absolute error against the reference digit's measurement and the share
    in the asked bin, FID on the classifier's features against the reference digits; and the classifier's labels."""
    from pipeline.metrics.classifier import classify
    from pipeline.metrics.fidelity import classifier_features
    from pipeline.metrics.frechet import frechet_distance, gaussian

    asked = described(x_ref, y_ref, bins) if asked is None else asked
    got, want = measure(samples), measure(x_ref)
    out: dict[str, Any] = {}
    labels = None
    if classifier is not None:
        labels = classify(classifier, samples)
        out["class_accuracy"] = float((labels == y_ref).float().mean())
        out["fid_classifier"] = frechet_distance(gaussian(classifier_features(classifier, samples)),
                                                 gaussian(classifier_features(classifier, x_ref)))
    hits = bins.bin(got, y_ref) == asked
    for i, a in enumerate(ATTRIBUTES):
        out[f"{a}_error"] = float((got[a] - want[a]).abs().mean())
        out[f"{a}_accuracy"] = float(hits[:, i].float().mean())
    return out, labels


def one_description_diversity(generator: nn.Module, description: str, n: int, seed: int) -> dict[str, float]:
    """Mean pairwise SSIM of `n` digits drawn for one description (lower: more varied)."""
    from pipeline.metrics.diversity import mean_pairwise_ssim

    label, bins = parse(description)
    _, samples = draw(generator, torch.full((n,), label), bins.expand(n, -1), seed)
    return {"diversity_ssim_one_description": mean_pairwise_ssim(samples, num_pairs=min(1000, n * (n - 1) // 2),
                                                                 seed=seed)}
