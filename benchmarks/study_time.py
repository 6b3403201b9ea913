"""How long a study takes, measured before running it: each variant's training step at the study's
exact settings, timed over a few hundred steps, and the projected time of its full budget.

    python benchmarks/study_time.py toy_ring8_pacgan            # every variant, 300 steps each
    python benchmarks/study_time.py lucic_mnist --steps 50 --variants ns wgan_gp

Step time = (T(2n) - T(n)) / n over whole `train()` calls, so set-up cancels out. Evaluation
(sampling, FID) is not included: the README lists it separately. Prints the CPU it ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from pipeline.config import read_yaml  # noqa: E402
from pipeline.data import prepare_dataset  # noqa: E402
from pipeline.studies import apply_study, load_study  # noqa: E402
from pipeline.tasks import train  # noqa: E402
from pipeline.training import critic_steps  # noqa: E402
from pipeline.variants import lab_from_raw  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(recipe, prepared, steps: int) -> float:
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(
        recipe.train, steps=steps, log_every=steps, eval_every=steps, checkpoint_every=steps))
    start = time.perf_counter()
    train(recipe, prepared, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study")
    parser.add_argument("--steps", type=int, default=300, help="n: steps of the shorter timed run")
    parser.add_argument("--variants", nargs="*", help="only these variants (default: all)")
    args = parser.parse_args()
    params = read_yaml(Path("params.yaml").read_text())
    lab = lab_from_raw(apply_study(params, load_study(args.study)))
    print(f"{args.study} on {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    prepared: dict[str, object] = {}
    total = 0.0
    for name, variant in lab.variants.items():
        if args.variants and name not in args.variants:
            continue
        recipe = variant.recipe
        if recipe.dataset not in prepared:
            prepared[recipe.dataset] = prepare_dataset(recipe.dataset, recipe.data)
        data = prepared[recipe.dataset]
        timed(recipe, data, 5)  # warm-up: lazy imports, allocator, oneDNN kernels
        n = args.steps
        per_step = (timed(recipe, data, 2 * n) - timed(recipe, data, n)) / n
        # the budget's critic steps relative to the timed runs' (WGAN's warm-up is front-loaded)
        budget = sum(critic_steps(recipe, s) for s in range(1, recipe.train.steps + 1))
        timed_critic = sum(critic_steps(recipe, s) for s in range(n + 1, 2 * n + 1)) / n
        seconds = per_step * budget / timed_critic
        total += seconds
        print(f"  {name}: {per_step * 1000:.2f} ms per G step; {recipe.train.steps:,} G steps "
              f"({budget:,} D steps) -> {seconds / 60:.1f} min of training")
    print(f"  all variants: {total / 3600:.2f} h of training per seed")


if __name__ == "__main__":
    main()
