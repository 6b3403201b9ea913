"""Stage `prepare`: every dataset a variant trains on -> data/prepared/<dataset>/ (train.pt, test.pt, info.json)."""

from __future__ import annotations

from pipeline import paths
from pipeline.config import DataConfig, Params, load_params
from pipeline.data import prepare_dataset, save_prepared
from pipeline.errors import ConfigError
from stages._common import run


def data_configs(params: Params) -> dict[str, DataConfig]:
    """dataset -> its data section; two variants may not prepare one dataset two ways."""
    configs: dict[str, DataConfig] = {}
    for name, recipe in params.all_variants().items():
        seen = configs.setdefault(recipe.dataset, recipe.data)
        if seen != recipe.data:
            raise ConfigError(f"variants.{name}: overrides data: for dataset {recipe.dataset!r} differently from "
                              f"another variant; prepared data is shared per dataset, so use one data: section")
    return configs


def main(params_file: str = "params.yaml") -> None:
    params = load_params(params_file)
    for dataset, cfg in data_configs(params).items():
        prepared = prepare_dataset(dataset, cfg)
        save_prepared(prepared, paths.prepared_dir(dataset))
        info = prepared.info
        print(f"prepared {dataset}: {info['n_train']} train / {info['n_test']} test, shape {info['shape']}, "
              f"range [{info['range'][0]:.2f}, {info['range'][1]:.2f}]")


if __name__ == "__main__":
    run(main)
