"""Stage `sample@<variant>-<seed>`: generator -> data/generated/<variant>/seed<s>.pt (samples for
evaluation), reports/variants/<variant>/seed<s>/samples.png (what the data kind draws: a grid, one row
per class when conditional, or a scatter over the true mixture for 2D data) and
reports/variants/<variant>/seed<s>/latent/ (interpolation, class direction and its entanglement,
latent arithmetic, real test images projected into the latent space)."""

from __future__ import annotations

from typing import Optional

from pipeline import paths
from pipeline.checkpoint import load_dataset_classifier, load_generator, save_generated
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.device import resolve_device
from pipeline.io import atomic_dir, write_json
from pipeline.kinds import kind_of
from pipeline.report.kind_views import sample_figure
from pipeline.report.plots import save_latent_figures, save_projection
from pipeline.sampling import generate
from pipeline.tasks import run_stage
from stages._common import run


def main(variant: str, seed: Optional[int] = None, params_file: str = "params.yaml") -> None:
    run_stage("sample", variant, seed, params_file)  # the variant's task picks the function: sample_generate below for task generate


def sample_generate(variant: str, seed: Optional[int], params_file: str) -> None:
    # the sample and eval sections need no resolving; the prepare stage checked every name
    recipe = load_params(params_file).merged(variant, seed)
    run_key = paths.run_name(variant, recipe.seed)
    prepared = load_prepared(recipe.dataset)
    kind = kind_of(prepared)
    device = resolve_device(recipe.train.device)
    generator, meta = load_generator(paths.generator_path(run_key), device)
    spec, s = meta.spec, recipe.sample
    n = s.n or kind.protocol_samples(prepared)
    samples, labels = generate(generator, n, spec.z_dim, spec.num_classes, seed=recipe.seed + 2, device=device)
    save_generated(paths.generated_path(run_key), samples, labels, kind.images)
    sample_figure(kind.name, generator, spec, prepared, s.grid, recipe.seed, paths.samples_png(run_key), device)
    classifier = load_dataset_classifier(recipe.dataset, device)
    with atomic_dir(paths.latent_dir(run_key)) as out:
        index = save_latent_figures(generator, spec, prepared, classifier, s.interpolation, s.direction_class,
                                    s.arithmetic, s.grid, recipe.seed, out, s.latent_samples)
        index["projection"] = save_projection(generator, spec, prepared, classifier, s, recipe.seed, out)
        write_json(index, out / "index.json")
    print(f"sampled {run_key}: {n} samples -> {paths.generated_path(run_key)}, grid -> {paths.samples_png(run_key)}")


if __name__ == "__main__":
    run(main)
