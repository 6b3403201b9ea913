"""How a recipe and its data become the architecture's `ModelSpec`: used to build the networks for training and, on
the meta device, to check when params.yaml is read that they fit the dataset (GenerateTask.check_fit), so it stays
light to import."""

from __future__ import annotations

from typing import Any

from pipeline.errors import ConfigError
from pipeline.models.common import ModelSpec


def model_spec(recipe: Any, prepared: Any, loss: Any) -> ModelSpec:
    """`prepared`: the prepared data, or the dataset's Facts (name, kind, num_classes, data_shape)."""
    t = recipe.train
    if recipe.conditional and not prepared.num_classes:
        raise ConfigError(f"conditional: true needs a labelled dataset; {prepared.name!r} has no labels")
    # Batch norm makes D's output for one sample depend on the others: that breaks the per-sample
    # gradient penalty (WGAN-GP paper, sec. 4), and spectral norm does the job of keeping D tame.
    d_norm = "layer" if loss.gradient_penalty else ("none" if t.spectral_norm else "batch")
    # dropout makes the critic a random function: its Lipschitz constraint and its W estimate lose their meaning
    return ModelSpec(data_shape=prepared.data_shape, kind=prepared.kind, z_dim=t.z_dim, width=t.width,
                     num_classes=prepared.num_classes if recipe.conditional else 0, d_norm=d_norm,
                     spectral_norm=t.spectral_norm, pac=t.pac, d_dropout=not loss.wasserstein, z_dist=t.z_dist,
                     minibatch_discrimination=t.minibatch_discrimination, minibatch_std=t.minibatch_std)
