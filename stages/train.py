"""Stage `train@<variant>`: the variant's recipe -> models/<variant>/ (generator.pt, checkpoint.pt),
reports/variants/<variant>/train_log.csv + train_eval.csv (drawn by `dvc plots`), and an MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from pipeline import paths
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.evaluation import make_training_evaluator
from pipeline.io import atomic_dir, atomic_path
from pipeline.models.classifier import load_dataset_classifier
from pipeline.tracking import NullTracker
from pipeline.tracking_mlflow import log_generator_model, run_reference, run_status, start_variant_run
from pipeline.training import TrainResult, resolve_device, train
from stages._common import run


def write_table(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp:
        (pd.DataFrame(rows) if rows else pd.DataFrame(columns=["step"])).to_csv(tmp, index=False)


CURVE_KEYS = {"losses": ("loss_d", "loss_g", "d_real", "d_fake", "wasserstein", "gradient_penalty"), "modes": None}


def write_curves(rows: list[dict], keys: tuple[str, ...] | None, path: Path) -> None:
    """Long format, one row per (step, metric): every file in reports/curves has the same columns,
    so one `dvc plots` definition draws them all, coloured by metric, dashed by revision."""
    long = [{"step": r["step"], "metric": k, "value": v} for r in rows for k, v in r.items()
            if k != "step" and (keys is None or k in keys) and v is not None]
    with atomic_path(path) as tmp:
        pd.DataFrame(long, columns=["step", "metric", "value"]).to_csv(tmp, index=False)


def save_outputs(variant: str, result: TrainResult, recipe_dict: dict, arch: str, dataset_info: dict,
                 mlflow_run: dict[str, Any] | None = None) -> None:
    """The generator checkpoint (what sampling needs) and the full checkpoint, written all or nothing."""
    generator = {"state_dict": result.generator.state_dict(), "spec": result.spec.to_dict(), "arch": arch,
                 "variant": variant, "recipe": recipe_dict, "class_names": dataset_info["class_names"],
                 "mlflow": mlflow_run or {}}
    full = {**generator, "discriminator": result.discriminator.state_dict()}
    with atomic_dir(paths.model_dir(variant)) as out:
        torch.save(generator, out / "generator.pt")
        torch.save(full, out / "checkpoint.pt")
    write_table(result.log_rows, paths.train_log_path(variant))
    write_table(result.eval_rows, paths.train_eval_path(variant))
    write_curves(result.log_rows, CURVE_KEYS["losses"], paths.curves_path(variant, "losses"))
    write_curves(result.eval_rows, CURVE_KEYS["modes"], paths.curves_path(variant, "modes"))


def main(variant: str, params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    recipe, notes = params.resolved(variant)
    for note in notes:
        print(f"note: {variant}: {note}")
    prepared = load_prepared(recipe.dataset)
    classifier = load_dataset_classifier(recipe.dataset)
    state_path = paths.run_state_path(variant)
    device = str(resolve_device(recipe.train.device))
    tracker = start_variant_run(recipe.mlflow, variant, recipe.to_dict(), device, Path(params_file).read_text())
    with run_status(tracker):
        result = train(recipe, prepared, variant=variant, tracker=tracker or NullTracker(), state_path=state_path,
                       evaluator=make_training_evaluator(recipe, prepared, classifier))
        if result.resumed_from:
            print(f"resumed {variant} from step {result.resumed_from}")
        save_outputs(variant, result, recipe.to_dict(), recipe.arch, prepared.info, run_reference(tracker))
        if tracker is not None:
            tracker.log_artifact(paths.generator_path(variant), "checkpoint")
            tracker.log_artifact(paths.model_dir(variant) / "checkpoint.pt", "checkpoint")
            tracker.log_artifact(paths.train_log_path(variant), "tables")
            log_generator_model(tracker, result.generator, result.spec.to_dict())
    state_path.unlink(missing_ok=True)  # finished: nothing left to resume
    last = result.log_rows[-1]
    print(f"trained {variant}: {recipe.train.steps} steps, loss_d {last['loss_d']:.4f}, loss_g {last['loss_g']:.4f}")


if __name__ == "__main__":
    run(main)
