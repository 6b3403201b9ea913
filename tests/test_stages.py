"""Stage command lines: bad input is one clear line on stderr, exit code 2, and nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO


def run_stage(stage: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def write_params(tmp_path: Path, params_raw: dict, **changes) -> None:
    params_raw.update(changes)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_raw, sort_keys=False))


@pytest.mark.parametrize("changes, message", [
    ({"dataset": "imagenet"}, "error: dataset: unknown dataset 'imagenet'; valid datasets: mnist5k, digits, mnist"),
    ({"loss": "bce"}, "error: loss: unknown loss 'bce'; valid losses: minimax, ns"),
    ({"arch": "unet"}, "error: arch: unknown architecture 'unet'; valid architectures: dcgan, dcgan4, infogan, mlp, progressive, toy, toy_pacgan, voxel3d"),
    ({"dataset": "folder", "data": {"folder": "no/such/dir"}}, "error: data.folder: no/such/dir does not exist"),
])
def test_prepare_rejects_bad_params(tmp_path, params_raw, changes, message):
    write_params(tmp_path, params_raw, **changes)
    result = run_stage("prepare", tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # no partial output


def test_empty_folder_is_rejected_before_anything_is_written(tmp_path, params_raw):
    (tmp_path / "images").mkdir()
    write_params(tmp_path, params_raw, dataset="folder", data={"folder": "images"})
    result = run_stage("prepare", tmp_path)
    assert result.returncode == 2 and "holds no images" in result.stderr
    assert not (tmp_path / "data").exists()


def test_train_unknown_variant(tmp_path, params_raw):
    write_params(tmp_path, params_raw)
    result = run_stage("train", tmp_path, "nope")
    assert result.returncode == 2
    assert "unknown variant 'nope'; variants in params.yaml: vanilla, dcgan, wgan_gp, cdcgan" in result.stderr
    assert not (tmp_path / "models").exists()


def test_train_without_prepared_data_says_what_to_run(tmp_path, params_raw):
    write_params(tmp_path, params_raw)
    result = run_stage("train", tmp_path, "dcgan")
    assert result.returncode == 2 and "run `dvc repro prepare` first" in result.stderr


def test_prepare_and_classifier_on_digits(tmp_path, params_raw):
    """The two first stages for real on a small bundled dataset."""
    params_raw["classifier"]["epochs"] = 10
    write_params(tmp_path, params_raw, dataset="digits")
    assert run_stage("prepare", tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "data/prepared/digits").iterdir()) == ["info.json", "test.pt", "train.pt"]
    result = run_stage("classifier", tmp_path)
    assert result.returncode == 0, result.stderr
    report = yaml.safe_load((tmp_path / "reports/classifier.json").read_text())
    assert report["digits"]["available"] is True and report["digits"]["test_accuracy"] > 0.8
    assert (tmp_path / "models/classifier/digits.pt").exists()


def test_tables_are_written_and_read_as_pandas_does(tmp_path, monkeypatch):
    """The tables are plain CSV written without pandas (importing it costs each stage a third of a
    second); files and values must be the ones pandas wrote and read before."""
    import math

    import pandas as pd

    from pipeline.checkpoint import read_table, write_curves, write_table
    from pipeline.report.aggregate import RunResult, VariantRuns, curves

    rows = [{"step": 25, "loss_d": 0.5, "images_d": 1600, "note": "a"},
            {"step": 50, "loss_d": 1e-05, "images_d": 3200, "wasserstein": 2.0, "seconds": 3},
            {"step": 75, "loss_d": float("nan"), "images_d": 4800, "note": None}]
    write_table(rows, tmp_path / "t.csv")
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    assert (tmp_path / "t.csv").read_text() == (tmp_path / "p.csv").read_text()
    ours, theirs = read_table(tmp_path / "t.csv"), pd.read_csv(tmp_path / "p.csv").to_dict("records")
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert list(a) == list(b)
        for key in a:
            same_nan = isinstance(a[key], float) and isinstance(b[key], float) and math.isnan(a[key]) and math.isnan(b[key])
            assert same_nan or (a[key] == b[key] and type(a[key]) is type(b[key].item() if hasattr(b[key], "item") else b[key])), key
    # `dvc plots`' tables: a file per (axis, metric) with every run's points; the losses against steps, the checks
    # against steps and seconds; NaN, text and the cost columns are not curves
    monkeypatch.chdir(tmp_path)
    checks = [{"step": 25, "images_d": 1600, "seconds": 1.5, "fid_classifier": 90.0},
              {"step": 50, "images_d": 3200, "seconds": 3.0, "fid_classifier": float("nan")}]
    runs = [VariantRuns("a", [RunResult(0, {}, {}, {}, rows, checks), RunResult(1, {}, {}, {}, rows[:1], [])])]
    write_curves(curves(runs, losses=("loss_d", "wasserstein")))
    folder = tmp_path / "reports/curves"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.csv")) == [
        "seconds/fid_classifier.csv", "step/fid_classifier.csv", "step/loss_d.csv", "step/wasserstein.csv"]
    expected = pd.DataFrame([{"variant": "a", "seed": 0, "step": 25, "value": 0.5},
                             {"variant": "a", "seed": 0, "step": 50, "value": 1e-05},
                             {"variant": "a", "seed": 1, "step": 25, "value": 0.5}])
    expected.to_csv(tmp_path / "p_step.csv", index=False)
    assert (folder / "step/loss_d.csv").read_text() == (tmp_path / "p_step.csv").read_text()
    assert (folder / "seconds/fid_classifier.csv").read_text() == "variant,seed,seconds,value\na,0,1.5,90.0\n"
    write_table([], tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text() == "step\n" and read_table(tmp_path / "empty.csv") == []


def test_the_same_checkpoint_saved_twice_is_the_same_bytes(tmp_path):
    """Digests of saved files (the classifier's, in every FID protocol and feature-cache key) must
    not change between two builds that computed the same weights."""
    import torch

    from pipeline.io import load_torch, save_torch

    state = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"n": 3}}
    save_torch(state, tmp_path / "a.pt")
    save_torch(state, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert torch.equal(load_torch(tmp_path / "a.pt")["w"], state["w"])
