"""Datasets: sources by name, scaling to [-1, 1], deterministic split, prepared storage."""

from pipeline.data.prepare import Prepared, load_prepared, prepare_dataset, save_prepared
from pipeline.data.split import split_indices

__all__ = ["Prepared", "load_prepared", "prepare_dataset", "save_prepared", "split_indices"]
