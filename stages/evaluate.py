"""Stage `evaluate@<variant>-<seed>`: generated samples -> reports/variants/<variant>/seed<s>/metrics.json
(every metric of the run, flat), class_hist.json (the picture of mode collapse) and fid_protocol.json
(how each FID was measured). The report stage puts them into the run's MLflow run (`eval/<metric>`), also when DVC
skips this stage because nothing it reads changed."""

from __future__ import annotations

from typing import Optional

from pipeline import paths
from pipeline.checkpoint import load_dataset_classifier, load_generated
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.io import read_json, write_json
from pipeline.evaluation.evaluate import evaluate_samples
from pipeline.tasks import run_stage
from stages._common import run


def main(variant: str, seed: Optional[int] = None, params_file: str = "params.yaml") -> None:
    run_stage("evaluate", variant, seed, params_file)  # the variant's task picks the function: evaluate_generate below for task generate


def evaluate_generate(variant: str, seed: Optional[int], params_file: str) -> None:
    # the sample and eval sections need no resolving; the prepare stage checked every name
    params = load_params(params_file)
    recipe = params.merged(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    prepared = load_prepared(recipe.dataset)
    generated = load_generated(paths.generated_path(run_key))
    classifier = load_dataset_classifier(recipe.dataset)
    classifier_path = paths.classifier_path(recipe.dataset) if classifier is not None else None
    evaluation = evaluate_samples(generated.samples, recipe, prepared, classifier_path, classifier,
                                  sample_labels=generated.labels, classifier_config=params.classifier)
    metrics = {**evaluation.metrics, **projection_metrics(run_key)}
    write_json(metrics, paths.metrics_path(run_key))
    write_json(evaluation.histogram, paths.class_hist_path(run_key))
    write_json(evaluation.protocol, paths.fid_protocol_path(run_key))
    print(f"evaluated {run_key}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in metrics.items()))


def projection_metrics(run_key: str) -> dict[str, object]:
    """The sample stage's latent projection of real test images (latent/projection.json): the mean pixel
    error and the worst classes, into metrics.json."""
    path = paths.latent_dir(run_key) / "projection.json"
    if not path.exists():
        return {}
    found = read_json(path)
    return {k: found[k] for k in ("projection_mse", "projection_worst_classes") if k in found}


if __name__ == "__main__":
    run(main)
