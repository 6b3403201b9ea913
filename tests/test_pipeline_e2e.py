"""The real pipeline, end to end: `dvc repro` in a temporary git repo with tiny params."""

from __future__ import annotations

import base64
import json
import math
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow

COPY = ["pipeline", "stages", "dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore", ".gitignore", ".dvc/config",
        ".dvc/plots"]


def tiny_params(path: Path) -> None:
    params = yaml.safe_load(path.read_text())
    params["train"].update(steps=6, batch_size=16, width=8, z_dim=8, log_every=2, eval_every=3,
                           eval_samples=100, checkpoint_every=3, device="cpu")
    params["classifier"].update(epochs=1, batch_size=256)
    params["sample"].update(n=300)
    params["eval"].update(kid_subset_size=50)
    # two of the shipped variants keep the run short; unit tests cover the others
    params["variants"] = {"dcgan": params["variants"]["dcgan"], "wgan_gp": params["variants"]["wgan_gp"]}
    params["variants"]["wgan_gp"]["train"].update(d_steps=2, steps=6)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com", **(extra_env or {})}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gan-lab")
    for name in COPY:
        src = REPO / name
        dst = root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    tiny_params(root / "params.yaml")
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    run(["dvc", "repro"], root)
    return root


def declared_outputs(root: Path, variants: list[str]) -> list[Path]:
    """Every out, metric and plot dvc.yaml declares, with ${key} expanded."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    found = []
    for stage in stages.values():
        body = stage.get("do", stage)
        keys = variants if "foreach" in stage else [None]
        for section in ("outs", "metrics", "plots"):
            for entry in body.get(section, []):
                name = entry if isinstance(entry, str) else next(iter(entry))
                found += [root / (name.replace("${key}", k) if k else name) for k in keys]
    return found


def test_repro_writes_every_declared_output(repo):
    variants = list(yaml.safe_load((repo / "params.yaml").read_text())["variants"])
    outputs = declared_outputs(repo, variants)
    assert len(outputs) > 5 * len(variants)
    missing = [str(p.relative_to(repo)) for p in outputs if not p.exists()]
    assert not missing, f"declared outputs missing after dvc repro: {missing}"
    for variant in variants:
        metrics = json.loads((repo / f"reports/variants/{variant}/metrics.json").read_text())
        for key in ("fid_classifier", "kid_mean_classifier", "classes_covered", "class_kl"):
            assert key in metrics, f"{variant}: {key} missing from {metrics}"
            assert math.isfinite(metrics[key]), f"{variant}: {key} = {metrics[key]}"
        assert 0 <= metrics["classes_covered"] <= 10
        assert metrics["n_samples"] == 300
    html = (repo / "reports/index.html").read_text()
    for variant in variants:
        assert f'id="{variant}"' in html
    sources = re.findall(r'src="([^"]+)"', html)
    assert len(sources) >= 5 * len(variants)
    for src in sources:  # every image is embedded, so the page works anywhere (file, MLflow)
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_store_at_repo_root_has_every_variant(repo):
    from mlflow.tracking import MlflowClient

    assert (repo / "mlflow.db").exists() and (repo / "mlartifacts").is_dir()
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("gan-lab")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "variant" in r.data.tags]
    assert {r.data.tags["variant"] for r in children} == {"dcgan", "wgan_gp"}
    parents = {r.data.tags["mlflow.parentRunId"] for r in children}
    assert len(parents) == 1 and client.get_run(parents.pop()).info.status == "FINISHED"
    assert all(r.info.status == "FINISHED" for r in runs)
    assert (repo / ".gitignore").read_text().count("mlflow.db") == 1  # never committed


def test_dvc_plots_draw_every_curve(repo):
    out = run(["dvc", "plots", "show", "--json"], repo).stdout
    for series in ("loss_d", "loss_g", "gradient_penalty", "classes_covered", "class_kl"):
        assert f'"metric": "{series}"' in out, series
    for name in ("dcgan_losses.csv", "wgan_gp_losses.csv", "dcgan_modes.csv"):
        assert name in out


def test_second_repro_is_up_to_date(repo):
    status = run(["dvc", "status"], repo).stdout
    assert "up to date" in status.lower(), status
    out = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in out, out


def test_changing_report_param_reruns_only_report(repo):
    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["report"]["title"] = "Another title"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], repo).stdout
    ran = [line for line in out.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'report':"], out
    assert "Another title" in (repo / "reports/index.html").read_text()


def test_temp_exp_run_with_other_loss_lands_in_the_main_store(repo):
    """`dvc exp run --temp` runs in .dvc/tmp/exps/<tmp>, deleted afterwards: the MLflow runs must
    land in the main repository's store, and the experiment must have its own metrics."""
    from mlflow.tracking import MlflowClient

    before = json.loads((repo / "reports/variants/dcgan/metrics.json").read_text())
    run(["dvc", "exp", "run", "--temp", "-n", "try-wgan-gp", "-S", "loss=wgan_gp"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exps = [e for baseline in shown for e in (baseline.get("experiments") or [])]
    exp = next(e for e in exps if e.get("name") == "try-wgan-gp")
    data = exp["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["loss"] == "wgan_gp"
    after = data["metrics"]["reports/variants/dcgan/metrics.json"]["data"]
    assert after["fid_classifier"] != before["fid_classifier"]

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id],
                              filter_string="tags.dvc_experiment = 'try-wgan-gp'")
    dcgan = [r for r in runs if r.data.tags.get("variant") == "dcgan"]
    assert dcgan and dcgan[0].data.params["loss"] == "wgan_gp"
    assert "gradient_penalty" in dcgan[0].data.metrics


def documented_overrides() -> list[list[str]]:
    """The README's block of `dvc exp run -S ...` lines, as argument lists (comments dropped)."""
    import shlex

    text = (REPO / "README.md").read_text()
    block = text.split("<!-- documented overrides:", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("#", 1)[0]) for line in block.strip().splitlines() if line.strip()]


