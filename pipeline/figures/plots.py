"""Figures for the sample stage and the report (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from pipeline.data import Prepared
from pipeline.errors import GanLabError
from pipeline.images import image_grid, save_png
from pipeline.io import atomic_path, write_json
from pipeline.latent import (
    Arithmetic,
    direction_profile,
    feature_direction,
    interpolation_strip,
    latent_arithmetic,
    walk_strip,
)

if TYPE_CHECKING:
    from pipeline.models import ModelSpec


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def save_real_grid(prepared: Prepared, grid: int, path: Path) -> None:
    save_png(image_grid(prepared.x_train[: grid * grid], grid), path)


def scatter_points(samples: torch.Tensor, prepared: Prepared, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    real = prepared.x_train[:2500]
    ax.scatter(real[:, 0], real[:, 1], s=4, c="#bbbbbb", label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=4, c="#d62728", alpha=0.6, label="generated")
    modes = prepared.modes
    ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="black", s=40, label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    _save(fig, path)


X_LABELS = {"step": "generator steps", "images_d": "real images seen by D", "seconds": "training seconds"}


def _aligned(runs: list[list[dict[str, Any]]], key: str, x: str) -> tuple[list[float], list[list[float]]] | None:
    """The steps every run logged `key` at, x as the mean over runs at each such step, and each
    run's values there: runs of one variant share steps, so seeds line up step by step."""
    tables = [{r["step"]: r for r in rows if r.get(key) is not None and r.get(x) is not None} for rows in runs]
    tables = [t for t in tables if t]
    if not tables:
        return None
    steps = sorted(set.intersection(*(set(t) for t in tables)))
    if not steps:
        return None
    xs = [sum(t[s][x] for t in tables) / len(tables) for s in steps]
    return xs, [[t[s][key] for s in steps] for t in tables]


def _band(ax, xs: list[float], ys: list[list[float]], label: str, **style) -> None:
    """The mean over seeds as a line, min to max as a shaded band (a lone seed: just its line)."""
    import numpy as np

    values = np.asarray(ys, dtype=float)
    line = ax.plot(xs, values.mean(axis=0), label=f"{label} ({len(ys)} seed{'s' if len(ys) > 1 else ''})",
                   linewidth=1.4, **style)
    if len(ys) > 1:
        ax.fill_between(xs, values.min(axis=0), values.max(axis=0), alpha=0.2, color=line[0].get_color(), linewidth=0)


def runs_plot(runs: list[list[dict[str, Any]]], keys: list[str], title: str, path: Path, ylabel: str = "") -> bool:
    """One variant: each of `keys` over generator steps, mean over seeds with a min-max band; False
    (nothing written) when no key has data."""
    curves = {k: _aligned(runs, k, "step") for k in keys}
    curves = {k: c for k, c in curves.items() if c is not None}
    if not curves:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for key, (xs, ys) in curves.items():
        _band(ax, xs, ys, key)
    ax.set_xlabel(X_LABELS["step"])
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def shared_axes_plot(variants: dict[str, list[list[dict[str, Any]]]], key: str, path: Path, log_y: bool = False) -> bool:
    """Every variant's `key` on shared axes, against generator steps, real images seen by D and
    training seconds (three panels), mean over seeds with a min-max band: compared at equal cost, a
    critic with 5 steps per G step and a cheap MLP sit side by side honestly."""
    panels = {x: {name: _aligned(runs, key, x) for name, runs in variants.items()} for x in X_LABELS}
    if not any(c for curves in panels.values() for c in curves.values()):
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), sharey=True)
    for ax, (x, curves) in zip(axes, panels.items()):
        for name, curve in curves.items():
            if curve is not None:
                _band(ax, *curve, name)
        ax.set_xlabel(X_LABELS[x])
        ax.grid(alpha=0.3)
        if log_y:
            ax.set_yscale("log")
    axes[0].set_ylabel(key)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{key} during training, every variant", fontsize=10)
    _save(fig, path)
    return True


