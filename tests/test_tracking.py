"""MLflow tracking against a real `mlflow server` on a free localhost port with its own SQLite store:
the stages, run in a temporary project on the bundled 8x8 digits, create the runs, tags, params,
stepped metrics, artifacts and a generator model that loads back and generates images."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'store.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 90 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def tiny_project(root: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(dataset="digits")
    params["train"].update(steps=4, batch_size=16, width=8, z_dim=8, log_every=2, eval_every=2, eval_samples=64,
                           checkpoint_every=2, device="cpu")
    params["classifier"].update(epochs=1)
    params["sample"].update(n=200, grid=4, latent_samples=100)
    params["eval"].update(kid_subset_size=50)
    params["mlflow"].update(experiment="test-gan-lab")
    params["variants"] = {"dcgan": {}, "cdcgan": {"conditional": True}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_stages(root: Path, env: dict[str, str], *stages: list[str]) -> None:
    for stage in stages:
        result = subprocess.run([sys.executable, "-m", f"stages.{stage[0]}", *stage[1:]], cwd=root,
                                env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{stage} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def tracked(server, tmp_path_factory):
    """The whole pipeline's stages, tracked by the server."""
    root = tmp_path_factory.mktemp("project")
    tiny_project(root)
    env = {"MLFLOW_TRACKING_URI": server}
    run_stages(root, env, ["prepare"], ["classifier"], ["train", "dcgan"], ["train", "cdcgan"],
               ["sample", "dcgan"], ["sample", "cdcgan"], ["evaluate", "dcgan"], ["evaluate", "cdcgan"], ["report"])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server)
    exp = client.get_experiment_by_name("test-gan-lab")
    runs = {r.data.tags.get("variant"): r for r in client.search_runs([exp.experiment_id])}
    return client, runs, root


def test_one_run_per_variant_under_one_finished_parent(tracked):
    client, runs, _ = tracked
    assert {"dcgan", "cdcgan"} <= set(runs)
    parents = {runs[v].data.tags["mlflow.parentRunId"] for v in ("dcgan", "cdcgan")}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.info.status == "FINISHED"
    assert "report/index.html" in [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    assert all(runs[v].info.status == "FINISHED" for v in ("dcgan", "cdcgan"))


def test_tags_and_params(tracked):
    _, runs, _ = tracked
    tags, params = runs["cdcgan"].data.tags, runs["cdcgan"].data.params
    assert tags["variant"] == "cdcgan" and tags["seed"] == "0" and runs["cdcgan"].info.run_name == "cdcgan seed 0"
    assert tags["dataset"] == "digits" and tags["loss"] == "ns" and tags["still_improving"] in ("true", "false")
    assert tags["arch"] == "dcgan" and tags["device"] == "cpu" and tags["conditional"] == "True"
    assert "git_commit" in tags and "dvc_experiment" in tags
    assert params["train.steps"] == "4" and params["conditional"] == "True" and params["train.betas"] == "[0.5, 0.999]"


def test_stepped_metrics(tracked):
    client, runs, _ = tracked
    run_id = runs["dcgan"].info.run_id
    # named `<section>/<name>`: MLflow's chart view shows a section per prefix
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "images_per_s", "lr_g"):
        assert [m.step for m in client.get_metric_history(run_id, f"train/{key}")] == [2, 4], key
    for key in ("classes_covered", "class_kl", "fid_classifier", "images_d", "seconds"):
        assert [m.step for m in client.get_metric_history(run_id, f"train_eval/{key}")] == [2, 4], key
    final = runs["dcgan"].data.metrics
    assert "eval/fid_classifier" in final and "eval/classes_covered" in final  # the report stage attached them
    assert np.isfinite(final["eval/fid_classifier"])
    assert {k.split("/")[0] for k in final} == {"train", "train_eval", "eval"}


def test_artifacts_and_sample_images_over_training(tracked):
    client, runs, _ = tracked
    run_id = runs["dcgan"].info.run_id
    checkpoint = [a.path for a in client.list_artifacts(run_id, "checkpoint")]
    assert "checkpoint/generator.pt" in checkpoint and "checkpoint/checkpoint.pt" in checkpoint
    assert "evaluation/metrics.json" in [a.path for a in client.list_artifacts(run_id, "evaluation")]
    images = [a.path for a in client.list_artifacts(run_id, "images")]
    assert len([p for p in images if p.endswith(".png")]) == 2  # one grid per eval step (2 and 4)


