"""Everything the pipeline writes to disk and reads back, in one place: formats, not paths
(`pipeline.paths` says where). Writes are atomic (complete or absent); torch files are loaded
with `weights_only=True`.

- the trained run (a variant at one seed): models/<v>/seed<s>/generator.pt (what sampling needs)
  and checkpoint.pt (+ D)
- the generated samples: data/generated/<v>.pt (uint8 images or float points, labels)
- the classifier: models/classifier/<dataset>.pt
- the tables: per-step CSVs and the long-format curves `dvc plots` draws
- small side files: the resolved params a run trained with, the MLflow run it logged to
- the resumable training state: .gan-lab/runs/<v>/seed<s>/last.pt, every `checkpoint_every` steps
"""

from __future__ import annotations

import csv
import hashlib
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import torch
import torch.nn as nn
import yaml
from torch import Tensor

from pipeline import paths
from pipeline.errors import CheckpointError
from pipeline.images import from_uint8, to_uint8
from pipeline.io import atomic_dir, atomic_path, load_torch, read_json, save_torch, write_json, write_text

# the model code is imported where a model is rebuilt, so a stage that only writes tables or samples
# does not depend on (and is not rerun by edits to) the GAN or classifier networks
if TYPE_CHECKING:
    from pipeline.config import Recipe
    from pipeline.metrics.classifier import ChannelwiseClassifier, Classifier, ClassifierResult
    from pipeline.models import ModelSpec


# ---- the trained run --------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratorCheckpoint:
    """What a generator checkpoint says about itself, besides its weights."""

    spec: "ModelSpec"
    arch: str
    variant: str
    recipe: dict[str, Any]          # the resolved recipe it trained with
    class_names: list[str]

    @property
    def dataset(self) -> str:
        return self.recipe["dataset"]


def save_trained(run: str, generator: nn.Module, discriminator: nn.Module, meta: GeneratorCheckpoint) -> None:
    """models/<variant>/seed<s>/generator.pt and checkpoint.pt (the same plus D), written all or nothing."""
    header = {"spec": meta.spec.to_dict(), "arch": meta.arch, "variant": meta.variant, "recipe": meta.recipe,
              "class_names": meta.class_names}
    with atomic_dir(paths.model_dir(run)) as out:
        torch.save({"state_dict": generator.state_dict(), **header}, out / paths.GENERATOR_FILE)
        torch.save({"state_dict": generator.state_dict(), "discriminator": discriminator.state_dict(), **header},
                   out / paths.FULL_CHECKPOINT_FILE)


def read_generator_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], GeneratorCheckpoint]:
    """(weights, header) of a generator checkpoint; CheckpointError when the file is not one."""
    from pipeline.models import ModelSpec

    with reading_checkpoint(path, "generator"):
        ckpt = load_torch(path)
        if ckpt.get("task") in ("translate", "cycle"):
            raise CheckpointError(f"{path} is a translator (task {ckpt['task']}), not a generator of images from noise; "
                                  f"use `gan translate <variant> <image>`")
        if ckpt.get("task") == "semi":
            raise CheckpointError(f"{path} is a semi-supervised GAN (task semi): its product is the classifier; its "
                                  f"samples are in reports/variants/<variant>/seed<s>/samples.png")
        meta = GeneratorCheckpoint(ModelSpec.from_dict(ckpt["spec"]), ckpt["arch"], ckpt["variant"], ckpt["recipe"],
                                   ckpt["class_names"])
    return ckpt["state_dict"], meta


@contextmanager
def reading_checkpoint(path: str | Path, what: str) -> Iterator[None]:
    """Whatever goes wrong reading the checkpoint at `path` inside the block becomes one CheckpointError that names
    the file, says it is not a readable `what` checkpoint and how to get a good one."""
    try:
        yield
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except CheckpointError:
        raise
    except Exception as exc:  # truncated, corrupt, another program's file, or written by an old version
        first = (str(exc).strip().splitlines() or [""])[0]  # torch's unpickling errors run to a dozen lines
        raise CheckpointError(f"{path} is not a readable {what} checkpoint ({type(exc).__name__}: {first}); "
                              f"restore it with `dvc checkout` or retrain with `dvc repro -f train@<variant>-<seed>`") from None


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, GeneratorCheckpoint]:
    """Rebuild a generator from its checkpoint; returns (G in eval mode on `device`, what it says of itself)."""
    from pipeline.models import build_models

    state, meta = read_generator_checkpoint(path)
    generator, _ = build_models(meta.arch, meta.spec)
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: its weights do not fit the {meta.arch!r} generator it names "
                              f"({str(exc).splitlines()[0]})") from None
    return generator.to(device).eval(), meta


# ---- generated samples ------------------------------------------------------------------------


@dataclass
class Generated:
    samples: Tensor                 # float32: images in [-1, 1] (stored as uint8, like image files) or points
    labels: Tensor | None           # the labels a conditional generator was given


def save_generated(path: str | Path, samples: Tensor, labels: Tensor | None, images: bool) -> None:
    save_torch({"samples": to_uint8(samples) if images else samples, "labels": labels}, path)


