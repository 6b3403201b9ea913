"""The train, sample and evaluate stages for task translate (`pipeline.tasks` dispatches here). They
write the same files as the generate task's stages, so DVC, MLflow and the report treat both alike:

- train: models/<v>/seed<s>/generator.pt (the U-Net and what rebuilding it needs) and checkpoint.pt
  (+ the PatchGAN), the loss and held-out tables, resolved.yaml, training.json, an MLflow run with every
  loss term, and the translator as an MLflow model that takes input images;
- sample: data/generated/<v>/seed<s>.pt (`outputs_per_input` outputs for every test input, uint8) and
  samples.png (rows of input | outputs | truth); latent/ says why there is no latent walk;
- evaluate: metrics.json (`pipeline.translate.metrics`), class_hist.json (the classifier's reading of
  the outputs) and fid_protocol.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pipeline import checkpoint, paths
from pipeline.errors import CheckpointError
from pipeline.images import from_uint8, save_png, to_uint8
from pipeline.io import atomic_dir, load_torch, save_torch, write_json
from pipeline.translate.networks import UNet
from pipeline.translate.problems import PROBLEMS, comparison_grid

SAMPLE_ROWS = 8  # test inputs shown in samples.png and the report
SHOWN_FILE = "translations.pt"  # in the run's latent/ folder: the first output for each shown input


# ---- the translator on disk -------------------------------------------------------------------


def save_translator(run: str, tr: Any, recipe: dict[str, Any], variant: str, data_shape: tuple[int, ...],
                    class_names: list[str]) -> None:
    header = {"task": "translate", "problem": recipe["data"]["translate"], "data_shape": list(data_shape),
              "width": recipe["train"]["width"], "dropout": recipe["translate"]["dropout"], "variant": variant,
              "recipe": recipe, "class_names": class_names}
    with atomic_dir(paths.model_dir(run)) as out:
        save_torch({"state_dict": tr.generator.state_dict(), **header}, out / paths.GENERATOR_FILE)
        full = {"state_dict": tr.generator.state_dict(), **header}
        if tr.discriminator is not None:
            full["discriminator"] = tr.discriminator.state_dict()
        save_torch(full, out / paths.FULL_CHECKPOINT_FILE)


def load_translator(path: str | Path, device: torch.device | str = "cpu") -> tuple[UNet, dict[str, Any]]:
    """(the U-Net in eval mode, dropout still on, the checkpoint's header). A CycleGAN's checkpoint gives
    its G_AB (header problem: None, the image is translated as given)."""
    try:
        ckpt = load_torch(path)
        if ckpt.get("task") not in ("translate", "cycle"):
            raise CheckpointError(f"{path} is a generator of task {ckpt.get('task', 'generate')!r}, not a translator "
                                  f"(task translate or cycle)")
        generator = UNet(ckpt["data_shape"][0], ckpt["width"], ckpt["dropout"], norm=ckpt.get("norm", "batch"))
        generator.load_state_dict(ckpt.pop("state_dict"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable translator checkpoint ({type(exc).__name__}: {exc}); "
                              f"retrain with `dvc repro -f train@<variant>-<seed>`") from None
    return generator.to(device).eval(), ckpt


@torch.no_grad()
def translate(generator: UNet, sources: Tensor, outputs_per_input: int, seed: int, batch_size: int = 500) -> Tensor:
    """K x N x C x H x W outputs, K = `outputs_per_input` draws of the dropout noise for each input,
    reproducible from `seed` (the global random state is left as it was)."""
    device = next(generator.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return torch.stack([torch.cat([generator(sources[i:i + batch_size].to(device)).float().cpu()
                                       for i in range(0, len(sources), batch_size)])
                            for _ in range(outputs_per_input)])


# ---- the stages ---------------------------------------------------------------------------------


def train(variant: str, seed: int | None, params_file: str) -> None:
    from pipeline.checkpoint import load_dataset_classifier
    from pipeline.data import load_prepared
    from pipeline.evaluation.checks import still_improving
    from pipeline.tracking import NullTracker
    from pipeline.tracking_mlflow import (log_training_files, log_translator_model, run_reference, run_status,
                                         start_training_run)
    from pipeline.translate.train import HeldOutCheck, train_translator
    from pipeline.variants import for_this_machine, load_lab

    lab = load_lab(params_file, names=False)
    v, recipe = lab.variant(variant), for_this_machine(lab.recipe(variant, seed))
    run_key = paths.run_name(variant, recipe.seed)
    prepared = load_prepared(recipe.dataset)
    classifier = load_dataset_classifier(recipe.dataset, recipe.train.device)
    for note in v.notes:
        print(f"note: {variant}: {note}")
    state_path = paths.run_state_path(run_key)
    tracker = start_training_run(recipe, variant, params_file, v.notes, run_key, resume=state_path.exists())
    with run_status(tracker):
        tr = train_translator(recipe, prepared, variant=run_key, tracker=tracker or NullTracker(),
                              checker=HeldOutCheck(recipe, prepared, classifier, torch.device(recipe.train.device)),
                              state_path=state_path)
        save_translator(run_key, tr, recipe.to_dict(), variant, prepared.data_shape, prepared.info["class_names"])
        checkpoint.write_training_tables(run_key, tr.log_rows, tr.eval_rows)
        checkpoint.write_resolved(run_key, recipe.to_dict(), v.notes)
        checkpoint.write_training_summary(run_key, recipe.to_dict(), recipe.train.device, tr.d_updates,
                                          still_improving(tr.eval_rows, recipe.train.steps))
        checkpoint.write_run_reference(run_key, run_reference(tracker))
        if tracker is not None:
            log_training_files(tracker, run_key)
            tracker.submit(log_translator_model, tr.generator, prepared.data_shape)
    checkpoint.forget_unfinished_run(run_key)
    last = tr.log_rows[-1]
    print(f"trained {run_key}: {recipe.train.steps} steps, loss_g {last['loss_g']:.4f}, loss_rec {last['loss_rec']:.4f}")


def _test_pairs(recipe: Any, prepared: Any) -> tuple[Tensor, Tensor]:
    """(inputs, true images) of the test split, through the recipe's problem."""
    targets = prepared.x_test
    return PROBLEMS.get(recipe.data.translate, "data.translate").degrade(targets), targets


def sample(variant: str, seed: int | None, params_file: str) -> None:
    from pipeline.config import load_params
    from pipeline.data import load_prepared
    from pipeline.device import resolve_device

    recipe = load_params(params_file).merged(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    prepared = load_prepared(recipe.dataset)
    generator, _ = load_translator(paths.generator_path(run_key), resolve_device(recipe.train.device))
    sources, targets = _test_pairs(recipe, prepared)
    outputs = translate(generator, sources, recipe.translate.outputs_per_input, seed=recipe.seed + 2)
    save_torch({"outputs": to_uint8(outputs), "problem": recipe.data.translate}, paths.generated_path(run_key))
    n = min(SAMPLE_ROWS, len(sources))
    save_png(comparison_grid(sources[:n], outputs[:3, :n], targets[:n]), paths.samples_png(run_key))
    with atomic_dir(paths.latent_dir(run_key)) as out:
        reason = "task translate: G has no latent space (its only noise is dropout)"
        write_json({key: {"unavailable": reason} for key in ("interpolation", "direction", "arithmetic")},
                   out / "index.json")
        # the first output of the shown inputs: the report sets the variants of one problem side by side
        save_torch({"outputs": to_uint8(outputs[0, :n]), "problem": recipe.data.translate}, out / SHOWN_FILE)
    print(f"sampled {run_key}: {outputs.shape[0]} outputs for each of {outputs.shape[1]} test inputs "
          f"-> {paths.generated_path(run_key)}, grid (input | outputs | truth) -> {paths.samples_png(run_key)}")


def evaluate(variant: str, seed: int | None, params_file: str) -> None:
    from pipeline.checkpoint import load_dataset_classifier
    from pipeline.config import load_params
    from pipeline.data import load_prepared
    from pipeline.metrics.classifier import classify
    from pipeline.metrics.fidelity import fidelity_protocol
    from pipeline.metrics.modes import class_histogram
    from pipeline.translate.metrics import translation_metrics

    recipe = load_params(params_file).merged(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    prepared = load_prepared(recipe.dataset)
    stored = load_torch(paths.generated_path(run_key))
    outputs = from_uint8(stored["outputs"])
    sources, targets = _test_pairs(recipe, prepared)
    classifier = load_dataset_classifier(recipe.dataset)
    metrics = translation_metrics(outputs, sources, targets, prepared.y_test, classifier)
    histogram, protocol = {}, {}
    if classifier is not None:
        k = prepared.num_classes
        histogram = {"class_names": prepared.info["class_names"],
                     "generated": class_histogram(classify(classifier, outputs[0]), k).tolist(),
                     "real": class_histogram(prepared.y_test, k).tolist()}
        measured = fidelity_protocol("classifier", paths.classifier_path(recipe.dataset), outputs[0], targets, 0)
        measured.pop("kid_subset_size")  # no KID here
        protocol = {"classifier": {**measured, "reference": f"{prepared.name} test split: the true images of the inputs"}}
    write_json(metrics, paths.metrics_path(run_key))
    write_json(histogram, paths.class_hist_path(run_key))
    write_json(protocol, paths.fid_protocol_path(run_key))
    print(f"evaluated {run_key}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in metrics.items()))
