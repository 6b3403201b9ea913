"""What a person sees of the default pipeline through DVC's own windows, from the files the repository carries (a
fresh clone has them before anything runs): `dvc metrics show` and the README's `dvc exp show` line after an
experiment fit a 160-column terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml
from conftest import REPO, run
from test_pipeline_e2e import readme_command

CARRIED = ["dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config", ".dvc/plots", ".dvcignore", ".gitignore", "metrics",
           "reports", "pipeline", "stages"]


def widest(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


def carried_repo(root: Path) -> Path:
    """The repository's pipeline files and committed results in a new git repo."""
    for name in CARRIED:
        src, dst = REPO / name, root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "the repository's results"], root)
    return root


def test_metrics_show_is_a_row_per_variant_in_160_columns(tmp_path):
    root = carried_repo(tmp_path / "repo")
    variants = list(yaml.safe_load((root / "params.yaml").read_text())["variants"])
    table = run(readme_command("metrics show"), root, {"COLUMNS": "400"}).stdout
    rows = table.splitlines()
    assert rows[0].split()[0] == "Path" and {"fid", "precision", "recall", "coverage", "classes", "seeds"} <= set(rows[0].split())
    assert [r.split()[0] for r in rows[1:]] == sorted(f"metrics/{v}.json" for v in variants)
    assert widest(table) <= 160, table


def test_readme_exp_show_line_compares_two_experiments_in_160_columns(tmp_path):
    """An experiment as `dvc exp run -S loss=wgan_gp` leaves one (a commit of its params and metrics under DVC's
    experiment ref): the README's line shows it beside its baseline, the changed parameter and every variant's FID."""
    root = carried_repo(tmp_path / "repo")
    params = (root / "params.yaml").read_text()
    assert "\nloss: ns\n" in params
    (root / "params.yaml").write_text(params.replace("\nloss: ns\n", "\nloss: wgan_gp\n"))
    for variant in ("dcgan", "cdcgan"):  # the variants without a loss of their own: every headline number moves
        path = root / f"metrics/{variant}.json"
        numbers = json.loads(path.read_text())
        path.write_text(json.dumps({**{k: v * 1.5 + 1 for k, v in numbers.items()}, "fid": 123.4}))
    base = run(["git", "rev-parse", "HEAD"], root).stdout.strip()
    run(["git", "add", "-A"], root)
    tree = run(["git", "write-tree"], root).stdout.strip()
    commit = run(["git", "commit-tree", tree, "-p", base, "-m", "dvc: commit experiment"], root).stdout.strip()
    run(["git", "update-ref", f"refs/exps/{base[:2]}/{base[2:]}/wgan-gp-everywhere", commit], root)
    run(["git", "reset", "-q", "--hard", base], root)
    table = run(readme_command("exp show") + ["--no-pager"], root, {"COLUMNS": "400"}).stdout
    assert "[wgan-gp-everywhere]" in table and "wgan_gp" in table and "123.4" in table
    header = next(line for line in table.splitlines() if "Experiment" in line).split()
    assert header == ["Experiment", "metrics/cdcgan.json:fid", "metrics/dcgan.json:fid", "metrics/vanilla.json:fid",
                      "metrics/wgan_gp.json:fid", "loss"]
    assert widest(table) <= 160, table
    assert subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                          text=True).stdout == ""  # the baseline is checked out again