def histogram_plot(hist: dict[str, Any], title: str, path: Path) -> bool:
    """Generated vs real class shares, side by side: a collapsed generator shows tall lone bars."""
    if not hist.get("generated"):
        return False
    plt = _plt()
    names, gen, real = hist["class_names"], hist["generated"], hist["real"]
    gen_share = [g / max(1, sum(gen)) for g in gen]
    real_share = [r / max(1, sum(real)) for r in real]
    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    if len(names) > 50:  # stacked MNIST: 1000 modes, shares sorted so missing modes show as a tail at 0
        ax.plot(sorted(real_share, reverse=True), label="real", color="#999999")
        ax.plot(sorted(gen_share, reverse=True), label="generated", color="#1f77b4")
        ax.set_xlabel("modes, most to least frequent")
        ax.set_ylabel("share of samples")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
        _save(fig, path)
        return True
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], real_share, width=0.4, label="real", color="#999999")
    ax.bar([x + 0.2 for x in xs], gen_share, width=0.4, label="generated", color="#1f77b4")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, fontsize=7, rotation=45 if len(names) > 10 else 0)
    ax.set_ylabel("share of samples")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def _show(ax, images: torch.Tensor, nrow: int, title: str) -> None:
    grid = image_grid(images, nrow).permute(1, 2, 0).numpy()
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def arithmetic_figure(result: Arithmetic, class_names: list[str], path: Path) -> None:
    """Each concept's exemplars and G(mean z) on top; G(A - B + C) below, with the classifier's reading."""
    plt = _plt()
    fig = plt.figure(figsize=(7.5, 3.4))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.1])
    a, b, c = (class_names[k] for k in result.concepts)
    for i, (sign, name) in enumerate((("", a), ("− ", b), ("+ ", c))):
        images = torch.cat([result.exemplars[i], result.means[i:i + 1]])
        _show(fig.add_subplot(grid[0, i]), images, len(images), f"{sign}{name}: exemplars | G(mean z)")
    read = " ".join(class_names[k] for k in result.result_classes.tolist())
    _show(fig.add_subplot(grid[1, :]), result.results, len(result.results),
          f"G(z[{a}] − z[{b}] + z[{c}]) and 7 neighbours (noise 0.25); classifier reads: {read}")
    _save(fig, path)


