"""Stage `report`: every variant's outputs -> reports/index.html, reports/report.md, reports/figures/."""

from __future__ import annotations

from pipeline import paths
from pipeline.config import load_params
from pipeline.io import atomic_dir, write_text
from pipeline.report.render import render
from stages._common import run


def main(params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    with atomic_dir(paths.REPORT_FIGURES) as figures:
        html, markdown = render(params, figures)
    write_text(html, paths.REPORT_HTML)
    write_text(markdown, paths.REPORT_MD)
    print(f"report -> {paths.REPORT_HTML} and {paths.REPORT_MD}")


if __name__ == "__main__":
    run(main)
