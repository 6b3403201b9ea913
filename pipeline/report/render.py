"""Gather every variant's runs (one per seed) and render reports/index.html, reports/report.md and
reports/summary.json (the aggregates over seeds, a DVC metrics file)."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipeline import paths
from pipeline.checkpoint import LOSS_CURVES
from pipeline.config import flatten
from pipeline.data import load_prepared
from pipeline.io import read_json
from pipeline.kinds import kind_of
from pipeline.figures import plots
from pipeline.report.aggregate import (
    HIDDEN,
    PairwiseTest,
    VariantRuns,
    direction,
    curves,
    gather,
    headline,
    judgement,
    pairwise,
    summary_file,
)
from pipeline.figures.kinds import report_note
from pipeline.variants import Lab, Variant

RESOLVED_KEYS = ("optimizer", "lr_g", "lr_d", "betas", "d_steps", "d_steps_warmup", "g_steps", "g_noise", "batch_size",
                 "steps", "pac", "unroll_steps", "label_smoothing", "ema", "spectral_norm", "updates", "z_dist",
                 "g_objective", "minibatch_discrimination", "minibatch_std", "historical_averaging")
METRICS_COLUMNS = 6  # variants a metrics table shows side by side: six "mean ± sd [interval]" cells fit 1,400 pixels
CURVES = ("fid_classifier", "classes_covered", "modes_captured", "modes_covered", "reverse_kl",  # shared-axes charts
          "test_error")


@dataclass
class VariantSection:
    name: str
    dataset: str
    overrides: dict[str, Any]
    runs: VariantRuns
    metrics: dict[str, dict[str, Any]]      # metric -> {mean, sd, ci_low, ci_high, n} over seeds
    shown_seed: int | None                  # the seed whose pictures are shown
    samples: str | None = None              # paths relative to reports/
    resolved: dict[str, Any] = field(default_factory=dict)  # what actually trained, defaults filled in
    notes: list[str] = field(default_factory=list)          # what resolution decided (dropped tricks)
    figures: dict[str, str] = field(default_factory=dict)
    latent: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {href, caption} or {unavailable}
    protocol: dict[str, dict[str, Any]] = field(default_factory=dict)  # features -> how its FID was measured
    task: str = "generate"                  # variants of different tasks are never ranked or tested against each other

    @property
    def missing(self) -> list[str]:
        return self.runs.missing

    @property
    def still_improving(self) -> str | None:
        k, n = self.runs.still_improving, len(self.runs.evaluated)
        return f"still improving ({k} of {n} seed{'s' if n > 1 else ''})" if k else None


def _rel(path: Path) -> str:
    return path.relative_to(paths.REPORTS).as_posix()


def _figure_href(path: Path) -> str:
    """Figures are written to a temporary directory first; the page always links figures/<name>."""
    return f"{paths.REPORT_FIGURES.name}/{path.name}"


def best_values(sections: list[VariantSection], columns: list[str]) -> dict[str, dict[str, float]]:
    """task -> the best mean over seeds in each column with a direction, among that task's variants (a
    translator's FID against true test images is not a generator's FID against the training set)."""
    best: dict[str, dict[str, float]] = {}
    for task in dict.fromkeys(s.task for s in sections):
        group = [s for s in sections if s.task == task]
        best[task] = {}
        for col in columns if len(group) > 1 else ():  # a task's lone variant is best at nothing
            sign = direction(col)
            values = [s.metrics[col]["mean"] for s in group if col in s.metrics and s.metrics[col]["mean"] is not None
                      and math.isfinite(s.metrics[col]["mean"])]
            if sign and values:
                best[task][col] = max(values) if sign > 0 else min(values)
    return best


def resolved_line(recipe: Any) -> dict[str, Any]:
    """What the variant trained with, as its section's "resolved" line: the loss, the architecture, the train keys
    that decide training (those of another task left out: no `pac` for a semi variant) and the task's own keys
    outside the train section (its section, its data keys, `conditional`)."""
    from pipeline.config import lookup
    from pipeline.tasks import TASKS, task_keys

    others = {key for key, (owners, _) in task_keys().items() if recipe.task not in owners}
    out = {"loss": recipe.loss, "arch": recipe.arch,
           **{k: getattr(recipe.train, k) for k in RESOLVED_KEYS if f"train.{k}" not in others}}
    for key in TASKS.get(recipe.task).keys:
        if not key.startswith("train."):  # its section's keys and data keys; the train keys that matter are above
            out[key] = lookup(recipe, key)
    return out


def variant_section(variant: Variant, seeds: tuple[int, ...], figures_dir: Path) -> VariantSection:
    name, recipe = variant.name, variant.recipe
    runs = gather(name, seeds)
    resolved = resolved_line(recipe)
    shown = runs.runs[0].seed if runs.runs else seeds[0]
    section = VariantSection(name, recipe.dataset, flatten(variant.overrides), runs, runs.summary(), shown,
                             resolved=resolved, notes=list(variant.notes), task=recipe.task)
    first = paths.run_name(name, shown)
    section.protocol = runs.evaluated[0].protocol if runs.evaluated else {}
    if paths.samples_png(first).exists():
        section.samples = _rel(paths.samples_png(first))
    section.latent = latent_entries(first)
    logs, evals = [r.log_rows for r in runs.runs], [r.eval_rows for r in runs.runs]
    wanted = {
        "losses": (logs, ["loss_d", "loss_g"], "generator and discriminator loss"),
        "outputs": (logs, ["d_real", "d_fake", "wasserstein", "gradient_penalty"], "D(x), D(G(z)), critic terms"),
        "modes": (evals, ["classes_covered", "modes_captured", "modes_covered"], "modes covered during training"),
        "kl": (evals, ["class_kl", "reverse_kl", "mode_kl", "high_quality_frac"], "KL / quality during training"),
    }
    for key, (rows, keys, title) in wanted.items():
        out = figures_dir / f"{name}_{key}.png"
        if plots.runs_plot(rows, keys, f"{name}: {title}", out):
            section.figures[key] = _figure_href(out)
    if paths.class_hist_path(first).exists():
        out = figures_dir / f"{name}_hist.png"
        if plots.histogram_plot(read_json(paths.class_hist_path(first)), f"{name} (seed {shown}): class histogram", out):
            section.figures["hist"] = _figure_href(out)
    return section


def latent_entries(run: str) -> dict[str, dict[str, Any]]:
    """The sample stage's latent pictures, with captions; reasons where a picture does not apply."""
    index_path = paths.latent_dir(run) / "index.json"
    if not index_path.exists():
        return {}
    entries = {}
    for key, entry in read_json(index_path).items():
        if "file" not in entry:
            entries[key] = {"unavailable": entry.get("unavailable", "not drawn")}
            continue
        caption = latent_caption(key, entry)
        entries[key] = {"href": _rel(paths.latent_dir(run) / entry["file"]), "caption": caption}
    return entries


