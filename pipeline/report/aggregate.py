"""Every variant's runs (one per seed) gathered from disk and summarised over seeds: what the report,
reports/summary.json and `dvc exp show` say about a variant, and which variants differ beyond the
seed-to-seed spread."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from pipeline import paths
from pipeline.checkpoint import read_table
from pipeline.io import read_json
from pipeline.stats import ALPHA, permutation_test, smallest_p, summarize

# direction of "better" for each metric (a prefix match: fid_classifier -> fid)
LOWER_IS_BETTER = ("fid", "intra_fid", "kid_mean", "class_kl", "reverse_kl", "mode_kl", "l1", "cycle_l1", "projection_mse",
                   "test_error")
HIGHER_IS_BETTER = ("precision", "recall", "density", "coverage", "classes_covered", "modes_captured",
                    "modes_covered", "high_quality_frac", "cas", "psnr", "ssim", "accuracy")
# context, not a comparison (translate, cycle: the classifier's accuracy on the inputs, the true images, the
# untranslated images)
HIDDEN = ("n_samples", "kid_std", "cas_real", "diversity_ssim_real", "n_inputs", "accuracy_input", "accuracy_real",
          "n_a", "n_b", "accuracy_ab_untranslated", "accuracy_ba_untranslated", "n_test", "n_labels")


def direction(metric: str) -> int:
    """-1: lower is better, +1: higher is better, 0: neither."""
    if metric.startswith(LOWER_IS_BETTER):
        return -1
    if metric.startswith(HIGHER_IS_BETTER):
        return 1
    return 0


@dataclass
class RunResult:
    """What one (variant, seed) left on disk."""

    seed: int
    metrics: dict[str, Any]
    protocol: dict[str, Any]
    training: dict[str, Any]                 # training.json: precision, device, update counts, convergence
    log_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]


@dataclass
class VariantRuns:
    name: str
    runs: list[RunResult]                              # the seeds that trained (evaluated or not)
    missing: list[str] = field(default_factory=list)   # seeds not trained or not evaluated yet

    @property
    def evaluated(self) -> list[RunResult]:
        return [r for r in self.runs if r.metrics]

    @property
    def seeds(self) -> list[int]:
        """The evaluated seeds: what every number on the page is over."""
        return [r.seed for r in self.evaluated]

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.evaluated
                if isinstance(r.metrics.get(metric), (int, float)) and math.isfinite(r.metrics[metric])]

    def summary(self) -> dict[str, dict[str, Any]]:
        """metric -> {mean, sd, ci_low, ci_high, n} over seeds, for every numeric metric."""
        keys = dict.fromkeys(k for r in self.evaluated for k, v in r.metrics.items() if isinstance(v, (int, float)))
        return {k: summarize(self.values(k)) for k in keys}

    @property
    def still_improving(self) -> int:
        """Evaluated seeds whose FID fell by more than 10% over the last quarter of training."""
        return sum(bool(r.training.get("still_improving")) for r in self.evaluated)


def gather(variant: str, seeds: tuple[int, ...] | list[int]) -> VariantRuns:
    runs, missing = [], []
    for seed in seeds:
        run = paths.run_name(variant, seed)
        trained, evaluated = paths.train_log_path(run).exists(), paths.metrics_path(run).exists()
        if not trained and not evaluated:
            missing.append(f"seed {seed}: not trained yet")
            continue
        if not evaluated:
            missing.append(f"seed {seed}: metrics (evaluate stage has not run)")
        optional = lambda path: read_json(path) if path.exists() else {}  # noqa: E731
        runs.append(RunResult(seed, optional(paths.metrics_path(run)), optional(paths.fid_protocol_path(run)),
                              optional(paths.training_summary_path(run)), read_table(paths.train_log_path(run)),
                              read_table(paths.train_eval_path(run))))
    return VariantRuns(variant, runs, missing)


def summary_file(variants: list[VariantRuns]) -> dict[str, Any]:
    """reports/summary.json: per variant, each metric's mean, sd, 95% interval and seed count."""
    out: dict[str, Any] = {}
    for v in variants:
        out[v.name] = {k: s for k, s in v.summary().items() if not k.startswith(HIDDEN)}
        out[v.name]["seeds"] = len(v.evaluated)
        out[v.name]["still_improving_seeds"] = v.still_improving
    return out


@dataclass
class PairwiseTest:
    metric: str
    a: str
    b: str
    mean_a: float
    mean_b: float
    p: float | None                    # None: fewer than 2 seeds on a side
    differs: bool


def pairwise(variants: list[VariantRuns], metrics: list[str]) -> list[PairwiseTest]:
    """Two-sided permutation tests over seeds for every pair of variants and every metric with a
    direction: a pair differs when p < 0.05."""
    out = []
    for metric in metrics:
        if not direction(metric):
            continue
        for a, b in itertools.combinations(variants, 2):
            va, vb = a.values(metric), b.values(metric)
            if not va or not vb:
                continue
            p = permutation_test(va, vb)
            out.append(PairwiseTest(metric, a.name, b.name, sum(va) / len(va), sum(vb) / len(vb), p,
                                    p is not None and p < ALPHA))
    return out


def judgement(variants: list[VariantRuns]) -> str:
    """What the seeds allow the reader to conclude, in one sentence."""
    counts = [len(v.evaluated) for v in variants if v.evaluated]
    if not counts:
        return "No variant has been evaluated yet."
    fewest = min(counts)
    if fewest < 2:
        return ("One seed per variant: these numbers are demonstrations, and differences between variants cannot be "
                "judged. Run `dvc exp run -S 'seeds=[0,1,2,3,4]'` for intervals and tests.")
    floor = smallest_p(fewest, fewest)
    text = (f"{fewest} seeds per variant (at least): intervals are 95% bootstrap intervals of the mean over seeds; "
            f"two variants differ on a metric when a two-sided permutation test over their seeds gives p < {ALPHA}.")
    if floor >= ALPHA:
        text += (f" With {fewest} seeds a side the smallest p-value possible is {floor:.2g}, so no difference can "
                 f"reach that level: use 5 seeds or more.")
    return text
