"""How much MLflow tracking slows the train stage: the same run of the default model, side by side
in one process, with the null tracker and with the tracking the train stage does (SQLite store in a
temporary folder): opening the run and logging every param, metrics every `log_every` steps, a
sample grid at every `eval_every` check, the checkpoint files and the generator as an MLflow
model, all on the background thread, and waiting for all of it at the end.

    python benchmarks/tracking_overhead.py                 # 300 steps of the shipped dcgan recipe
    python benchmarks/tracking_overhead.py --steps 100 --log-every 1   # the worst case

Prints seconds for each, best of `--repeats` (alternating), and the overhead in percent. Fewer
steps than the shipped 1,200 make the fixed per-run cost count more, so this is an upper bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import DataConfig, load_params  # noqa: E402
from pipeline.data import prepare_dataset  # noqa: E402
from pipeline.io import save_torch  # noqa: E402
from pipeline.tasks import train  # noqa: E402
from pipeline.tasks.generate import GenerateCheck  # noqa: E402
from pipeline.tracking import NullTracker  # noqa: E402
from pipeline.variants import resolve  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def one_run(recipe, data, tracker, out: Path) -> float:
    from pipeline.tracking_mlflow import log_generator_model, run_status

    start = time.perf_counter()
    with run_status(tracker):
        result = train(recipe, data, progress=False, tracker=tracker or NullTracker(), checker=GenerateCheck(lambda g: {}, recipe))
        save_torch({"state_dict": result.generator.state_dict(), "spec": result.spec.to_dict()}, out / "generator.pt")
        if tracker is not None:
            tracker.log_artifact(out / "generator.pt", "checkpoint")
            tracker.submit(log_generator_model, result.generator, result.spec)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log-every", type=int, default=None, help="default: params.yaml's train.log_every")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pipeline.tracking import BackgroundTracker
    from pipeline.tracking_mlflow import VariantRun, _client, open_variant_run

    recipe, _ = resolve(load_params(ROOT / "params.yaml").merged("dcgan"))
    changes = {"steps": args.steps, "device": "cpu", "checkpoint_every": 10**9}
    if args.log_every:
        changes["log_every"] = args.log_every
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, **changes))
    data = prepare_dataset(recipe.dataset, DataConfig())
    tmp = Path(tempfile.mkdtemp())
    uri = f"sqlite:///{tmp / 'bench.db'}"
    request = VariantRun("bench", recipe.seed, recipe.to_dict(), "cpu", "")
    open_run = lambda: open_variant_run(_client(uri), tmp, recipe.mlflow, request)  # noqa: E731
    BackgroundTracker(open_run).finish()  # creates the store's tables once, as any existing store has them
    warm = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=5))
    one_run(warm, data, None, tmp)
    null_times, mlflow_times = [], []
    for _ in range(args.repeats):  # alternating, so a drift in machine speed hits both alike
        null_times.append(one_run(recipe, data, None, tmp))
        tracker = BackgroundTracker(open_run)
        mlflow_times.append(one_run(recipe, data, tracker, tmp))
    null_s, mlflow_s = min(null_times), min(mlflow_times)
    client = tracker.tracker().client
    logged = len(client.get_metric_history(tracker.tracker().run_id, "loss_d"))
    print(f"{args.steps} steps of the dcgan recipe (width {recipe.train.width}, batch {recipe.train.batch_size}), "
          f"log_every {recipe.train.log_every}, eval_every {recipe.train.eval_every}: null tracker {null_s:.2f} s, "
          f"MLflow {mlflow_s:.2f} s, overhead {100 * (mlflow_s / null_s - 1):+.1f}% "
          f"({logged} loss_d points and the model logged)")


if __name__ == "__main__":
    main()
