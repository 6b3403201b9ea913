"""Stage `classifier`: a small CNN per labelled image dataset -> models/classifier/<dataset>.pt,
held-out accuracy -> reports/classifier.json. It is evaluation's feature extractor and mode labeller."""

from __future__ import annotations

from pipeline import paths
from pipeline.checkpoint import save_classifier
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.io import atomic_dir, write_json
from pipeline.kinds import kind_of
from pipeline.metrics.classifier import train_classifier
from stages._common import run


def main(params_file: str = "params.yaml") -> None:
    params = load_params(params_file)  # the prepare stage checked every name
    report: dict[str, dict] = {}
    with atomic_dir(paths.CLASSIFIERS) as out:
        for dataset in params.datasets():
            prepared = load_prepared(dataset)
            data = kind_of(prepared).classifier_data(prepared)
            if isinstance(data, str):
                report[dataset] = {"available": False, "reason": data}
                continue
            result = train_classifier(data.x_train, data.y_train, data.x_test, data.y_test, data.num_classes,
                                      params.classifier)
            save_classifier(out / paths.classifier_path(dataset).name, result, dataset, prepared.info["class_names"],
                            prepared.info.get("stacked", 0))
            report[dataset] = {"available": True, "test_accuracy": result.test_accuracy, "n_test": result.n_test}
            print(f"classifier {dataset}: held-out accuracy {result.test_accuracy:.4f} on {result.n_test} images")
        (out / ".keep").touch()  # an empty directory is still a valid DVC output
    write_json(report, paths.CLASSIFIER_METRICS)


if __name__ == "__main__":
    run(main)