def tiny_sizes(args: list[str]) -> list[str]:
    """The same overrides at test size: any `...steps=N` becomes 6 generator steps."""
    return [re.sub(r"(\.steps)=\d+$", r"\1=6", a) for a in args]


@pytest.fixture(scope="module")
def workspace(repo, tmp_path_factory) -> Path:
    """A copy of the built repo (DVC cache included), for experiments that change its workspace."""
    copy = tmp_path_factory.mktemp("workspace") / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    run(["git", "checkout", "params.yaml"], copy)
    return copy


def test_every_documented_override_runs_as_typed_one_after_another(workspace):
    """A new user's session: each README override in turn, each on top of the last (`dvc exp run`
    keeps its params in the workspace). Every run must succeed, set exactly what was typed and
    leave metrics for every variant of the kind its dataset calls for."""
    lines = documented_overrides()
    assert len(lines) >= 8 and all(line[:3] == ["dvc", "exp", "run"] for line in lines)
    env_off = {"GAN_LAB_TRACKING": "off"}  # MLflow is covered above; here only the overrides matter
    for line in lines:
        args = tiny_sizes(line)
        result = run(args, workspace, env_off)
        params = yaml.safe_load((workspace / "params.yaml").read_text())
        for override in args[3:]:
            if override == "-S":
                continue
            key, value = override.split("=", 1)
            node = params
            for part in key.split("."):
                node = node[part]
            assert str(node).lower() == value.lower() or node == yaml.safe_load(value), (line, key, node)
        for variant in params["variants"]:
            metrics = json.loads((workspace / f"reports/variants/{variant}/metrics.json").read_text())
            if params["dataset"] == "ring8":
                assert {"modes_captured", "high_quality_frac", "reverse_kl"} <= set(metrics), (line, metrics)
                assert "fid_classifier" not in metrics
            else:
                assert math.isfinite(metrics["fid_classifier"]) and "classes_covered" in metrics, (line, metrics)
        if "train.label_smoothing=0.1" in args:  # the critic variant says why it trains without it
            assert "does not apply to loss 'wgan_gp'" in result.stdout + result.stderr

    # the case: 2D data with a single variant
    run(["dvc", "exp", "run", "-S", "~variants", "-S", "+variants={gan: {}}"], workspace, env_off)
    metrics = json.loads((workspace / "reports/variants/gan/metrics.json").read_text())
    assert set(metrics) == {"n_samples", "modes_captured", "high_quality_frac", "reverse_kl"}
    assert metrics["n_samples"] == 300 and 0 <= metrics["modes_captured"] <= 8
