"""Stage `resolve`: params.yaml -> reports/recipes/<variant>.yaml, each variant's resolved training recipe (the
shared recipe deep-merged with its overrides, what it leaves to the loss filled in, every name checked).

It depends on all of params.yaml, so every change, an eval- or sample-only `-S` included, is checked here before any
stage works: the names, every file, folder and store a parameter names, and whether each variant's task,
architecture and growth schedule fit its dataset (judged on the dataset's facts, the networks built on the meta
device). Its files change only when a training recipe does, so the rest of the pipeline reruns only what changed.

Every train@<variant>-<seed> stage depends on its variant's file, not on params.yaml's raw keys: a shared change
that a variant overrides (`-S loss=wgan_gp` where the variant sets its own loss) rewrites the file byte for byte,
so DVC retrains nothing of that variant."""

from __future__ import annotations

from pipeline import checkpoint, paths
from pipeline.variants import load_lab, training_recipe
from stages._common import run


def main(params_file: str = "params.yaml") -> None:
    lab = load_lab(params_file)
    for name, variant in lab.variants.items():  # said here, where it is decided: an unchanged variant does not retrain
        for note in variant.notes:
            print(f"note: {name}: {note}")
    checkpoint.write_recipes({name: training_recipe(variant.recipe) for name, variant in lab.variants.items()})
    print(f"resolved {', '.join(lab.variants)} -> {paths.RECIPES}/")


if __name__ == "__main__":
    run(main)
