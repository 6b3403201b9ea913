"""Split a source into train/test and store it as tensors, ready to sit on the training device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pipeline import paths
from pipeline.config import DataConfig
from pipeline.data.split import split_indices
from pipeline.errors import DataError
from pipeline.io import atomic_dir, load_torch, read_json, write_json

if TYPE_CHECKING:
    from pipeline.data.sources import RawData


@dataclass
class Prepared:
    """One prepared dataset: float32 tensors in [-1, 1] plus what evaluation needs to know."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor | None
    info: dict[str, Any]
    digits: "Prepared | None" = None    # stacked MNIST: its single digits, split (for the digit classifier)

    @property
    def kind(self) -> str:
        return self.info["kind"]

    @property
    def num_classes(self) -> int:
        return self.info["num_classes"]

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.info["shape"])

    @property
    def modes(self) -> torch.Tensor | None:
        return torch.tensor(self.info["modes"]) if self.info.get("modes") else None


def prepare_dataset(name: str, cfg: DataConfig) -> Prepared:
    """Load dataset `name` from its source and split it deterministically (`cfg.split_seed`)."""
    from pipeline.data.sources import DATASETS  # the prepare stage's alone: the others read prepared data

    return _split(name, DATASETS.get(name, "dataset")(cfg, cfg.split_seed), cfg)


def _split(name: str, raw: "RawData", cfg: DataConfig) -> Prepared:
    if not torch.isfinite(raw.x).all() or raw.x.dtype != torch.float32:
        raise DataError(f"dataset {name!r}: source returned non-finite or non-float32 values")
    train_idx, test_idx = raw.split or split_indices(len(raw.x), cfg.test_fraction, cfg.split_seed)
    info = {
        "name": name,
        "kind": raw.kind,
        "shape": list(raw.x.shape[1:]),
        "num_classes": raw.num_classes if raw.y is not None else 0,
        "class_names": raw.class_names if raw.y is not None else [],
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "range": [float(raw.x.min()), float(raw.x.max())],
        "modes": raw.modes.tolist() if raw.modes is not None else None,
        "mode_std": raw.mode_std,
        "stacked": raw.stacked,
    }
    if raw.stacked:
        info["stacked_from"] = cfg.stacked_from
    pick = lambda t, idx: None if t is None else t[idx].contiguous()  # noqa: E731
    digits = _split(f"{name}-digits", raw.digits, cfg) if raw.digits is not None else None
    return Prepared(name, pick(raw.x, train_idx), pick(raw.y, train_idx), pick(raw.x, test_idx), pick(raw.y, test_idx),
                    info, digits)


def save_prepared(prepared: Prepared, directory: Path) -> None:
    """Write train.pt, test.pt and info.json (and digits/ for stacked data) atomically: all or nothing."""
    with atomic_dir(directory) as tmp:
        _write(prepared, tmp)


def _write(prepared: Prepared, directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    torch.save({"x": prepared.x_train, "y": prepared.y_train}, directory / "train.pt")
    torch.save({"x": prepared.x_test, "y": prepared.y_test}, directory / "test.pt")
    write_json(prepared.info, directory / "info.json")
    if prepared.digits is not None:
        _write(prepared.digits, directory / "digits")


def load_prepared(name: str, root: Path | None = None) -> Prepared:
    directory = (root / name) if root is not None else paths.prepared_dir(name)
    if not (directory / "info.json").exists():
        raise DataError(f"prepared data for {name!r} not found in {directory}: run `dvc repro prepare` first")
    return _read(name, directory)


def _read(name: str, directory: Path) -> Prepared:
    train, test = load_torch(directory / "train.pt"), load_torch(directory / "test.pt")
    digits = _read(f"{name}-digits", directory / "digits") if (directory / "digits").is_dir() else None
    return Prepared(name, train["x"], train["y"], test["x"], test["y"], read_json(directory / "info.json"), digits)
