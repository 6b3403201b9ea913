"""Gather every variant's outputs and render reports/index.html and reports/report.md."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.checkpoint import read_table
from pipeline.config import flatten
from pipeline.data import load_prepared
from pipeline.io import read_json
from pipeline.kinds import kind_of
from pipeline.report import plots
from pipeline.variants import Lab, Variant

# direction of "better" for each metric (a prefix match: fid_classifier -> fid)
LOWER_IS_BETTER = ("fid", "intra_fid", "kid_mean", "class_kl", "reverse_kl", "mode_kl")
HIGHER_IS_BETTER = ("precision", "recall", "classes_covered", "modes_captured", "modes_covered", "high_quality_frac")
HIDDEN_COLUMNS = ("n_samples", "kid_std")


@dataclass
class VariantSection:
    name: str
    dataset: str
    overrides: dict[str, Any]
    metrics: dict[str, Any]
    samples: str | None                    # paths relative to reports/
    resolved: dict[str, Any] = field(default_factory=dict)  # what actually trained, defaults filled in
    notes: list[str] = field(default_factory=list)          # what resolution decided (dropped tricks)
    figures: dict[str, str] = field(default_factory=dict)
    latent: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {href, caption} or {unavailable}
    missing: list[str] = field(default_factory=list)
    protocol: dict[str, dict[str, Any]] = field(default_factory=dict)  # features -> how its FID was measured


def _rel(path: Path) -> str:
    return path.relative_to(paths.REPORTS).as_posix()


def _figure_href(path: Path) -> str:
    """Figures are written to a temporary directory first; the page always links figures/<name>."""
    return f"{paths.REPORT_FIGURES.name}/{path.name}"


def direction(metric: str) -> int:
    """-1: lower is better, +1: higher is better, 0: neither."""
    if metric.startswith(LOWER_IS_BETTER):
        return -1
    if metric.startswith(HIGHER_IS_BETTER):
        return 1
    return 0


def best_values(sections: list[VariantSection], columns: list[str]) -> dict[str, float]:
    best: dict[str, float] = {}
    for col in columns:
        sign = direction(col)
        values = [s.metrics[col] for s in sections if isinstance(s.metrics.get(col), (int, float))
                  and math.isfinite(s.metrics[col])]
        if sign and values:
            best[col] = max(values) if sign > 0 else min(values)
    return best


RESOLVED_KEYS = ("optimizer", "lr_g", "lr_d", "betas", "d_steps", "batch_size", "steps", "pac", "unroll_steps",
                 "label_smoothing", "ema", "spectral_norm")


def variant_section(variant: Variant, figures_dir: Path) -> VariantSection:
    name, recipe, t = variant.name, variant.recipe, variant.recipe.train
    resolved = {"loss": recipe.loss, "arch": recipe.arch, **{k: getattr(t, k) for k in RESOLVED_KEYS}}
    section = VariantSection(name, recipe.dataset, flatten(variant.overrides), {}, None, resolved, list(variant.notes))
    if paths.metrics_path(name).exists():
        section.metrics = read_json(paths.metrics_path(name))
    else:
        section.missing.append("metrics (evaluate stage has not run)")
    if paths.fid_protocol_path(name).exists():
        section.protocol = read_json(paths.fid_protocol_path(name))
    if paths.samples_png(name).exists():
        section.samples = _rel(paths.samples_png(name))
    section.latent = latent_entries(name)
    log, evals = read_table(paths.train_log_path(name)), read_table(paths.train_eval_path(name))
    wanted = {
        "losses": (log, ["loss_d", "loss_g"], "generator and discriminator loss"),
        "outputs": (log, ["d_real", "d_fake", "wasserstein", "gradient_penalty"], "D(x), D(G(z)), critic terms"),
        "modes": (evals, ["classes_covered", "modes_captured", "modes_covered"], "modes covered during training"),
        "kl": (evals, ["class_kl", "reverse_kl", "mode_kl", "high_quality_frac"], "KL / quality during training"),
    }
    for key, (rows, keys, title) in wanted.items():
        out = figures_dir / f"{name}_{key}.png"
        if plots.line_plot(rows, keys, f"{name}: {title}", out):
            section.figures[key] = _figure_href(out)
    if paths.class_hist_path(name).exists():
        out = figures_dir / f"{name}_hist.png"
        if plots.histogram_plot(read_json(paths.class_hist_path(name)), f"{name}: class histogram", out):
            section.figures["hist"] = _figure_href(out)
    return section


def latent_entries(name: str) -> dict[str, dict[str, Any]]:
    """The sample stage's latent pictures, with captions; reasons where a picture does not apply."""
    index_path = paths.latent_dir(name) / "index.json"
    if not index_path.exists():
        return {}
    entries = {}
    for key, entry in read_json(index_path).items():
        if "file" not in entry:
            entries[key] = {"unavailable": entry.get("unavailable", "not drawn")}
            continue
        caption = latent_caption(key, entry)
        entries[key] = {"href": _rel(paths.latent_dir(name) / entry["file"]), "caption": caption}
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
    rows: list[dict[str, Any]]             # {"variant", "lab": {key: value}, "published": {key: value}}


def comparisons(lab: Lab, sections: list[VariantSection]) -> list[Comparison]:
    """`report.compare_with` tables, one row per variant the table names (values in the paper's units)."""
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
            metrics = by_name[variant].metrics
            lab_values = {k: metrics[k] * scale[k] if isinstance(metrics.get(k), (int, float)) else None
                          for k in table.columns}
            rows.append({"variant": variant, "lab": lab_values, "published": published})
        out.append(Comparison(name, table.source, table.protocol, lab.params.report.reduced, table.columns, rows))
    return out


def render(lab: Lab, figures_dir: Path = paths.REPORT_FIGURES) -> tuple[str, str]:
    """Return (html, markdown); figures are written into `figures_dir` (inside reports/)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    sections = [variant_section(variant, figures_dir) for variant in lab.variants.values()]
    columns = sorted({k for s in sections for k in s.metrics if not k.startswith(HIDDEN_COLUMNS)})
    real_grids, dataset_notes = {}, {}
    for dataset in lab.datasets():
        prepared = load_prepared(dataset)
        kind = kind_of(prepared)
        if kind.report_note(prepared):
            dataset_notes[dataset] = kind.report_note(prepared)
        if kind.images:
            out = figures_dir / f"real_{dataset}.png"
            plots.save_real_grid(prepared, 8, out)
            real_grids[dataset] = _figure_href(out)
    classifier = read_json(paths.CLASSIFIER_METRICS) if paths.CLASSIFIER_METRICS.exists() else {}
    env = Environment(loader=PackageLoader("pipeline.report", "templates"), autoescape=select_autoescape(("html", "html.j2")))
    env.filters["fmt"] = _fmt
    env.filters["img"] = lambda href: embed_image(href, figures_dir)
    inception = any(k.endswith("_inception") for s in sections for k in s.metrics)
    protocols = [(s.name, p) for s in sections for p in s.protocol.values()]
    context = dict(title=lab.params.report.title, sections=sections, columns=columns, protocols=protocols,
                   comparisons=comparisons(lab, sections),
                   best=best_values(sections, columns), inception=inception, recipe=flatten(lab.params.recipe),
                   real_grids=real_grids, classifier=classifier, dataset_notes=dataset_notes,
                   features={n: v.recipe.eval.features for n, v in lab.variants.items()}, direction=direction)
    return env.get_template("index.html.j2").render(**context), env.get_template("report.md.j2").render(**context)


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
