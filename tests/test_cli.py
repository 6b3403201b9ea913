"""The `gan` command line (typer's CliRunner): help, listing, sampling and its errors."""

from __future__ import annotations

import subprocess
import sys

import torch
from typer.testing import CliRunner

from conftest import image_data, tiny_recipe
from pipeline.cli import app
from pipeline.training import train

runner = CliRunner()


def test_help_does_not_import_torch():
    code = "import sys; from pipeline.cli import app; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "sample" in result.output and "variants" in result.output


def test_variants_lists_overrides(monkeypatch):
    from conftest import REPO

    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["variants"])
    assert result.exit_code == 0
    assert "wgan_gp" in result.output and "loss=wgan_gp" in result.output and "(shared recipe)" in result.output


def _trained_generator(tmp_path, conditional: bool):
    from stages.train import save_outputs

    data = image_data()
    recipe = tiny_recipe(conditional=conditional)
    result = train(recipe, data, progress=False)
    save_outputs("tiny", result, recipe.to_dict(), recipe.arch, data.info)


def test_sample_writes_a_grid(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    _trained_generator(tmp_path, conditional=True)
    result = runner.invoke(app, ["sample", "tiny", "--n", "6", "--nrow", "3", "--out", "g.png", "--label", "4"])
    assert result.exit_code == 0, result.output
    image = Image.open(tmp_path / "g.png")
    assert image.size == (3 * 30 + 2, 2 * 30 + 2)  # 28px tiles with 2px padding


def test_sample_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["sample", "ghost"])
    assert result.exit_code == 2 and "no trained generator at models/ghost/generator.pt" in result.output
    _trained_generator(tmp_path, conditional=True)
    result = runner.invoke(app, ["sample", "tiny", "--label", "12"])
    assert result.exit_code == 2 and "--label 12 is out of range; valid classes: 0..9" in result.output
    assert not (tmp_path / "samples.png").exists()


def test_interpolate_and_direction(tmp_path, monkeypatch):
    from PIL import Image

    from pipeline.models.classifier import Classifier, ClassifierResult, classifier_checkpoint

    monkeypatch.chdir(tmp_path)
    _trained_generator(tmp_path, conditional=False)
    result = runner.invoke(app, ["interpolate", "tiny", "--rows", "2", "--steps", "5", "--mode", "linear"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "interpolation.png").size == (5 * 30 + 2, 2 * 30 + 2)
    result = runner.invoke(app, ["interpolate", "tiny", "--mode", "cubic"])
    assert result.exit_code == 2 and "valid: linear, spherical" in result.output

    result = runner.invoke(app, ["direction", "tiny", "--target", "3"])
    assert result.exit_code == 2 and "no classifier for dataset 'mnist5k'" in result.output
    (tmp_path / "models/classifier").mkdir(parents=True)
    torch.save(classifier_checkpoint(ClassifierResult(Classifier(1, 10), 0.5, 10), "mnist5k", list("0123456789")),
               tmp_path / "models/classifier/mnist5k.pt")
    result = runner.invoke(app, ["direction", "tiny", "--target", "3", "--rows", "2", "--steps", "4"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "direction.png").size == (4 * 30 + 2, 2 * 30 + 2)
    result = runner.invoke(app, ["direction", "tiny", "--target", "10"])
    assert result.exit_code == 2 and "valid classes: 0..9" in result.output
