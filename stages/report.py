"""Stage `report`: every variant's runs -> reports/index.html, reports/report.md, reports/figures/,
reports/summary.json (every metric's mean, sd and 95% interval over seeds), metrics/<variant>.json (the headline
numbers, the DVC metrics) and reports/curves/ (what `dvc plots show` draws). Then MLflow: every run of this build
carries its evaluation, whatever DVC reran (`record_build`), and the build's parent run gets the report and ends."""

from __future__ import annotations

from pathlib import Path

from pipeline import paths
from pipeline.checkpoint import write_curves
from pipeline.io import atomic_dir, write_json, write_text
from pipeline.report.render import render
from pipeline.tracking_mlflow import record_build
from pipeline.variants import load_lab
from stages._common import run


def main(params_file: str = "params.yaml") -> None:
    lab = load_lab(params_file, names=False)  # the prepare stage checked every name
    with atomic_dir(paths.REPORT_FIGURES) as figures:
        report = render(lab, figures)
    write_text(report.html, paths.REPORT_HTML)
    write_text(report.markdown, paths.REPORT_MD)
    write_json(report.summary, paths.SUMMARY)
    write_curves(report.curves)
    with atomic_dir(paths.HEADLINE) as out:  # exactly this build's variants: a dropped variant's row goes
        for variant, numbers in report.headline.items():
            write_json(numbers, out / paths.headline_path(variant).name)
    mlflow = next(iter(lab.variants.values())).recipe.mlflow
    parent = record_build(mlflow, Path(params_file).read_text(), lab.runs())
    if parent is not None:
        for path in (paths.REPORT_HTML, paths.REPORT_MD):  # the HTML embeds its images
            parent.log_artifact(path, "report")
        parent.finish("FINISHED")
    print(f"report -> {paths.REPORT_HTML} and {paths.REPORT_MD}; headline numbers -> {paths.HEADLINE}/")


if __name__ == "__main__":
    run(main)
