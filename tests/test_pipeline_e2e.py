"""The real pipeline, end to end: `dvc repro` in a temporary git repo with tiny params."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, chromium_command, repo_copy, run

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
        assert "eval/fid_classifier" in child.data.metrics  # the report stage attached the evaluation
        assert child.data.tags["gan_lab.eval_reused"] == "false" and "gan_lab.reused" not in child.data.tags
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
    """A chart per metric and axis, a line per run: the losses against steps, the training-time checks against steps
    and seconds of training."""
    out = json.loads(run(["dvc", "plots", "show", "--json"], repo).stdout)["data"]
    charts = {Path(name).relative_to("reports/curves").as_posix() for name in out}
    assert {"step/loss_d.csv", "step/loss_g.csv", "step/gradient_penalty.csv", "step/fid_classifier.csv",
            "step/classes_covered.csv", "seconds/fid_classifier.csv", "seconds/classes_covered.csv"} <= charts
    assert "step/images_d.csv" not in charts and "seconds/loss_d.csv" not in charts  # axes and losses: not there
    fid = out["reports/curves/seconds/fid_classifier.csv"][0]["content"]
    points = fid["data"]["values"]
    assert {p["variant"] for p in points} == {"dcgan", "wgan_gp"} and all(float(p["seconds"]) > 0 for p in points)
    assert fid["encoding"]["color"]["field"] == "variant" and fid["encoding"]["x"]["title"] == "seconds of training"


def test_dvc_plots_page_draws_offline_in_chromium(repo, tmp_path):
    """`dvc plots show` writes a page whose Vega libraries are inlined (.dvc/plots/offline.html): with no network it
    draws every chart (DVC's own page loads them from a CDN and stays blank offline)."""
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo)
    page = (tmp_path / "plots/index.html").read_text()
    assert "<script src=" not in page and "cdn.jsdelivr" not in page and page.count("vegaEmbed(") >= 10
    command = chromium_command(tmp_path / "chrome-profile")
    dom = subprocess.run([*command, "--dump-dom", (tmp_path / "plots/index.html").as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    drawn = dom.count('class="marks"')  # vega-embed's canvas (or svg), one per drawn chart
    assert drawn == page.count("vegaEmbed("), (drawn, page.count("vegaEmbed("))


def test_mlflow_runs_carry_the_evaluation_dvc_skipped(repo, tmp_path):
    """As in a fresh clone: the models and the MLflow store are gone, the committed results are there. dcgan retrains to
    the same weights, so DVC skips its sampling and evaluation; wgan_gp's model is there, so DVC skips it all. The
    build's runs still carry every evaluation: dcgan's own run, tagged as evaluated in an earlier build, and a run
    for wgan_gp tagged as reused; `gan compare` shows both FIDs."""
    from mlflow.tracking import MlflowClient

    root = repo_copy(repo, tmp_path)
    for path in ("mlflow.db", "mlartifacts", ".gan-lab", "models/dcgan", "reports/index.html"):
        shutil.rmtree(root / path) if (root / path).is_dir() else (root / path).unlink()
    out = run(["dvc", "repro"], root).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"train@dcgan-0", "report"}, out
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = {r.data.tags["variant"]: r for r in client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id])
            if "variant" in r.data.tags}
    metrics = json.loads((root / "reports/variants/dcgan/seed0/metrics.json").read_text())
    assert runs["dcgan"].data.metrics["eval/fid_classifier"] == metrics["fid_classifier"]
    assert runs["dcgan"].data.tags["gan_lab.eval_reused"] == "true" and "gan_lab.reused" not in runs["dcgan"].data.tags
    assert runs["wgan_gp"].data.tags["gan_lab.reused"] == "true" and "eval/fid_classifier" in runs["wgan_gp"].data.metrics
    assert len({r.data.tags["mlflow.parentRunId"] for r in runs.values()}) == 1
    table = run(["gan", "compare"], root, {"PYTHONPATH": str(root)}).stdout.splitlines()
    assert "fid" in table[0].split()
    fid = table[0].split().index("fid")
    assert all(row.split()[fid] not in ("", "-") for row in table[1:]) and len(table) == 3, table


def test_second_repro_is_up_to_date(repo):
    status = run(["dvc", "status"], repo).stdout
    assert "up to date" in status.lower(), status
    out = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in out, out


