"""Latent projection (iGAN): finding the z whose G(z) is closest to an image, and `gan project`."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.projection import project, projection_summary
from test_cli import _trained_generator

runner = CliRunner()


class SmallG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 64), nn.Tanh())

    def forward(self, z, y=None):
        return self.net(z).view(len(z), 1, 8, 8)


def test_z_stays_within_three_standard_deviations_of_the_prior():
    """A target G could only reach with z = 10 (G is linear in z here): the projection stops at the clip, 3."""

    class LinearG(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, z, y=None):
            return self.scale * z[:, :1, None, None].expand(len(z), 1, 2, 2)

    result = project(LinearG(), torch.full((2, 1, 2, 2), 10.0), 4, starts=2, steps=300, lr=0.5, snapshots=2, seed=0)
    assert torch.allclose(result.z[:, 0], torch.full((2,), 3.0)) and result.z.abs().max() <= 3.0
    assert torch.allclose(result.pixel_error, torch.full((2,), 49.0))  # (10 - 3)^2: what the prior keeps it from


def test_projection_recovers_an_image_g_generated():
    g = SmallG()
    z_true = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        targets = g(z_true)
    before = [p.clone() for p in g.parameters()]
    result = project(g, targets, 3, starts=4, steps=400, lr=0.05, snapshots=5, seed=0)
    assert result.z.shape == (4, 3) and result.images.shape == (4, 1, 8, 8) and result.path.shape == (5, 4, 1, 8, 8)
    assert torch.equal(result.path[-1], result.images)
    assert result.pixel_error.max() < 1e-4  # G's own images are reachable
    assert torch.allclose(result.images, targets, atol=0.02)
    assert result.pixel_error.max() < (result.path[0] - targets).pow(2).flatten(1).mean(1).min()  # it moved closer
    assert all(torch.equal(a, b) for a, b in zip(before, g.parameters()))  # G itself is not changed
    far = torch.ones(2, 1, 8, 8) * 3.0  # outside tanh's range: no z reaches it
    assert project(g, far, 3, starts=2, steps=50).pixel_error.min() > 1.0


def test_the_summary_names_the_worst_classes():
    error = torch.tensor([0.1, 0.5, 0.2, 0.6, 0.05])
    labels = torch.tensor([0, 1, 0, 1, 2])
    out = projection_summary(error, labels, ["zero", "one", "two"], worst=2)
    assert out["projection_mse"] == pytest.approx(0.29)
    assert out["projection_mse_per_class"] == pytest.approx({"zero": 0.15, "one": 0.55, "two": 0.05})
    assert out["projection_worst_classes"] == ["one", "zero"]


def test_gan_project_writes_the_path_and_the_edit(tmp_path, monkeypatch):
    from PIL import Image

    from pipeline.checkpoint import save_classifier
    from pipeline.metrics.classifier import Classifier, ClassifierResult

    monkeypatch.chdir(tmp_path)
    _trained_generator(tmp_path, conditional=False)
    (tmp_path / "models/classifier").mkdir(parents=True)
    save_classifier(tmp_path / "models/classifier/mnist5k.pt", ClassifierResult(Classifier(1, 10), 0.5, 10), "mnist5k",
                    list("0123456789"))
    digit = tmp_path / "digit.png"
    Image.fromarray((torch.rand(40, 40) * 255).to(torch.uint8).numpy()).save(digit)
    result = runner.invoke(app, ["project", "tiny", str(digit), "--steps", "10", "--starts", "2", "--edit", "3"])
    assert result.exit_code == 0, result.output
    assert "pixel MSE" in result.output and "walking towards class 3" in result.output
    assert Image.open(tmp_path / "projection.png").size == (7 * 30 + 2, 2 * 30 + 2)  # image + 6 snapshots, 2 rows
    result = runner.invoke(app, ["project", "tiny", str(tmp_path / "none.png")])
    assert result.exit_code == 2 and "none.png: no such file" in result.output
    result = runner.invoke(app, ["project", "tiny", str(digit), "--edit", "12"])
    assert result.exit_code == 2 and "--edit 12 is out of range; valid classes: 0..9" in result.output
