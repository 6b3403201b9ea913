"""Nothing lost: a training killed with SIGKILL resumes from its last checkpoint, ends bit-identical
to an uninterrupted run and continues the same MLflow run; a crash while a checkpoint is written
leaves the previous one whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import repo_copy, run

from pipeline.io import load_torch, save_torch

STEPS, EVERY = 1000, 100  # long enough to be killed once the run is open (tiny nets: about 10 ms a step)


def long_training(root: Path) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(steps=STEPS, checkpoint_every=EVERY, log_every=50, eval_every=1000)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dcgan_runs(root: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("gan-lab")
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("variant") == "dcgan"], client


@pytest.mark.slow
def test_sigkill_mid_training_then_dvc_repro_resumes_bit_identical_in_the_same_mlflow_run(repo, tmp_path):
    killed, straight = repo_copy(repo, tmp_path / "a"), repo_copy(repo, tmp_path / "b")
    for root in (killed, straight):
        long_training(root)
    runs_before = {r.info.run_id for r in dcgan_runs(killed)[0]}
    old_model = (killed / "models/dcgan/seed0/generator.pt").stat().st_mtime_ns  # from the tiny params' run

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "stages.train", "dcgan"], cwd=killed, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = killed / ".gan-lab/runs/dcgan/seed0/last.pt"
    deadline = time.time() + 300
    while not (state.exists() and (killed / ".gan-lab/runs/dcgan/seed0/mlflow_run.json").exists()):
        assert proc.poll() is None, f"training ended before it could be killed:\n{proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_torch(state)["step"]
    assert 0 < killed_at < STEPS
    assert (killed / "models/dcgan/seed0/generator.pt").stat().st_mtime_ns == old_model  # no half-trained result

    resumed = run(["dvc", "repro", "train@dcgan-0"], killed)
    assert f"resumed dcgan/seed0 from step {killed_at}" in resumed.stdout
    assert "continuing MLflow run" in resumed.stdout
    run(["dvc", "repro", "train@dcgan-0"], straight)

    a = load_torch(killed / "models/dcgan/seed0/checkpoint.pt")
    b = load_torch(straight / "models/dcgan/seed0/checkpoint.pt")
    for part in ("state_dict", "discriminator"):
        assert a[part].keys() == b[part].keys()
        for name in a[part]:
            assert torch.equal(a[part][name], b[part][name]), f"{part}.{name} differs after the resume"
    assert not state.exists()  # finished: nothing left to resume

    runs, client = dcgan_runs(killed)
    new = [r for r in runs if r.info.run_id not in runs_before]
    assert len(new) == 1, "the resumed training must continue the killed run, not start a second one"
    assert new[0].info.status == "FINISHED"
    steps = sorted({m.step for m in client.get_metric_history(new[0].info.run_id, "train/loss_d")})
    assert steps[0] == 50 and steps[-1] == STEPS  # before and after the kill, in one run


def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_torch({"step": 40, "w": torch.arange(4.0)}, path)

    def dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as a kill would stop it, mid-write

    plain_write = Path.write_bytes

    def disk_dies_halfway(self, data):
        plain_write(self, data[: len(data) // 2])
        raise KeyboardInterrupt

    for target, name, crash in ((torch, "save", dies_halfway), (Path, "write_bytes", disk_dies_halfway)):
        monkeypatch.setattr(target, name, crash)
        with pytest.raises(KeyboardInterrupt):
            save_torch({"step": 80, "w": torch.zeros(4)}, path)
        monkeypatch.undo()
        state = load_torch(path)
        assert state["step"] == 40 and torch.equal(state["w"], torch.arange(4.0)), name
        assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], name  # no temporary file left behind


def test_an_unreadable_training_state_starts_over_with_a_note(tmp_path, capsys):
    from conftest import image_data, tiny_recipe

    from pipeline.tasks import train

    state = tmp_path / "last.pt"
    state.write_bytes(b"not a checkpoint")
    result = train(tiny_recipe(train={"steps": 2}), image_data(), state_path=state, progress=False)
    assert result.resumed_from == 0 and len(result.log_rows) == 1
    assert "is not a readable training state" in capsys.readouterr().out


@pytest.mark.slow
def test_two_fresh_builds_give_identical_metrics(repo, tmp_path_factory):
    """The tiny pipeline built again from scratch in another directory, on CPU (MLflow off: where
    results are logged does not decide them): every metrics file is byte-identical to the first
    build's, and so is each FID protocol, whose classifier digest is a digest of the saved file."""
    from conftest import build_tiny_repo

    again = build_tiny_repo(tmp_path_factory.mktemp("again"), {"GAN_LAB_TRACKING": "off"})
    files = sorted(p.relative_to(repo) for name in ("metrics.json", "training.json", "fid_protocol.json")
                   for p in (repo / "reports").rglob(name))
    files.append(Path("reports/classifier.json"))
    assert len(files) == 7
    for rel in files:
        assert (again / rel).read_bytes() == (repo / rel).read_bytes(), f"{rel} differs between two fresh builds"
