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


# The headline numbers, what `dvc metrics show` prints: metrics/<variant>.json, one row per variant. (column, the
# metric it shows), in the order of the columns; a variant has the columns its task and data give. Every variant of
# one task and kind of data has the same columns, so `dvc exp show` names each `metrics/<variant>.json:<column>` and
# the README's comparison line can keep the FIDs and drop the rest (a column only one file had would be named bare);
# so a conditional variant's intra-FID and CAS, which the others lack, stay in its metrics.json and the report. `fid` is FID on the
# lab's classifier features (fid_classifier, which ranks variants, not comparable with papers), `fid_inception` on the
# standard FID network; precision, recall and coverage are on the classifier's features.
HEADLINE = (
    ("fid", "fid_classifier"), ("fid_inception", "fid_inception"), ("precision", "precision_classifier"),
    ("recall", "recall_classifier"), ("coverage", "coverage_classifier"), ("classes", "classes_covered"),
    ("modes", "modes_captured"), ("modes", "modes_covered"), ("high_quality", "high_quality_frac"),  # 2D, stacked
    ("reverse_kl", "reverse_kl"), ("mode_kl", "mode_kl"),
    ("l1", "l1"), ("psnr", "psnr"), ("ssim", "ssim"), ("accuracy", "accuracy"),              # task translate
    ("acc_ab", "accuracy_ab"), ("acc_ba", "accuracy_ba"), ("fid_ab", "fid_classifier_ab"),   # task cycle
    ("fid_ba", "fid_classifier_ba"),
    ("test_errors", "test_errors"), ("labels_only_errors", "labels_only_errors"),          # task semi
    ("nn_iou", "nearest_real_iou"), ("pair_iou", "pairwise_iou"),                         # task voxel
    ("class_acc", "class_accuracy"), ("thick_acc", "thickness_accuracy"),                 # task stack
    ("slant_acc", "slant_accuracy"),
)
HEADLINE_DIGITS = 4  # significant digits: the per-seed metrics.json files keep every digit


def headline(v: VariantRuns) -> dict[str, Any]:
    """metrics/<variant>.json: the variant's headline means over its evaluated seeds (`HEADLINE`), the 95% interval
    of the first of them (`<column>_low`, `<column>_high`, from 2 seeds on), how many seeds, and how many of them
    were still improving when training stopped."""
    summary = v.summary()
    shown = {}
    for column, metric in HEADLINE:
        stats = summary.get(metric)
        if column not in shown and stats and stats["mean"] is not None:
            shown[column] = stats
    out: dict[str, Any] = {"seeds": len(v.evaluated)}
    for i, (column, stats) in enumerate(shown.items()):
        out[column] = _round(stats["mean"])
        if i == 0 and stats["ci_low"] is not None:
            out[f"{column}_low"], out[f"{column}_high"] = _round(stats["ci_low"]), _round(stats["ci_high"])
    out["still_improving"] = v.still_improving
    return out


def _round(value: float) -> float | int:
    """4 significant digits; a whole number (a count of classes, modes or errors) as an integer."""
    return int(value) if float(value).is_integer() else float(f"{value:.{HEADLINE_DIGITS}g}")


COST_AXES = ("images_d", "images_seen", "seconds")  # what a check's row says of the cost so far: axes, not metrics


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def curves(variants: list[VariantRuns], losses: tuple[str, ...]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(axis, metric) -> every run's (variant, seed, axis value, value) rows, for `dvc plots`: the `losses` (and D's
    outputs) against generator steps, every training-time check (FID, classes or modes covered, ...) against
    generator steps and against seconds of training, so variants are compared at equal steps and at equal cost."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def add(axis: str, metric: str, run: RunResult, variant: str, rows: list[dict[str, Any]]) -> None:
        points = [{"variant": variant, "seed": run.seed, axis: r[axis], "value": r[metric]} for r in rows
                  if _number(r.get(metric)) and _number(r.get(axis))]
        if points:
            out.setdefault((axis, metric), []).extend(points)

    for v in variants:
        for run in v.runs:
            for metric in dict.fromkeys(k for r in run.log_rows for k in r if k in losses):
                add("step", metric, run, v.name, run.log_rows)
            for metric in dict.fromkeys(k for r in run.eval_rows for k in r if k not in ("step", *COST_AXES)):
                add("step", metric, run, v.name, run.eval_rows)
                add("seconds", metric, run, v.name, run.eval_rows)
    return out


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