def load_generated(path: str | Path) -> Generated:
    stored = load_torch(path)
    samples = stored["samples"]
    return Generated(from_uint8(samples) if samples.dtype == torch.uint8 else samples, stored.get("labels"))


# ---- the classifier ---------------------------------------------------------------------------


def save_classifier(path: str | Path, result: "ClassifierResult", dataset: str, class_names: list[str],
                    stacked: int = 0) -> None:
    """The classifier of `dataset`; `stacked` > 0: a digit classifier applied to each of that many channels."""
    m = result.model
    save_torch({"state_dict": m.state_dict(), "channels": m.channels, "num_classes": m.num_classes,
                "stacked": stacked, "dataset": dataset, "class_names": class_names,
                "test_accuracy": result.test_accuracy}, path)


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> "Classifier | ChannelwiseClassifier":
    from pipeline.metrics.classifier import ChannelwiseClassifier, Classifier

    checkpoint = load_torch(path)
    model = Classifier(checkpoint["channels"], checkpoint["num_classes"])
    model.load_state_dict(checkpoint["state_dict"])
    if checkpoint.get("stacked"):
        model = ChannelwiseClassifier(model, checkpoint["stacked"])
    return model.to(device).eval().requires_grad_(False)


def load_dataset_classifier(dataset: str, device: torch.device | str = "cpu"
                            ) -> "Classifier | ChannelwiseClassifier | None":
    """The classifier stage's model for `dataset`, or None where it trains none (2D, unlabelled)."""
    path = paths.classifier_path(dataset)
    return load_classifier(path, device) if path.exists() else None