def entanglement_plot(alphas: torch.Tensor, probs: torch.Tensor, target: int, class_names: list[str],
                      path: Path) -> None:
    """Mean class probabilities along the walk: the target rises; which others move with it?"""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    shown = list(range(probs.shape[1]))
    if len(shown) > 12:  # stacked MNIST's 1000 modes: the target and the five that move most
        movement = (probs[-1] - probs[0]).abs()
        movement[target] = -1
        shown = [target, *movement.topk(5).indices.tolist()]
    for k in shown:
        ax.plot(alphas, probs[:, k], linewidth=2.5 if k == target else 1.0, label=class_names[k],
                linestyle="-" if k == target else "--")
    ax.set_xlabel("step along the direction (latent norm units)")
    ax.set_ylabel("mean class probability")
    ax.set_title(f"entanglement along the direction for class {class_names[target]}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    _save(fig, path)


def save_latent_figures(generator: nn.Module, spec: "ModelSpec", prepared: Prepared, classifier: nn.Module | None,
                        mode: str, target: int, concepts: tuple[int, int, int], grid: int, seed: int,
                        out_dir: Path, samples: int) -> dict[str, Any]:
    """Latent-space pictures into `out_dir`; returns the index (what was drawn, or why not). `samples`: how
    many G samples the arithmetic searches for its concepts (the class direction and its profile: up to 256)."""
    if not spec.images:
        reason = "2D point data: see the scatter plot instead"
        return {key: {"unavailable": reason} for key in ("interpolation", "direction", "entanglement", "arithmetic")}
    z_dim, num_classes = spec.z_dim, spec.num_classes
    index: dict[str, Any] = {}
    strip = interpolation_strip(generator, z_dim, num_classes, rows=4, steps=grid + 2, mode=mode, seed=seed)
    save_png(image_grid(strip, grid + 2), out_dir / "interpolation.png")
    index["interpolation"] = {"file": "interpolation.png", "mode": mode, "rows": 4, "steps": grid + 2}
    reason = None
    if num_classes:
        reason = "conditional model: the class grid shows controllable generation"
    elif classifier is None:
        reason = "no classifier for this dataset"
    elif not 0 <= target < classifier.num_classes:
        reason = f"sample.direction_class {target} is not a class (0..{classifier.num_classes - 1})"
    if reason:
        index["direction"] = index["entanglement"] = {"unavailable": reason}
    else:
        per_step = min(256, samples)  # latents for the direction's gradient and each step of its profile
        direction = feature_direction(generator, classifier, z_dim, target, n=per_step, seed=seed)
        walk = walk_strip(generator, z_dim, direction, rows=4, steps=grid + 1, strength=3.0, seed=seed)
        save_png(image_grid(walk, grid + 1), out_dir / "direction.png")
        names = prepared.info["class_names"]
        index["direction"] = {"file": "direction.png", "target": target, "target_name": names[target], "strength": 3.0}
        alphas, probs = direction_profile(generator, classifier, z_dim, direction, n=per_step,
                                          steps=grid + 1, strength=3.0, seed=seed)
        entanglement_plot(alphas, probs, target, names, out_dir / "entanglement.png")
        index["entanglement"] = {"file": "entanglement.png", "target_name": names[target], "alphas": alphas.tolist(),
                                 "probabilities": probs.tolist()}
    index["arithmetic"] = _arithmetic(generator, classifier, z_dim, num_classes, concepts, prepared, seed, out_dir,
                                      samples)
    return index


def save_projection(generator: nn.Module, spec: "ModelSpec", prepared: Prepared, classifier: nn.Module | None,
                    sample: Any, seed: int, out_dir: Path, shown: int = 8) -> dict[str, Any]:
    """Project the first `sample.projection_images` real test images into G's latent space
    (`pipeline.projection`); projection.png shows the `shown` worst reconstructed (real above, projection
    below), projection.json every image's error. Returns the index entry."""
    from pipeline.projection import project, projection_summary

    if not spec.images:
        return {"unavailable": "2D point data: see the scatter plot instead"}
    if not sample.projection_images:
        return {"unavailable": "sample.projection_images is 0"}
    n = min(sample.projection_images, len(prepared.x_test))
    targets = prepared.x_test[:n]
    labels = prepared.y_test[:n] if prepared.y_test is not None else None
    if spec.num_classes and labels is None:
        return {"unavailable": "a conditional G needs the images' labels"}
    result = project(generator, targets, spec.z_dim, classifier=classifier,
                     labels=labels if spec.num_classes else None, starts=sample.projection_starts,
                     steps=sample.projection_steps, seed=seed)
    summary = projection_summary(result.pixel_error, labels, prepared.info.get("class_names") if labels is not None
                                 else None)
    worst = result.pixel_error.argsort(descending=True)[:shown]
    save_png(image_grid(torch.cat([targets[worst], result.images[worst]]), len(worst)), out_dir / "projection.png")
    write_json({**summary, "errors": result.pixel_error.tolist(),
                "labels": labels.tolist() if labels is not None else None, "starts": sample.projection_starts,
                "steps": sample.projection_steps}, out_dir / "projection.json")
    return {"file": "projection.png", **{k: v for k, v in summary.items() if k != "projection_mse_per_class"}}


def _arithmetic(generator: nn.Module, classifier: nn.Module | None, z_dim: int, num_classes: int,
                concepts: tuple[int, int, int], prepared: Prepared, seed: int, out_dir: Path,
                samples: int) -> dict[str, Any]:
    if num_classes:
        return {"unavailable": "conditional model: the label, not z, carries the class"}
    if classifier is None:
        return {"unavailable": "no classifier for this dataset to find the concepts"}
    try:
        result = latent_arithmetic(generator, classifier, z_dim, concepts, n=samples, seed=seed)
    except GanLabError as exc:
        return {"unavailable": str(exc)}
    names = prepared.info["class_names"]
    arithmetic_figure(result, names, out_dir / "arithmetic.png")
    return {"file": "arithmetic.png", "concepts": [names[k] for k in concepts],
            "result_classes": [names[k] for k in result.result_classes.tolist()]}


def save_growth(generator: nn.Module, spec: "ModelSpec", stages: int, columns: int, seed: int,
                out_dir: Path) -> dict[str, Any]:
    """Progressive growing: the same `columns` latent points through the trained G at each of the `stages`
    resolutions it grew through, coarsest on top (`growth.png`); G is left at the full resolution."""
    from pipeline.models.progressive import levels, set_level_of_detail
    from pipeline.sampling import generate

    k = levels(generator)
    if k is None:
        return {"unavailable": "not a progressive generator"}
    device = next(generator.parameters()).device
    rows = []
    for lod in range(stages - 1, -1, -1):
        set_level_of_detail(float(lod), generator)
        rows.append(generate(generator, columns, spec.z_dim, spec.num_classes, seed=seed, device=device)[0])
    set_level_of_detail(0.0, generator)
    save_png(image_grid(torch.cat(rows), columns), out_dir / "growth.png")
    side = spec.data_shape[-1]
    return {"file": "growth.png", "resolutions": [side // 2 ** lod for lod in range(stages - 1, -1, -1)]}
