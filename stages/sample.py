"""Stage `sample@<variant>-<seed>`: a trained run -> data/generated/<variant>/seed<s>.pt (what the evaluate stage
measures), reports/variants/<variant>/seed<s>/samples.png and reports/variants/<variant>/seed<s>/latent/. What each
holds is the variant's task's (`pipeline.tasks`): for task generate, samples, a grid (one row per class when
conditional, or a scatter over the true mixture for 2D data) and the latent space (interpolation, class direction and
its entanglement, latent arithmetic, real test images projected into it); for the image-to-image tasks, the test
images translated."""

from __future__ import annotations

from typing import Optional

from pipeline import paths
from pipeline.config import load_params
from pipeline.tasks import TASKS
from stages._common import run


def main(variant: str, seed: Optional[int] = None, params_file: str = "params.yaml") -> None:
    # the sample and eval sections need no resolving; the prepare stage checked every name
    recipe = load_params(params_file).merged(variant, seed)
    TASKS.get(recipe.task, "task").sample(recipe, paths.run_name(variant, recipe.seed))


if __name__ == "__main__":
    run(main)
