"""Bad input anywhere gets one clear message that names the problem (and the valid choices), a
non-zero exit, no traceback and nothing written: params, `-S` overrides, `gan` arguments, a corrupt
checkpoint, unreadable images, a missing weights file, a tracking server that does not answer.
Each case runs the real command line in a copy of the tiny built project."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import repo_copy

pytestmark = pytest.mark.slow

GAN = [sys.executable, "-c", "from pipeline.cli import main; main()"]  # the `gan` console script


def set_params(root: Path, change) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    change(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])  # a truncated download or copy


def unreadable_images(root: Path) -> None:
    (root / "photos").mkdir()
    for name in ("a.png", "b.jpg"):
        (root / "photos" / name).write_bytes(b"not an image")
    set_params(root, lambda p: (p.update(dataset="folder"), p["data"].update(folder="photos")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = {
    "unknown loss in params.yaml": (
        lambda r: set_params(r, lambda p: p.update(loss="bce")), ["python", "-m", "stages.prepare"],
        "loss: unknown loss 'bce'; valid losses: minimax, ns, lsgan, hinge, wgan, wgan_gp"),
    "wrong type in params.yaml": (
        lambda r: set_params(r, lambda p: p["train"].update(steps="many")), ["python", "-m", "stages.prepare"],
        "train.steps"),
    "-S override with an invalid choice": (
        None, ["dvc", "exp", "run", "-S", "train.g_noise=sometimes"],
        "train.g_noise: unknown value 'sometimes'; valid values: fresh, reuse"),
    "gan sample of a variant never trained": (
        None, GAN + ["sample", "ghost"], "no trained generator at models/ghost/seed0/generator.pt"),
    "gan with an unknown option": (
        None, GAN + ["sample", "dcgan", "--colour", "red"], "No such option: --colour"),
    "corrupt checkpoint for gan sample": (
        lambda r: corrupt(r / "models/dcgan/seed0/generator.pt"), GAN + ["sample", "dcgan"],
        "models/dcgan/seed0/generator.pt is not a readable generator checkpoint"),
    "a folder of unreadable images": (
        unreadable_images, ["python", "-m", "stages.prepare"],
        "data.folder: none of the 2 image files in photos could be read"),
    "missing Inception weights file": (
        lambda r: set_params(r, lambda p: p["eval"].update(features=["classifier", "inception"], inception_weights="pt_inception.pth")),
        ["python", "-m", "stages.prepare"], "eval.inception_weights: pt_inception.pth is not a file"),
    "-S of an eval key naming a missing file": (  # an eval-only change: the resolve stage reads all of params.yaml
        None, ["dvc", "exp", "run", "-S", "eval.features=[classifier,inception]", "-S",
               "eval.inception_weights=/nonexistent.pth"],
        "eval.inception_weights: /nonexistent.pth is not a file"),
    "-S of a task and a dataset that do not fit": (
        None, ["dvc", "exp", "run", "-S", "task=translate", "-S", "data.translate=sr4", "-S", "dataset=ring8"],
        "task: translate and dataset: ring8 do not fit: task translate trains on images or stacked-digit images, "
        "dataset ring8 holds 2D points"),
    "gan arithmetic with a class the dataset does not have": (
        None, GAN + ["arithmetic", "dcgan", "--a", "7", "--b", "1", "--c", "42"],
        "--c 42 is out of range; valid classes: 0..9"),
    "tracking server that does not answer": (
        None, ["python", "-m", "stages.train", "dcgan"], "is unreachable"),
}


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the project that a stage could write, with a digest of its contents (DVC may
    rewrite a file with the same contents when it restores the workspace)."""
    skip = (".dvc/tmp", ".git", ".dvc/cache", "mlflow.db", "mlartifacts", "photos", "params.yaml")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file() and not str(p.relative_to(root)).startswith(skip)}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_message_and_nothing_written(repo, tmp_path, case):
    setup, cmd, message = CASES[case]
    root = repo_copy(repo, tmp_path)  # the built project, committed as a user would (conftest.build_tiny_repo)
    if setup:
        setup(root)
    before = snapshot(root)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if case.startswith("tracking"):
        env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"
    cmd = [sys.executable if c == "python" else c for c in cmd]
    result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    if cmd[:3] == ["dvc", "exp", "run"]:
        # DVC removes a stage's outputs before it runs the stage, so the failed train stage's old
        # results leave the workspace (nothing half-written replaces them); they are not lost:
        # the cached ones come back with `dvc checkout`, the small git-tracked ones with git
        for restore in (["git", "checkout", "--", "."], ["dvc", "checkout", "-q"]):
            subprocess.run(restore, cwd=root, env=env, check=True, timeout=300)
    after = snapshot(root)
    assert after == before, f"written or changed: {sorted(set(after.items()) ^ set(before.items()))[:10]}"
    shutil.rmtree(root)
