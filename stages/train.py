"""Stage `train@<variant>`: the variant's recipe -> models/<variant>/ (generator.pt, checkpoint.pt)
and reports/<variant>/train_log.csv + train_eval.csv (drawn by `dvc plots`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from pipeline import paths
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.evaluation import make_training_evaluator
from pipeline.io import atomic_dir, atomic_path, load_torch
from pipeline.models.classifier import Classifier, load_classifier
from pipeline.training import TrainResult, train
from stages._common import run


def load_dataset_classifier(dataset: str) -> Classifier | None:
    path = paths.classifier_path(dataset)
    return load_classifier(load_torch(path)) if path.exists() else None


def write_table(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp:
        (pd.DataFrame(rows) if rows else pd.DataFrame(columns=["step"])).to_csv(tmp, index=False)


def save_outputs(variant: str, result: TrainResult, recipe_dict: dict, arch: str, dataset_info: dict) -> None:
    """The generator checkpoint (what sampling needs) and the full checkpoint, written all or nothing."""
    generator = {"state_dict": result.generator.state_dict(), "spec": result.spec.to_dict(), "arch": arch,
                 "variant": variant, "recipe": recipe_dict, "class_names": dataset_info["class_names"]}
    full = {**generator, "discriminator": result.discriminator.state_dict()}
    with atomic_dir(paths.model_dir(variant)) as out:
        torch.save(generator, out / "generator.pt")
        torch.save(full, out / "checkpoint.pt")
    write_table(result.log_rows, paths.train_log_path(variant))
    write_table(result.eval_rows, paths.train_eval_path(variant))


def main(variant: str, params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    recipe = params.variant(variant)
    prepared = load_prepared(recipe.dataset)
    classifier = load_dataset_classifier(recipe.dataset)
    state_path = paths.run_state_path(variant)
    result = train(recipe, prepared, variant=variant, evaluator=make_training_evaluator(recipe, prepared, classifier),
                   state_path=state_path)
    if result.resumed_from:
        print(f"resumed {variant} from step {result.resumed_from}")
    save_outputs(variant, result, recipe.to_dict(), recipe.arch, prepared.info)
    state_path.unlink(missing_ok=True)  # finished: nothing left to resume
    last = result.log_rows[-1]
    print(f"trained {variant}: {recipe.train.steps} steps, loss_d {last['loss_d']:.4f}, loss_g {last['loss_g']:.4f}")


if __name__ == "__main__":
    run(main)
