"""Stage `report`: every variant's outputs -> reports/index.html, reports/report.md, reports/figures/;
the report is attached to the MLflow parent run(s) of the variants, which are then marked FINISHED."""

from __future__ import annotations

from pipeline import paths
from pipeline.checkpoint import read_run_reference
from pipeline.io import atomic_dir, write_text
from pipeline.report.render import render
from pipeline.tracking_mlflow import reopen
from pipeline.variants import load_lab
from stages._common import run


def parent_runs(variants: list[str]) -> dict[str, dict[str, str]]:
    """parent run id -> a reference to it, from the variants' run references."""
    parents = {}
    for variant in variants:
        ref = read_run_reference(variant)
        if ref.get("parent_id"):
            parents[ref["parent_id"]] = {"tracking_uri": ref["tracking_uri"], "run_id": ref["parent_id"]}
    return parents


def main(params_file: str = "params.yaml") -> None:
    lab = load_lab(params_file, names=False)  # the prepare stage checked every name
    with atomic_dir(paths.REPORT_FIGURES) as figures:
        html, markdown = render(lab, figures)
    write_text(html, paths.REPORT_HTML)
    write_text(markdown, paths.REPORT_MD)
    for ref in parent_runs(list(lab.variants)).values():
        tracker = reopen(ref)
        if tracker is not None:
            for path in (paths.REPORT_HTML, paths.REPORT_MD):  # the HTML embeds its images
                tracker.log_artifact(path, "report")
            tracker.finish("FINISHED")
    print(f"report -> {paths.REPORT_HTML} and {paths.REPORT_MD}")


if __name__ == "__main__":
    run(main)
