"""Stage `evaluate@<variant>`: generated samples -> reports/variants/<variant>/metrics.json (flat, for
`dvc metrics show`) and class_hist.json (the picture of mode collapse); the same numbers go to the
variant's MLflow run as `eval.<metric>`."""

from __future__ import annotations

import torch

from pipeline import paths
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.evaluation import evaluate_samples
from pipeline.io import load_torch, write_json
from pipeline.models.classifier import load_dataset_classifier
from pipeline.sampling import from_uint8
from pipeline.tracking_mlflow import reopen
from stages._common import run


def main(variant: str, params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    recipe = params.variant(variant)
    prepared = load_prepared(recipe.dataset)
    generated = load_torch(paths.generated_path(variant))
    samples = generated["samples"]
    if samples.dtype == torch.uint8:
        samples = from_uint8(samples)
    classifier_path = paths.classifier_path(recipe.dataset)
    classifier = load_dataset_classifier(recipe.dataset)
    metrics, histogram = evaluate_samples(samples, recipe, prepared, classifier_path if classifier else None, classifier,
                                          sample_labels=generated.get("labels"))
    write_json(metrics, paths.metrics_path(variant))
    write_json(histogram, paths.class_hist_path(variant))
    tracker = reopen(load_torch(paths.generator_path(variant)).get("mlflow", {}))
    if tracker is not None:
        tracker.log_metrics({f"eval.{k}": v for k, v in metrics.items() if isinstance(v, (int, float))},
                            step=recipe.train.steps)
        tracker.log_artifact(paths.metrics_path(variant), "evaluation")
        tracker.log_artifact(paths.class_hist_path(variant), "evaluation")
        tracker.flush()
    print(f"evaluated {variant}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in metrics.items()))


if __name__ == "__main__":
    run(main)
