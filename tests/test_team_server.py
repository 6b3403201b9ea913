"""A team's tracking server: PostgreSQL (the distribution's package, installed by .ci/run) as MLflow's
backend store, `mlflow server` with a local artifact root, a tiny `dvc repro` and two queued
experiments run in parallel (`dvc queue start -j 2`) against it: every run, metric and model arrives."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import repo_copy, run

pytestmark = pytest.mark.slow

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_db_user(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    if not PG_BIN:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); CI runs this test")
    bin_dir = PG_BIN[-1].parent
    root = Path(tempfile.mkdtemp(prefix="gan-lab-pg-"))  # pytest's own temp folders are private to root
    root.chmod(0o777)
    data, port = root / "data", free_port()
    as_db_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8"])
    as_db_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                f"-p {port} -k {root} -h 127.0.0.1", "start"])
    yield f"postgresql://mlflow@127.0.0.1:{port}/postgres"
    as_db_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def team_server(postgres, tmp_path_factory):
    port, artifacts = free_port(), tmp_path_factory.mktemp("artifacts")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
                             "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None, f"mlflow server exited:\n{proc.stderr.read()[-3000:]}"
            assert time.time() < deadline, "mlflow server did not start in 180 s"
            time.sleep(1)
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


def test_repro_and_two_parallel_queued_experiments_log_everything_to_the_team_server(repo, tmp_path, team_server):
    from mlflow.tracking import MlflowClient

    root = repo_copy(repo, tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["mlflow"]["tracking_uri"] = team_server  # the team setting, committed with the project
    params["variants"] = {"dcgan": params["variants"]["dcgan"]}
    params["train"]["steps"] = 4  # the built copy's runs went to its local store: train anew, on the server
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "team server"], root)
    run(["dvc", "repro"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "built"], root)
    for lr in ("1e-4", "3e-4"):
        run(["dvc", "exp", "run", "--queue", "-S", f"train.lr_g={lr}"], root)
    run(["dvc", "queue", "start", "-j", "2"], root)
    deadline = time.time() + 600
    while True:
        status = run(["dvc", "queue", "status"], root).stdout
        if "Queued" not in status and "Running" not in status:
            break
        assert time.time() < deadline, status
        time.sleep(3)
    assert status.count("Success") == 2, status

    client = MlflowClient(team_server)
    exp = client.get_experiment_by_name("gan-lab")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    children = [r for r in runs if r.data.tags.get("variant") == "dcgan"]
    assert len(children) == 3, [r.data.params.get("train.lr_g") for r in children]
    assert sorted(float(r.data.params["train.lr_g"]) for r in children) == [1e-4, 2e-4, 3e-4]
    for child in children:
        assert child.info.status == "FINISHED"
        assert "eval/fid_classifier" in child.data.metrics and "train/loss_d" in child.data.metrics
        assert [m.step for m in client.get_metric_history(child.info.run_id, "train/loss_d")] == [2, 4]
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"checkpoint", "evaluation", "tables"} <= names, names
        assert len(child.outputs.model_outputs) == 1  # the generator, an MLflow logged model
    experiments = {r.data.tags.get("dvc_experiment") for r in children}
    assert len(experiments) == 3  # the plain repro ("") and the two named experiments
    shutil.rmtree(root)
