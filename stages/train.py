"""Stage `train@<variant>-<seed>`: the variant's resolved recipe at one seed -> models/<variant>/seed<s>/
(generator.pt, checkpoint.pt), reports/variants/<variant>/seed<s>/ (train_log.csv, train_eval.csv, resolved.yaml,
training.json) and an MLflow run tagged with the variant and the seed, whose id the evaluate and report stages find
in .gan-lab/mlflow/<variant>/seed<s>.json. Every task trains through the same loop (`pipeline.tasks.train`); what
its networks are, what it checks during training and what it saves are the variant's task's (`pipeline.tasks`)."""

from __future__ import annotations

import subprocess
from typing import Optional

import torch

from pipeline import checkpoint, paths
from pipeline.checkpoint import read_state
from pipeline.device import for_this_machine
from pipeline.distributed import launch_command, under_launcher, world_from_env
from pipeline.evaluation.checks import still_improving
from pipeline.tasks import TASKS, train
from pipeline.tracking import NullTracker
from pipeline.tracking_mlflow import (STILL_IMPROVING_TAG, log_training_files, run_reference, run_status,
                                     start_training_run)
from pipeline.variants import load_lab
from stages._common import run


def main(variant: str, seed: Optional[int] = None, params_file: str = "params.yaml") -> None:
    lab = load_lab(params_file, names=False)  # the prepare stage checked every name
    v, recipe = lab.variant(variant), lab.recipe(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    if recipe.train.nproc > 1 and not under_launcher():  # data-parallel: this same stage in N processes
        print(f"training {run_key} in {recipe.train.nproc} processes (torchrun)")
        raise SystemExit(subprocess.call(launch_command(recipe.train.nproc, "stages.train", variant, "--seed",
                                                        str(recipe.seed), "--params-file", params_file)))
    # what `auto` means on this machine is part of what trained: logged, saved and in resolved.yaml
    recipe = for_this_machine(recipe)
    task = TASKS.get(recipe.task, "task")
    data = task.load_data(recipe)
    state_path = paths.run_state_path(run_key)
    if not world_from_env().main:  # another rank: trains its shard; rank 0 logs and writes everything
        train(recipe, data, variant=run_key, state_path=state_path, progress=False)
        return
    for note in v.notes:
        print(f"note: {variant}: {note}")
    checker = task.checker(recipe, data, torch.device(recipe.train.device))
    # a killed training resumes from its checkpoint and continues its MLflow run
    tracker = start_training_run(recipe, variant, params_file, v.notes, run_key,
                                 resume=read_state(recipe, state_path, quiet=True) is not None)
    with run_status(tracker):
        result = train(recipe, data, variant=run_key, tracker=tracker or NullTracker(), checker=checker,
                       state_path=state_path)
        if result.resumed_from:
            print(f"resumed {run_key} from step {result.resumed_from}")
        task.save(run_key, result, recipe, variant, data)
        checkpoint.write_training_tables(run_key, result.log_rows, result.eval_rows)
        checkpoint.write_resolved(run_key, recipe.to_dict(), v.notes)
        convergence = still_improving(result.eval_rows, recipe.train.steps)
        checkpoint.write_training_summary(run_key, recipe.to_dict(), recipe.train.device, result.d_updates, convergence)
        if tracker is not None and convergence:
            tracker.set_tags({STILL_IMPROVING_TAG: str(convergence["still_improving"]).lower()})
        checkpoint.write_run_reference(run_key, run_reference(tracker))
        if tracker is not None:
            log_training_files(tracker, run_key)
            tracker.submit(task.log_model, result, data)
    checkpoint.forget_unfinished_run(run_key)  # finished: nothing left to resume
    print(task.summary(run_key, result, recipe))


if __name__ == "__main__":
    run(main)
