"""The train, sample and evaluate stages for task semi (`pipeline.tasks` dispatches here), writing the files
the generate task's stages write, so DVC, MLflow and the report treat it alike:

- train: models/<v>/seed<s>/generator.pt (G) and checkpoint.pt (G, D, D's running average and the labelled indices),
  the loss and held-out tables, resolved.yaml, training.json, an MLflow run (every loss term, the held-out
  classification error of the averaged and the raw D as stepped metrics) and the averaged D as an MLflow model that
  classifies images;
- sample: data/generated/<v>/seed<s>.pt (G's samples, uint8) and samples.png; latent/ says why there is no
  latent walk here;
- evaluate: metrics.json: the averaged D's errors on the whole test split (`test_errors`, what the reference reports),
  the raw D's (`test_errors_raw`), beside the lab's classifier trained on the same labels alone and on every label;
  class_hist.json (the classifier's reading of G's samples).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import checkpoint, paths
from pipeline.errors import CheckpointError
from pipeline.images import from_uint8, image_grid, save_png, to_uint8
from pipeline.io import atomic_dir, load_torch, save_torch, write_json

SAMPLES = 1000  # G's samples written for the class histogram
BASELINE_STEPS_PER_EPOCH = 50  # the labels-only classifier takes this many Adam steps per `classifier.epochs`


def load_semi(path: str | Path) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(G, D, D's running average (the D the reference tests), the checkpoint's header) of a semi run's checkpoint.pt,
    in eval mode."""
    from pipeline.semi.networks import SemiDiscriminator, SemiGenerator

    try:
        ckpt = load_torch(path)
        if ckpt.get("task") != "semi":
            raise CheckpointError(f"{path} is not a semi-supervised GAN's checkpoint (task {ckpt.get('task')!r})")
        generator = SemiGenerator(ckpt["z_dim"], tuple(ckpt["data_shape"]), uniform=ckpt["z_dist"] == "uniform")
        generator.load_state_dict(ckpt.pop("state_dict"))
        discriminators = []
        for key in ("discriminator", "discriminator_average"):
            discriminators.append(SemiDiscriminator(tuple(ckpt["data_shape"]), len(ckpt["class_names"])))
            discriminators[-1].load_state_dict(ckpt.pop(key))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable semi-supervised checkpoint ({type(exc).__name__}: {exc}); "
                              f"retrain with `dvc repro -f train@<variant>-<seed>`") from None
    return generator.eval(), discriminators[0].eval(), discriminators[1].eval(), ckpt


def train(variant: str, seed: int | None, params_file: str) -> None:
    from pipeline.data import load_prepared
    from pipeline.semi.train import train_semi
    from pipeline.tracking import NullTracker
    from pipeline.tracking_mlflow import (log_classifier_model, log_training_files, run_reference, run_status,
                                         start_training_run)
    from pipeline.variants import for_this_machine, load_lab

    lab = load_lab(params_file, names=False)
    v, recipe = lab.variant(variant), for_this_machine(lab.recipe(variant, seed))
    run_key = paths.run_name(variant, recipe.seed)
    prepared = load_prepared(recipe.dataset)
    for note in v.notes:
        print(f"note: {variant}: {note}")
    state_path = paths.run_state_path(run_key)
    tracker = start_training_run(recipe, variant, params_file, v.notes, run_key, resume=state_path.exists())
    with run_status(tracker):
        run = train_semi(recipe, prepared, variant=run_key, tracker=tracker or NullTracker(), state_path=state_path)
        header = {"task": "semi", "variant": variant, "recipe": recipe.to_dict(), "z_dim": recipe.train.z_dim,
                  "z_dist": recipe.train.z_dist, "data_shape": list(prepared.data_shape),
                  "class_names": prepared.info["class_names"]}
        averaged = run.d_average.averaged()
        with atomic_dir(paths.model_dir(run_key)) as out:
            save_torch({"state_dict": run.generator.state_dict(), **header}, out / paths.GENERATOR_FILE)
            save_torch({"state_dict": run.generator.state_dict(), "discriminator": run.discriminator.state_dict(),
                        "discriminator_average": averaged.state_dict(), "labelled": run.labelled.cpu(), **header},
                       out / paths.FULL_CHECKPOINT_FILE)
        checkpoint.write_training_tables(run_key, run.log_rows, run.eval_rows)
        checkpoint.write_resolved(run_key, recipe.to_dict(), v.notes)
        checkpoint.write_training_summary(run_key, recipe.to_dict(), recipe.train.device, run.d_updates, {})
        checkpoint.write_run_reference(run_key, run_reference(tracker))
        if tracker is not None:
            log_training_files(tracker, run_key)
            tracker.submit(log_classifier_model, averaged, prepared.data_shape)  # the D the reference tests
    checkpoint.forget_unfinished_run(run_key)
    last = run.eval_rows[-1]
    print(f"trained {run_key}: {recipe.train.steps} steps, {len(run.labelled)} labels, held-out error "
          f"{last['test_error']:.4f} (averaged D; raw D {last['test_error_raw']:.4f}; first {recipe.train.eval_samples} "
          f"test images)")


