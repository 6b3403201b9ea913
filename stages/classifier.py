"""Stage `classifier`: a small CNN per labelled image dataset -> models/classifier/<dataset>.pt,
held-out accuracy -> reports/classifier.json. It is evaluation's feature extractor and mode labeller."""

from __future__ import annotations

from pipeline import paths
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.io import atomic_dir, write_json
from pipeline.models.classifier import channel_views, classifier_checkpoint, train_classifier
from stages._common import run

STACKED_VIEWS = 9000  # single-digit views the stacked-MNIST classifier trains on (2x mnist5k's train set)


def main(params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    report: dict[str, dict] = {}
    with atomic_dir(paths.CLASSIFIERS) as out:
        for dataset in params.datasets():
            prepared = load_prepared(dataset)
            if prepared.kind != "image" or prepared.y_train is None:
                report[dataset] = {"available": False,
                                   "reason": "2D points: metrics use the mixture geometry" if prepared.kind == "points"
                                   else "no labels: classifier-feature FID and class coverage are unavailable"}
                continue
            x_train, y_train, x_test, y_test = prepared.x_train, prepared.y_train, prepared.x_test, prepared.y_test
            num_classes, stacked = prepared.num_classes, prepared.info.get("stacked", 0)
            if stacked:  # one digit classifier, applied channel by channel
                x_train, y_train = channel_views(x_train, y_train, stacked)
                x_test, y_test = channel_views(x_test, y_test, stacked)
                x_train, y_train = x_train[:STACKED_VIEWS], y_train[:STACKED_VIEWS]
                num_classes = round(num_classes ** (1 / stacked))
            result = train_classifier(x_train, y_train, x_test, y_test, num_classes, params.classifier)
            import torch

            torch.save(classifier_checkpoint(result, dataset, prepared.info["class_names"], stacked),
                       out / f"{dataset}.pt")
            report[dataset] = {"available": True, "test_accuracy": result.test_accuracy, "n_test": result.n_test}
            print(f"classifier {dataset}: held-out accuracy {result.test_accuracy:.4f} on {result.n_test} images")
        (out / ".keep").touch()  # an empty directory is still a valid DVC output
    write_json(report, paths.CLASSIFIER_METRICS)


if __name__ == "__main__":
    run(main)
