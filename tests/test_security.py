"""Loading never runs code from a file, the MLflow UI stays on this machine unless asked, and no
shell command is ever built from params."""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import pytest
import torch
from conftest import REPO
from typer.testing import CliRunner

from pipeline.io import load_torch

SOURCES = sorted((REPO / "pipeline").rglob("*.py")) + sorted((REPO / "stages").rglob("*.py"))


class Payload:
    """A pickle that runs code when loaded with full unpickling."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_a_checkpoint_that_would_run_code_is_refused_not_executed(tmp_path):
    marker, evil = tmp_path / "pwned", tmp_path / "generator.pt"
    torch.save({"state_dict": {}, "spec": Payload(marker)}, evil, pickle_protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        load_torch(evil)
    assert not marker.exists()


def test_every_torch_load_is_weights_only():
    calls = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                calls.append((path.name, {k.arg: ast.unparse(k.value) for k in node.keywords}))
    assert calls == [("io.py", {"map_location": "map_location", "weights_only": "True"})]


def test_no_shell_commands():
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                assert name not in ("os.system", "os.popen"), f"{path.name}: {name}"
                for k in node.keywords:
                    assert not (k.arg == "shell" and ast.unparse(k.value) != "False"), f"{path.name}: shell=True"


def test_the_mlflow_ui_binds_to_localhost_by_default(tmp_path, monkeypatch):
    import subprocess

    from pipeline.cli import app

    commands = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: commands.append(cmd) or 0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    result = CliRunner().invoke(app, ["ui"])
    assert result.exit_code == 0, result.output
    (cmd,) = commands
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[:3] == [cmd[0], "-m", "mlflow"] and isinstance(cmd, list)  # an argument list: no shell
    # no runs yet: it says where the UI is and what to run first
    assert "MLflow UI for sqlite:///" in result.output and "http://127.0.0.1:5000 (no experiment 'gan-lab' yet" in result.output
    # with the experiment there: its training-runs table, and the experiment is tagged for the model-training view
    from mlflow.tracking import MlflowClient

    from pipeline.tracking_mlflow import experiment_id

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp_id = experiment_id(client, "gan-lab", tmp_path)
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"
    result = CliRunner().invoke(app, ["ui", "--port", "5055"])
    runs = f"http://127.0.0.1:5055/#/experiments/{exp_id}/runs?workflowType=machine_learning&viewStateShareKey=by-variant"
    assert f"the training runs, grouped by variant: {runs}\n" in result.output  # the saved view, as a table
    assert f"{runs}&compareRunsMode=CHART" in result.output
    view = json.loads(client.get_experiment(exp_id).tags["mlflow.sharedViewState.by-variant"])
    assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "variant"}]
