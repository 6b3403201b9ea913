"""Stage `evaluate@<variant>-<seed>`: what the sample stage wrote -> reports/variants/<variant>/seed<s>/metrics.json
(every metric of the run, flat), class_hist.json (the picture of mode collapse) and fid_protocol.json (how each FID was
measured); what is measured is the variant's task's (`pipeline.tasks`). The report stage puts them into the run's
MLflow run (`eval/<metric>`), also when DVC skips this stage because nothing it reads changed."""

from __future__ import annotations

from typing import Optional

from pipeline import paths
from pipeline.config import load_params
from pipeline.io import write_json
from pipeline.tasks import TASKS
from stages._common import run


def main(variant: str, seed: Optional[int] = None, params_file: str = "params.yaml") -> None:
    # the sample and eval sections need no resolving; the prepare stage checked every name
    params = load_params(params_file)
    recipe = params.merged(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    evaluation = TASKS.get(recipe.task, "task").evaluate(recipe, params, run_key)
    write_json(evaluation.metrics, paths.metrics_path(run_key))
    write_json(evaluation.histogram, paths.class_hist_path(run_key))
    write_json(evaluation.protocol, paths.fid_protocol_path(run_key))
    print(f"evaluated {run_key}: " + (evaluation.line or ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in evaluation.metrics.items())))


if __name__ == "__main__":
    run(main)