def latent_caption(key: str, entry: dict[str, Any]) -> str:
    if key == "interpolation":
        return f"{entry['mode']} interpolation between random latent points (one walk per row)"
    if key == "direction":
        return (f"walking z along the classifier's gradient for class {entry['target_name']} "
                f"(0 to {entry['strength']:g} latent units, left to right)")
    if key == "entanglement":
        return (f"feature entanglement: mean class probabilities along that walk; the other classes that move "
                f"with {entry['target_name']} are entangled with it")
    if key == "stages":
        return (f"StackGAN: Stage I's 14x14 digits (upscaled, top) and the Stage-II 28x28 digits made from them "
                f"(below), for {entry['count']} held-out digits' descriptions")
    if key == "growth":
        sides = " -> ".join(f"{r}x{r}" for r in entry["resolutions"])
        return (f"progressive growing ({sides}): the same latent points through the trained G at each resolution, "
                f"coarsest on top; the coarser rows use toRGB layers as they were when their resolution faded out")
    if key == "projection":
        worst = entry.get("projection_worst_classes")
        return (f"real test images projected into the latent space (iGAN): the {entry['images']} images' mean pixel "
                f"MSE is {entry['projection_mse']:.3f}; the worst reconstructed shown, real above, G's closest "
                "below" + (f"; worst classes: {', '.join(worst)}" if worst else "") + ". What G cannot reach "
                "is what it dropped")
    a, b, c = entry["concepts"]
    return (f"latent vector arithmetic: G(mean z[{a}] \u2212 mean z[{b}] + mean z[{c}]); the classifier reads the "
            f"results as {', '.join(entry['result_classes'])}")


