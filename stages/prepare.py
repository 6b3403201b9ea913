"""Stage `prepare`: every dataset a variant trains on -> data/prepared/<dataset>/ (train.pt, test.pt,
info.json). It checks every name in params.yaml first, so a typo stops the pipeline here."""

from __future__ import annotations

import dataclasses

from pipeline import paths
from pipeline.config import DataConfig
from pipeline.data import prepare_dataset, save_prepared
from pipeline.errors import ConfigError
from pipeline.tasks import task_keys
from pipeline.variants import Lab, load_lab
from stages._common import run


def data_configs(lab: Lab) -> dict[str, DataConfig]:
    """dataset -> its data section; two variants may not prepare one dataset two ways. The data keys of a task's
    own (`Task.keys`: the translation problem, task semi's labelled subset...) are built from the prepared images
    at training time, so they may differ. A CycleGAN's second domain (`data.cycle_with`) is prepared with its first
    domain's section."""
    own = {key.split(".", 1)[1]: unused for key, (_, unused) in task_keys().items() if key.startswith("data.")}
    configs: dict[str, DataConfig] = {}
    for name, variant in lab.variants.items():
        recipe = variant.recipe
        data = dataclasses.replace(recipe.data, **own)
        seen = configs.setdefault(recipe.dataset, data)
        if seen != data:
            raise ConfigError(f"variants.{name}: overrides data: for dataset {recipe.dataset!r} differently from "
                              f"another variant; prepared data is shared per dataset, so use one data: section")
    for variant in lab.variants.values():  # a CycleGAN's second domain, prepared as its first
        if variant.recipe.data.cycle_with:
            configs.setdefault(variant.recipe.data.cycle_with, configs[variant.recipe.dataset])
    return configs


def main(params_file: str = "params.yaml") -> None:
    lab = load_lab(params_file)
    for dataset, cfg in data_configs(lab).items():
        prepared = prepare_dataset(dataset, cfg)
        save_prepared(prepared, paths.prepared_dir(dataset))
        info = prepared.info
        print(f"prepared {dataset}: {info['n_train']} train / {info['n_test']} test, shape {info['shape']}, "
              f"range [{info['range'][0]:.2f}, {info['range'][1]:.2f}]")


if __name__ == "__main__":
    run(main)