def sample(variant: str, seed: int | None, params_file: str) -> None:
    from pipeline.config import load_params
    from pipeline.sampling import generate

    recipe = load_params(params_file).merged(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    generator, _, _, header = load_semi(paths.full_checkpoint_path(run_key))
    images, _ = generate(generator, SAMPLES, header["z_dim"], seed=recipe.seed + 2)
    save_torch({"images": to_uint8(images)}, paths.generated_path(run_key))
    grid = recipe.sample.grid
    save_png(image_grid(images[:grid * grid], grid), paths.samples_png(run_key))
    with atomic_dir(paths.latent_dir(run_key)) as out:
        reason = "task semi: its G serves the classifier (feature matching), its latent space is not explored here"
        write_json({key: {"unavailable": reason} for key in ("interpolation", "direction", "arithmetic")},
                   out / "index.json")
    print(f"sampled {run_key}: {SAMPLES} images -> {paths.generated_path(run_key)}, grid -> {paths.samples_png(run_key)}")


def evaluate(variant: str, seed: int | None, params_file: str) -> None:
    from pipeline.checkpoint import load_dataset_classifier
    from pipeline.config import load_params
    from pipeline.data import load_prepared
    from pipeline.metrics.classifier import classify
    from pipeline.metrics.modes import class_histogram
    from pipeline.semi.metrics import classification_baseline, count_errors, semi_errors

    params = load_params(params_file)
    recipe = params.merged(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    prepared = load_prepared(recipe.dataset)
    _, raw, discriminator, header = load_semi(paths.full_checkpoint_path(run_key))
    n = len(prepared.x_test)
    errors = count_errors(discriminator, prepared.x_test, prepared.y_test)
    per_class = [count_errors(discriminator, prepared.x_test[prepared.y_test == k], prepared.y_test[prepared.y_test == k])
                 for k in range(prepared.num_classes)]
    alone = classification_baseline(prepared, header["labelled"], recipe.seed,
                                    BASELINE_STEPS_PER_EPOCH * params.classifier.epochs, params.classifier.lr)
    metrics: dict[str, Any] = {
        "test_errors": errors, "test_error": errors / n, "n_test": n, "n_labels": len(header["labelled"]),
        "test_errors_raw": count_errors(raw, prepared.x_test, prepared.y_test),
        "labels_only_errors": semi_errors(alone, prepared.x_test, prepared.y_test),
    }
    classifier = load_dataset_classifier(recipe.dataset)
    histogram: dict[str, Any] = {}
    if classifier is not None:
        metrics["all_labels_errors"] = semi_errors(classifier, prepared.x_test, prepared.y_test)
        samples = from_uint8(load_torch(paths.generated_path(run_key))["images"])
        k = prepared.num_classes
        histogram = {"class_names": prepared.info["class_names"],
                     "generated": class_histogram(classify(classifier, samples), k).tolist(),
                     "real": class_histogram(prepared.y_test, k).tolist()}
    metrics["errors_per_class"] = per_class
    write_json(metrics, paths.metrics_path(run_key))
    write_json(histogram, paths.class_hist_path(run_key))
    write_json({}, paths.fid_protocol_path(run_key))
    print(f"evaluated {run_key}: the averaged D misclassifies {errors} of {n} test images (the raw D "
          f"{metrics['test_errors_raw']}; {len(header['labelled'])} labels); "
          f"the lab's classifier on those labels alone: {metrics['labels_only_errors']}"
          + (f", on every label: {metrics['all_labels_errors']}" if "all_labels_errors" in metrics else ""))