# ---- tables -----------------------------------------------------------------------------------


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in order of first appearance."""
    return list(dict.fromkeys(k for r in rows for k in r))


def _write_csv(rows: list[dict[str, Any]], columns: list[str], path: str | Path) -> None:
    """A CSV as pandas' `to_csv(index=False)` writes it: a missing value or NaN is an empty cell, and
    a column that holds a float or a gap writes its integers as floats (5.0)."""

    def is_float_column(column: str) -> bool:
        values = [r.get(column) for r in rows]
        numbers = [v for v in values if v is not None]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            return False
        return any(isinstance(v, float) for v in numbers) or len(numbers) < len(values)

    floats = {c for c in columns if is_float_column(c)}

    def cell(column: str, value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if column in floats and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(c, r.get(c)) for c in columns] for r in rows)


def write_table(rows: list[dict[str, Any]], path: str | Path) -> None:
    _write_csv(rows, _columns(rows) or ["step"], path)


def _parse_column(cells: list[str]) -> list[Any]:
    """A column's values as pandas' `read_csv` types them: all integers (no gaps) -> int, all numbers
    (gaps are NaN) -> float, otherwise strings (gaps are NaN)."""
    present = [c for c in cells if c != ""]
    try:
        if len(present) == len(cells) and all(str(int(c)) == c.lstrip("+") for c in present):
            return [int(c) for c in cells]
    except ValueError:
        pass
    try:
        return [float(c) if c != "" else math.nan for c in cells]
    except ValueError:
        return [c if c != "" else math.nan for c in cells]


def read_table(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists() or not path.stat().st_size:
        return []
    with open(path, newline="") as f:
        header, *body = list(csv.reader(f))
    columns = [_parse_column([row[i] if i < len(row) else "" for row in body]) for i in range(len(header))]
    return [dict(zip(header, values)) for values in zip(*columns)] if body else []


LOSS_CURVES = ("loss_d", "loss_g", "d_real", "d_fake", "wasserstein", "gradient_penalty", "loss_rec", "loss_adv")


def write_training_tables(run: str, log_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> None:
    """The per-step tables of a trained run: losses every `log_every` steps, checks every `eval_every`."""
    write_table(log_rows, paths.train_log_path(run))
    write_table(eval_rows, paths.train_eval_path(run))


CURVE_COLUMNS = ("variant", "seed")


def write_curves(curves: Mapping[tuple[str, str], list[dict[str, Any]]]) -> None:
    """reports/curves/<axis>/<metric>.csv for every (axis, metric): rows (variant, seed, <axis>, value), every
    variant's runs in one file, so one `dvc plots` definition per axis draws a chart per metric with a line per
    run (dvc.yaml's `plots:`). Written all or nothing: a metric no run has any more leaves no file behind."""
    with atomic_dir(paths.CURVES) as out:
        for (axis, metric), rows in curves.items():
            _write_csv(rows, [*CURVE_COLUMNS, axis, "value"], out / axis / f"{metric}.csv")


# ---- side files -------------------------------------------------------------------------------


def write_resolved(run: str, recipe: Mapping[str, Any], notes: tuple[str, ...] | list[str]) -> None:
    """reports/variants/<v>/seed<s>/resolved.yaml: what the run actually trained with, defaults filled in."""
    text = yaml.safe_dump({"run": run, "notes": list(notes), "recipe": dict(recipe)}, sort_keys=False)
    write_text(f"# {run}: the recipe as trained (null and auto resolved), written by the train stage\n{text}",
               paths.resolved_path(run))


def write_recipes(recipes: Mapping[str, Mapping[str, Any]]) -> None:
    """reports/recipes/<variant>.yaml for every variant, and nothing else (a dropped variant's file goes): the
    part of each resolved recipe its train stages depend on (`pipeline.variants.training_recipe`)."""
    with atomic_dir(paths.RECIPES) as out:
        for variant, recipe in recipes.items():
            text = yaml.safe_dump(dict(recipe), sort_keys=False)
            (out / paths.recipe_path(variant).name).write_text(
                f"# {variant}: the resolved recipe its train stages depend on, written by the resolve stage\n{text}")


def write_training_summary(run: str, recipe: Mapping[str, Any], device: str, d_updates: int,
                           convergence: Mapping[str, Any]) -> None:
    """reports/variants/<v>/seed<s>/training.json: the precision and device the run actually trained with,
    how many G and D updates it made and whether its FID was still falling at the end (a DVC metrics
    file: `dvc exp show` lists it)."""
    t = recipe["train"]
    write_json({"precision": t["precision"], "device": device, "g_updates": t["steps"] * t["g_steps"],
                "d_updates": d_updates, **convergence}, paths.training_summary_path(run))


def write_run_reference(run: str, reference: Mapping[str, str]) -> None:
    """Where the run's MLflow run lives, for the stages after training (empty: not tracked)."""
    write_json(dict(reference), paths.run_reference_path(run))


def read_run_reference(run: str) -> dict[str, str]:
    path = paths.run_reference_path(run)
    return read_json(path) if path.exists() else {}


# ---- an unfinished training (outside DVC's outputs) ---------------------------------------------


def read_unfinished_run(run: str) -> dict[str, str]:
    """The MLflow run of this run's unfinished training, if one was interrupted."""
    path = paths.run_state_reference_path(run)
    try:
        return read_json(path) if path.exists() else {}
    except ValueError:  # half a file from a crash in an old version: no run to continue
        return {}


def write_unfinished_run(run: str, reference: Mapping[str, str]) -> None:
    if reference:
        write_json(dict(reference), paths.run_state_reference_path(run))


def forget_unfinished_run(run: str) -> None:
    """Training finished: its resumable state and run pointer are no longer needed."""
    paths.run_state_path(run).unlink(missing_ok=True)
    paths.run_state_reference_path(run).unlink(missing_ok=True)


# ---- the resumable training state ---------------------------------------------------------------
# .gan-lab/runs/<v>/seed<s>/last.pt (paths.run_state_path), one format for every task: the run's counters, tables and
# random streams, every module its task names (`modules()`: networks, optimisers, averages, pools), the recipe's
# training hash and the digest of the code that decides the weights; resumed only when both match.


def run_state(run: Any, recipe: Recipe) -> dict[str, Any]:
    """The state of a task's run (`pipeline.training.loop.TaskRun`) to resume from."""
    return {
        "training_hash": recipe.training_hash(), "code_digest": code_digest(), "step": run.step,
        "d_updates": run.d_updates, "train_seconds": run.train_seconds,
        "gen_state": run.gen.get_state(), "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "log_rows": run.log_rows, "eval_rows": run.eval_rows,
        "modules": {name: module.state_dict() for name, module in run.modules().items()},
    }


def restore_run_state(run: Any, state: dict[str, Any]) -> None:
    for name, module in run.modules().items():
        module.load_state_dict(state["modules"][name])
    run.gen.set_state(state["gen_state"])
    torch.set_rng_state(state["cpu_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    run.step, run.d_updates, run.train_seconds = state["step"], state["d_updates"], state["train_seconds"]
    run.log_rows, run.eval_rows = list(state["log_rows"]), list(state["eval_rows"])


WEIGHT_CODE = ("training", "tasks", "losses", "optim", "device", "distributed", "models", "weights")  # of pipeline/


def code_digest() -> str:
    """Digest of the code that decides the weights: a checkpoint from other code is not resumed."""
    root = Path(__file__).parent  # pipeline/
    files = sorted(f for name in WEIGHT_CODE
                   for f in ((root / name).rglob("*.py") if (root / name).is_dir() else [root / f"{name}.py"]))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def read_state(recipe: Recipe, state_path: Path | None, device: torch.device | str = "cpu",
               quiet: bool = False) -> dict[str, Any] | None:
    """The resumable state at `state_path` when it was written by the same recipe and code, else
    None (and, unless `quiet`, a note why when there is a file)."""
    if state_path is None or not state_path.exists():
        return None
    try:
        state = load_torch(state_path, map_location=device)
    except Exception as exc:  # a truncated or foreign file: start over rather than stop
        if not quiet:
            print(f"note: {state_path} is not a readable training state ({type(exc).__name__}); starting from step 0")
        return None
    if state.get("training_hash") != recipe.training_hash() or state.get("code_digest") != code_digest():
        if not quiet:
            print(f"note: {state_path} was written with other training settings or code; starting from step 0")
        return None
    return state

