"""Experiment tracking behind a small protocol, so training never depends on MLflow directly.

`NullTracker` is used by tests and by anyone who opts out; the MLflow implementation lives in
`pipeline.tracking_mlflow` (imported lazily: mlflow is slow to import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol

from torch import Tensor


class Tracker(Protocol):
    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_image(self, image: Tensor, name: str, step: int) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...


class NullTracker:
    """Records nothing; remembers what it was given so tests can look."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.images: list[tuple[str, int]] = []
        self.artifacts: list[str] = []

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_image(self, image: Tensor, name: str, step: int) -> None:
        self.images.append((name, step))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.artifacts.append(str(path))
