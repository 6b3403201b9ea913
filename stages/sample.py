"""Stage `sample@<variant>`: generator -> data/generated/<variant>.pt (samples for evaluation)
and reports/<variant>/samples.png (a grid, or a scatter over the true mixture for 2D data)."""

from __future__ import annotations

import torch

from pipeline import paths
from pipeline.config import load_params
from pipeline.data import load_prepared
from pipeline.evaluation import default_sample_count
from pipeline.io import save_torch
from pipeline.sampling import generate, load_generator, to_uint8
from pipeline.training import resolve_device
from pipeline.report.plots import save_sample_figure
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
    print(f"sampled {variant}: {n} samples -> {paths.generated_path(variant)}, grid -> {paths.samples_png(variant)}")


if __name__ == "__main__":
    run(main)
