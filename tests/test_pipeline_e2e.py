"""The real pipeline, end to end: `dvc repro` in a temporary git repo with tiny params."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from conftest import repo_copy, run

pytestmark = pytest.mark.slow

def declared_outputs(root: Path, variants: list[str], seeds: list[int]) -> list[Path]:
    """Every out, metric and plot dvc.yaml declares, with the matrix's ${item.*} expanded."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    found = []
    for stage in stages.values():
        runs = [(v, s) for v in variants for s in seeds] if "matrix" in stage else [(None, None)]
        for section in ("outs", "metrics", "plots"):
            for entry in stage.get(section, []):
                name = entry if isinstance(entry, str) else next(iter(entry))
                found += [root / (name.replace("${item.variant}", v).replace("${item.seed}", str(s)) if v else name)
                          for v, s in runs]
    return found


def test_repro_writes_every_declared_output(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    variants = list(params["variants"])
    outputs = declared_outputs(repo, variants, params["seeds"])
    assert len(outputs) > 5 * len(variants)
    missing = [str(p.relative_to(repo)) for p in outputs if not p.exists()]
    assert not missing, f"declared outputs missing after dvc repro: {missing}"
    for variant in variants:
        metrics = json.loads((repo / f"reports/variants/{variant}/seed0/metrics.json").read_text())
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
    for child in children:  # the pointer the later stages follow, beside the results (not inside the weights)
        variant = child.data.tags["variant"]
        pointer = json.loads((repo / f".gan-lab/mlflow/{variant}/seed0.json").read_text())
        assert pointer["run_id"] == child.info.run_id and pointer["tracking_uri"] == f"sqlite:///{repo / 'mlflow.db'}"
        assert "eval.fid_classifier" in child.data.metrics  # evaluate found the run
    import torch

    assert "mlflow" not in torch.load(repo / "models/dcgan/seed0/generator.pt", weights_only=True)


def test_each_variant_writes_the_recipe_it_trained_with(repo):
    """reports/variants/<v>/seed<s>/resolved.yaml: null and auto resolved, the variant's own overrides applied;
    training.json: the precision and device used, the update counts and whether FID was still falling."""
    resolved = yaml.safe_load((repo / "reports/variants/wgan_gp/seed0/resolved.yaml").read_text())
    train = resolved["recipe"]["train"]
    assert resolved["run"] == "wgan_gp/seed0" and resolved["recipe"]["loss"] == "wgan_gp" and resolved["recipe"]["seed"] == 0
    assert (train["optimizer"], train["lr_g"], train["lr_d"], train["betas"]) == ("adam", 1e-4, 1e-4, [0.0, 0.9])
    assert train["d_steps"] == 2 and train["steps"] == 6  # the tiny repo's own settings win
    dcgan = yaml.safe_load((repo / "reports/variants/dcgan/seed0/resolved.yaml").read_text())["recipe"]["train"]
    assert (dcgan["lr_g"], dcgan["betas"], dcgan["d_steps"]) == (2e-4, [0.5, 0.999], 1)
    from pipeline.device import resolve_precision

    # precision: auto is written as what it meant on this machine
    assert train["precision"] == dcgan["precision"] == resolve_precision("auto", torch.device("cpu")) == "fp32"
    summary = json.loads((repo / "reports/variants/wgan_gp/seed0/training.json").read_text())
    assert summary["precision"] == "fp32" and summary["device"] == "cpu"
    assert summary["g_updates"] == 6 and summary["d_updates"] == 12  # 2 critic steps per G step
    assert set(summary) >= {"fid_drop_last_quarter", "still_improving"}


def test_dvc_plots_draw_every_curve(repo):
    out = run(["dvc", "plots", "show", "--json"], repo).stdout
    for series in ("loss_d", "loss_g", "gradient_penalty", "classes_covered", "class_kl"):
        assert f'"metric": "{series}"' in out, series
    for name in ("dcgan_seed0_losses.csv", "wgan_gp_seed0_losses.csv", "dcgan_seed0_modes.csv"):
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


def test_adding_seeds_trains_only_the_new_runs_and_the_report_aggregates(repo, tmp_path):
    """seeds: [0] -> [0, 1, 2]: only the new (variant, seed) stages and the report run; every variant
    then has three runs, the report and summary.json aggregate them, and each run is its own MLflow
    run tagged with its variant and seed."""
    from mlflow.tracking import MlflowClient

    root = repo_copy(repo, tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["variants"] = {"dcgan": params["variants"]["dcgan"]}  # one variant: the new runs are what cost time
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dropped = run(["dvc", "repro"], root).stdout  # prepare checks the variants' data; nothing retrains
    assert "Running stage 'train" not in dropped and "Running stage 'sample" not in dropped, dropped
    params["seeds"] = [0, 1, 2]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], root).stdout
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    new_runs = [f"{stage}@dcgan-{s}" for s in (1, 2) for stage in ("evaluate", "sample", "train")]
    assert ran == sorted(new_runs + ["report"]), out
    summary = json.loads((root / "reports/summary.json").read_text())
    assert summary["dcgan"]["seeds"] == 3 and summary["dcgan"]["fid_classifier"]["n"] == 3
    assert summary["dcgan"]["fid_classifier"]["ci_low"] <= summary["dcgan"]["fid_classifier"]["mean"]
    html = (root / "reports/index.html").read_text()
    assert "3 seeds per variant (at least)" in html  # the differences between variants: tests/test_report.py
    table = re.search(r'<table id="metrics">.*?</table>', html, flags=re.S).group(0)
    assert re.search(r'<a href="#dcgan">dcgan</a>.*?</td>\s*<td>3</td>', table, flags=re.S), table[:2000]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id])
    tagged = {(r.data.tags["variant"], r.data.tags["seed"]) for r in runs if "variant" in r.data.tags}
    assert tagged >= {("dcgan", str(s)) for s in (0, 1, 2)}
    names = {r.info.run_name for r in runs if r.data.tags.get("variant") == "dcgan"}
    assert {"dcgan seed 0", "dcgan seed 1", "dcgan seed 2"} <= names
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], root).stdout)
    workspace = next(iter(shown.values())) if isinstance(shown, dict) else shown[0]
    assert "reports/summary.json" in json.dumps(workspace)


