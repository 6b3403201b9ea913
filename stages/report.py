"""Stage `report`: every variant's runs -> reports/index.html, reports/report.md, reports/figures/ and
reports/summary.json (every metric's mean, sd and 95% interval over seeds, a DVC metrics file);
the report is attached to the MLflow parent run(s) of the variants, which are then marked FINISHED."""

from __future__ import annotations

from pipeline import paths
from pipeline.checkpoint import read_run_reference
from pipeline.io import atomic_dir, write_json, write_text
from pipeline.report.render import render
from pipeline.tracking_mlflow import reopen
from pipeline.variants import load_lab
from stages._common import run


def parent_runs(runs: list[str]) -> dict[str, dict[str, str]]:
    """parent run id -> a reference to it, from the runs' MLflow run references."""
    parents = {}
    for run_key in runs:
        ref = read_run_reference(run_key)
        if ref.get("parent_id"):
            parents[ref["parent_id"]] = {"tracking_uri": ref["tracking_uri"], "run_id": ref["parent_id"]}
    return parents


def main(params_file: str = "params.yaml") -> None:
    lab = load_lab(params_file, names=False)  # the prepare stage checked every name
    with atomic_dir(paths.REPORT_FIGURES) as figures:
        html, markdown, summary = render(lab, figures)
    write_text(html, paths.REPORT_HTML)
    write_text(markdown, paths.REPORT_MD)
    write_json(summary, paths.SUMMARY)
    for ref in parent_runs([paths.run_name(v, s) for v, s in lab.runs()]).values():
        tracker = reopen(ref)
        if tracker is not None:
            for path in (paths.REPORT_HTML, paths.REPORT_MD):  # the HTML embeds its images
                tracker.log_artifact(path, "report")
            tracker.finish("FINISHED")
    print(f"report -> {paths.REPORT_HTML} and {paths.REPORT_MD}")


if __name__ == "__main__":
    run(main)
