"""Stage `train@<variant>-<seed>`: the variant's resolved recipe at one seed -> models/<variant>/seed<s>/
(generator.pt, checkpoint.pt), reports/variants/<variant>/seed<s>/ (train_log.csv, train_eval.csv,
resolved.yaml, training.json), reports/curves/<variant>_seed<s>_*.csv (drawn by `dvc plots`) and an
MLflow run tagged with the variant and the seed, whose id the evaluate and report stages find in
.gan-lab/mlflow/<variant>/seed<s>.json."""

from __future__ import annotations

import subprocess
from typing import Optional

from pipeline import checkpoint, paths
from pipeline.checkpoint import GeneratorCheckpoint, load_dataset_classifier, read_state
from pipeline.data import load_prepared
from pipeline.distributed import launch_command, under_launcher, world_from_env
from pipeline.evaluation.checks import make_training_evaluator, still_improving
from pipeline.tracking import NullTracker
from pipeline.tracking_mlflow import (STILL_IMPROVING_TAG, log_generator_model, log_training_files, run_reference,
                                     run_status, start_training_run)
from pipeline.training import train
from pipeline.variants import for_this_machine, load_lab
from pipeline.tasks import run_stage
from stages._common import run


def main(variant: str, seed: Optional[int] = None, params_file: str = "params.yaml") -> None:
    run_stage("train", variant, seed, params_file)  # the variant's task picks the function: train_generate below for task generate


def train_generate(variant: str, seed: Optional[int], params_file: str) -> None:
    lab = load_lab(params_file, names=False)  # the prepare stage checked every name
    v, recipe = lab.variant(variant), lab.recipe(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    if recipe.train.nproc > 1 and not under_launcher():  # data-parallel: this same stage in N processes
        print(f"training {run_key} in {recipe.train.nproc} processes (torchrun)")
        raise SystemExit(subprocess.call(launch_command(recipe.train.nproc, "stages.train", variant, "--seed",
                                                        str(recipe.seed), "--params-file", params_file)))
    # what `auto` means on this machine is part of what trained: logged, saved and in resolved.yaml
    recipe = for_this_machine(recipe)
    prepared = load_prepared(recipe.dataset)
    state_path = paths.run_state_path(run_key)
    if not world_from_env().main:  # another rank: trains its shard; rank 0 logs and writes everything
        train(recipe, prepared, variant=run_key, state_path=state_path, progress=False)
        return
    for note in v.notes:
        print(f"note: {variant}: {note}")
    classifier = load_dataset_classifier(recipe.dataset)
    device = recipe.train.device
    # a killed training resumes from its checkpoint and continues its MLflow run
    tracker = start_training_run(recipe, variant, params_file, v.notes, run_key,
                                 resume=read_state(recipe, state_path, quiet=True) is not None)
    with run_status(tracker):
        result = train(recipe, prepared, variant=run_key, tracker=tracker or NullTracker(), state_path=state_path,
                       evaluator=make_training_evaluator(recipe, prepared, classifier))
        if result.resumed_from:
            print(f"resumed {run_key} from step {result.resumed_from}")
        meta = GeneratorCheckpoint(result.spec, recipe.arch, variant, recipe.to_dict(), prepared.info["class_names"])
        checkpoint.save_trained(run_key, result.generator, result.discriminator, meta)
        checkpoint.write_training_tables(run_key, result.log_rows, result.eval_rows)
        checkpoint.write_resolved(run_key, recipe.to_dict(), v.notes)
        convergence = still_improving(result.eval_rows, recipe.train.steps)
        checkpoint.write_training_summary(run_key, recipe.to_dict(), device, result.d_updates, convergence)
        if tracker is not None and convergence:
            tracker.set_tags({STILL_IMPROVING_TAG: str(convergence["still_improving"]).lower()})
        checkpoint.write_run_reference(run_key, run_reference(tracker))
        if tracker is not None:
            log_training_files(tracker, run_key)
            tracker.submit(log_generator_model, result.generator, result.spec)
    checkpoint.forget_unfinished_run(run_key)  # finished: nothing left to resume
    last = result.log_rows[-1]
    print(f"trained {run_key}: {recipe.train.steps} steps, loss_d {last['loss_d']:.4f}, loss_g {last['loss_g']:.4f}")


if __name__ == "__main__":
    run(main)