def test_logged_generator_loads_and_generates(tracked, server):
    import mlflow

    client, runs, _ = tracked
    mlflow.set_tracking_uri(server)
    model = mlflow.pyfunc.load_model(f"runs:/{runs['dcgan'].info.run_id}/generator")
    z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    images = np.asarray(model.predict(z))
    assert images.shape == (5, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    # MLflow's pt2 format: an exported graph, no pickled module and no package code inside the model
    logged = [a.path for a in client.list_artifacts(runs["dcgan"].info.run_id, "generator/data")]
    assert logged == ["generator/data/model.pt2"]
    assert not client.list_artifacts(runs["dcgan"].info.run_id, "generator/code")
    assert list(model.metadata.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 8]
    conditional = mlflow.pyfunc.load_model(f"runs:/{runs['cdcgan'].info.run_id}/generator")
    zy = np.concatenate([z, np.full((5, 1), 3, dtype=np.float32)], axis=1)
    assert np.asarray(conditional.predict(zy)).shape == (5, 1, 8, 8)


def test_compare_prints_latest_runs(tracked, server, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    _, _, root = tracked
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    result = CliRunner().invoke(app, ["compare"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["variant", "seeds", "loss", "dataset"]
    assert {"fid", "precision", "recall", "coverage", "classes"} <= set(lines[0].split())  # as `dvc metrics show`
    assert sorted(line.split()[0] for line in lines[1:]) == ["cdcgan", "dcgan"]
    assert all(line.split()[1] == "1" for line in lines[1:])  # one seed each


def test_failed_and_interrupted_runs_are_not_left_running(server):
    from mlflow.tracking import MlflowClient

    from pipeline.tracking_mlflow import MlflowTracker, run_status

    client = MlflowClient(server)
    exp = client.get_experiment_by_name("status-test") or client.get_experiment(client.create_experiment("status-test"))
    for error, expected in ((RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")):
        parent = client.create_run(exp.experiment_id).info.run_id
        child = client.create_run(exp.experiment_id).info.run_id
        with pytest.raises(type(error)):
            with run_status(MlflowTracker(client, child, parent)):
                raise error
        assert client.get_run(child).info.status == expected
        assert client.get_run(parent).info.status == expected


def test_unreachable_server_fails_before_training(tmp_path):
    tiny_project(tmp_path)
    subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                   check=True, capture_output=True)
    port = free_port()  # nothing listens here
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    start = time.time()
    result = subprocess.run([sys.executable, "-m", "stages.train", "dcgan"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"the MLflow tracking server at http://127.0.0.1:{port} is unreachable" in result.stderr
    assert "GAN_LAB_TRACKING=off" in result.stderr
    assert time.time() - start < 60 and not (tmp_path / "models").exists()
    # the documented opt-in: train untracked
    result = subprocess.run([sys.executable, "-m", "stages.train", "dcgan"], cwd=tmp_path,
                            env={**env, "GAN_LAB_TRACKING": "off"}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "training without MLflow tracking" in result.stdout
    assert (tmp_path / "models/dcgan/seed0/generator.pt").exists()


def test_repo_root_from_a_dvc_temporary_workspace(tmp_path):
    from pipeline.config import MlflowConfig
    from pipeline.tracking_mlflow import repo_root, resolve_tracking_uri

    temp = tmp_path / ".dvc/tmp/exps/tmpab12/sub"
    temp.mkdir(parents=True)
    assert repo_root(temp) == tmp_path.resolve()
    assert repo_root(tmp_path) == tmp_path.resolve()
    env = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        assert resolve_tracking_uri(MlflowConfig(), tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
        assert resolve_tracking_uri(MlflowConfig(tracking_uri="http://h:1"), tmp_path) == "http://h:1"
    finally:
        if env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env


def test_compare_aggregates_the_latest_run_of_each_seed(tmp_path):
    """`gan compare`: per variant, each metric's mean ± sd over its seeds (the newest run of each
    seed: a rerun replaces, never adds), how many seeds, and how many were still improving."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from pipeline.tracking_mlflow import latest_runs_table

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("cmp", artifact_location=(tmp_path / "a").as_uri())
    for variant, seed, fid, improving in (("dcgan", 0, 99.0, "false"), ("dcgan", 0, 10.0, "false"),
                                          ("dcgan", 1, 12.0, "true"), ("dcgan", 2, 14.0, "false"),
                                          ("wgan_gp", 0, 60.0, "true")):
        run = client.create_run(exp, tags={"variant": variant, "seed": str(seed), "loss": "ns", "dataset": "mnist5k",
                                           "still_improving": improving})
        client.log_batch(run.info.run_id, metrics=[Metric("eval/fid_classifier", fid, 0, 0)])
        client.set_terminated(run.info.run_id, "FINISHED")
        time.sleep(0.01)  # start times order the runs: the second dcgan seed-0 run is the newest
    table = latest_runs_table(uri, "cmp", [("fid", "eval/fid_classifier")]).set_index("variant")
    assert table.loc["dcgan", "seeds"] == 3 and table.loc["dcgan", "fid"] == "12 ± 2"
    assert table.loc["dcgan", "note"] == "still improving (1 of 3 seeds)"
    assert table.loc["wgan_gp", "fid"] == "60" and table.loc["wgan_gp", "note"] == "still improving (1 of 1 seeds)"