@dataclass
class Comparison:
    """A published table beside the lab's numbers for the variants it names."""

    name: str
    source: str
    protocol: str
    reduced: str | None                    # how the lab's settings differ (None: the published ones)
    columns: dict[str, str]
    rows: list[dict[str, Any]]             # {"variant", "lab": {key: summary}, "published": {key: value}}


def comparisons(lab: Lab, sections: list[VariantSection]) -> list[Comparison]:
    """`report.compare_with` tables, one row per variant the table names: the lab's mean (and sd) over
    seeds beside the published value, in the paper's units."""
    from pipeline.report.published import PUBLISHED

    by_name = {s.name: s for s in sections}
    out = []
    for name in lab.params.report.compare_with:
        table = PUBLISHED.get(name, "report.compare_with")
        rows = []
        for variant, published in table.rows.items():
            if variant not in by_name:
                continue
            scale = {k: 100.0 if k in table.percent else 1.0 for k in table.columns}
            lab_values = {k: _scaled(by_name[variant].metrics.get(k), scale[k]) for k in table.columns}
            rows.append({"variant": variant, "lab": lab_values, "published": published,
                         "seeds": len(by_name[variant].runs.evaluated)})
        out.append(Comparison(name, table.source, table.protocol, lab.params.report.reduced, table.columns, rows))
    return out


def _scaled(summary: dict[str, Any] | None, scale: float) -> dict[str, Any] | None:
    if not summary or summary["mean"] is None:
        return None
    return {k: (v * scale if isinstance(v, float) and k != "n" else v) for k, v in summary.items()}


@dataclass(frozen=True)
class Rendered:
    """What the report stage writes: the page, its Markdown twin, reports/summary.json (every metric over seeds)
    and each variant's headline numbers (metrics/<variant>.json, what `dvc metrics show` prints)."""

    html: str
    markdown: str
    summary: dict[str, Any]
    headline: dict[str, dict[str, Any]]
    curves: dict[tuple[str, str], list[dict[str, Any]]]  # (axis, metric) -> every run's points, for `dvc plots`


def render(lab: Lab, figures_dir: Path = paths.REPORT_FIGURES) -> Rendered:
    """The report of every variant's runs; figures are written into `figures_dir` (inside reports/)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    sections = [variant_section(variant, lab.seeds, figures_dir) for variant in lab.variants.values()]
    columns = list(dict.fromkeys(k for s in sections for k in s.metrics if not k.startswith(HIDDEN)))
    tests = [t for task in dict.fromkeys(s.task for s in sections)  # within a task: the same protocol
             for t in pairwise([s.runs for s in sections if s.task == task], columns)]
    env = Environment(loader=PackageLoader("pipeline.report", "templates"), autoescape=select_autoescape(("html", "html.j2")))
    env.filters["fmt"] = _fmt
    env.filters["stat"] = _stat
    env.filters["img"] = lambda href: embed_image(href, figures_dir)
    context = dict(
        title=lab.params.report.title, sections=sections, columns=columns, best=best_values(sections, columns),
        variant_chunks=_chunks(sections, columns),
        chunk_size=METRICS_COLUMNS,
        inception=any(k.endswith("_inception") for s in sections for k in s.metrics), seeds=list(lab.seeds),
        protocols=[(s.name, p) for s in sections for p in s.protocol.values()], comparisons=comparisons(lab, sections),
        judgement=judgement([s.runs for s in sections]), differences=_differences(tests), direction=direction,
        shared=_shared_figures(sections, figures_dir), recipe=flatten(lab.params.recipe),
        classifier=read_json(paths.CLASSIFIER_METRICS) if paths.CLASSIFIER_METRICS.exists() else {},
        features={n: v.recipe.eval.features for n, v in lab.variants.items()},
        translations=translation_figures(lab, sections, figures_dir), **_datasets(lab, figures_dir))
    return Rendered(env.get_template("index.html.j2").render(**context), env.get_template("report.md.j2").render(**context),
                    summary_file([s.runs for s in sections]), {s.name: headline(s.runs) for s in sections},
                    curves([s.runs for s in sections], LOSS_CURVES))


def _chunks(sections: list[VariantSection], columns: list[str]) -> list[tuple[list[VariantSection], list[str]]]:
    """The metrics tables: `METRICS_COLUMNS` variants a table, with the metrics those variants have."""
    out = []
    for i in range(0, len(sections), METRICS_COLUMNS):
        chunk = sections[i:i + METRICS_COLUMNS]
        out.append((chunk, [c for c in columns if any(c in s.metrics for s in chunk)]))
    return out


def _datasets(lab: Lab, figures_dir: Path) -> dict[str, dict[str, str]]:
    """Each dataset's real-image grid and the caveat its kind prints beside every variant."""
    real_grids, dataset_notes = {}, {}
    for dataset in lab.datasets():
        prepared = load_prepared(dataset)
        kind = kind_of(prepared)
        note = report_note(kind.name, prepared)
        if note:
            dataset_notes[dataset] = note
        if kind.images:
            out = figures_dir / f"real_{dataset}.png"
            plots.save_real_grid(prepared, 8, out)
            real_grids[dataset] = _figure_href(out)
    return {"real_grids": real_grids, "dataset_notes": dataset_notes}


