"""A variant's evaluation with an empty feature cache, then again with the cache it left, side by
side in one process (imports excluded: both pay them once). Run after `dvc repro`:

    python benchmarks/reevaluate.py [--variant dcgan] [--repeats 2]

The first evaluation computes the real set's classifier features (once for every variant), the
generated set's, and the classifier's labels; the second finds all three in the cache (keyed by the
exact contents of each set and the classifier's weights), as a re-run of the evaluate stage after
an eval-only change does.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import paths  # noqa: E402
from pipeline.checkpoint import load_dataset_classifier, load_generated  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.data import load_prepared  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_samples  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="dcgan")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    recipe = load_params("params.yaml").merged(args.variant)
    prepared = load_prepared(recipe.dataset)
    generated = load_generated(paths.generated_path(paths.run_name(args.variant, recipe.seed)))
    classifier = load_dataset_classifier(recipe.dataset)
    classifier_path = paths.classifier_path(recipe.dataset)

    def evaluate(cache: Path) -> tuple[float, dict]:
        start = time.perf_counter()
        metrics = evaluate_samples(generated.samples, recipe, prepared, classifier_path, classifier,
                                   sample_labels=generated.labels, cache_root=cache).metrics
        return time.perf_counter() - start, metrics

    evaluate(Path(tempfile.mkdtemp()))  # warm-up: lazy imports, allocator
    cold, warm = [], []
    for _ in range(args.repeats):
        cache = Path(tempfile.mkdtemp())
        seconds, first = evaluate(cache)
        cold.append(seconds)
        seconds, second = evaluate(cache)
        warm.append(seconds)
        assert first == second, "the cached evaluation must give the same metrics"
        shutil.rmtree(cache)
    print(f"evaluate {args.variant} ({len(generated.samples)} samples, {recipe.dataset}): empty cache "
          f"{min(cold):.2f} s, with the cache {min(warm):.2f} s, {min(cold) / min(warm):.2f}x faster; metrics identical")


if __name__ == "__main__":
    main()
