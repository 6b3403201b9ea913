"""Shared fixtures: tiny data and recipes, so every test runs on the CPU in seconds."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.config import Recipe, TrainConfig
from pipeline.data import Prepared
from pipeline.variants import lab_from_raw, resolve

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
REPO = Path(__file__).resolve().parents[1]
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs test files side by side, one worker a core (pyproject.toml: -n 2): one thread each, for
    # torch here and in every stage a test starts, or two workers' thread pools fight over the cores
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _tracking_uri_put_back():
    """mlflow.set_tracking_uri (a test's, or the pipeline's when a test runs it in-process) also exports
    MLFLOW_TRACKING_URI to every later subprocess: put it back after each test, so no test sends the next
    one's pipeline to its server (under pytest-xdist any test of a worker may come next)."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if os.environ.get("MLFLOW_TRACKING_URI") != before:
        if "mlflow" in sys.modules:
            sys.modules["mlflow"].set_tracking_uri(before)  # None unsets the variable
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def raw_recipe(**overrides) -> Recipe:
    """A recipe with a handful of steps and narrow networks, not yet resolved; `train=dict(...)`
    overrides train keys."""
    train_overrides = overrides.pop("train", {})
    train = TrainConfig(steps=4, batch_size=16, z_dim=8, width=8, log_every=2, eval_every=2,
                        eval_samples=64, checkpoint_every=2, device="cpu")
    return Recipe(**{"train": dataclasses.replace(train, **train_overrides), **overrides})


def tiny_recipe(**overrides) -> Recipe:
    """`raw_recipe`, resolved as the pipeline resolves a variant that sets these keys itself."""
    return resolve(raw_recipe(**overrides))[0]


def image_data(n: int = 64, size: int = 28, channels: int = 1, num_classes: int = 10, seed: int = 0) -> Prepared:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, size, size, generator=gen) * 2 - 1
    y = torch.arange(n) % num_classes
    info = {"name": "fake", "kind": "image", "shape": [channels, size, size], "num_classes": num_classes,
            "class_names": [str(i) for i in range(num_classes)], "modes": None, "mode_std": 0.0}
    return Prepared("fake", x, y, x[:16], y[:16], info)


def point_data(name: str = "ring8", n: int = 2000) -> Prepared:
    from pipeline.config import DataConfig
    from pipeline.data import prepare_dataset

    prepared = prepare_dataset(name, DataConfig())
    prepared.x_train, prepared.y_train = prepared.x_train[:n], prepared.y_train[:n]
    return prepared


class Crash(Exception):
    """Stands in for a kill: raised from inside a training loop."""


class CrashingTracker:
    """A tracker that records nothing and raises Crash when step `at_step` is logged."""

    def __init__(self, at_step: int) -> None:
        from pipeline.tracking import NullTracker

        self.at_step, self.inner = at_step, NullTracker()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def log_metrics(self, metrics, step):
        if step == self.at_step:
            raise Crash(f"killed at step {step}")


def assert_resumes_to_the_same_generator(recipe, data, full, tmp_path: Path, crash_at: int = 5) -> None:
    """Kill `recipe`'s training when step `crash_at` is logged (after the last checkpoint before it), resume it, and
    find the generator the uninterrupted run `full` ended with."""
    from pipeline.tasks import train

    state = tmp_path / "last.pt"
    with pytest.raises(Crash):
        train(recipe, data, progress=False, tracker=CrashingTracker(crash_at), state_path=state)
    resumed = train(recipe, data, progress=False, state_path=state)
    assert 0 < resumed.resumed_from < crash_at
    for a, b in zip(full.generator.state_dict().values(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b)


@pytest.fixture
def images() -> Prepared:
    return image_data()


@pytest.fixture
def params_raw() -> dict:
    import yaml

    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def lab(params_raw):
    return lab_from_raw(params_raw)


# ---- the tiny pipeline, for end-to-end tests -----------------------------------------------------

COPY = ["pipeline", "stages", "dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore", ".gitignore", ".dvc/config",
        ".dvc/plots", "data/.gitignore"]


def tiny_params(path: Path) -> None:
    params = yaml.safe_load(path.read_text())
    params["train"].update(steps=6, batch_size=16, width=8, z_dim=8, log_every=2, eval_every=3,
                           eval_samples=100, checkpoint_every=3, device="cpu")
    params["classifier"].update(epochs=1, batch_size=256)
    params["sample"].update(n=300, projection_images=8, projection_steps=10, latent_samples=100)
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


@pytest.fixture(scope="session")
def repo(tmp_path_factory) -> Path:
    """The real pipeline run once with tiny params (`dvc repro` in a temporary git repo), shared by the
    end-to-end tests; tests that change it work on a copy (`repo_copy`)."""
    return build_tiny_repo(tmp_path_factory.mktemp("gan-lab"))


def build_tiny_repo(root: Path, extra_env: dict[str, str] | None = None) -> Path:
    """The project's pipeline files with tiny params in a new git repo at `root`, built by `dvc repro` and committed
    (`extra_env`: e.g. tracking off, for a build whose MLflow runs nobody reads)."""
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
    run(["dvc", "repro"], root, extra_env)
    run(["git", "add", "-A"], root)  # the results committed, as a user would: what `dvc exp run` starts from
    run(["git", "commit", "-qm", "built"], root)
    return root


def repo_copy(repo: Path, tmp_path: Path) -> Path:
    """A copy of the built tiny repo (DVC cache included) that a test may change."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    return copy


def chromium_command(profile: Path) -> list[str]:
    """Headless Chromium as this machine allows it (no network, a fresh profile), ready for --dump-dom or --screenshot;
    the test is skipped without Chromium, and fails in CI (which installs Debian's chromium)."""
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium not installed (apt-get install chromium); CI runs this test")
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=5000"]
