"""The `gan` command line (typer's CliRunner): help, listing, sampling and its errors."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import image_data, tiny_recipe
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.tasks import train

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
    from pipeline.checkpoint import GeneratorCheckpoint, save_trained

    data = image_data()
    recipe = tiny_recipe(conditional=conditional)
    result = train(recipe, data, progress=False)
    meta = GeneratorCheckpoint(result.spec, recipe.arch, "tiny", recipe.to_dict(), data.info["class_names"])
    save_trained("tiny/seed0", result.generator, result.discriminator, meta)


def _generator_of(variant: str):
    from pipeline.checkpoint import load_generator

    return load_generator(f"models/{variant}/seed0/generator.pt")[0]


def test_sample_writes_a_grid(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    _trained_generator(tmp_path, conditional=True)
    result = runner.invoke(app, ["sample", "tiny", "--n", "6", "--nrow", "3", "--out", "g.png", "--label", "4"])
    assert result.exit_code == 0, result.output
    image = Image.open(tmp_path / "g.png")
    assert image.size == (3 * 30 + 2, 2 * 30 + 2)  # 28px tiles with 2px padding
    # --label reaches G: the grid is G's class-4 images for noise seed 0, pixel for pixel, and another label's differ
    import numpy as np

    from pipeline.images import image_grid, save_png
    from pipeline.sampling import generate

    generator = _generator_of("tiny")
    fours, _ = generate(generator, 6, 8, 10, labels=torch.full((6,), 4), seed=0)
    save_png(image_grid(fours, 3), tmp_path / "by_hand.png")
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(tmp_path / "by_hand.png")))
    assert runner.invoke(app, ["sample", "tiny", "--n", "6", "--nrow", "3", "--out", "g5.png", "--label", "5"]).exit_code == 0
    assert not np.array_equal(np.asarray(image), np.asarray(Image.open(tmp_path / "g5.png")))


def test_sample_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["sample", "ghost"])
    assert result.exit_code == 2 and "no trained generator at models/ghost/seed0/generator.pt" in result.output
    assert "run `dvc repro train@ghost-0` first" in result.output
    result = runner.invoke(app, ["sample", "tiny", "--model-seed", "3"])  # a seed never trained
    assert result.exit_code == 2 and "no trained generator at models/tiny/seed3/generator.pt" in result.output
    _trained_generator(tmp_path, conditional=True)
    result = runner.invoke(app, ["sample", "tiny", "--label", "12"])
    assert result.exit_code == 2 and "--label 12 is out of range; valid classes: 0..9" in result.output
    assert not (tmp_path / "samples.png").exists()


def test_interpolate_and_direction(tmp_path, monkeypatch):
    from PIL import Image

    from pipeline.checkpoint import save_classifier
    from pipeline.metrics.classifier import Classifier, ClassifierResult

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
    save_classifier(tmp_path / "models/classifier/mnist5k.pt", ClassifierResult(Classifier(1, 10), 0.5, 10), "mnist5k",
                    list("0123456789"))
    result = runner.invoke(app, ["direction", "tiny", "--target", "3", "--rows", "2", "--steps", "4"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "direction.png").size == (4 * 30 + 2, 2 * 30 + 2)
    result = runner.invoke(app, ["direction", "tiny", "--target", "10"])
    assert result.exit_code == 2 and "valid classes: 0..9" in result.output

    # latent arithmetic: an untrained classifier and a 4-step generator read everything as one or two
    # classes, so concepts it never sees are a clear error; the classes it does see make a figure
    result = runner.invoke(app, ["arithmetic", "tiny", "--a", "12"])
    classes = ", ".join(f"{k} {k}" for k in range(10))  # the checkpoint's class names are its digits
    assert result.exit_code == 2, result.output  # said before any sample is drawn
    assert f"--a 12 is out of range; valid classes: 0..9 ({classes}), the classes of tiny's dataset mnist5k" \
        in result.output
    from pipeline.checkpoint import load_dataset_classifier
    from pipeline.metrics.classifier import class_probabilities
    from pipeline.sampling import decode

    generator = _generator_of("tiny")
    seen = class_probabilities(load_dataset_classifier("mnist5k"),
                               decode(generator, torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))))
    common = int(torch.bincount(seen.argmax(1), minlength=10).argmax())
    result = runner.invoke(app, ["arithmetic", "tiny", "--a", str(common), "--b", str(common), "--c", str(common)])
    assert result.exit_code == 0, result.output
    assert f"wrote {common} - {common} + {common} of tiny to arithmetic.png" in result.output
    assert Image.open(tmp_path / "arithmetic.png").size[0] > 300
    missing = next(k for k in range(10) if k not in seen.argmax(1).tolist())
    result = runner.invoke(app, ["arithmetic", "tiny", "--a", str(missing)])
    assert result.exit_code == 2 and f"drew class {missing} only 0 times" in result.output
