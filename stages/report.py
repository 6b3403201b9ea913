"""Stage `report`: every variant's outputs -> reports/index.html, reports/report.md, reports/figures/;
the report is attached to the MLflow parent run(s) of the variants, which are then marked FINISHED."""

from __future__ import annotations

from pipeline import paths
from pipeline.config import load_params
from pipeline.io import atomic_dir, load_torch, write_text
from pipeline.report.render import render
from pipeline.tracking_mlflow import reopen
from stages._common import run


def parent_runs(variants: list[str]) -> dict[str, dict[str, str]]:
    """parent run id -> a reference to it, from the variants' generator checkpoints."""
    parents = {}
    for variant in variants:
        path = paths.generator_path(variant)
        ref = load_torch(path).get("mlflow", {}) if path.exists() else {}
        if ref.get("parent_id"):
            parents[ref["parent_id"]] = {"tracking_uri": ref["tracking_uri"], "run_id": ref["parent_id"]}
    return parents


def main(params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    with atomic_dir(paths.REPORT_FIGURES) as figures:
        html, markdown = render(params, figures)
    write_text(html, paths.REPORT_HTML)
    write_text(markdown, paths.REPORT_MD)
    for ref in parent_runs(list(params.variants)).values():
        tracker = reopen(ref)
        if tracker is not None:
            for path in (paths.REPORT_HTML, paths.REPORT_MD):  # the HTML embeds its images
                tracker.log_artifact(path, "report")
            tracker.finish("FINISHED")
    print(f"report -> {paths.REPORT_HTML} and {paths.REPORT_MD}")


if __name__ == "__main__":
    run(main)
