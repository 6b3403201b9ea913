"""Stage `sample@<variant>`: generator -> data/generated/<variant>.pt (samples for evaluation),
reports/variants/<variant>/samples.png (a grid; one row per class when conditional; a scatter over
the true mixture for 2D data) and reports/variants/<variant>/latent/ (interpolation, class direction)."""

from __future__ import annotations

from pipeline import paths
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.evaluation import default_sample_count
from pipeline.io import atomic_dir, save_torch, write_json
from pipeline.models.classifier import load_dataset_classifier
from pipeline.report.plots import save_latent_figures, save_sample_figure
from pipeline.sampling import generate, load_generator, to_uint8
from pipeline.training import resolve_device
from stages._common import run


def main(variant: str, params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    recipe = params.variant(variant)
    prepared = load_prepared(recipe.dataset)
    device = resolve_device(recipe.train.device)
    generator, ckpt = load_generator(str(paths.generator_path(variant)), device)
    spec = ckpt["spec"]
    n = recipe.sample.n or default_sample_count(prepared)
    samples, labels = generate(generator, n, spec["z_dim"], spec["num_classes"], seed=recipe.seed + 2, device=device)
    stored = to_uint8(samples) if prepared.kind == "image" else samples
    save_torch({"samples": stored, "labels": labels, "kind": prepared.kind}, paths.generated_path(variant))
    save_sample_figure(generator, spec, prepared, recipe.sample.grid, recipe.seed, paths.samples_png(variant), device)
    classifier = load_dataset_classifier(recipe.dataset)
    if classifier is not None:
        classifier = classifier.to(device)
    with atomic_dir(paths.latent_dir(variant)) as out:
        index = save_latent_figures(generator, spec, prepared, classifier, recipe.sample.interpolation,
                                    recipe.sample.direction_class, recipe.sample.arithmetic, recipe.sample.grid,
                                    recipe.seed, out)
        write_json(index, out / "index.json")
    print(f"sampled {variant}: {n} samples -> {paths.generated_path(variant)}, grid -> {paths.samples_png(variant)}")


if __name__ == "__main__":
    run(main)
