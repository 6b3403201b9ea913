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
    ({"arch": "unet"}, "error: arch: unknown architecture 'unet'; valid architectures: dcgan, dcgan4, infogan, mlp, toy, toy_pacgan"),
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
