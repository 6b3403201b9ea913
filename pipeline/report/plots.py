"""Figures for the sample stage and the report (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from pipeline.data import Prepared
from pipeline.errors import GanLabError
from pipeline.images import image_grid, save_png
from pipeline.io import atomic_path
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


def line_plot(rows: list[dict[str, float]], keys: list[str], title: str, path: Path, ylabel: str = "") -> bool:
    """Curves of `keys` over `step`; returns False (and writes nothing) when no key has data."""
    keys = [k for k in keys if rows and k in rows[0]]
    if not keys:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    steps = [r["step"] for r in rows]
    for key in keys:
        ax.plot(steps, [r.get(key) for r in rows], label=key, linewidth=1.2)
    ax.set_xlabel("generator step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
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
                        out_dir: Path) -> dict[str, Any]:
    """Latent-space pictures into `out_dir`; returns the index (what was drawn, or why not)."""
    if spec.kind != "image":
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
        direction = feature_direction(generator, classifier, z_dim, target, seed=seed)
        walk = walk_strip(generator, z_dim, direction, rows=4, steps=grid + 1, strength=3.0, seed=seed)
        save_png(image_grid(walk, grid + 1), out_dir / "direction.png")
        names = prepared.info["class_names"]
        index["direction"] = {"file": "direction.png", "target": target, "target_name": names[target], "strength": 3.0}
        alphas, probs = direction_profile(generator, classifier, z_dim, direction, steps=grid + 1, strength=3.0,
                                          seed=seed)
        entanglement_plot(alphas, probs, target, names, out_dir / "entanglement.png")
        index["entanglement"] = {"file": "entanglement.png", "target_name": names[target], "alphas": alphas.tolist(),
                                 "probabilities": probs.tolist()}
    index["arithmetic"] = _arithmetic(generator, classifier, z_dim, num_classes, concepts, prepared, seed, out_dir)
    return index


def _arithmetic(generator: nn.Module, classifier: nn.Module | None, z_dim: int, num_classes: int,
                concepts: tuple[int, int, int], prepared: Prepared, seed: int, out_dir: Path) -> dict[str, Any]:
    if num_classes:
        return {"unavailable": "conditional model: the label, not z, carries the class"}
    if classifier is None:
        return {"unavailable": "no classifier for this dataset to find the concepts"}
    try:
        result = latent_arithmetic(generator, classifier, z_dim, concepts, seed=seed)
    except GanLabError as exc:
        return {"unavailable": str(exc)}
    names = prepared.info["class_names"]
    arithmetic_figure(result, names, out_dir / "arithmetic.png")
    return {"file": "arithmetic.png", "concepts": [names[k] for k in concepts],
            "result_classes": [names[k] for k in result.result_classes.tolist()]}
