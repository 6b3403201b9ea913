"""Experiment tracking behind a small protocol, so training never depends on MLflow directly.

`NullTracker` is used by tests and by anyone who opts out; the MLflow implementation lives in
`pipeline.tracking_mlflow` (imported lazily: mlflow is slow to import).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from torch import Tensor


# Metric names carry their section, `<section>/<name>`: MLflow's chart view groups metrics into one section per
# prefix before the "/". `train`: the losses and rates every `train.log_every` steps; `train_eval`: the checks every
# `train.eval_every` steps (train_eval.csv); `eval`: the evaluate stage's final metrics (metrics.json).
TRAIN, TRAIN_EVAL, EVAL = "train", "train_eval", "eval"


def in_section(section: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row as metrics to log: every value but the step, its name prefixed `<section>/`."""
    return {f"{section}/{k}": v for k, v in row.items() if k != "step"}


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


class BackgroundTracker:
    """A tracker whose calls run in order on one worker thread, so the training loop never waits
    on the tracking store: opening the run (importing MLflow, creating the run, logging params)
    overlaps with training, and so does every metric batch, image and artifact.

    `open_tracker` is called on the worker; it returns the real tracker (or None: calls are
    dropped). `finish(status)` waits for everything queued, then ends the run; an error raised by
    any queued call is raised there, after the run is marked FAILED.
    """

    def __init__(self, open_tracker: Callable[[], Any]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracking")
        self._opened: Future = self._pool.submit(open_tracker)
        self._pending: list[Future] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(tracker, *args)`; the arguments must not change afterwards."""
        self._pending.append(self._pool.submit(self._call, fn, args))

    def _call(self, fn: Callable[..., Any], args: tuple) -> None:
        tracker = self._opened.result()
        if tracker is not None:
            fn(tracker, *args)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.submit(lambda t, p: t.log_params(p), dict(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.submit(lambda t, m, s: t.log_metrics(m, s), dict(metrics), step)

    def log_image(self, image: Tensor, name: str, step: int) -> None:
        self.submit(lambda t, i, n, s: t.log_image(i, n, s), image.detach().cpu().clone(), name, step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.submit(lambda t, p, a: t.log_artifact(p, a), path, artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.submit(lambda t, g: t.set_tags(g), dict(tags))

    def tracker(self) -> Any:
        """The opened tracker (waits for it), or None when tracking is off."""
        return self._opened.result()

    def wait(self) -> None:
        """Block until every queued call is done; raise the first error among them."""
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def close(self) -> None:
        """Wait for every queued call (raising the first error) and stop the worker; the run stays open."""
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def finish(self, status: str = "FINISHED") -> None:
        try:
            self.wait()
        except BaseException:
            status = "FAILED"
            raise
        finally:
            tracker = self._opened.result() if self._opened.exception() is None else None
            if tracker is not None and hasattr(tracker, "finish"):
                tracker.finish(status)
            self._pool.shutdown(wait=True)
