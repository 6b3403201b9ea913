"""How much MLflow logging slows training: the same short run, side by side in one process, with
the null tracker and with the MLflow tracker (SQLite store in a temporary folder).

    python benchmarks/tracking_overhead.py [--steps 300] [--log-every 1]

Prints seconds for each and the ratio. `--log-every 1` is the worst case (a log call every step);
the shipped params log every 25 steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import DataConfig, Recipe, TrainConfig  # noqa: E402
from pipeline.data import prepare_dataset  # noqa: E402
from pipeline.tracking import NullTracker  # noqa: E402
from pipeline.training import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log-every", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from pipeline.tracking_mlflow import MlflowTracker

    data = prepare_dataset("mnist5k", DataConfig())
    recipe = Recipe(train=TrainConfig(steps=args.steps, width=16, log_every=args.log_every, eval_every=10**9,
                                      checkpoint_every=10**9, device="cpu"))
    store = Path(tempfile.mkdtemp()) / "bench.db"
    client = MlflowClient(f"sqlite:///{store}")
    exp = client.create_experiment("overhead", artifact_location=(store.parent / "artifacts").as_uri())
    train(dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=5)), data, progress=False)  # warm-up
    null_times, mlflow_times = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine speed hits both alike
        start = time.perf_counter()
        train(recipe, data, progress=False, tracker=NullTracker())
        null_times.append(time.perf_counter() - start)
        tracker = MlflowTracker(client, client.create_run(exp).info.run_id)
        start = time.perf_counter()
        train(recipe, data, progress=False, tracker=tracker)
        tracker.finish()  # includes flushing every queued metric
        mlflow_times.append(time.perf_counter() - start)
    null_s, mlflow_s = min(null_times), min(mlflow_times)
    logged = len(client.get_metric_history(tracker.run_id, "loss_d"))
    print(f"{args.steps} steps, log_every {args.log_every}: null tracker {null_s:.2f} s, "
          f"MLflow {mlflow_s:.2f} s, ratio {mlflow_s / null_s:.3f} ({logged} loss_d points logged)")


if __name__ == "__main__":
    main()
