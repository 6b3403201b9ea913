"""The train stage's tracker runs every call on a worker thread, in order, and reports its errors."""

from __future__ import annotations

import threading

import pytest
import torch

from pipeline.tracking import BackgroundTracker, NullTracker


class Recording(NullTracker):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()
        self.finished: list[str] = []

    def log_metrics(self, metrics, step):
        self.threads.add(threading.current_thread().name)
        super().log_metrics(metrics, step)

    def log_image(self, image, name, step):
        super().log_image(image, name, step)
        self.pixels = image.clone()

    def finish(self, status="FINISHED"):
        self.finished.append(status)


def test_calls_run_in_order_on_a_worker_thread_and_finish_ends_the_run():
    inner, gate = Recording(), threading.Event()

    def slow_open():  # opening the run (importing MLflow) must not hold up the caller
        gate.wait(timeout=10)
        return inner

    tracker = BackgroundTracker(slow_open)
    metrics = {"loss": 1.0}
    for step in range(1, 6):
        tracker.log_metrics(metrics, step)
        metrics["loss"] += 1.0  # the caller may reuse its dict: the tracker logged a copy
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    tracker.log_image(image, "samples", 5)
    image.fill_(7)
    assert inner.metrics == []  # nothing could run yet: the run is still opening
    gate.set()
    tracker.finish()
    assert inner.metrics == [(s, {"loss": float(s)}) for s in range(1, 6)]
    assert inner.images == [("samples", 5)]
    assert torch.equal(inner.pixels, torch.zeros(3, 4, 4, dtype=torch.uint8))  # logged as it was, not as it became
    assert inner.finished == ["FINISHED"]
    assert inner.threads and threading.current_thread().name not in inner.threads


def test_an_error_in_a_queued_call_surfaces_at_finish_and_marks_the_run_failed():
    inner = Recording()
    tracker = BackgroundTracker(lambda: inner)

    def broken(t, value):
        raise OSError(f"store full at {value}")

    tracker.submit(broken, 3)
    tracker.log_metrics({"after": 1.0}, 1)  # later calls still run
    with pytest.raises(OSError, match="store full at 3"):
        tracker.finish()
    assert inner.finished == ["FAILED"]
    assert inner.metrics == [(1, {"after": 1.0})]


def test_tracking_off_drops_calls_and_a_failed_open_is_raised():
    off = BackgroundTracker(lambda: None)
    off.log_metrics({"x": 1.0}, 1)
    off.finish()
    assert off.tracker() is None

    def cannot_open():
        raise ConnectionError("no tracking store")

    failing = BackgroundTracker(cannot_open)
    failing.log_metrics({"x": 1.0}, 1)
    with pytest.raises(ConnectionError, match="no tracking store"):
        failing.finish()
