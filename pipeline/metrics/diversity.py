"""Within-set diversity: mean SSIM between random pairs of images from one set (torchmetrics).

A collapsed generator repeats itself, so its pairs look alike (SSIM near 1); the same figure on
real images is the reference. MS-SSIM is used where the images are large enough for its five
scales (side > 160 px with an 11 px window), single-scale SSIM otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor


def ssim_kind(size: int) -> tuple[str, int]:
    """('ms_ssim' | 'ssim', Gaussian window size) valid for square images of side `size`."""
    if size > 160:
        return "ms_ssim", 11
    return "ssim", 11 if size >= 32 else (7 if size >= 16 else 3)


def mean_pairwise_ssim(x: Tensor, num_pairs: int = 1000, seed: int = 0, batch_size: int = 500) -> float:
    """Mean (MS-)SSIM over `num_pairs` random pairs of distinct images of `x` (N x C x H x W, [-1, 1])."""
    from torchmetrics.functional.image import (
        multiscale_structural_similarity_index_measure,
        structural_similarity_index_measure,
    )

    if len(x) < 2:
        raise ValueError("diversity needs at least two images")
    gen = torch.Generator().manual_seed(seed)
    i = torch.randint(len(x), (num_pairs,), generator=gen)
    j = (i + torch.randint(1, len(x), (num_pairs,), generator=gen)) % len(x)  # never the same image
    kind, window = ssim_kind(min(x.shape[-2:]))
    total = 0.0
    for start in range(0, num_pairs, batch_size):
        a = (x[i[start:start + batch_size]].float() + 1) / 2
        b = (x[j[start:start + batch_size]].float() + 1) / 2
        if kind == "ms_ssim":
            values = multiscale_structural_similarity_index_measure(a, b, data_range=1.0, kernel_size=window,
                                                                     reduction="none")
        else:
            values = structural_similarity_index_measure(a, b, data_range=1.0, kernel_size=window,
                                                         reduction="none")
        total += float(values.sum())
    return total / num_pairs
