"""A DVC remote for data and models: push from one clone, pull into a fresh clone, and `dvc repro`
there has nothing to do (the README shows the same with S3 or SSH)."""

from __future__ import annotations

import filecmp

import pytest
from conftest import repo_copy, run

pytestmark = pytest.mark.slow


def test_push_then_pull_into_a_fresh_clone_gives_the_same_models_without_retraining(repo, tmp_path):
    origin = repo_copy(repo, tmp_path)
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "team", str(remote)], origin)
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-qm", "results and a remote"], origin)
    pushed = run(["dvc", "push"], origin)
    assert "pushed" in pushed.stdout and any(remote.rglob("*"))

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert not (clone / "models/dcgan/seed0").exists()
    run(["dvc", "pull"], clone)
    for path in ("models/dcgan/seed0/generator.pt", "models/wgan_gp/seed0/generator.pt", "models/classifier",
                 "data/generated/dcgan/seed0.pt", "reports/index.html"):
        a, b = origin / path, clone / path
        same = filecmp.dircmp(a, b).diff_files == [] if a.is_dir() else filecmp.cmp(a, b, shallow=False)
        assert same, f"{path} differs after dvc pull"
    status = run(["dvc", "status"], clone)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    repro = run(["dvc", "repro"], clone)
    assert "Running stage" not in repro.stdout, repro.stdout
