"""What a translation's outputs say, against the true images (targets) of the same inputs.

Fidelity to the truth (a model trained on squared error should win these, as in SRGAN):
  `l1` (mean absolute error, pixels in [0, 1]), `psnr` (dB, per image, then averaged), `ssim`.
Realism and meaning (an adversarial loss should win these):
  `fid_classifier`: FID between the outputs and the true test images on the lab's classifier features;
  `accuracy`: the classifier's accuracy on the outputs against the true labels (does the output still
  show the right digit? the analogue of pix2pix's FCN score);
  `sharpness`: the outputs' mean gradient magnitude over the true images' (1: as sharp as real; a
  blurred average is below 1).
Diversity per input: `diversity_ssim_per_input`, mean SSIM between two outputs for the same input
  (near 1: G ignores its dropout noise and gives one answer per input, as pix2pix found).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from pipeline.metrics.classifier import classify
from pipeline.metrics.diversity import ssim_kind
from pipeline.metrics.fidelity import classifier_features
from pipeline.metrics.frechet import frechet_distance, gaussian

PSNR_CAP = 100.0  # dB: an exact reconstruction has infinite PSNR; capped so means stay finite


def _unit(x: Tensor) -> Tensor:
    return (x.float() + 1) / 2


def l1_error(output: Tensor, target: Tensor) -> float:
    """Mean absolute pixel error, pixels in [0, 1]."""
    return float((_unit(output) - _unit(target)).abs().mean())


def psnr(output: Tensor, target: Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE), pixels in [0, 1]; capped at PSNR_CAP dB."""
    mse = (_unit(output) - _unit(target)).square().flatten(1).mean(1).double()
    values = (10 * torch.log10(1.0 / mse)).clamp(max=PSNR_CAP)
    return float(values.mean())


def ssim(a: Tensor, b: Tensor, batch_size: int = 500) -> float:
    """Mean single-scale SSIM of image pairs a[i], b[i] (torchmetrics, Gaussian window sized for the images)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _, window = ssim_kind(min(a.shape[-2:]))
    total = 0.0
    for i in range(0, len(a), batch_size):
        total += float(structural_similarity_index_measure(_unit(a[i:i + batch_size]), _unit(b[i:i + batch_size]),
                                                           data_range=1.0, kernel_size=window, reduction="none").sum())
    return total / len(a)


def gradient_magnitude(x: Tensor) -> float:
    """Mean magnitude of horizontal and vertical pixel differences, pixels in [0, 1]."""
    u = _unit(x)
    return float((u[..., :, 1:] - u[..., :, :-1]).abs().mean() + (u[..., 1:, :] - u[..., :-1, :]).abs().mean()) / 2


def translation_metrics(outputs: Tensor, sources: Tensor, targets: Tensor, labels: Tensor | None,
                        classifier: nn.Module | None) -> dict[str, Any]:
    """`outputs`: K x N x C x H x W, K >= 2 outputs for each of the N inputs `sources`; the first set is
    scored against `targets` (the true images), the first two against each other for diversity."""
    first = outputs[0]
    metrics: dict[str, Any] = {
        "n_inputs": len(first),
        "l1": l1_error(first, targets),
        "psnr": psnr(first, targets),
        "ssim": ssim(first, targets),
        "sharpness": gradient_magnitude(first) / gradient_magnitude(targets),
        "diversity_ssim_per_input": ssim(outputs[0], outputs[1]),
    }
    if classifier is not None:
        feats = [classifier_features(classifier, x) for x in (first, targets)]
        metrics["fid_classifier"] = frechet_distance(gaussian(feats[0]), gaussian(feats[1]))
        if labels is not None:
            for name, x in (("accuracy", first), ("accuracy_input", sources), ("accuracy_real", targets)):
                metrics[name] = float((classify(classifier, x).cpu() == labels.cpu()).float().mean())
    return metrics
