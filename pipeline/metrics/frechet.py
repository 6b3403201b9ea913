"""The Fréchet distance between two Gaussians fitted to feature sets, in torch (no scipy): what FID
computes, cheap enough to run on the classifier's features during training.

FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)); the last trace is the sum of the square
roots of the eigenvalues of S1 S2, which are real and non-negative for covariance matrices.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian(features: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, covariance) of N x D features, in float64."""
    f = features.double()
    return f.mean(dim=0), torch.cov(f.T)


def frechet_distance(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> float:
    (mu1, s1), (mu2, s2) = a, b
    eigenvalues = torch.linalg.eigvals(s1 @ s2).real.clamp_min(0)
    return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * eigenvalues.sqrt().sum())
