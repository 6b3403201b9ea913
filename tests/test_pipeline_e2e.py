"""The real pipeline, end to end: `dvc repro` in a temporary git repo with tiny params."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, repo_copy, run

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
    from conftest import repo_copy
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


def test_translate_experiment_as_typed_trains_tracked_translators(repo, tmp_path, monkeypatch):
    """The image-to-image task, as the README types it: every variant becomes a translator (inpaint, LSGAN);
    its metrics are the task's, its MLflow run has the loss terms, and the logged model translates images.
    Then `gan translate` on a picture file."""
    import mlflow
    import numpy as np
    from mlflow.tracking import MlflowClient
    from PIL import Image

    repo = repo_copy(repo, tmp_path)
    run(["dvc", "exp", "run", "--temp", "-n", "try-translate", "-S", "task=translate", "-S", "data.translate=inpaint",
         "-S", "loss=lsgan"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exp = next(e for baseline in shown for e in (baseline.get("experiments") or []) if e.get("name") == "try-translate")
    data = exp["revs"][0]["data"]
    for variant in ("dcgan", "wgan_gp"):
        metrics = data["metrics"][f"reports/variants/{variant}/seed0/metrics.json"]["data"]
        assert {"l1", "psnr", "ssim", "sharpness", "diversity_ssim_per_input", "fid_classifier", "accuracy"} <= set(metrics)
        assert "classes_covered" not in metrics and 0 <= metrics["accuracy"] <= 1 and metrics["psnr"] > 0

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id],
                              filter_string="tags.dvc_experiment = 'try-translate'")
    dcgan = next(r for r in runs if r.data.tags.get("variant") == "dcgan")
    assert dcgan.data.params["task"] == "translate" and dcgan.data.params["loss"] == "lsgan"
    assert dcgan.data.params["arch"] == "unet_patchgan" and dcgan.data.params["data.translate"] == "inpaint"
    assert {"loss_rec", "loss_adv", "loss_d", "psnr", "eval.psnr", "eval.accuracy"} <= set(dcgan.data.metrics)
    # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI for every later subprocess: both are put back
    previous = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{dcgan.info.run_id}/translator")
    finally:
        mlflow.set_tracking_uri(previous)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)
    out = np.asarray(model.predict(images))
    assert out.shape == (3, 1, 28, 28) and out.min() >= -1 and out.max() <= 1

    # the temporary experiment's models are gone from the workspace: apply it, then translate a file
    run(["dvc", "exp", "apply", "try-translate"], repo)
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(tmp_path / "digit.png")
    result = run(["gan", "translate", "dcgan", str(tmp_path / "digit.png"), "--out", str(tmp_path / "out.png")], repo)
    assert "input | 3 output(s) | your image" in result.stdout
    picture = np.asarray(Image.open(tmp_path / "out.png"))
    assert picture.shape[1] == 5 * 28 + 6 * 2  # input, three outputs and your image, 28 px each, 2 px apart


def test_semi_experiment_as_typed_reports_test_errors_beside_the_classifier_baselines(repo, tmp_path, monkeypatch):
    """`dvc exp run -S task=semi -S data.labels_per_class=10`: every variant becomes a semi-supervised GAN; its
    metrics count D's test errors beside the labels-only and all-labels classifiers; MLflow has the stepped
    held-out error and D as a model that classifies."""
    import mlflow
    import numpy as np
    from mlflow.tracking import MlflowClient

    repo = repo_copy(repo, tmp_path)
    run(["dvc", "exp", "run", "--temp", "-n", "try-semi", "-S", "task=semi", "-S", "data.labels_per_class=10"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exp = next(e for baseline in shown for e in (baseline.get("experiments") or []) if e.get("name") == "try-semi")
    metrics = exp["revs"][0]["data"]["metrics"]["reports/variants/dcgan/seed0/metrics.json"]["data"]
    assert metrics["n_test"] == 500 and metrics["n_labels"] == 100  # mnist5k's 500 held-out digits, 10 labels a class
    assert 0 <= metrics["test_errors"] <= 500 and metrics["test_error"] == pytest.approx(metrics["test_errors"] / 500)
    assert 0 <= metrics["labels_only_errors"] <= 500 and 0 <= metrics["all_labels_errors"] <= 500
    assert "fid_classifier" not in metrics

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id],
                              filter_string="tags.dvc_experiment = 'try-semi'")
    dcgan = next(r for r in runs if r.data.tags.get("variant") == "dcgan")
    assert dcgan.data.params["task"] == "semi" and dcgan.data.params["arch"] == "semi_mlp"
    assert dcgan.data.params["train.g_objective"] == "feature_matching"
    assert {"loss_lab", "loss_unl", "loss_g", "test_error", "eval.test_errors"} <= set(dcgan.data.metrics)
    previous = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{repo / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{dcgan.info.run_id}/classifier")
    finally:
        mlflow.set_tracking_uri(previous)
    logits = np.asarray(model.predict(np.random.default_rng(0).uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)))
    assert logits.shape == (3, 10)


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
    # and only the metrics asserted below (the others have their own tests): ~20 evaluations' worth of time
    # one variant, the one the README's lines name (`variants.wgan_gp...`): a line's cost is its stage runs, and
    # what a second variant adds (the shared recipe reaching a variant without its own loss) has its own tests
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["eval"]["metrics"] = ["modes", "fidelity"]
    params["sample"]["projection_images"] = 0
    params["variants"] = {"wgan_gp": params["variants"]["wgan_gp"]}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
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
            metrics = json.loads((workspace / f"reports/variants/{variant}/seed0/metrics.json").read_text())
            if params["dataset"] == "ring8":
                assert {"modes_captured", "high_quality_frac", "reverse_kl"} <= set(metrics), (line, metrics)
                assert "fid_classifier" not in metrics
            else:
                assert math.isfinite(metrics["fid_classifier"]) and "classes_covered" in metrics, (line, metrics)
        if "train.label_smoothing=0.1" in args:  # the critic variant says why it trains without it
            assert "does not apply to loss 'wgan_gp'" in result.stdout + result.stderr

    # the case: 2D data with a single variant
    run(["dvc", "exp", "run", "-S", "~variants", "-S", "+variants={gan: {}}"], workspace, env_off)
    metrics = json.loads((workspace / "reports/variants/gan/seed0/metrics.json").read_text())
    assert set(metrics) == {"n_samples", "modes_captured", "high_quality_frac", "reverse_kl"}
    assert metrics["n_samples"] == 300 and 0 <= metrics["modes_captured"] <= 8
