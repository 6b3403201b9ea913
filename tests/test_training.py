"""Training: a few steps of every loss/arch on tiny data; determinism; resume; divergence."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import image_data, point_data, tiny_recipe
from pipeline.errors import ConfigError, TrainingDiverged
from pipeline.losses import LOSSES
from pipeline.models import build_models
from pipeline.tracking import NullTracker
from pipeline.training import model_spec, resolve_device, train


class Crash(Exception):
    """Stands in for a kill: raised from inside the training loop."""


class CrashingTracker(NullTracker):
    def __init__(self, at_step: int) -> None:
        super().__init__()
        self.at_step = at_step

    def log_metrics(self, metrics, step):
        if step == self.at_step:
            raise Crash(f"killed at step {step}")


def weights(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("loss", LOSSES.names())
@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_every_loss_trains_with_finite_losses_and_changed_weights(images, loss, arch):
    recipe = tiny_recipe(loss=loss, arch=arch, train={"d_steps": 2} if "wgan" in loss else {})
    torch.manual_seed(recipe.seed)
    initial_g, _ = build_models(arch, model_spec(recipe, images))
    result = train(recipe, images, progress=False)
    assert [row["step"] for row in result.log_rows] == [2, 4]
    for row in result.log_rows:
        assert all(torch.isfinite(torch.tensor(v)) for v in row.values()), row
    assert not torch.allclose(weights(initial_g), weights(result.generator))
    if loss == "wgan_gp":
        assert result.log_rows[-1]["gradient_penalty"] >= 0
    if loss == "wgan":  # weight clipping holds after every critic step
        assert max(p.abs().max().item() for p in result.discriminator.parameters()) <= 0.01 + 1e-7


@pytest.mark.parametrize("options", [
    {"conditional": True},
    {"conditional": True, "loss": "wgan_gp"},
    {"train": {"pac": 2}},
    {"train": {"spectral_norm": True}},
    {"train": {"ema": 0.9}},
    {"train": {"label_smoothing": 0.1}},
    {"train": {"optimizer": "rmsprop"}},
])
def test_training_options(images, options):
    result = train(tiny_recipe(**options), images, progress=False)
    assert len(result.log_rows) == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in result.log_rows[-1].values())


def test_ema_generator_differs_from_raw_weights(images):
    result = train(tiny_recipe(train={"ema": 0.5, "steps": 3}), images, progress=False)
    assert type(result.generator).__name__ == "DCGANGenerator"  # the averaged copy, ready to sample


def test_toy_training_and_evaluator_rows():
    data = point_data()
    recipe = tiny_recipe(dataset="ring8", arch="toy", train={"steps": 4})
    calls = []
    result = train(recipe, data, progress=False, evaluator=lambda g: calls.append(1) or {"modes_captured": 3.0},
                   tracker=NullTracker())
    assert [r["step"] for r in result.eval_rows] == [2, 4] and len(calls) == 2


def test_same_seed_same_weights(images):
    a = train(tiny_recipe(), images, progress=False)
    b = train(tiny_recipe(), images, progress=False)
    assert torch.equal(weights(a.generator), weights(b.generator))
    c = train(tiny_recipe(seed=1), images, progress=False)
    assert not torch.equal(weights(a.generator), weights(c.generator))


@pytest.mark.parametrize("options", [{}, {"loss": "wgan_gp", "train": {"d_steps": 2}}, {"arch": "mlp"}])
def test_resume_after_a_crash_ends_with_the_same_weights(images, tmp_path, options):
    """Kill training after step 4 (checkpoint at step 4), resume, and match an uninterrupted run."""
    state = tmp_path / "last.pt"
    options = copy.deepcopy(options)
    train_options = options.pop("train", {})
    full = train(tiny_recipe(**options, train={"steps": 6, **train_options}), images, progress=False)

    # the loop logs every step below; the crash comes at step 5, after the step-4 checkpoint
    crashing = tiny_recipe(**options, train={"steps": 6, "log_every": 1, **train_options})
    with pytest.raises(Crash):
        train(crashing, images, progress=False, tracker=CrashingTracker(5), state_path=state)
    assert state.exists()
    resumed = train(crashing, images, progress=False, state_path=state)
    assert resumed.resumed_from == 4
    assert torch.equal(weights(full.generator), weights(resumed.generator))
    assert torch.equal(weights(full.discriminator), weights(resumed.discriminator))


def test_resume_refuses_a_checkpoint_from_other_settings(images, tmp_path, capsys):
    state = tmp_path / "last.pt"
    recipe = tiny_recipe(train={"steps": 4, "checkpoint_every": 2})
    with pytest.raises(Crash):
        train(recipe, images, progress=False, tracker=CrashingTracker(4), state_path=state)
    assert state.exists()
    other = tiny_recipe(train={"steps": 4, "checkpoint_every": 2, "lr_g": 1e-3})
    assert train(other, images, progress=False, state_path=state).resumed_from == 0
    assert "other training settings or code" in capsys.readouterr().out


def test_nan_loss_stops_with_step_and_variant(images):
    bad = image_data()
    bad.x_train[0] = float("nan")
    recipe = tiny_recipe(train={"steps": 4, "batch_size": 64})
    with pytest.raises(TrainingDiverged, match=r"variant 'broken': .*NaN/Inf by step 2"):
        train(recipe, bad, variant="broken", progress=False)


def test_invalid_combinations(images):
    with pytest.raises(ConfigError, match="label_smoothing applies to minimax, ns and lsgan"):
        train(tiny_recipe(loss="wgan_gp", train={"label_smoothing": 0.1}), images, progress=False)
    unlabelled = image_data()
    unlabelled.info["num_classes"] = 0
    with pytest.raises(ConfigError, match="conditional: true needs a labelled dataset"):
        train(tiny_recipe(conditional=True), unlabelled, progress=False)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_tracker_receives_logged_rows(images):
    tracker = NullTracker()
    train(tiny_recipe(), images, progress=False, tracker=tracker)
    steps = [step for step, _ in tracker.metrics]
    assert steps == [2, 4]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "images_per_s"} <= set(tracker.metrics[0][1])
