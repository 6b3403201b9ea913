"""How each kind of data is shown, registered by the kind's name: the sample figure the sample stage
draws and the caveat the report prints beside every variant on that data. They live with the report,
not in `pipeline.kinds`, so editing a picture or a caption reruns only the stages that draw them,
never training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn as nn

from pipeline.registry import Registry

if TYPE_CHECKING:
    from pipeline.data import Prepared
    from pipeline.models import ModelSpec

SampleFigure = Callable[[nn.Module, "ModelSpec", "Prepared", int, int, Path, "torch.device | str"], None]
SAMPLE_FIGURES: Registry[SampleFigure] = Registry("sample figure")
NOTES: dict[str, Callable[["Prepared"], "str | None"]] = {}

def image_samples(generator: nn.Module, spec: "ModelSpec", prepared: "Prepared", grid: int, seed: int,
                  path: Path, device: torch.device | str = "cpu") -> None:
    """A grid x grid sample grid; conditional: one row per class, the same latents in every row."""
    from pipeline.images import image_grid, save_png
    from pipeline.latent import class_grid
    from pipeline.sampling import generate

    if spec.num_classes:
        images = class_grid(generator, spec.z_dim, spec.num_classes, grid, seed)
    else:
        images, _ = generate(generator, grid * grid, spec.z_dim, seed=seed, device=device)
    save_png(image_grid(images, grid), path)


def point_samples(generator: nn.Module, spec: "ModelSpec", prepared: "Prepared", grid: int, seed: int,
                  path: Path, device: torch.device | str = "cpu") -> None:
    """2,500 generated points over the real mixture and its modes."""
    from pipeline.kinds.points import PROTOCOL_SAMPLES
    from pipeline.figures.plots import scatter_points
    from pipeline.sampling import generate

    samples, _ = generate(generator, PROTOCOL_SAMPLES, spec.z_dim, spec.num_classes, seed=seed, device=device)
    scatter_points(samples, prepared, path)


def voxel_samples(generator: nn.Module, spec: "ModelSpec", prepared: "Prepared", grid: int, seed: int,
                  path: Path, device: torch.device | str = "cpu") -> None:
    """(grid / 2)^2 generated voxel shapes, each seen along its three axes (depth-shaded); conditional: one row per
    shape class, the same latents in every row."""
    from pipeline.figures.voxels import save_voxel_grid
    from pipeline.latent import class_grid
    from pipeline.sampling import generate

    per_row = max(2, grid // 2)
    if spec.num_classes:
        volumes = class_grid(generator, spec.z_dim, spec.num_classes, per_row, seed)
    else:
        volumes, _ = generate(generator, per_row * per_row, spec.z_dim, seed=seed, device=device)
    save_voxel_grid(volumes, per_row, path)


STACKED_NOT_COMPARABLE = (
    "Stacked MNIST built from the 5,000 bundled mnist5k digits: its mode counts and KL are not comparable with "
    "published Stacked MNIST numbers (128,000 stacks of all 70,000 MNIST digits and the 4-layer DCGAN). Set "
    "data.stacked_from: mnist and arch: dcgan4 for the published protocol.")


def stacked_note(prepared: "Prepared") -> str | None:
    return STACKED_NOT_COMPARABLE if prepared.info.get("stacked_from") == "mnist5k" else None


SAMPLE_FIGURES.add("image", image_samples)
SAMPLE_FIGURES.add("stacked", image_samples)
SAMPLE_FIGURES.add("points", point_samples)
SAMPLE_FIGURES.add("voxels", voxel_samples)
NOTES["stacked"] = stacked_note


def sample_figure(kind: str, generator: nn.Module, spec: "ModelSpec", prepared: "Prepared", grid: int, seed: int,
                  path: Path, device: torch.device | str = "cpu") -> None:
    """The picture of what the generator makes, as the data's kind shows it."""
    SAMPLE_FIGURES.get(kind, "data kind")(generator, spec, prepared, grid, seed, path, device)


def report_note(kind: str, prepared: "Prepared") -> str | None:
    """A caveat the report prints beside every variant on this data (None: nothing to say)."""
    note = NOTES.get(kind)
    return note(prepared) if note is not None else None