def _shared_figures(sections: list[VariantSection], figures_dir: Path) -> dict[str, str]:
    """FID and mode curves of every variant on shared axes (steps, images seen by D, seconds)."""
    out = {}
    runs = {s.name: [r.eval_rows for r in s.runs.runs] for s in sections}
    for key in CURVES:
        path = figures_dir / f"shared_{key}.png"
        if plots.shared_axes_plot(runs, key, path, log_y=key.startswith("fid")):
            out[key] = _figure_href(path)
    return out


def translation_figures(lab: Lab, sections: list[VariantSection], figures_dir: Path) -> list[dict[str, Any]]:
    """Task translate: per (dataset, problem), the same test inputs through every variant side by side,
    input | each variant's output | truth (the course's point: an L1 model blurs, L1 + GAN commits)."""
    from pipeline.images import from_uint8, save_png
    from pipeline.io import load_torch
    from pipeline.tasks.translate.problems import PROBLEMS, comparison_grid
    from pipeline.tasks.translate.task import SHOWN_FILE

    groups: dict[tuple[str, str], list[tuple[str, Path]]] = {}
    for section in sections:
        recipe = lab.variants[section.name].recipe
        shown = paths.latent_dir(paths.run_name(section.name, section.shown_seed)) / SHOWN_FILE
        if recipe.task == "translate" and shown.exists():
            groups.setdefault((recipe.dataset, recipe.data.translate), []).append((section.name, shown))
    figures = []
    for (dataset, problem), members in groups.items():
        outputs = torch.stack([from_uint8(load_torch(path)["outputs"]) for _, path in members])
        targets = load_prepared(dataset).x_test[:outputs.shape[1]]
        out = figures_dir / f"translate_{dataset}_{problem}.png"
        save_png(comparison_grid(PROBLEMS.get(problem).degrade(targets), outputs, targets), out)
        figures.append({"dataset": dataset, "problem": PROBLEMS.get(problem).description, "href": _figure_href(out),
                        "columns": ["input", *[name for name, _ in members], "truth"]})
    return figures


def _differences(tests: list[PairwiseTest]) -> dict[str, list[PairwiseTest]]:
    """metric -> its pairwise tests (only metrics where at least one pair could be tested)."""
    out: dict[str, list[PairwiseTest]] = {}
    for test in tests:
        out.setdefault(test.metric, []).append(test)
    return {k: v for k, v in out.items() if any(t.p is not None for t in v)}


def embed_image(href: str, figures_dir: Path) -> str:
    """A PNG as a data: URI, so the page is one self-contained file: it opens the same from the
    file system, from a copy elsewhere and from MLflow's artifact viewer."""
    prefix = f"{paths.REPORT_FIGURES.name}/"
    path = figures_dir / href[len(prefix):] if href.startswith(prefix) else paths.REPORTS / href
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _stat(summary: dict[str, Any] | None, interval: bool = True) -> str:
    """mean ± sd [95% interval] over seeds; a lone seed: its value."""
    if not summary or summary.get("mean") is None:
        return "—"
    text = _fmt(summary["mean"])
    if summary.get("sd") is not None:
        text += f" ± {summary['sd']:.2g}"
        if interval:
            text += f" [{_fmt(summary['ci_low'])}, {_fmt(summary['ci_high'])}]"
    return text
