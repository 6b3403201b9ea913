"""A team's tracking server: PostgreSQL (the distribution's package, installed by .ci/run) as MLflow's
backend store, `mlflow server` with a local artifact root, a tiny `dvc repro` and two queued
experiments run in parallel (`dvc queue start -j 2`) against it: every run, metric and model arrives.
Then the same server with users (`mlflow server --app-name basic-auth`, its users in PostgreSQL too): a request
without credentials is refused, a wrong password stops the train stage before training, a user with read permission
cannot log, the pipeline with the right user logs everything, and the password lands in no file and no run."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

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


def start_mlflow_server(store: str, artifacts: Path, *args: str, env: dict[str, str] | None = None
                        ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
                             "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).read()
            return proc, uri
        except OSError:
            assert proc.poll() is None, f"mlflow server exited:\n{proc.stderr.read()[-3000:]}"
            assert time.time() < deadline, "mlflow server did not start in 180 s"
            time.sleep(1)


@pytest.fixture(scope="module")
def team_server(postgres, tmp_path_factory):
    proc, uri = start_mlflow_server(postgres, tmp_path_factory.mktemp("artifacts"))
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


def create_database(postgres: str, name: str) -> str:
    port = urlsplit(postgres).port
    as_db_user([str(PG_BIN[-1].parent / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", name])
    return f"postgresql://mlflow@127.0.0.1:{port}/{name}"


@pytest.fixture(scope="module")
def auth_server(postgres, tmp_path_factory):
    """`mlflow server --app-name basic-auth` as the README sets it up: runs and users in PostgreSQL, no permission for
    a user until granted; yields (uri, the admin's password)."""
    folder = tmp_path_factory.mktemp("auth")
    admin_password = secrets.token_urlsafe(16)
    config = folder / "basic_auth.ini"
    config.write_text(f"[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                      f"database_uri = {create_database(postgres, 'mlflow_users')}\n"
                      f"admin_username = admin\nadmin_password = {admin_password}\n"
                      f"authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    proc, uri = start_mlflow_server(create_database(postgres, "mlflow_team_runs"), folder / "artifacts",
                                    "--app-name", "basic-auth",
                                    env={"MLFLOW_AUTH_CONFIG_PATH": str(config),
                                         "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)})
    yield uri, admin_password
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


def as_user(monkeypatch, user: str, password: str) -> None:
    """MLflow's clients read the user and password from the environment at every request."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_the_authenticated_team_server_lets_in_only_the_team(repo, tmp_path, auth_server, monkeypatch):
    import mlflow.server
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri, admin_password = auth_server
    alice, bob = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    as_user(monkeypatch, "admin", admin_password)
    admin = mlflow.server.get_app_client("basic-auth", tracking_uri=uri)
    admin.create_user("alice", alice)  # the team member who trains
    admin.create_user("bob", bob)      # a reader

    # no user, no answer: every API request without credentials is refused
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
    assert refused.value.code == 401

    root = repo_copy(repo, tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["mlflow"]["tracking_uri"] = uri  # the address only: the user and password stay in each one's environment
    params["variants"] = {"dcgan": params["variants"]["dcgan"]}
    params["train"]["steps"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "team server with users"], root)

    # a wrong password stops the train stage before any training, with one clear line
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "MLFLOW_TRACKING_USERNAME": "alice",
           "MLFLOW_TRACKING_PASSWORD": "not-" + alice}
    before = (root / "models/dcgan/seed0/generator.pt").read_bytes()
    wrong = subprocess.run([sys.executable, "-m", "stages.train", "dcgan"], cwd=root, env=env, capture_output=True,
                           text=True, timeout=300)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr, wrong.stderr[-2000:]
    assert f"the MLflow tracking server at {uri} refused user 'alice'" in wrong.stderr
    assert (root / "models/dcgan/seed0/generator.pt").read_bytes() == before  # nothing trained, nothing written

    # alice, with her user and password in the environment, builds the pipeline: everything arrives
    built = run(["dvc", "repro"], root, {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": alice})
    as_user(monkeypatch, "alice", alice)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("gan-lab")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    child = next(r for r in runs if r.data.tags.get("variant") == "dcgan")
    assert child.info.status == "FINISHED"
    assert "eval/fid_classifier" in child.data.metrics and "train/loss_d" in child.data.metrics
    assert len(child.outputs.model_outputs) == 1
    artifacts = Path(client.download_artifacts(child.info.run_id, "", str(tmp_path / "downloaded")))

    # bob may read the experiment once granted READ, and may not write to it
    as_user(monkeypatch, "admin", admin_password)
    admin.grant_user_permission("bob", "experiment", experiment.experiment_id, "READ")
    as_user(monkeypatch, "bob", bob)
    reader = MlflowClient(uri)
    assert {r.info.run_id for r in reader.search_runs([experiment.experiment_id])} == {r.info.run_id for r in runs}
    for write in (lambda: reader.log_metric(child.info.run_id, "tampered", 1.0),
                  lambda: reader.create_run(experiment.experiment_id),
                  lambda: reader.delete_run(child.info.run_id)):
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
            write()

    # alice's password is in no file of the project, no output of the build, no param, tag or artifact of a run
    secret = alice.encode()
    leaks = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]
    leaks += [str(p) for p in artifacts.rglob("*") if p.is_file() and secret in p.read_bytes()]
    leaks += ["dvc repro output"] if alice in built.stdout + built.stderr else []
    for r in runs:
        leaks += [f"run {r.info.run_id} {k}" for k, v in {**r.data.params, **r.data.tags}.items() if alice in v]
    assert leaks == []
    shutil.rmtree(root)
