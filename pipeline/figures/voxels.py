"""Voxel grids as pictures (`pipeline.images.depth_views`: each shape along its three axes, shaded by depth): the
sample stage's grid and interpolation strips."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from pipeline.images import depth_views, image_grid, save_png


def save_voxel_grid(volumes: Tensor, per_row: int, path: Path) -> None:
    """Each volume's three depth views, `per_row` volumes a row."""
    save_png(image_grid(depth_views(volumes), per_row), path)


def save_voxel_strip(volumes: Tensor, steps: int, path: Path) -> None:
    """Walks of `steps` volumes a row (an interpolation), each shown by its three views stacked vertically."""
    views = depth_views(volumes)
    n, c, s, _ = views.shape
    stacked = views.reshape(n, c, s, 3, s).permute(0, 1, 3, 2, 4).reshape(n, c, 3 * s, s)
    save_png(image_grid(stacked, steps), path)
