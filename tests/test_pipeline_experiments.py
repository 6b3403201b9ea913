"""Experiments as the README types them, on copies of the tiny pipeline (`dvc exp run -S ...`): the image-to-image
and semi-supervised tasks, and every documented override one after another. Apart from test_pipeline_e2e.py so
that the two files can run side by side (pytest-xdist hands whole files to its workers)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, repo_copy, run

pytestmark = pytest.mark.slow


def load_logged_model(repo: Path, run_id: str, name: str):
    """An MLflow model the pipeline logged to `repo`'s store. mlflow.set_tracking_uri also exports
    MLFLOW_TRACKING_URI to later subprocesses; conftest puts both back after the test."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    return mlflow.pyfunc.load_model(f"runs:/{run_id}/{name}")


def test_translate_experiment_as_typed_trains_tracked_translators(repo, tmp_path):
    """The image-to-image task, as the README types it: every variant becomes a translator (inpaint, LSGAN);
    its metrics are the task's, its MLflow run has the loss terms, and the logged model translates images.
    Then `gan translate` on a picture file."""
    import numpy as np
    from mlflow.tracking import MlflowClient
    from PIL import Image

    repo = repo_copy(repo, tmp_path)
    run(["dvc", "exp", "run", "--temp", "-n", "try-translate", "-S", "task=translate", "-S", "data.translate=inpaint",
         "-S", "loss=lsgan"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exp = next(e for baseline in shown for e in (baseline.get("experiments") or []) if e.get("name") == "try-translate")
    data = exp["revs"][0]["data"]
    for variant in ("dcgan", "wgan_gp"):  # the headline numbers, a translator's own
        headline = data["metrics"][f"metrics/{variant}.json"]["data"]
        assert {"seeds", "fid", "l1", "psnr", "ssim", "accuracy", "still_improving"} == set(headline), headline
        assert 0 <= headline["accuracy"] <= 1 and headline["psnr"] > 0

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("gan-lab").experiment_id],
                              filter_string="tags.dvc_experiment = 'try-translate'")
    dcgan = next(r for r in runs if r.data.tags.get("variant") == "dcgan")
    assert dcgan.data.params["task"] == "translate" and dcgan.data.params["loss"] == "lsgan"
    assert dcgan.data.params["arch"] == "unet_patchgan" and dcgan.data.params["data.translate"] == "inpaint"
    assert {"train/loss_rec", "train/loss_adv", "train/loss_d", "train_eval/psnr", "eval/psnr",
            "eval/accuracy"} <= set(dcgan.data.metrics)
    model = load_logged_model(repo, dcgan.info.run_id, "translator")
    images = np.random.default_rng(0).uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)
    out = np.asarray(model.predict(images))
    assert out.shape == (3, 1, 28, 28) and out.min() >= -1 and out.max() <= 1

    # the temporary experiment's models are gone from the workspace: apply it, then translate a file
    run(["dvc", "exp", "apply", "try-translate"], repo)
    for variant in ("dcgan", "wgan_gp"):  # every number of the run, beside the headline
        metrics = json.loads((repo / f"reports/variants/{variant}/seed0/metrics.json").read_text())
        assert {"l1", "psnr", "ssim", "sharpness", "diversity_ssim_per_input", "fid_classifier", "accuracy"} <= set(metrics)
        assert "classes_covered" not in metrics
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(tmp_path / "digit.png")
    result = run(["gan", "translate", "dcgan", str(tmp_path / "digit.png"), "--out", str(tmp_path / "out.png")], repo)
    assert "input | 3 output(s) | your image" in result.stdout
    picture = np.asarray(Image.open(tmp_path / "out.png"))
    assert picture.shape[1] == 5 * 28 + 6 * 2  # input, three outputs and your image, 28 px each, 2 px apart


def test_semi_experiment_as_typed_reports_test_errors_beside_the_classifier_baselines(repo, tmp_path):
    """`dvc exp run -S task=semi -S data.labels_per_class=10`: every variant becomes a semi-supervised GAN; its
    metrics count D's test errors beside the labels-only and all-labels classifiers; MLflow has the stepped
    held-out error and D as a model that classifies."""
    import numpy as np
    from mlflow.tracking import MlflowClient

    repo = repo_copy(repo, tmp_path)
    run(["dvc", "exp", "run", "--temp", "-n", "try-semi", "-S", "task=semi", "-S", "data.labels_per_class=10"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exp = next(e for baseline in shown for e in (baseline.get("experiments") or []) if e.get("name") == "try-semi")
    headline = exp["revs"][0]["data"]["metrics"]["metrics/dcgan.json"]["data"]
    assert set(headline) == {"seeds", "test_errors", "labels_only_errors", "still_improving"}, headline
    run(["dvc", "exp", "apply", "try-semi"], repo)
    metrics = json.loads((repo / "reports/variants/dcgan/seed0/metrics.json").read_text())
    assert headline["test_errors"] == metrics["test_errors"]
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
    assert {"train/loss_lab", "train/loss_unl", "train/loss_g", "train_eval/test_error",
            "eval/test_errors"} <= set(dcgan.data.metrics)
    model = load_logged_model(repo, dcgan.info.run_id, "classifier")
    logits = np.asarray(model.predict(np.random.default_rng(0).uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)))
    assert logits.shape == (3, 10)


def _lookup(node, path: list[str]):
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


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
    from pipeline.variants import lab_from_raw

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
        # what trained (resolved.yaml, written by the train stage) has every typed value, unless the variant sets
        # that key itself or resolving dropped it with a note that names it (then the recipe is unchanged and the
        # resolve stage, not a train stage, says so)
        trained = yaml.safe_load((workspace / "reports/variants/wgan_gp/seed0/resolved.yaml").read_text())
        notes = lab_from_raw(params, names=False).variants["wgan_gp"].notes
        for override in args[3:]:
            if override == "-S":
                continue
            key, value = override.split("=", 1)
            path = key.split(".")
            if path[:2] == ["variants", "wgan_gp"]:
                path = path[2:]
            elif _lookup(params["variants"]["wgan_gp"], path) is not None:
                continue  # the variant's own value wins over the shared one
            node = _lookup(trained["recipe"], path)
            typed = yaml.safe_load(value)
            dropped = any(note.startswith(f"{'.'.join(path)}=") for note in notes)
            assert dropped or node == typed or str(node).lower() == value.lower(), (line, key, node, notes)
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
