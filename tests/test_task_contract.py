"""A new task is one class and one registry line: a small denoising task, written here against the task contract
(`pipeline.tasks.base.Task`) alone, runs through the real train, sample, evaluate and report stages of the tiny
pipeline, resumes after a kill to the weights of an uninterrupted run, and its bad params fail with its own message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import yaml
from conftest import repo_copy

from pipeline import paths
from pipeline.distributed import World
from pipeline.errors import ConfigError
from pipeline.images import from_uint8, image_grid, save_png, to_uint8
from pipeline.io import atomic_dir, load_torch, save_torch, write_json
from pipeline.tasks import TASKS, Evaluation, Task, train
from pipeline.training.loop import RunCounters

pytestmark = pytest.mark.slow  # it uses the tiny pipeline that the end-to-end tests build once
NOISE = 0.5
RUN = "den/seed0"


@dataclass
class DenoiseRun(RunCounters):
    """One run of the toy task: a 3x3 convolution learns to remove Gaussian noise from the training images."""

    x: torch.Tensor
    batch_size: int
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    crash_at: int | None = None  # stands in for a kill

    def iteration(self, step: int, logged: bool) -> dict[str, torch.Tensor]:
        if step == self.crash_at:
            raise KeyboardInterrupt
        clean = self.x[torch.randint(len(self.x), (self.batch_size,), generator=self.gen)]
        noisy = clean + NOISE * torch.randn(clean.shape, generator=self.gen)
        loss = torch.nn.functional.mse_loss(self.net(noisy), clean)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss_mse": loss.detach()}

    def images_seen(self) -> int:
        return self.step * self.batch_size

    def modules(self) -> dict[str, Any]:
        return {"net": self.net, "opt": self.opt}

    def finish(self) -> "DenoiseRun":
        self.net.eval()
        return self


class DenoiseCheck:
    """The held-out mean squared error every eval_every steps."""

    def __init__(self, x_test: torch.Tensor) -> None:
        self.clean = x_test[:32]
        self.noisy = self.clean + NOISE * torch.randn(self.clean.shape, generator=torch.Generator().manual_seed(1))

    def __call__(self, run: DenoiseRun) -> dict[str, Any]:
        with torch.no_grad():
            return {"mse": float(torch.nn.functional.mse_loss(run.net(self.noisy), self.clean))}

    def picture(self, run: DenoiseRun) -> None:
        return None


def network() -> torch.nn.Module:
    return torch.nn.Conv2d(1, 1, 3, padding=1)


class DenoiseTask(Task):
    crash_at: int | None = None

    def __init__(self) -> None:
        super().__init__("denoise", uses_arch=False, own_arch=("conv3", "one 3x3 convolution"))

    def check(self, recipe: Any, prefix: str = "") -> None:
        if recipe.train.batch_size > 64:
            raise ConfigError(f"{prefix}train.batch_size: task denoise trains batches of at most 64, got "
                              f"{recipe.train.batch_size}")

    def build(self, recipe: Any, data: Any, device: torch.device, world: World) -> DenoiseRun:
        torch.manual_seed(recipe.seed)
        net = network()
        return DenoiseRun(data.x_train[:512], recipe.train.batch_size, net, torch.optim.Adam(net.parameters(), lr=1e-2),
                          torch.Generator().manual_seed(recipe.seed), crash_at=self.crash_at, world=world)

    def checker(self, recipe: Any, data: Any, device: torch.device) -> DenoiseCheck:
        return DenoiseCheck(data.x_test)

    def save(self, run_key: str, result: DenoiseRun, recipe: Any, variant: str, data: Any) -> None:
        with atomic_dir(paths.model_dir(run_key)) as out:
            save_torch({"task": "denoise", "state_dict": result.net.state_dict()}, out / paths.GENERATOR_FILE)

    def sample(self, recipe: Any, run_key: str) -> None:
        from pipeline.data import load_prepared

        net = network()
        net.load_state_dict(load_torch(paths.generator_path(run_key))["state_dict"])
        clean = load_prepared(recipe.dataset).x_test[:64]
        noisy = clean + NOISE * torch.randn(clean.shape, generator=torch.Generator().manual_seed(recipe.seed))
        with torch.no_grad():
            out = net(noisy).clamp(-1, 1)
        save_torch({"images": to_uint8(out), "clean": to_uint8(clean), "noisy": to_uint8(noisy.clamp(-1, 1))},
                   paths.generated_path(run_key))
        save_png(image_grid(torch.cat([noisy[:8].clamp(-1, 1), out[:8], clean[:8]]), 8), paths.samples_png(run_key))
        with atomic_dir(paths.latent_dir(run_key)) as latent:
            write_json({"interpolation": {"unavailable": "a denoiser has no latent space"}}, latent / "index.json")

    def evaluate(self, recipe: Any, params: Any, run_key: str) -> Evaluation:
        saved = load_torch(paths.generated_path(run_key))
        out, clean, noisy = (from_uint8(saved[k]) for k in ("images", "clean", "noisy"))
        mse = float(torch.nn.functional.mse_loss(out, clean))
        return Evaluation({"l1": float((out - clean).abs().mean()), "mse": mse,
                           "mse_noisy": float(torch.nn.functional.mse_loss(noisy, clean))},
                          line=f"denoised mse {mse:.4f}")


@pytest.fixture
def denoise():
    task = DenoiseTask()
    TASKS.add("denoise", task)
    try:
        yield task
    finally:
        TASKS._items.pop("denoise")


def test_a_task_written_against_the_contract_runs_through_every_stage_and_resumes(repo, tmp_path, monkeypatch,
                                                                                  denoise, capsys):
    from stages import evaluate, report, sample
    from stages import train as train_stage

    root = repo_copy(repo, tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GAN_LAB_TRACKING", "off")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["variants"]["den"] = {"task": "denoise", "train": {"steps": 6, "checkpoint_every": 3, "eval_every": 3}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    denoise.crash_at = 5  # killed after the step-3 checkpoint: the next train resumes from it
    with pytest.raises(KeyboardInterrupt):
        train_stage.main("den", 0)
    assert paths.run_state_path(RUN).exists() and not paths.generator_path(RUN).exists()
    denoise.crash_at = None
    train_stage.main("den", 0)
    assert "resumed den/seed0 from step 3" in capsys.readouterr().out
    sample.main("den", 0)
    evaluate.main("den", 0)
    report.main()

    # the resumed weights are an uninterrupted run's
    from pipeline.variants import load_lab

    lab = load_lab("params.yaml")
    recipe = lab.recipe("den", 0)
    assert lab.variant("den").recipe.arch == "conv3"  # its own_arch, with a note
    straight = train(recipe, denoise.load_data(recipe), progress=False)
    saved = load_torch(paths.generator_path(RUN))["state_dict"]
    for name, value in straight.net.state_dict().items():
        assert torch.equal(saved[name], value), name
    # every file a run has, with the task's numbers in them
    log = (root / "reports/variants/den/seed0/train_log.csv").read_text().splitlines()
    assert log[0].split(",")[:2] == ["step", "loss_mse"] and [r.split(",")[0] for r in log[1:]] == ["2", "4", "6"]
    checks = [dict(zip(*(line.split(",") for line in (lines[0], row))))
              for lines in [(root / "reports/variants/den/seed0/train_eval.csv").read_text().splitlines()]
              for row in lines[1:]]
    assert [c["step"] for c in checks] == ["3", "6"] and float(checks[1]["mse"]) < float(checks[0]["mse"])  # learning
    metrics = json.loads(paths.metrics_path(RUN).read_text())
    saved = {k: from_uint8(v) for k, v in load_torch(paths.generated_path(RUN)).items()}  # what sample wrote
    assert metrics == pytest.approx({"l1": float((saved["images"] - saved["clean"]).abs().mean()),
                                     "mse": float(torch.nn.functional.mse_loss(saved["images"], saved["clean"])),
                                     "mse_noisy": float(torch.nn.functional.mse_loss(saved["noisy"], saved["clean"]))})
    headline = json.loads((root / "metrics/den.json").read_text())
    assert headline["l1"] == pytest.approx(metrics["l1"], abs=1e-4)  # the headline files round to 4 digits
    summary = json.loads((root / "reports/summary.json").read_text())
    assert summary["den"]["mse"]["mean"] == pytest.approx(metrics["mse"])
    assert "den" in (root / "reports/index.html").read_text()


def test_a_tasks_own_check_and_keys_are_enforced_where_params_are_read(denoise, params_raw):
    from pipeline.variants import lab_from_raw

    raw = {**params_raw, "variants": {"den": {"task": "denoise", "train": {"batch_size": 128}}}}
    with pytest.raises(ConfigError, match=r"variants\.den\.train\.batch_size: task denoise trains batches of at most"):
        lab_from_raw(raw)
    raw = {**params_raw, "variants": {"den": {"task": "denoise", "data": {"labels_per_class": 10}}}}  # semi's key
    with pytest.raises(ConfigError, match=r"data\.labels_per_class: applies to task semi only, not 'denoise'"):
        lab_from_raw(raw)


def test_a_task_that_trains_in_one_process_says_so_under_torchrun(denoise, monkeypatch):
    from conftest import image_data, tiny_recipe

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="train.nproc: task 'denoise' trains in one process; tasks that train in "
                                          "several: generate"):
        train(tiny_recipe(task="denoise"), image_data(), progress=False)
