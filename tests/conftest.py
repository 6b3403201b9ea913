"""Shared fixtures: tiny data and recipes, so every test runs on the CPU in seconds."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from pipeline.config import Recipe, TrainConfig, parse_params
from pipeline.data import Prepared

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
REPO = Path(__file__).resolve().parents[1]


def tiny_recipe(**overrides) -> Recipe:
    """A recipe with a handful of steps and narrow networks; `train=dict(...)` overrides train keys."""
    train_overrides = overrides.pop("train", {})
    train = TrainConfig(steps=4, batch_size=16, z_dim=8, width=8, log_every=2, eval_every=2,
                        eval_samples=64, checkpoint_every=2, device="cpu")
    return Recipe(**{"train": dataclasses.replace(train, **train_overrides), **overrides})


def image_data(n: int = 64, size: int = 28, channels: int = 1, num_classes: int = 10, seed: int = 0) -> Prepared:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, size, size, generator=gen) * 2 - 1
    y = torch.arange(n) % num_classes
    info = {"name": "fake", "kind": "image", "shape": [channels, size, size], "num_classes": num_classes,
            "class_names": [str(i) for i in range(num_classes)], "modes": None, "mode_std": 0.0}
    return Prepared("fake", x, y, x[:16], y[:16], info)


def point_data(name: str = "ring8", n: int = 2000) -> Prepared:
    from pipeline.config import DataConfig
    from pipeline.data import prepare_dataset

    prepared = prepare_dataset(name, DataConfig())
    prepared.x_train, prepared.y_train = prepared.x_train[:n], prepared.y_train[:n]
    return prepared


@pytest.fixture
def images() -> Prepared:
    return image_data()


@pytest.fixture
def params_raw() -> dict:
    import yaml

    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def params(params_raw):
    return parse_params(params_raw)