def test_changing_report_param_reruns_only_report(repo, tmp_path):
    """The resolve stage checks every params.yaml change before any stage works (its recipes stay byte-identical, so
    nothing downstream of it reruns); then only the report runs."""
    repo = repo_copy(repo, tmp_path)  # the shared build stays as built
    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["report"]["title"] = "Another title"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], repo).stdout
    ran = [line for line in out.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'resolve':", "Running stage 'report':"], out
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
    assert ran == sorted(new_runs + ["report", "resolve"]), out  # resolve: every params change is checked first
    summary = json.loads((root / "reports/summary.json").read_text())
    assert summary["dcgan"]["seeds"] == 3 and summary["dcgan"]["fid_classifier"]["n"] == 3
    assert summary["dcgan"]["fid_classifier"]["ci_low"] <= summary["dcgan"]["fid_classifier"]["mean"]
    html = (root / "reports/index.html").read_text()
    assert "3 seeds per variant (at least)" in html  # the differences between variants: tests/test_report.py
    table = re.search(r'<table class="metrics" id="metrics">.*?</table>', html, flags=re.S).group(0)
    assert '<th><a href="#dcgan">dcgan</a>' in table and "<tr><td>seeds</td><td>3</td></tr>" in table, table[:2000]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id])
    tagged = {(r.data.tags["variant"], r.data.tags["seed"]) for r in runs if "variant" in r.data.tags}
    assert tagged >= {("dcgan", str(s)) for s in (0, 1, 2)}
    names = {r.info.run_name for r in runs if r.data.tags.get("variant") == "dcgan"}
    assert {"dcgan seed 0", "dcgan seed 1", "dcgan seed 2"} <= names
    headline = json.loads((root / "metrics/dcgan.json").read_text())  # what `dvc metrics show` prints
    fid = summary["dcgan"]["fid_classifier"]
    assert headline["seeds"] == 3 and headline["fid"] == pytest.approx(fid["mean"], rel=1e-3)
    assert headline["fid_low"] == pytest.approx(fid["ci_low"], rel=1e-3)
    assert headline["fid_low"] <= headline["fid"] <= headline["fid_high"]
    assert not (root / "metrics/wgan_gp.json").exists()  # a dropped variant's row goes


def test_temp_exp_run_with_other_loss_lands_in_the_main_store(repo):
    """`dvc exp run --temp` runs in .dvc/tmp/exps/<tmp>, deleted afterwards: the MLflow runs must land in the main
    repository's store, and the experiment must have its own metrics. `-S loss=wgan_gp` retrains dcgan only: the
    wgan_gp variant sets its own loss, so its resolved recipe and its stages are unchanged; its results are reused and
    its MLflow run under the experiment says so. The README's comparison command then fits 160 columns."""
    from mlflow.tracking import MlflowClient

    before = json.loads((repo / "metrics/dcgan.json").read_text())
    out = run(["dvc", "exp", "run", "--temp", "-n", "try-wgan-gp", "-S", "loss=wgan_gp"], repo).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert {"resolve", "train@dcgan-0", "sample@dcgan-0", "evaluate@dcgan-0", "report"} <= ran, out
    assert not {stage for stage in ran if "wgan_gp" in stage}, out
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exps = [e for baseline in shown for e in (baseline.get("experiments") or [])]
    exp = next(e for e in exps if e.get("name") == "try-wgan-gp")
    data = exp["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["loss"] == "wgan_gp"
    assert set(data["metrics"]) == {"metrics/dcgan.json", "metrics/wgan_gp.json"}  # the headline files alone
    assert data["metrics"]["metrics/dcgan.json"]["data"]["fid"] != before["fid"]
    assert data["metrics"]["metrics/wgan_gp.json"]["data"] == json.loads((repo / "metrics/wgan_gp.json").read_text())

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id],
                              filter_string="tags.dvc_experiment = 'try-wgan-gp'")
    by_variant = {r.data.tags.get("variant"): r for r in runs if "variant" in r.data.tags}
    dcgan, wgan_gp = by_variant["dcgan"], by_variant["wgan_gp"]
    assert dcgan.data.params["loss"] == "wgan_gp" and "train/gradient_penalty" in dcgan.data.metrics
    assert "gan_lab.reused" not in dcgan.data.tags and "eval/fid_classifier" in dcgan.data.metrics
    assert wgan_gp.data.tags["gan_lab.reused"] == "true" and wgan_gp.info.run_name == "wgan_gp seed 0 (reused)"
    headline = json.loads((repo / "metrics/wgan_gp.json").read_text())
    assert wgan_gp.data.metrics["eval/fid_classifier"] == pytest.approx(headline["fid"], rel=1e-3)
    assert wgan_gp.data.params["loss"] == "wgan_gp" and "train/loss_d" in wgan_gp.data.metrics  # its curves too
    assert len({r.data.tags["mlflow.parentRunId"] for r in by_variant.values()}) == 1

    for command in (readme_command("metrics show"), readme_command("exp show")):
        table = run(command + ["--no-pager"] * (command[1] == "exp"), repo, {"COLUMNS": "400"}).stdout
        widest = max(len(line.rstrip()) for line in table.splitlines())
        assert widest <= 160, (command, widest, table)
        assert "wgan_gp" in table or command[1] == "exp"
    table = run(readme_command("exp show") + ["--no-pager"], repo, {"COLUMNS": "400"}).stdout
    assert "try-wgan-gp" in table and "metrics/dcgan.json:fid" in table and "metrics/wgan_gp.json:fid" in table


def readme_command(name: str) -> list[str]:
    """The README's line `dvc <name> ...` of its comparison block, as an argument list."""
    import shlex

    text = (REPO / "README.md").read_text()
    block = text.split("<!-- comparison commands:", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [shlex.split(line.split("#", 1)[0]) for line in block.strip().splitlines() if line.strip()]
    return next(line for line in lines if " ".join(line[:3]) == f"dvc {name}")


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