def test_temp_exp_run_with_other_loss_lands_in_the_main_store(repo):
    """`dvc exp run --temp` runs in .dvc/tmp/exps/<tmp>, deleted afterwards: the MLflow runs must
    land in the main repository's store, and the experiment must have its own metrics."""
    from mlflow.tracking import MlflowClient

    before = json.loads((repo / "reports/variants/dcgan/seed0/metrics.json").read_text())
    run(["dvc", "exp", "run", "--temp", "-n", "try-wgan-gp", "-S", "loss=wgan_gp"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exps = [e for baseline in shown for e in (baseline.get("experiments") or [])]
    exp = next(e for e in exps if e.get("name") == "try-wgan-gp")
    data = exp["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["loss"] == "wgan_gp"
    after = data["metrics"]["reports/variants/dcgan/seed0/metrics.json"]["data"]
    assert after["fid_classifier"] != before["fid_classifier"]

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id],
                              filter_string="tags.dvc_experiment = 'try-wgan-gp'")
    dcgan = [r for r in runs if r.data.tags.get("variant") == "dcgan"]
    assert dcgan and dcgan[0].data.params["loss"] == "wgan_gp"
    assert "gradient_penalty" in dcgan[0].data.metrics


def test_the_default_pipeline_projects_real_images_into_each_generator(repo):
    """The sample stage's latent projection: a figure of the worst-reconstructed real images, every image's
    error, and the mean and worst classes in metrics.json."""
    from PIL import Image

    for variant in ("dcgan", "wgan_gp"):
        latent = repo / "reports/variants" / variant / "seed0/latent"
        found = json.loads((latent / "projection.json").read_text())
        assert len(found["errors"]) == 8 and found["steps"] == 10 and found["starts"] == 2
        assert found["projection_mse"] == pytest.approx(sum(found["errors"]) / 8)
        assert Image.open(latent / "projection.png").size == (8 * 30 + 2, 2 * 30 + 2)  # 8 real above 8 projections
        metrics = json.loads((repo / "reports/variants" / variant / "seed0/metrics.json").read_text())
        assert metrics["projection_mse"] == found["projection_mse"]
        assert metrics["projection_worst_classes"] == found["projection_worst_classes"]
    html = (repo / "reports/index.html").read_text()
    assert "projected into the latent space (iGAN)" in html
