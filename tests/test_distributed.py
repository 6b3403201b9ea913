"""Data-parallel training: `train.nproc: 2` makes the train stage launch itself under torchrun (two
CPU processes, gloo): one MLflow run, one checkpoint, and loss curves like one process's at the
same global batch."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml
from conftest import repo_copy, run

from pipeline.io import load_torch

pytestmark = pytest.mark.slow


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_two_processes_with_gloo_train_one_run_one_checkpoint(repo, tmp_path):
    from mlflow.tracking import MlflowClient

    root = repo_copy(repo, tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["nproc"] = 2  # global batch stays 16: 8 a process
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("gan-lab")
    before = {r.info.run_id for r in client.search_runs([exp.experiment_id])}

    out = run(["dvc", "repro", "train@dcgan-0", "train@wgan_gp-0"], root)
    assert "training dcgan/seed0 in 2 processes (torchrun)" in out.stdout
    assert "training wgan_gp/seed0 in 2 processes (torchrun)" in out.stdout

    new = [r for r in client.search_runs([exp.experiment_id]) if r.info.run_id not in before]
    children = [r for r in new if r.data.tags.get("variant") == "dcgan"]
    assert len(children) == 1 and children[0].info.status == "FINISHED"  # rank 0 alone logs
    ckpt = load_torch(root / "models/dcgan/seed0/checkpoint.pt")
    assert ckpt["recipe"]["train"]["nproc"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())

    two, one = rows(root / "reports/variants/dcgan/seed0/train_log.csv"), rows(repo / "reports/variants/dcgan/seed0/train_log.csv")
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(two, one):  # same global batch, other noise and batches: close, not equal (the gradient itself:
        # test_one_synchronised_step_has_the_gradient_of_the_whole_batch_in_one_process)
        assert abs(float(a["loss_d"]) - float(b["loss_d"])) < 0.25, (a, b)
        assert abs(float(a["loss_g"]) - float(b["loss_g"])) < 0.5, (a, b)
    history = client.get_metric_history(children[0].info.run_id, "train/loss_d")
    assert sorted(m.step for m in history) == [int(r["step"]) for r in two]

    # the gradient penalty through DDP: the penalised critic trains, its penalty is averaged over ranks
    two = rows(root / "reports/variants/wgan_gp/seed0/train_log.csv")
    one = rows(repo / "reports/variants/wgan_gp/seed0/train_log.csv")
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(two, one):
        gp_a, gp_b = float(a["gradient_penalty"]), float(b["gradient_penalty"])
        assert 0 <= gp_a < 10 and abs(gp_a - gp_b) < max(0.5, 0.5 * gp_b), (a, b)


def two_ranks(tmp_path, worker: str, args: list) -> list[str]:
    """Run `tests/<worker>` as ranks 0 and 1 of a gloo job (one thread each); their outputs, or a failure on a hang."""
    import os
    import socket
    import subprocess
    import sys

    from conftest import REPO

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(REPO / "tests" / worker), *[str(a) for a in args[rank]]],
                                      env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"a rank of {worker} hung")
    assert [p.returncode for p in procs] == [0, 0], outputs
    return outputs


def test_one_synchronised_step_has_the_gradient_of_the_whole_batch_in_one_process(tmp_path):
    """Each rank computes D's loss on its half of a batch; after DDP's all-reduce both hold the gradient one process
    computes on the whole batch (the loss is a mean over equal halves). Without the sync a rank's gradient is its
    half's, which differs: the comparison can fail."""
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "tests"))
    from ddp_gradient_worker import d_loss, fixed_batch, grads, new_discriminator

    two_ranks(tmp_path, "ddp_gradient_worker.py", [[tmp_path / "g0.pt"], [tmp_path / "g1.pt"]])
    whole = new_discriminator()
    d_loss(whole, *fixed_batch()).backward()
    expected = grads(whole)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"g{rank}.pt")
        for name, value in expected.items():
            assert torch.allclose(got["synced"][name], value, atol=1e-6), (rank, name)
        assert any(not torch.allclose(got["alone"][n], v, atol=1e-4) for n, v in expected.items()), rank


def test_a_resume_in_two_processes_starts_every_rank_from_rank_0s_state(tmp_path):
    """Only rank 0 can read a checkpoint (as on a second node, whose disk does not have it): both
    ranks must resume from it, at its step, with its weights, and end with identical weights; no
    rank may hang on a collective the other never reaches."""
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "tests"))
    from ddp_resume_worker import RECIPE

    from conftest import point_data, tiny_recipe
    from pipeline.tasks import train

    state = tmp_path / "rank0" / "last.pt"  # rank 0's disk; rank 1 looks for its own copy and has none
    state.parent.mkdir()
    train(tiny_recipe(**RECIPE), point_data(n=512), state_path=state, progress=False)  # leaves the step-4 state
    assert load_torch(state)["step"] == 4

    two_ranks(tmp_path, "ddp_resume_worker.py", [[state, tmp_path / "out0.pt"],
                                                  [tmp_path / "rank1" / "last.pt", tmp_path / "out1.pt"]])
    ends = [torch.load(tmp_path / f"out{rank}.pt") for rank in (0, 1)]
    assert [e["resumed_from"] for e in ends] == [4, 4]
    for key, value in ends[0]["weights"].items():
        assert torch.equal(value, ends[1]["weights"][key]), key
